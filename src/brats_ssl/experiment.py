"""``brats-ssl experiment``: the data-efficiency sweep (labeled fraction × method × seed, and with
``--folds K`` every fold of a K-fold cross-validation), then ``results.csv`` (a row per run),
``per_case.csv`` (a row per run and val case) and ``comparisons.csv`` (paired differences with
bootstrap intervals and Wilcoxon p-values). Reading the folder back is
:mod:`brats_ssl.experiment_folder`'s; the report is drawn by the caller (``brats-ssl experiment``
runs this, then :func:`brats_ssl.report.write_report`).

With ``--folds 1`` (default) every run validates on one fixed val set; with K folds every case
is validated exactly once per (method, fraction, seed). Within a fold, ``--selection`` labeled
cases are held out of every loss: checkpoints, promotion, the final model and post-processing
are chosen on them, never on the val cases that are reported. Labeled sets are nested across
fractions (the 10 % labeled cases are among the 25 % ones), so a curve shows what more labels
buy, not a different draw. Finished runs are skipped, so re-running the command resumes the
sweep. At a fraction that leaves no unlabeled case, every semi-supervised method is the
supervised run (recorded as such, with a note).
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Mapping

from brats_ssl import atomic, folder_lock
from brats_ssl.data.conventions import REGIONS
from brats_ssl.data.dataset import add_unlabeled, open_dataset
from brats_ssl.data.folds import fold_splits
from brats_ssl.data.split import load_split, save_split
from brats_ssl.errors import BadInputError
from brats_ssl.experiment_folder import EXPERIMENT_JSON, RESULTS_CSV, REUSED_MARKER, RUNS, ExperimentFolder, run_seconds
from brats_ssl.experiment_tables import DEFAULT_REFERENCES, write_tables
from brats_ssl.metrics import EVALUATED
from brats_ssl.records import Split, Summary
from brats_ssl.variants import Variant, base_method

REGION_KEYS = tuple(EVALUATED)  # WT, TC, ET, NCR, ED
RESULT_COLUMNS = (
    ["method", "fraction", "seed", "fold", "n_labeled", "n_unlabeled", "n_selection", "run", "seconds", "note"]
    + [f"{r}_{m}" for r in REGION_KEYS for m in ("dice", "hd95")]
    + [f"teacher_{r}_dice" for r in REGIONS]
)


@dataclass(frozen=True)
class PlannedRun:
    """One run of the sweep: what to train, the supervised run whose teacher it starts from (if
    any), and how its row of results.csv is made from its summary and seconds."""

    title: str
    method: str  # as the sweep names it (a variant's name)
    request: Any  # pipeline.TrainRequest (the pipeline imports torch: not at module level)
    teacher_from: Path | None
    row: Any  # (seconds, summary) -> dict


def run_name(method: str, fraction: float, seed: int, fold: int, folds: int) -> str:
    """Run folder name; single-fold sweeps keep the names of sweeps made before folds existed."""
    return f"{method}_f{fraction:g}_s{seed}" if folds == 1 else f"{method}_fold{fold}_f{fraction:g}_s{seed}"


def split_name(fraction: float, seed: int, fold: int, folds: int) -> str:
    return f"f{fraction:g}_s{seed}.json" if folds == 1 else f"fold{fold}_f{fraction:g}_s{seed}.json"


def reuse_teacher(supervised_dir: Path, run_dir: Path) -> bool:
    """Copy a finished supervised run's teacher phase into a method run of the same fraction and
    seed: the teacher of ours / self-training is that very training (same split, settings, seed
    and batch stream), so it is not trained twice."""
    source, target = supervised_dir / "teacher", run_dir / "teacher"
    if not (source / "done.json").exists() or target.exists():
        return False
    with atomic.atomic_folder(target) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        (tmp / REUSED_MARKER).write_text(f"{source.resolve()}\n")
    return True


def _row(
    method: str,
    fraction: float,
    seed: int,
    fold: int,
    split: Split,
    run_dir: Path,
    seconds: float,
    summary: Summary,
    note: str = "",
) -> dict:
    row: dict[str, Any] = {
        "method": method,
        "fraction": fraction,
        "seed": seed,
        "fold": fold,
        "n_labeled": len(split["labeled"]),
        "n_unlabeled": len(split["unlabeled"]),
        "n_selection": len(split.get("selection", [])),
        "run": str(run_dir),
        "seconds": round(seconds, 1),
        "note": note,
    }
    mean = summary.get("mean", {})
    for region in REGION_KEYS:
        scores: Mapping[str, Any] = mean.get(region) or {}
        for metric in ("dice", "hd95"):
            value = scores.get(metric)
            row[f"{region}_{metric}"] = "" if value is None else round(float(value), 4)
    teacher = (summary.get("teacher") or {}).get("mean", {})
    for region in REGIONS:
        teacher_scores: Mapping[str, Any] = teacher.get(region) or {}
        value = teacher_scores.get("dice")
        row[f"teacher_{region}_dice"] = "" if value is None else round(float(value), 4)
    return row


def _split(
    out: Path, dataset, fraction: float, seed: int, fold: int, folds: int, made: dict[float, Split]
) -> tuple[Path, Split]:
    """The split file of a run: the saved one when the sweep made it before (a resumed sweep keeps
    its splits), else the one made now."""
    path = out / "splits" / split_name(fraction, seed, fold, folds)
    if path.exists():
        return path, load_split(path, dataset)
    save_split(made[fraction], path)
    return path, made[fraction]


@folder_lock.locks("out")
def run_experiment(
    data: Path,
    out: Path,
    *,
    fractions: list[float],
    methods: list[str],
    seeds: list[int],
    val: float,
    preset: str,
    steps: int | None,
    overrides: list[str],
    folds: int = 1,
    only_folds: list[int] | None = None,
    selection: int = 2,
    references: list[str] | None = None,
    unlabeled: list[Path] | None = None,
    variants: dict[str, Variant] | None = None,
    jobs: int = 1,
    threads: int | None = None,
    console=None,
) -> Path:
    """Run the sweep; ``jobs`` runs side by side (separate processes, ``threads`` CPU threads each,
    default: the CPUs shared out), a method that starts from the teacher after its fold's
    supervised run. ``only_folds`` trains those folds only (0-based, as in the run names); the
    other folds' runs count in the tables where an earlier invocation finished them."""
    from brats_ssl.experiment_jobs import SUMMARY_NAME
    from brats_ssl.pipeline import TrainRequest, run_training
    from brats_ssl.ssl.registry import METHODS

    variants = dict(variants or {})
    unknown = [m for m in methods + list(references or []) if m not in METHODS and m not in variants]
    if unknown:
        raise BadInputError(f"--methods/--references {', '.join(unknown)}: valid methods are {', '.join(METHODS)}")
    methods = list(dict.fromkeys(methods + list(variants)))
    if any(not 0 < f <= 1 for f in fractions):
        raise BadInputError(f"--fractions {fractions}: each must be in (0, 1]")
    if selection < 0:
        raise BadInputError(f"--selection {selection}: must be at least 0")
    if bad := [f for f in only_folds or [] if not 0 <= f < folds]:
        raise BadInputError(f"--fold {', '.join(map(str, bad))}: folds are numbered 0 to {folds - 1} (--folds {folds})")
    if jobs < 1 or (threads is not None and threads < 1):
        raise BadInputError(f"--jobs {jobs} / --threads {threads}: each must be at least 1")
    if jobs > 1 and threads is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = max(1, cpus // jobs)  # the CPUs this process may use (a container's or a job's share)
    if references is None:  # the controls that run, and every variant's base: the ablation's comparison
        bases = [v.method for v in variants.values()]
        references = [r for r in dict.fromkeys(list(DEFAULT_REFERENCES) + bases) if r in methods]
    dataset = add_unlabeled(open_dataset(data), list(unlabeled or []))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "data": str(Path(data).resolve()),
        "fractions": fractions,
        "methods": methods,
        "seeds": seeds,
        "folds": folds,
        "selection": selection,
        "references": references,
        "variants": {name: {"method": v.method, "overrides": v.overrides} for name, v in variants.items()},
        "unlabeled": [str(r) for r in dataset.unlabeled_roots],
        "val": val,
        "preset": preset,
        "steps": steps,
        "overrides": overrides,
        "torch_threads": thread_counts(out, threads if jobs > 1 else None),
    }
    planned = []
    sweep_size = 0  # every run of the sweep, also those of folds left to another invocation
    for seed in seeds:
        for fold in range(folds):
            made = fold_splits(
                dataset, fold=fold, folds=folds, fractions=sorted(fractions), seed=seed, val=val, selection=selection
            )
            for fraction in sorted(fractions):
                split_path, split = _split(out, dataset, fraction, seed, fold, folds, made)
                supervised_dir = out / RUNS / run_name("supervised", fraction, seed, fold, folds)
                for method in sorted(methods, key=lambda m: m != "supervised"):
                    base = base_method(method, variants)
                    no_unlabeled = base != "supervised" and not split["unlabeled"]
                    run_dir = (
                        supervised_dir if no_unlabeled else out / RUNS / run_name(method, fraction, seed, fold, folds)
                    )
                    run_overrides = list(overrides) + (
                        [] if no_unlabeled or method not in variants else variants[method].overrides
                    )
                    sweep_size += 1
                    if only_folds and fold not in only_folds and not (run_dir / SUMMARY_NAME).is_file():
                        continue  # another fold, left to another invocation
                    same_teacher = method not in variants or variants[method].keeps_teacher
                    reuses = METHODS[base].starts_from_teacher and same_teacher and not no_unlabeled
                    request = TrainRequest(
                        data=Path(data),
                        run_dir=run_dir,
                        split_file=split_path,
                        method="supervised" if no_unlabeled else base,
                        preset=preset,
                        steps=steps,
                        seed=seed,
                        overrides=run_overrides,
                        unlabeled=list(unlabeled or []),
                    )
                    where = f" · fold {fold + 1}/{folds}" if folds > 1 else ""
                    planned.append(
                        PlannedRun(
                            title=f"{method} · {fraction:g} labeled · seed {seed}{where}",
                            method=method,
                            request=request,
                            teacher_from=supervised_dir if reuses and "supervised" in methods else None,
                            row=partial(
                                _row,
                                method,
                                fraction,
                                seed,
                                fold,
                                split,
                                run_dir,
                                note="no unlabeled cases: same as supervised" if no_unlabeled else "",
                            ),
                        )
                    )
    atomic.write_json(out / EXPERIMENT_JSON, settings | {"planned_runs": sweep_size})  # the report's "n of N"
    rows: list[dict | None] = [None] * len(planned)

    def finished(index: int, summary: Summary, seconds: float) -> None:
        rows[index] = planned[index].row(run_seconds(planned[index].request.run_dir) or seconds, summary or {})
        done = [row for row in rows if row is not None]  # plan order, whichever run finished first
        write_results(out, done)
        write_tables(out, done, references)

    if jobs == 1:
        from brats_ssl.experiment_jobs import time_left_text

        took: dict[str, list[float]] = {}  # method -> seconds of its runs trained by this invocation
        for index, run in enumerate(planned):
            if console is not None:  # the rule stays short: a file's console cuts a long one
                console.rule(f"{run.title} ({index}/{len(planned)} done)")
                if left := time_left_text([r.method for r in planned[index:]], [], took, jobs=1):
                    console.print(f"sweep:{left.removeprefix(',')}", markup=False, highlight=False, soft_wrap=True)
            if run.teacher_from is not None:
                reuse_teacher(run.teacher_from, run.request.run_dir)
            trained = not (run.request.run_dir / SUMMARY_NAME).is_file()  # not finished by an earlier invocation
            start = time.perf_counter()
            summary = run_training(run.request, console=console)
            seconds = time.perf_counter() - start
            finished(index, summary, seconds)
            if trained:
                took.setdefault(run.method, []).append(seconds)
    else:
        from brats_ssl.experiment_jobs import run_side_by_side

        run_side_by_side(planned, jobs=jobs, threads=threads, reuse=reuse_teacher, finished=finished, console=console)
    return out / RESULTS_CSV


def thread_counts(out: Path, threads: int | None = None) -> list[int]:
    """CPU threads of every invocation of the sweep so far, this one included: results are bitwise
    reproducible at one thread count only (sums run in another order), so a comparison should
    know when runs mixed them."""
    import torch

    previous = ExperimentFolder(out).info.get("torch_threads", [])
    return sorted(set(previous) | {threads or torch.get_num_threads()})


def write_results(out: Path, rows: list[dict]) -> Path:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    return atomic.write_with(out / RESULTS_CSV, write)
