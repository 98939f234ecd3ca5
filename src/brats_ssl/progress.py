"""One progress display for every long step (validation, preprocessing, training, pseudo-labeling,
evaluation): every bar comes from :func:`make_progress`.

In a terminal: a live rich progress bar. Elsewhere (a log file, ``nohup``, CI) a live bar prints
nothing until the end, so a plain line is printed per task at start, at every 10 % and at the end.
A transient bar (one whose step is followed at once by its result, e.g. ``check``'s table) logs
only once its step has run :data:`QUIET_SECONDS`: a quick step adds nothing before the result, or
before the error that stopped it.

This is the one library module that imports rich: the library reports through the console its
caller passes in; tables and other console layouts belong to :mod:`brats_ssl.commands`.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# How long a transient step runs before it logs progress off a terminal.
QUIET_SECONDS = 10.0


class LogProgress:
    """The subset of ``rich.progress.Progress`` the pipeline uses, as log lines; none for a task
    until it has run ``quiet_seconds``."""

    def __init__(self, console: Console | None, *, quiet_seconds: float = 0.0):
        self.console = console or Console()
        self.quiet_seconds = quiet_seconds
        self.tasks: dict[TaskID, dict] = {}

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, description: str, *, total: int | None = None, completed: int = 0, **fields) -> TaskID:
        task = TaskID(len(self.tasks))
        self.tasks[task] = {
            "description": description,
            "total": total,
            "completed": completed,
            "start": time.perf_counter(),
            "start_done": completed,
            "next": 0.0,
            **fields,
        }
        self._maybe_print(task, force=True)
        return task

    def update(self, task: TaskID, *, completed: int | None = None, advance: int = 0, **fields) -> None:
        state = self.tasks[task]
        state["completed"] = completed if completed is not None else state["completed"] + advance
        state.update(fields)
        self._maybe_print(task)

    def advance(self, task: TaskID, advance: int = 1) -> None:
        self.update(task, advance=advance)

    def _maybe_print(self, task: TaskID, force: bool = False) -> None:
        state = self.tasks[task]
        total, done = state["total"], state["completed"]
        fraction = done / total if total else 1.0
        if not force and fraction < state["next"] and done != total:
            return
        elapsed = time.perf_counter() - state["start"]
        if elapsed < self.quiet_seconds:
            return
        state["next"] = (int(fraction * 10) + 1) / 10
        rate = (done - state["start_done"]) / elapsed if elapsed > 0 else 0.0
        eta = f", eta {(total - done) / rate:.0f} s" if total and rate > 0 and done < total else ""
        info = f" | {state['info']}" if state.get("info") else ""
        self.console.print(
            f"{state['description']}: {done}/{total if total else '?'}{info} ({elapsed:.0f} s{eta})",
            highlight=False,
            soft_wrap=True,
        )


def make_progress(console: Console | None = None, *, transient: bool = False) -> Progress | LogProgress:
    """A live bar on a terminal, log lines elsewhere. ``transient``: the bar disappears when done
    and logs nothing for a quick step (for a step whose result, e.g. a table, is printed right
    after it)."""
    if console is not None and not console.is_terminal:
        return LogProgress(console, quiet_seconds=QUIET_SECONDS if transient else 0.0)
    return Progress(
        TextColumn("[bold]{task.description:<14}"),
        BarColumn(bar_width=28),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


def file_console(handle) -> Console:
    """A console that writes plain lines to an open text file (a run's log)."""
    return Console(file=handle, width=120, force_terminal=False, highlight=False)


def stderr_console() -> Console:
    """Where a library step reports progress and warnings when its caller gave no console."""
    return Console(stderr=True, highlight=False)


def track(progress, iterable, *, description: str, total: int | None = None, info: str = ""):
    """Iterate with a progress task (or plainly when there is no progress display)."""
    if progress is None:
        yield from iterable
        return
    task = progress.add_task(description, total=total, info=info)
    for item in iterable:
        yield item
        progress.advance(task)
