"""``brats-ssl predict``: segment new scans with a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from brats_ssl.commands import options
from brats_ssl.commands.app import app, console


@app.command()
def predict(
    run: Path = typer.Argument(..., help="Run folder from `brats-ssl train`."),
    data: Path = typer.Argument(
        ..., help=("Folder of cases to segment (any supported convention; seg files not needed).")
    ),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder for <case>.nii.gz."),
    mc: int = typer.Option(1, "--mc", min=1, help="MC-dropout samples (1 = deterministic)."),
    tta: bool = typer.Option(False, "--tta", help="Flip test-time augmentation."),
    save_probabilities: bool = typer.Option(False, "--save-probabilities", help="Also write 4-D class probabilities."),
    save_uncertainty: bool = typer.Option(
        False, "--save-uncertainty", help=("Also write normalised entropy and mutual information.")
    ),
    checkpoint: str = typer.Option(
        "final", "--checkpoint", help=("final (the run's final model) | teacher | best | last.")
    ),
    no_postprocess: bool = typer.Option(
        False,
        "--no-postprocess",
        help=("Skip the run's post-processing rule (postprocessing.json; applied to the final model only)."),
    ),
    device: str = typer.Option("auto", "--device", help=options.DEVICE),
    ensemble: List[Path] = typer.Option(
        [],
        "--ensemble",
        help=(
            "Another run whose class probabilities are averaged with RUN's (repeatable), e.g. the other folds' runs "
            "of a cross-validation experiment. Post-processing: the rule every run chose, none when they differ."
        ),
    ),
) -> None:
    """Segment scans; writes NIfTI in each input's geometry and label convention."""
    from brats_ssl.predict import predict_folder

    written = predict_folder(
        run,
        data,
        out,
        ensemble_runs=list(ensemble),
        mc=mc,
        tta=tta,
        save_probabilities=save_probabilities,
        save_uncertainty=save_uncertainty,
        checkpoint=checkpoint,
        device=device,
        postprocess=not no_postprocess,
        console=console,
    )
    what = f" (the mean of {len(ensemble) + 1} runs)" if ensemble else ""
    console.print(f"wrote {len(written)} segmentations{what} to {out}")
