"""Progress off a terminal: log lines, none for a quick transient step (its result, or its error,
comes first)."""

from __future__ import annotations

import io

from rich.console import Console

from brats_ssl.progress import LogProgress, make_progress, track


def _log_console() -> tuple[Console, io.StringIO]:
    stream = io.StringIO()
    return Console(file=stream, width=120), stream


def test_off_a_terminal_progress_is_log_lines():
    console, stream = _log_console()
    progress = make_progress(console)
    assert isinstance(progress, LogProgress)
    with progress:
        assert list(track(progress, range(4), description="cases", total=4, info="x")) == [0, 1, 2, 3]
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("cases: 0/4 | x (") and lines[-1].startswith("cases: 4/4 | x (")


def test_a_quick_transient_step_logs_nothing():
    console, stream = _log_console()
    with make_progress(console, transient=True) as progress:
        task = progress.add_task("validating", total=3, info="")
        for case in ("a", "b", "c"):
            progress.update(task, info=case)
            progress.advance(task)
    assert stream.getvalue() == ""


def test_a_long_transient_step_logs_once_quiet_time_is_over():
    console, stream = _log_console()
    progress = LogProgress(console, quiet_seconds=0.05)
    task = progress.add_task("validating", total=2, info="")
    progress.advance(task)
    assert stream.getvalue() == ""
    progress.tasks[task]["start"] -= 1.0  # as if a second had passed
    progress.advance(task)
    assert stream.getvalue().startswith("validating: 2/2 (1 s)")
