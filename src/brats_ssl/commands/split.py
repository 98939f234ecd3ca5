"""``brats-ssl split``: a seeded labeled / unlabeled / val / selection split written to split.json."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from brats_ssl.commands import options
from brats_ssl.commands.app import app, console


@app.command()
def split(
    data: Path = typer.Argument(..., help=options.DATASET),
    out: Path = typer.Option(..., "-o", "--out", help="split.json to write."),
    labeled: float = typer.Option(
        0.1, "--labeled", help=("Fraction (0-1] of the non-validation cases that keep their labels.")
    ),
    val: float = typer.Option(0.2, "--val", help="Fraction of labeled cases held out for validation."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    min_labeled: int = typer.Option(1, "--min-labeled", help="At least this many labeled cases."),
    selection: int = typer.Option(
        0,
        "--selection",
        min=0,
        help=(
            "Labeled cases held out of training for model selection (best checkpoint, promotion, final model, "
            "post-processing). 0: those choices are made on the val cases, whose Dice is then optimistic."
        ),
    ),
    unlabeled: List[Path] = typer.Option([], "--unlabeled", help=options.UNLABELED),
) -> None:
    """Seeded, disjoint labeled / unlabeled / val / selection split, stratified by site where sites are known."""
    from brats_ssl.data.dataset import add_unlabeled, open_dataset
    from brats_ssl.data.split import make_split, save_split

    dataset = add_unlabeled(open_dataset(data), list(unlabeled))
    result = make_split(dataset, labeled=labeled, val=val, seed=seed, min_labeled=min_labeled, selection=selection)
    save_split(result, out)
    console.print(
        f"{out}: {len(result['labeled'])} labeled, {len(result['unlabeled'])} unlabeled, {len(result['val'])} val, "
        f"{len(result['selection'])} selection"
    )
