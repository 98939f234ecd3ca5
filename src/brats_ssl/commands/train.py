"""``brats-ssl train``: teacher → pseudo-labels → curriculum student (or a baseline); re-running resumes."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from brats_ssl.commands import options
from brats_ssl.commands.app import app, console
from brats_ssl.ssl.registry import methods_help


@app.command()
def train(
    data: Path = typer.Argument(..., help=options.DATASET),
    out: Path = typer.Option(..., "-o", "--out", help="Run folder (created; an existing one is resumed)."),
    split_file: Optional[Path] = typer.Option(None, "--split", help="split.json from `brats-ssl split`."),
    method: Optional[str] = typer.Option(None, "--method", show_default=False, help=methods_help()),
    preset_name: str = typer.Option("auto", "--preset", help=options.PRESET),
    model: Optional[str] = typer.Option(None, "--model", help="transaspp_unet | unet | segresnet | swinunetr."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (teacher, and per student stage)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for sampling, augmentation and initialisation."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="YAML file overriding any setting."),
    overrides: List[str] = typer.Option([], "--set", help="Override a setting: --set train.lr=1e-3 (repeatable)."),
    unlearn: Optional[str] = typer.Option(None, "--unlearn", help="Unlearning variant: argmax | absent | none."),
    no_curriculum: bool = typer.Option(False, "--no-curriculum", help="Ablation: all unlabeled cases from stage 1."),
    no_refinement: bool = typer.Option(
        False, "--no-refinement", help=("Ablation: no teacher-student agreement refinement.")
    ),
    no_uncertainty_weighting: bool = typer.Option(
        False, "--no-uncertainty-weighting", help=("Ablation: unweighted L_learn.")
    ),
    audit_labels: bool = typer.Option(
        False,
        "--audit-labels",
        help=("Research only: read the hidden labels of unlabeled cases to measure pseudo-label Dice."),
    ),
    device: str = typer.Option("auto", "--device", help=options.DEVICE),
    unlabeled: List[Path] = typer.Option([], "--unlabeled", help=options.UNLABELED),
) -> None:
    """Train: teacher → pseudo-labels → curriculum student (or a baseline). Re-running resumes."""
    from brats_ssl.pipeline import TrainRequest, run_training

    request = TrainRequest(
        data=data,
        run_dir=out,
        split_file=split_file,
        method=method,
        preset=preset_name,
        model=model,
        steps=steps,
        seed=seed,
        config_file=config_file,
        overrides=list(overrides),
        unlearn=unlearn,
        curriculum=not no_curriculum,
        refinement=not no_refinement,
        uncertainty_weighting=not no_uncertainty_weighting,
        audit_labels=audit_labels,
        device=device,
        unlabeled=list(unlabeled),
    )
    summary = run_training(request, console=console)
    console.print(f"summary: {out / 'summary.json'}")
    if summary is not None:
        from brats_ssl.commands.tables import print_summary_table, table_columns

        print_summary_table(table_columns(summary), console=console)
