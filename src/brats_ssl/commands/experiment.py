"""``brats-ssl experiment``: the data-efficiency sweep (fractions × methods × seeds × folds)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from brats_ssl.commands import options
from brats_ssl.commands.app import app, console
from brats_ssl.ssl.registry import METHODS

METHODS_HELP = f"Methods to compare: {', '.join(METHODS)}."


@app.command()
def experiment(
    data: Path = typer.Argument(..., help=options.DATASET),
    out: Path = typer.Option(..., "-o", "--out", help="Experiment folder (resumable)."),
    fractions: List[float] = typer.Option([0.1, 0.25, 0.5, 1.0], "--fractions", help="Labeled fractions."),
    methods: List[str] = typer.Option(["supervised", "ours", "ua-mt"], "--methods", help=METHODS_HELP),
    seeds: List[int] = typer.Option([0], "--seeds", help="Seeds (split and training)."),
    folds: int = typer.Option(
        1,
        "--folds",
        min=1,
        help=(
            "Cross-validation folds: every case with labels is validated once per method, fraction and seed. "
            "1: one fixed val set (--val)."
        ),
    ),
    only_folds: List[int] = typer.Option(
        [],
        "--fold",
        help=(
            "Train only this fold of the --folds split (repeatable; 0-based, as in the run names *_fold0_*): "
            "a sweep trained fold by fold over several sessions. Folds finished before still count in the tables."
        ),
    ),
    val: float = typer.Option(
        0.2, "--val", help=("Validation fraction with --folds 1 (one fixed val set for all runs).")
    ),
    selection: int = typer.Option(
        2,
        "--selection",
        min=0,
        help=(
            "Labeled cases per fold held out of training: checkpoints, promotion, final model and post-processing "
            "are chosen on them, never on the reported val cases. 0: chosen on the val cases (optimistic)."
        ),
    ),
    references: Optional[List[str]] = typer.Option(
        None,
        "--references",
        help=(
            "Methods every other method is compared with, per case "
            "(default: supervised, ours-control and ours-student-control, those that run)."
        ),
    ),
    preset_name: str = typer.Option("auto", "--preset", help=options.PRESET),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps per run / per stage."),
    overrides: List[str] = typer.Option([], "--set", help="Override a setting for every run (repeatable)."),
    unlabeled: List[Path] = typer.Option([], "--unlabeled", help=options.UNLABELED),
    variant: List[str] = typer.Option(
        [],
        "--variant",
        help=(
            "A method with settings changed, compared as a method of its own and with its base (repeatable): "
            '"NAME=METHOD KEY=VALUE ...", e.g. "no-copy-paste=ours ssl.copy_paste=false".'
        ),
    ),
    jobs: int = typer.Option(
        1,
        "--jobs",
        min=1,
        help=(
            "Runs side by side, each in its own process (its output in RUN/experiment.log). On a few CPU cores "
            "small runs finish sooner side by side than one after the other on all cores."
        ),
    ),
    threads: Optional[int] = typer.Option(
        None,
        "--threads",
        min=1,
        help=(
            "CPU threads per run with --jobs above 1 (default: the CPUs shared out). A run repeats bit for bit "
            "only at the same thread count."
        ),
    ),
) -> None:
    """Data-efficiency sweep: every fraction × method × seed (× fold) → per-case table, paired comparisons, curves."""
    from brats_ssl.commands.tables import print_reading
    from brats_ssl.experiment import run_experiment
    from brats_ssl.report import write_report
    from brats_ssl.report.experiment_report import experiment_reading
    from brats_ssl.variants import parse_variants

    run_experiment(
        data,
        out,
        fractions=fractions,
        methods=methods,
        seeds=seeds,
        val=val,
        folds=folds,
        only_folds=list(only_folds),
        selection=selection,
        references=references,
        preset=preset_name,
        steps=steps,
        overrides=list(overrides),
        unlabeled=list(unlabeled),
        variants=parse_variants(list(variant)),
        jobs=jobs,
        threads=threads,
        console=console,
    )
    write_report(out, console=console)
    reading = experiment_reading(out)
    if reading is not None:
        print_reading(reading, console)
