"""``brats-ssl suggest``: which unlabeled scans to annotate next, and why (active learning)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from brats_ssl.commands import options
from brats_ssl.commands.app import app, console


@app.command()
def suggest(
    run: Path = typer.Argument(..., help=options.OURS_RUN),
    data: Path = typer.Argument(..., help=options.TRAINED_ON),
    top: int = typer.Option(10, "--top", min=1, help="How many scans to suggest."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Also write the table as CSV."),
) -> None:
    """Which unlabeled scans to annotate next, and why (active learning)."""
    from brats_ssl.commands.tables import suggestions_table
    from brats_ssl.ssl.suggest import suggest_cases, write_suggestions_csv

    suggestions = suggest_cases(run, data, top=top)
    console.print(suggestions_table(suggestions))
    if out is not None:
        write_suggestions_csv(suggestions, out)
