"""``brats-ssl report``: (re)draw a run's or an experiment's plots and write its report."""

from __future__ import annotations

from pathlib import Path

import typer

from brats_ssl.commands.app import app, console


@app.command()
def report(target: Path = typer.Argument(..., help="A run folder or an experiment folder.")) -> None:
    """(Re)draw plots and write report.md and report.html."""
    from brats_ssl.commands.tables import print_reading
    from brats_ssl.experiment_folder import is_experiment_folder
    from brats_ssl.report import write_report
    from brats_ssl.report.experiment_report import experiment_reading

    path = write_report(target, console=console)
    if is_experiment_folder(target) and (reading := experiment_reading(target)) is not None:
        print_reading(reading, console)
    console.print(f"report: {path}")
