"""``brats-ssl synth``: a synthetic BraTS-2021-layout cohort to try the pipeline without data."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from brats_ssl.commands.app import app, console


@app.command()
def synth(
    out: Path = typer.Argument(..., help="Folder to write the cohort into (BraTS 2021 layout)."),
    cases: int = typer.Option(12, "--cases", "-n", min=1, help="Number of cases."),
    shape: tuple[int, int, int] = typer.Option((96, 96, 64), "--shape", help="Volume shape X Y Z (voxels)."),
    spacing: float = typer.Option(2.0, "--spacing", help="Voxel spacing in mm (all axes)."),
    sites: int = typer.Option(3, "--sites", min=1, help="Number of simulated scanners/sites."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same cohort."),
    unlabeled: int = typer.Option(0, "--unlabeled", min=0, help="Extra cases written without a seg file."),
    montage: Optional[Path] = typer.Option(None, "--montage", help="Also write a PNG montage of a few cases."),
) -> None:
    """Write a synthetic BraTS-2021-layout cohort (NIfTI) with per-site differences in sites.csv."""
    from brats_ssl.data.synthetic import write_cohort

    ids = write_cohort(out, cases=cases, shape=shape, spacing=spacing, sites=sites, seed=seed, unlabeled=unlabeled)
    console.print(f"wrote {len(ids)} cases to {out} (sites in {out / 'sites.csv'})")
    if montage is not None:
        from brats_ssl.viz import dataset_montage

        dataset_montage(out, montage)
        console.print(f"montage: {montage}")
