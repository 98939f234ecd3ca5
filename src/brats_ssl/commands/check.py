"""``brats-ssl check``: the dataset's convention, a table of every case and a summary line.

The table is borderless and fits 80 columns: problems take the width the other columns leave, one
cut line each, or a count when the terminal is narrow (the full messages follow the table).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from brats_ssl.commands.app import app, console

if TYPE_CHECKING:  # the data layer (nibabel, numpy) loads when the command runs, not for --help
    from brats_ssl.data.dataset import CaseRef, Dataset
    from brats_ssl.data.validate import CaseReport


@app.command()
def check(
    data: Path = typer.Argument(..., help="Dataset folder (BraTS 2017-21, 2023+, MSD Task01, nnU-Net raw)."),
) -> None:
    """Detect the dataset's convention, validate every case and print a table. Exit 2 if any case is unusable."""
    if not check_dataset(data, console=console):
        raise typer.Exit(2)


def check_dataset(root: Path, console: Console, *, cache: bool = True) -> bool:
    """Print the convention, a table of every case and a summary; True when all are usable.

    :class:`BadInputError` (missing folder, no cases at all) propagates to the caller.
    """
    from brats_ssl.data.dataset import open_dataset
    from brats_ssl.data.validate import validate_dataset

    dataset = open_dataset(root)
    console.print(
        Text.assemble(("convention: ", "bold"), dataset.convention.name, " - ", dataset.convention.description),
        soft_wrap=True,
    )
    reports = validate_dataset(dataset, progress=True, cache=cache, console=console)
    console.print(_table(dataset, reports, console.width))
    bad = [p for r in reports for p in r.problems]
    if bad:
        console.print(Text("problems:", style="bold red"))
        for problem in bad:
            console.print(Text(f"  {problem}"), soft_wrap=True)
    console.print(Text(summary_line(reports), style="bold"))
    return all(r.usable for r in reports)


def summary_line(reports: list[CaseReport]) -> str:
    usable = sum(r.usable for r in reports)
    labeled = sum(r.labeled for r in reports)
    return (
        f"{len(reports)} cases, {usable} usable, {len(reports) - usable} with problems; "
        f"{labeled} labeled, {len(reports) - labeled} unlabeled"
    )


def _short_problem(report: CaseReport, problem: str, case: CaseRef | None) -> str:
    """The table's form of a problem: no case prefix, file names instead of full paths."""
    text = problem.removeprefix(f"case {report.case_id}: ").removeprefix("file ")
    if case is not None:
        for path in sorted(set(case.files()) | {case.reference_path.parent}, key=lambda p: -len(str(p))):
            text = text.replace(str(path), path.name)
    return text


def _fmt(values: tuple | None, sep: str = "x") -> str:
    if not values:
        return "-"
    return sep.join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _table(dataset: Dataset, reports: list[CaseReport], width: int) -> Table:
    """One row per case. Problems take the width left: one cut line each, or a count if narrow."""
    by_id = {c.case_id: c for c in dataset.cases}
    headers = ("case", "site", "labeled", "shape", "spacing", "labels")
    rows = []
    for report in reports:
        rows.append(
            (
                report.case_id,
                report.site or "-",
                "yes" if report.labeled else "no",
                _fmt(report.shape),
                _fmt(report.spacing),
                " ".join(report.labels_present) if report.labeled else "-",
            )
        )
    # borderless, one right-pad space + one separator between columns: fits 80 columns
    table = Table(
        title=Text(str(dataset.root)), box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0), title_justify="left"
    )
    used = 0
    for i, header in enumerate(headers):
        column_width = max(len(header), *(len(row[i]) for row in rows))
        table.add_column(header, no_wrap=True, min_width=column_width)
        used += column_width + 2
    available = width - used - 1
    table.add_column("problems", no_wrap=True, overflow="ellipsis", max_width=max(available, 6))
    for report, row in zip(reports, rows):
        if not report.problems:
            problems = "ok"
        elif available >= 24:
            problems = "\n".join(_short_problem(report, p, by_id.get(report.case_id)) for p in report.problems)
        else:
            problems = f"FAIL {len(report.problems)}"  # how many; the messages follow the table
        table.add_row(*(Text(cell) for cell in row), Text(problems, style="red" if report.problems else "green"))
    return table
