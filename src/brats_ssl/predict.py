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
import re
from dataclasses import asdict, dataclass
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
from brats_ssl.inference import InferenceOptions, case_seed, ensemble, predict_volume
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


def not_a_run(folder: Path) -> BadInputError:
    """The error for a folder without config.yaml; for an experiment folder it names its runs and
    how to predict with one method's folds together (``--ensemble``)."""
    from brats_ssl.experiment_folder import ExperimentFolder, is_experiment_folder

    if not is_experiment_folder(folder):
        return BadInputError(f"folder {folder}: not a brats-ssl run folder (no config.yaml)")
    runs = sorted(path for path in ExperimentFolder(folder).run_dirs.values() if (path / "summary.json").is_file())
    if not runs:
        return BadInputError(f"folder {folder}: an experiment folder with no finished run yet; predict with a run")
    # one method's folds: run names that differ in their fold only; the largest such group, ours first
    groups: dict[str, list[Path]] = {}
    for path in runs:
        groups.setdefault(re.sub(r"_fold\d+", "", path.name), []).append(path)
    first, *others = max(groups.values(), key=lambda g: (len(g), g[0].name.startswith("ours_")))
    example = f"{first}" + "".join(f" --ensemble {r}" for r in others)
    return BadInputError(
        f"folder {folder}: an experiment folder, not a run; predict with one of its {len(runs)} finished runs, "
        f"or with one method's runs averaged, e.g. `brats-ssl predict {example} DATA -o OUT`"
    )


def load_run_model(run: Path, which: str, device: torch.device) -> tuple[config_lib.Config, nn.Module]:
    run = Path(run)
    if not (run / "config.yaml").is_file():
        raise not_a_run(run)
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


@dataclass(frozen=True)
class Member:
    """One run's model in a prediction (one member, or several averaged: an ensemble)."""

    config: config_lib.Config
    model: nn.Module
    options: InferenceOptions


def predict_case(
    members: list[Member],
    case: CaseRef,
    out: Path,
    *,
    device: torch.device,
    save_probabilities: bool,
    save_uncertainty: bool,
    rule: Rule = IDENTITY,
) -> Path:
    """Segment one case with every member (each seeded by its own seed and the case id, so MC
    samples do not depend on the order of cases or processes) and the mean of their probabilities."""
    loaded = load_case(case, with_seg=False)
    pre = preprocess(loaded, PreprocessParams.from_config(members[0].config.data))  # the same for every member
    predictions = []
    for member in members:
        torch.manual_seed(case_seed(member.config.seed, case.case_id))
        predictions.append(predict_volume(member.model, pre.image, member.options, device))
    prediction = ensemble(predictions)
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


def ensemble_rule(runs: list[Path], *, console=None) -> Rule:
    """The post-processing rule of an ensemble: the one every run chose for its own final model;
    none when they differ (no rule was chosen for the ensemble itself)."""
    rules = [load_rule(run) for run in runs]
    if all(rule == rules[0] for rule in rules):
        return rules[0]
    if console is not None:
        console.print(
            f"[yellow]note:[/] the {len(runs)} runs chose different post-processing rules for their own models "
            f"({', '.join(sorted({r.describe() for r in rules}))}); the ensemble is written without one"
        )
    return IDENTITY


def same_preprocessing(runs: list[Path], configs: list[config_lib.Config]) -> None:
    """An ensemble averages its members' probabilities voxel by voxel of one preprocessed volume,
    so every run must preprocess the scans alike (``data.*``)."""
    first = asdict(PreprocessParams.from_config(configs[0].data))
    for run, config in zip(runs[1:], configs[1:]):
        theirs = asdict(PreprocessParams.from_config(config.data))
        if theirs != first:
            differ = ", ".join(f"data.{k}: {first[k]!r} vs {theirs[k]!r}" for k in first if first[k] != theirs[k])
            raise BadInputError(
                f"--ensemble {run}: it preprocesses scans differently from {runs[0]} ({differ}); an ensemble "
                "averages the probabilities of one preprocessed volume, so its runs must share these settings"
            )


def predict_folder(
    run: Path,
    data: Path,
    out: Path,
    *,
    ensemble_runs: list[Path] | tuple[Path, ...] = (),
    mc: int = 1,
    tta: bool = False,
    save_probabilities: bool = False,
    save_uncertainty: bool = False,
    checkpoint: str = "final",
    device: str = "auto",
    postprocess: bool = True,
    console=None,
) -> list[Path]:
    """``ensemble_runs``: more runs whose class probabilities are averaged with ``run``'s (a
    cross-validation ensemble). ``postprocess``: apply the run's post-processing rule (chosen for
    its final model, so only with ``checkpoint="final"``; an ensemble's: see :func:`ensemble_rule`)."""
    from brats_ssl.data.validate import require_valid

    runs = [Path(run)] + [Path(r) for r in ensemble_runs]
    out = Path(out)
    if len({r.resolve() for r in runs}) < len(runs):
        raise BadInputError(f"--ensemble: a run is given twice ({', '.join(str(r) for r in runs)})")
    with distributed.session(resolve_device(device)) as torch_device, folder_lock.hold(out, console=console):
        console = distributed.quiet_unless_main(console)
        loaded = [load_run_model(r, checkpoint, torch_device) for r in runs]
        same_preprocessing(runs, [config for config, _ in loaded])
        members = [
            Member(config, model, InferenceOptions.from_config(config, mc_samples=mc, tta=tta))
            for config, model in loaded
        ]
        cases = [c.without_seg() for c in open_dataset(data).cases]  # labels are not needed to predict
        require_valid(cases)
        rule = IDENTITY
        if postprocess and checkpoint == "final":
            rule = load_rule(runs[0]) if len(runs) == 1 else ensemble_rule(runs, console=console)
        weights = [checkpoint_path(r, checkpoint).resolve() for r in runs]
        settings: dict = {
            "run": str(runs[0].resolve()),
            "checkpoint": str(weights[0]),
            "checkpoint_bytes": weights[0].stat().st_size,
            "checkpoint_mtime_ns": weights[0].stat().st_mtime_ns,
            "mc": mc,
            "tta": tta,
            "postprocessing": asdict(rule),
        }
        if len(runs) > 1:  # (a one-run record stays as it was, so earlier outputs still count as done)
            settings["ensemble"] = [
                {"run": str(r.resolve()), "checkpoint": str(w), "checkpoint_mtime_ns": w.stat().st_mtime_ns}
                for r, w in zip(runs[1:], weights[1:])
            ]

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
        info = f"T={mc}" + (f", {len(runs)} runs" if len(runs) > 1 else "")
        with progress if progress is not None else contextlib.nullcontext():
            for case in track(progress, todo, description="predict", total=len(todo), info=info):
                predict_case(
                    members,
                    case,
                    out,
                    device=torch_device,
                    save_probabilities=save_probabilities,
                    save_uncertainty=save_uncertainty,
                    rule=rule,
                )
        distributed.barrier()  # every rank's cases are written when the command returns
    return [outputs(c)[0] for c in cases]
