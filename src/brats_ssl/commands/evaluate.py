"""``brats-ssl evaluate``: Dice and HD95 of a folder of predictions against a labeled dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from brats_ssl.commands.app import app, console


@app.command()
def evaluate(
    pred: Path = typer.Argument(..., help="Folder of <case>.nii.gz label maps (same convention as GT)."),
    gt: Path = typer.Argument(..., help="Ground-truth dataset folder (any supported convention)."),
    out: Path = typer.Option(..., "-o", "--out", help="summary.json to write (a .csv is written beside it)."),
) -> None:
    """Dice and HD95 per label (NCR, ED, ET) and region (WT, TC, ET), per case and mean."""
    from brats_ssl.commands.tables import print_summary_table
    from brats_ssl.metrics import evaluate_folder

    summary = evaluate_folder(pred, gt, out)
    print_summary_table(summary, console=console)
    console.print(f"wrote {out} and {out.with_suffix('.csv')}")
