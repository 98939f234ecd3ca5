"""One progress display for every long step (preprocessing, training, pseudo-labeling).

In a terminal: a live rich progress bar. Elsewhere (a log file, ``nohup``, CI) a live bar prints
nothing until the end, so a plain line is printed per task at start, at every 10 % and at the end.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class LogProgress:
    """The subset of ``rich.progress.Progress`` the pipeline uses, as log lines."""

    def __init__(self, console: Console | None):
        self.console = console or Console()
        self.tasks: dict[int, dict] = {}

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, description: str, *, total: int | None = None, completed: int = 0, **fields) -> int:
        task = len(self.tasks)
        self.tasks[task] = {"description": description, "total": total, "completed": completed,
                            "start": time.perf_counter(), "start_done": completed, "next": 0.0, **fields}
        self._maybe_print(task, force=True)
        return task

    def update(self, task: int, *, completed: int | None = None, advance: int = 0, **fields) -> None:
        state = self.tasks[task]
        state["completed"] = completed if completed is not None else state["completed"] + advance
        state.update(fields)
        self._maybe_print(task)

    def advance(self, task: int, advance: int = 1) -> None:
        self.update(task, advance=advance)

    def _maybe_print(self, task: int, force: bool = False) -> None:
        state = self.tasks[task]
        total, done = state["total"], state["completed"]
        fraction = done / total if total else 1.0
        if not force and fraction < state["next"] and done != total:
            return
        state["next"] = (int(fraction * 10) + 1) / 10
        elapsed = time.perf_counter() - state["start"]
        rate = (done - state["start_done"]) / elapsed if elapsed > 0 else 0.0
        eta = f", eta {(total - done) / rate:.0f} s" if total and rate > 0 and done < total else ""
        info = f" | {state['info']}" if state.get("info") else ""
        self.console.print(f"{state['description']}: {done}/{total if total else '?'}{info} "
                           f"({elapsed:.0f} s{eta})", highlight=False, soft_wrap=True)


def make_progress(console: Console | None = None) -> Progress | LogProgress:
    if console is not None and not console.is_terminal:
        return LogProgress(console)
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


def track(progress, iterable, *, description: str, total: int | None = None, info: str = ""):
    """Iterate with a progress task (or plainly when there is no progress display)."""
    if progress is None:
        yield from iterable
        return
    task = progress.add_task(description, total=total, info=info)
    for item in iterable:
        yield item
        progress.advance(task)
