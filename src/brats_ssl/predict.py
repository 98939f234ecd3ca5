"""``brats-ssl predict``: segment new scans with a trained run, writing NIfTI in each input's
geometry and label convention, optionally with probabilities and uncertainty maps.

Re-running into the same folder with the same model and options predicts only the cases whose
outputs are missing (``predict.json`` records what made them). Under ``torchrun`` the cases are
shared among the ranks; each case's MC samples are seeded by its id, so the result does not depend
on the number of processes.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from brats_ssl import atomic, folder_lock
from brats_ssl import config as config_lib
from brats_ssl.data.dataset import CaseRef, open_dataset
from brats_ssl.data.io import load_case, write_float_map, write_label_map
from brats_ssl.data.preprocess import PreprocessParams, preprocess, restore_map, restore_probabilities
from brats_ssl.engine import distributed
from brats_ssl.engine.checkpoint import BEST_CHECKPOINT, LAST_CHECKPOINT, load_model_weights
from brats_ssl.engine.device import resolve_device
from brats_ssl.errors import BadInputError
from brats_ssl.inference import InferenceOptions, case_seed, predict_volume
from brats_ssl.paths import inside, safe_name
from brats_ssl.postprocess import IDENTITY, Rule, apply_rule, load_rule
from brats_ssl.progress import make_progress, track
from brats_ssl.run.model import build_model, model_fingerprint

CHECKPOINTS = ("final", "teacher", "best", "last")
RECORD = "predict.json"


def final_phase(run: Path) -> str:
    summary = run / "summary.json"
    if not summary.exists():
        raise BadInputError(
            f"folder {run}: the run has no summary.json yet (training unfinished); "
            "finish it with the same `brats-ssl train` command, or use --checkpoint teacher"
        )
    return json.loads(summary.read_text()).get("model", "teacher")


def checkpoint_path(run: Path, which: str) -> Path:
    if which not in CHECKPOINTS:
        raise BadInputError(f"--checkpoint {which!r}: expected one of {', '.join(CHECKPOINTS)}")
    if which == "teacher":
        return run / "teacher" / LAST_CHECKPOINT
    phase = final_phase(run)
    return run / phase / (BEST_CHECKPOINT if which == "best" else LAST_CHECKPOINT)


def load_run_model(run: Path, which: str, device: torch.device) -> tuple[config_lib.Config, nn.Module]:
    run = Path(run)
    if not (run / "config.yaml").is_file():
        raise BadInputError(f"folder {run}: not a brats-ssl run folder (no config.yaml)")
    config = config_lib.load(run / "config.yaml", saved_run=True)
    model = build_model(config)
    load_model_weights(model, checkpoint_path(run, which), fingerprint=model_fingerprint(config))
    return config, model.to(device).eval()


def case_outputs(out: Path, case_id: str, *, save_probabilities: bool, save_uncertainty: bool) -> list[Path]:
    """The files ``predict_case`` writes for a case, the label map first."""
    name = safe_name(case_id)
    suffixes = [""] + (["_probabilities"] if save_probabilities else [])
    suffixes += ["_entropy", "_mutual_information"] if save_uncertainty else []
    return [inside(out, f"{name}{suffix}.nii.gz") for suffix in suffixes]


def missing_cases(
    out: Path, cases: list[CaseRef], settings: dict, outputs: Callable[[CaseRef], list[Path]]
) -> list[str]:
    """Ids of the cases to predict; ``out/predict.json`` is (re)written when the settings are new.

    A case is done when all its outputs exist and are newer than the record of the same settings, so
    outputs of another model or of an earlier run are redone. Decided on rank 0, shared with all ranks.
    """
    todo: list[str] = []  # rank 0's list reaches the other ranks below
    if distributed.is_main():
        record = out / RECORD
        out.mkdir(parents=True, exist_ok=True)
        try:
            same = json.loads(record.read_text()) == settings
        except (OSError, ValueError):
            same = False
        if not same:
            atomic.write_json(record, settings)
        since = record.stat().st_mtime_ns
        todo = [c.case_id for c in cases if not all(p.is_file() and p.stat().st_mtime_ns >= since for p in outputs(c))]
    return distributed.broadcast_object(todo)


def predict_case(
    model: nn.Module,
    config: config_lib.Config,
    case: CaseRef,
    out: Path,
    *,
    options: InferenceOptions,
    device: torch.device,
    save_probabilities: bool,
    save_uncertainty: bool,
    rule: Rule = IDENTITY,
) -> Path:
    loaded = load_case(case, with_seg=False)
    pre = preprocess(loaded, PreprocessParams.from_config(config.data))
    prediction = predict_volume(model, pre.image, options, device)
    probabilities = restore_probabilities(prediction.probabilities.numpy(), pre.meta)
    name = safe_name(case.case_id)
    labels = apply_rule(probabilities.argmax(0).astype(np.uint8), rule, float(np.prod(pre.meta.spacing)) / 1000)
    target = write_label_map(case, labels, inside(out, f"{name}.nii.gz"))
    if save_probabilities:
        write_float_map(case, np.moveaxis(probabilities, 0, -1), inside(out, f"{name}_probabilities.nii.gz"))
    if save_uncertainty:
        write_float_map(case, restore_map(prediction.entropy.numpy(), pre.meta), inside(out, f"{name}_entropy.nii.gz"))
        write_float_map(
            case,
            restore_map(prediction.mutual_information.numpy(), pre.meta),
            inside(out, f"{name}_mutual_information.nii.gz"),
        )
    return target


def predict_folder(
    run: Path,
    data: Path,
    out: Path,
    *,
    mc: int = 1,
    tta: bool = False,
    save_probabilities: bool = False,
    save_uncertainty: bool = False,
    checkpoint: str = "final",
    device: str = "auto",
    postprocess: bool = True,
    console=None,
) -> list[Path]:
    """``postprocess``: apply the run's post-processing rule (chosen for its final model, so only
    with ``checkpoint="final"``)."""
    from brats_ssl.data.validate import require_valid

    run, out = Path(run), Path(out)
    with distributed.session(resolve_device(device)) as torch_device, folder_lock.hold(out, console=console):
        console = distributed.quiet_unless_main(console)
        config, model = load_run_model(run, checkpoint, torch_device)
        cases = [c.without_seg() for c in open_dataset(data).cases]  # labels are not needed to predict
        require_valid(cases)
        options = InferenceOptions.from_config(config, mc_samples=mc, tta=tta)
        weights = checkpoint_path(run, checkpoint).resolve()
        rule = load_rule(run) if postprocess and checkpoint == "final" else IDENTITY
        settings = {
            "run": str(run.resolve()),
            "checkpoint": str(weights),
            "checkpoint_bytes": weights.stat().st_size,
            "checkpoint_mtime_ns": weights.stat().st_mtime_ns,
            "mc": mc,
            "tta": tta,
            "postprocessing": asdict(rule),
        }

        def outputs(case: CaseRef) -> list[Path]:
            return case_outputs(
                out, case.case_id, save_probabilities=save_probabilities, save_uncertainty=save_uncertainty
            )

        missing = set(missing_cases(out, cases, settings, outputs))
        if console is not None and len(missing) < len(cases):
            console.print(
                f"{len(cases) - len(missing)} case(s) already predicted in {out} with this model; "
                f"predicting the other {len(missing)}"
            )
        todo = distributed.shard([c for c in cases if c.case_id in missing])
        progress = make_progress(console) if distributed.is_main() else None
        with progress if progress is not None else contextlib.nullcontext():
            for case in track(progress, todo, description="predict", total=len(todo), info=f"T={mc}"):
                torch.manual_seed(case_seed(config.seed, case.case_id))
                predict_case(
                    model,
                    config,
                    case,
                    out,
                    options=options,
                    device=torch_device,
                    save_probabilities=save_probabilities,
                    save_uncertainty=save_uncertainty,
                    rule=rule,
                )
        distributed.barrier()  # every rank's cases are written when the command returns
    return [outputs(c)[0] for c in cases]
