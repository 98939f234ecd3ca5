"""Help texts that several commands share, written once so the verbs cannot drift apart."""

from __future__ import annotations

DATASET = "Dataset folder."
DEVICE = "auto | cpu | cuda."
PRESET = "tiny (seconds, tests), cpu (2 mm, 64^3, ~2 M params), gpu (1 mm, 128^3), auto (by device)."
OURS_RUN = "Run folder trained with --method ours."
TRAINED_ON = "The dataset folder the run was trained on."
UNLABELED = (
    "A folder of extra unlabeled scans, in any layout brats-ssl reads (BraTS 2017-21 / 2023+, MSD, "
    "nnU-Net raw); its seg files, if any, are not read. Repeatable."
)
