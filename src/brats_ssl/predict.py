"""``brats-ssl predict``: segment new scans with a trained run, writing NIfTI in each input's
geometry and label convention, optionally with probabilities and uncertainty maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from brats_ssl import config as config_lib
from brats_ssl.data.dataset import CaseRef, open_dataset
from brats_ssl.data.io import load_case, write_float_map, write_label_map
from brats_ssl.data.preprocess import PreprocessParams, preprocess, restore_map, restore_probabilities
from brats_ssl.engine.checkpoint import load_model_weights
from brats_ssl.engine.context import build_model, model_fingerprint
from brats_ssl.engine.device import resolve_device
from brats_ssl.errors import BadInputError
from brats_ssl.inference import InferenceOptions, predict_volume
from brats_ssl.paths import inside, safe_name
from brats_ssl.progress import make_progress, track

CHECKPOINTS = ("final", "teacher", "best", "last")


def final_phase(run: Path) -> str:
    summary = run / "summary.json"
    if not summary.exists():
        raise BadInputError(f"folder {run}: the run has no summary.json yet (training unfinished); "
                            "finish it with the same `brats-ssl train` command, or use --checkpoint teacher")
    return json.loads(summary.read_text()).get("model", "teacher")


def checkpoint_path(run: Path, which: str) -> Path:
    if which not in CHECKPOINTS:
        raise BadInputError(f"--checkpoint {which!r}: expected one of {', '.join(CHECKPOINTS)}")
    if which == "teacher":
        return run / "teacher" / "checkpoint_last.pt"
    phase = final_phase(run)
    return run / phase / ("checkpoint_best.pt" if which == "best" else "checkpoint_last.pt")


def load_run_model(run: Path, which: str, device: torch.device) -> tuple[config_lib.Config, nn.Module]:
    run = Path(run)
    if not (run / "config.yaml").is_file():
        raise BadInputError(f"folder {run}: not a brats-ssl run folder (no config.yaml)")
    config = config_lib.load(run / "config.yaml")
    model = build_model(config)
    load_model_weights(model, checkpoint_path(run, which), fingerprint=model_fingerprint(config))
    return config, model.to(device).eval()


def predict_case(model: nn.Module, config: config_lib.Config, case: CaseRef, out: Path, *, options: InferenceOptions,
                 device: torch.device, save_probabilities: bool, save_uncertainty: bool) -> Path:
    loaded = load_case(case, with_seg=False)
    pre = preprocess(loaded, PreprocessParams.from_config(config.data))
    prediction = predict_volume(model, pre.image, options, device)
    probabilities = restore_probabilities(prediction.probabilities.numpy(), pre.meta)
    name = safe_name(case.case_id)
    target = write_label_map(case, probabilities.argmax(0).astype(np.uint8), inside(out, f"{name}.nii.gz"))
    if save_probabilities:
        write_float_map(case, np.moveaxis(probabilities, 0, -1), inside(out, f"{name}_probabilities.nii.gz"))
    if save_uncertainty:
        write_float_map(case, restore_map(prediction.entropy.numpy(), pre.meta), inside(out, f"{name}_entropy.nii.gz"))
        write_float_map(case, restore_map(prediction.mutual_information.numpy(), pre.meta),
                        inside(out, f"{name}_mutual_information.nii.gz"))
    return target


def predict_folder(run: Path, data: Path, out: Path, *, mc: int = 1, tta: bool = False,
                   save_probabilities: bool = False, save_uncertainty: bool = False, checkpoint: str = "final",
                   device: str = "auto", console=None) -> list[Path]:
    from brats_ssl.data.validate import require_valid

    torch_device = resolve_device(device)
    config, model = load_run_model(Path(run), checkpoint, torch_device)
    cases = [c.without_seg() for c in open_dataset(data).cases]  # labels are not needed to predict
    require_valid(cases)
    options = InferenceOptions.from_config(config, mc_samples=mc, tta=tta)
    Path(out).mkdir(parents=True, exist_ok=True)
    written = []
    with make_progress(console) as progress:
        for case in track(progress, cases, description="predict", total=len(cases), info=f"T={mc}"):
            written.append(predict_case(model, config, case, Path(out), options=options, device=torch_device,
                                        save_probabilities=save_probabilities, save_uncertainty=save_uncertainty))
    return written
