"""``brats-ssl pseudolabel``: a run's pseudo-labels as NIfTI maps to review, or an nnU-Net v2 raw dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from brats_ssl.commands import options
from brats_ssl.commands.app import app, console
from brats_ssl.errors import BadInputError


@app.command()
def pseudolabel(
    run: Path = typer.Argument(..., help=options.OURS_RUN),
    data: Path = typer.Argument(..., help=options.TRAINED_ON),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder."),
    no_postprocess: bool = typer.Option(False, "--no-postprocess", help="Skip the run's post-processing rule."),
    format: str = typer.Option(
        "nifti",
        "--format",
        help=(
            "nifti: per-case pseudo-label, confidence and uncertainty maps for review; nnunet: an nnU-Net v2 raw "
            "dataset OUT/DatasetNNN_NAME with the ground truth and the confident pseudo-labels."
        ),
    ),
    dataset_id: Optional[int] = typer.Option(None, "--dataset-id", help="nnunet: the dataset id N (1-999)."),
    name: str = typer.Option("BraTSSSL", "--name", help="nnunet: the dataset name (DatasetNNN_NAME)."),
    min_confidence: float = typer.Option(
        0.0,
        "--min-confidence",
        help=(
            "nnunet: keep unlabeled cases whose image-level confidence (the run's latest ranking.csv) is at least "
            "this; cases accepted in `brats-ssl review` are kept and rejected ones left out whatever it is."
        ),
    ),
    include_val: bool = typer.Option(
        True,
        "--include-val/--no-val",
        help=(
            "nnunet: also export the run's validation cases with their ground truth (--no-val keeps them out, "
            "to compare nnU-Net with the run on them)."
        ),
    ),
) -> None:
    """Export pseudo-labels: NIfTI maps for review in 3D Slicer, or an nnU-Net v2 raw dataset."""
    if format == "nnunet":
        from brats_ssl.ssl.nnunet_export import SIDECAR, export_nnunet

        if dataset_id is None:
            raise BadInputError("--format nnunet needs --dataset-id N (the nnU-Net dataset id, 1-999)")
        target = export_nnunet(
            run,
            data,
            out,
            dataset_id=dataset_id,
            name=name,
            min_confidence=min_confidence,
            include_val=include_val,
            postprocess=not no_postprocess,
            console=console,
        )
        sidecar = json.loads((target / SIDECAR).read_text())
        console.print(
            f"wrote nnU-Net dataset {target}: {len(sidecar['ground_truth'])} case(s) with ground truth, "
            f"{len(sidecar['pseudo_labeled'])} pseudo-labeled, {len(sidecar['left_out'])} left out "
            f"(see {target / SIDECAR})"
        )
        return
    if format != "nifti":
        raise BadInputError(f"--format {format!r}: expected nifti or nnunet")
    from brats_ssl.ssl.export import export_pseudolabels

    written = export_pseudolabels(run, data, out, postprocess=not no_postprocess, console=console)
    console.print(f"exported {len(written)} cases to {out}")
