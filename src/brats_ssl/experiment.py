"""``brats-ssl experiment``: the data-efficiency sweep (labeled fraction × method × seed) on one
fixed validation set, then ``results.csv``, a mean ± std table and the curves.

Splits are nested per seed (the 10 % labeled cases are among the 25 % ones, ...), so a curve
shows what more labels buy, not a different draw. Finished runs are skipped, so re-running the
command resumes the sweep. At a fraction that leaves no unlabeled case, every semi-supervised
method is the supervised run (recorded as such, with a note).
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import time
from pathlib import Path

from brats_ssl import atomic, folder_lock
from brats_ssl.data.dataset import open_dataset
from brats_ssl.data.split import _site_interleaved, make_split, save_split
from brats_ssl.errors import BadInputError

REGION_KEYS = ("WT", "TC", "ET", "NCR", "ED")
REUSED_MARKER = "reused_from.txt"  # in a phase folder copied from another run
RESULT_COLUMNS = ["method", "fraction", "seed", "n_labeled", "n_unlabeled", "run", "seconds", "note"] + [
    f"{r}_{m}" for r in REGION_KEYS for m in ("dice", "hd95")
] + ["teacher_WT_dice", "teacher_TC_dice", "teacher_ET_dice"]


def nested_splits(dataset, *, fractions: list[float], val: float, seed: int) -> dict[float, dict]:
    """One fixed val set (seed 0); labeled sets nested across fractions for this seed."""
    base = make_split(dataset, labeled=1.0, val=val, seed=0)
    rest = [c for c in dataset.cases if c.case_id not in set(base["val"])]
    order = _site_interleaved([c for c in rest if c.labeled], random.Random(seed))
    splits = {}
    for fraction in fractions:
        n = min(len(order), max(1, round(fraction * len(rest))))
        labeled = sorted(c.case_id for c in order[:n])
        splits[fraction] = {
            **base, "seed": seed, "labeled_fraction": fraction, "labeled": labeled,
            "unlabeled": sorted(c.case_id for c in rest if c.case_id not in set(labeled)),
        }
    return splits


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


def _row(method, fraction, seed, split, run_dir, seconds, summary, note="") -> dict:
    row = {"method": method, "fraction": fraction, "seed": seed, "n_labeled": len(split["labeled"]),
           "n_unlabeled": len(split["unlabeled"]), "run": str(run_dir), "seconds": round(seconds, 1), "note": note}
    mean = summary.get("mean", {})
    for region in REGION_KEYS:
        for metric in ("dice", "hd95"):
            value = (mean.get(region) or {}).get(metric)
            row[f"{region}_{metric}"] = "" if value is None else round(float(value), 4)
    teacher = (summary.get("teacher") or {}).get("mean", {})
    for region in ("WT", "TC", "ET"):
        value = (teacher.get(region) or {}).get("dice")
        row[f"teacher_{region}_dice"] = "" if value is None else round(float(value), 4)
    return row


@folder_lock.locks("out")
def run_experiment(data: Path, out: Path, *, fractions: list[float], methods: list[str], seeds: list[int],
                   val: float, preset: str, steps: int | None, overrides: list[str], console=None) -> Path:
    from brats_ssl.config import METHODS, TEACHER_METHODS
    from brats_ssl.pipeline import TrainRequest, run_training

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise BadInputError(f"--methods {', '.join(unknown)}: valid methods are {', '.join(METHODS)}")
    if any(not 0 < f <= 1 for f in fractions):
        raise BadInputError(f"--fractions {fractions}: each must be in (0, 1]")
    dataset = open_dataset(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "experiment.json", {
        "data": str(Path(data).resolve()), "fractions": fractions, "methods": methods, "seeds": seeds,
        "val": val, "preset": preset, "steps": steps, "overrides": overrides,
        "torch_threads": thread_counts(out),
    })
    rows = []
    for seed in seeds:
        splits = nested_splits(dataset, fractions=sorted(fractions), val=val, seed=seed)
        for fraction in sorted(fractions):
            split = splits[fraction]
            split_path = out / "splits" / f"f{fraction:g}_s{seed}.json"
            if not split_path.exists():
                save_split(split, split_path)
            supervised_dir = out / "runs" / f"supervised_f{fraction:g}_s{seed}"
            for method in sorted(methods, key=lambda m: m != "supervised"):
                no_unlabeled = method != "supervised" and not split["unlabeled"]
                run_dir = supervised_dir if no_unlabeled else out / "runs" / f"{method}_f{fraction:g}_s{seed}"
                run_method = "supervised" if no_unlabeled else method
                if console is not None:
                    console.rule(f"{method} · {fraction:g} labeled · seed {seed}")
                if method in TEACHER_METHODS and not no_unlabeled and "supervised" in methods:
                    reuse_teacher(supervised_dir, run_dir)
                start = time.perf_counter()
                summary = run_training(TrainRequest(
                    data=Path(data), run_dir=run_dir, split_file=split_path, method=run_method, preset=preset,
                    steps=steps, seed=seed, overrides=list(overrides),
                ), console=console)
                seconds = _run_seconds(run_dir) or (time.perf_counter() - start)
                note = "no unlabeled cases: same as supervised" if no_unlabeled else ""
                rows.append(_row(method, fraction, seed, split, run_dir, seconds, summary or {}, note))
                write_results(out, rows)
    from brats_ssl.report import write_report

    write_report(out, console=console)
    return out / "results.csv"


def thread_counts(out: Path) -> list[int]:
    """CPU threads of every invocation of the sweep so far, this one included: results are bitwise
    reproducible at one thread count only (sums run in another order), so a comparison should
    know when runs mixed them."""
    import torch

    previous = []
    if (out / "experiment.json").is_file():
        previous = json.loads((out / "experiment.json").read_text()).get("torch_threads", [])
    return sorted(set(previous) | {torch.get_num_threads()})


def _phase_seconds(run_dir: Path, *, reused_only: bool = False) -> float:
    """Sum of the finished phases' training time (done.json, summed over resumed processes);
    ``reused_only``: just the phases copied from another run."""
    return sum(float(json.loads(done.read_text()).get("seconds", 0.0)) for done in Path(run_dir).glob("*/done.json")
               if not reused_only or (done.parent / REUSED_MARKER).is_file())


def _run_seconds(run_dir: Path) -> float | None:
    """Training time of a run, its reused teacher included (what the run took on its own)."""
    return _phase_seconds(run_dir) or None


def reused_seconds(run_dir: Path) -> float:
    """Training time of the run's phases copied from another run (already counted there)."""
    return _phase_seconds(run_dir, reused_only=True)


def write_results(out: Path, rows: list[dict]) -> Path:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    return atomic.write_with(out / "results.csv", write)


def read_results(out: Path) -> list[dict]:
    with (Path(out) / "results.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))
