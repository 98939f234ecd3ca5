"""One rich progress display for every long step (preprocessing, training, pseudo-labeling)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def make_progress(console: Console | None = None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<14}"),
        BarColumn(bar_width=28),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def track(progress: Progress | None, iterable, *, description: str, total: int | None = None, info: str = ""):
    """Iterate with a progress task (or plainly when there is no progress display)."""
    if progress is None:
        yield from iterable
        return
    task = progress.add_task(description, total=total, info=info)
    for item in iterable:
        yield item
        progress.advance(task)
