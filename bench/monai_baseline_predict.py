"""The plain MONAI inference process the predict benchmark compares against: load the four
modalities, z-score, MONAI UNet (4.8 M parameters), default ``sliding_window_inference`` with
96³ windows and overlap 0.5 in fp32, argmax, write NIfTI. Weights are random: only time matters.

Usage: .venv/bin/python bench/monai_baseline_predict.py CASE_DIR OUT.nii.gz
"""

import sys

import nibabel as nib
import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.networks.nets import UNet

case_dir, out = sys.argv[1], sys.argv[2]
case = case_dir.rstrip("/").split("/")[-1]
images = [nib.load(f"{case_dir}/{case}_{m}.nii.gz") for m in ("t1", "t1ce", "t2", "flair")]
volume = np.stack([np.asarray(i.dataobj, dtype=np.float32) for i in images])
brain = volume.sum(0) > 0
for channel in volume:
    channel[brain] = (channel[brain] - channel[brain].mean()) / (channel[brain].std() + 1e-8)
torch.manual_seed(0)
model = UNet(3, 4, 4, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2).eval()
with torch.no_grad():
    logits = sliding_window_inference(torch.from_numpy(volume)[None], (96, 96, 96), 1, model, overlap=0.5)
labels = logits[0].argmax(0).numpy().astype(np.uint8)
nib.save(nib.Nifti1Image(labels, images[0].affine, images[0].header), out)
