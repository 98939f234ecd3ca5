"""``brats-ssl demo``: synthetic cohort → 10 % labeled split whose labeled cases miss a site →
``--method ours`` → report, in a few minutes on a laptop CPU.

The demo uses the ``tiny`` network at a demo-sized schedule (set below, saved in the run's
config.yaml like any run); it shows the whole pipeline working, not a tuned result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from brats_ssl.data.dataset import open_dataset
from brats_ssl.data.split import make_split, save_split
from brats_ssl.records import Summary

DEMO_SHAPE = (64, 64, 40)
DEMO_SPACING = 3.0
DEMO_SITES = 3
# Settings on top of the tiny preset: enough steps for the teacher to find the tumour.
DEMO_OVERRIDES = [
    "train.steps=300",
    "train.val_every=100",
    "train.patch_size=[48,48,32]",
    "train.lr=0.003",
    "model.features=[8,16,32,64]",
    "ssl.stages=2",
    "ssl.stage_steps=150",
    "inference.mc_samples=4",
    "ssl.tau_start=0.85",
    "ssl.tau_end=0.7",
]


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced, for the command to show: the run's summary.json, the report, the time."""

    summary: Summary
    report: Path
    seconds: float


def run_demo(out: Path, *, cases: int = 40, seed: int = 0, console=None) -> DemoResult:
    from brats_ssl.data.synthetic import write_cohort
    from brats_ssl.pipeline import TrainRequest, run_training
    from brats_ssl.report import write_report

    out = Path(out)
    data, run = out / "data", out / "run"
    started = time.perf_counter()
    if not (data / "sites.csv").exists():
        write_cohort(data, cases=cases, shape=DEMO_SHAPE, spacing=DEMO_SPACING, sites=DEMO_SITES, seed=seed)
    dataset = open_dataset(data)
    sites = sorted({c.site for c in dataset.cases if c.site})
    split_path = out / "split.json"
    if not split_path.exists():
        # The last site keeps no label: the student must carry the teacher to a scanner it never saw labeled.
        split = make_split(dataset, labeled=0.1, val=0.2, seed=seed, min_labeled=3, unlabeled_sites=sites[-1:])
        save_split(split, split_path)
    if console is not None:
        console.print(
            f"demo: {len(dataset)} synthetic cases from {len(sites)} sites in {data}; "
            f"labeled cases come from {', '.join(sites[:-1])} only"
        )
    summary = run_training(
        TrainRequest(
            data=data,
            run_dir=run,
            split_file=split_path,
            method="ours",
            preset="tiny",
            seed=seed,
            overrides=list(DEMO_OVERRIDES),
        ),
        console=console,
    )
    report = write_report(run, console=console)
    return DemoResult(summary=summary, report=report, seconds=time.perf_counter() - started)
