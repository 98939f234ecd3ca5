"""``brats-ssl demo``: synthetic cohort → split → ``--method ours`` → report, then the results table."""

from __future__ import annotations

from pathlib import Path

import typer

from brats_ssl.commands.app import app, console


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_out"), "-o", "--out", help="Folder for the cohort, the run and the report."),
    cases: int = typer.Option(40, "--cases", help="Synthetic cases."),
    seed: int = typer.Option(0, "--seed", help="Seed."),
) -> None:
    """Synthetic cohort → 10 % labeled split → --method ours → report, in a few minutes on a laptop CPU."""
    from brats_ssl.commands.tables import print_summary_table, table_columns
    from brats_ssl.demo import run_demo

    result = run_demo(out, cases=cases, seed=seed, console=console)
    print_summary_table(table_columns(result.summary), console=console)
    console.print(f"final model: {result.summary['model']}; report: {result.report}")
    console.print(f"demo finished in {result.seconds:.0f} s")
