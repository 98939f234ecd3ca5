"""``experiment --jobs N``: the sweep's runs N at a time, each in a process of its own with a fixed
number of CPU threads. On a few CPU cores small runs use the cores better side by side than one
after the other on all of them, and a run is bitwise the same whichever way it ran, as long as
its thread count is the same (sums run in another order on another count).

A method that starts from the teacher waits for its fold's supervised run and takes a copy of its
teacher, as in a sequential sweep. A run's output goes to ``RUN/experiment.log``; the console
gets a line when a run starts and when it ends (a run finished by an earlier invocation: one line,
when its settings have been checked). When a run fails, no new run starts, the running
ones finish (nothing trained is lost), and the first failure is raised naming the run and its log.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

from brats_ssl.errors import BadInputError
from brats_ssl.experiment_folder import reused_seconds, run_seconds

LOG_NAME = "experiment.log"
SUMMARY_NAME = "summary.json"  # written when a run is finished (pipeline.run_training)


def kept_seconds(run_dir: Path) -> float | None:
    """What a run finished by an earlier invocation took on its own: its phases' training time, less
    a teacher copied from its fold's supervised run (counted there); None when not recorded."""
    own = (run_seconds(run_dir) or 0.0) - reused_seconds(run_dir)
    return own if own > 0 else None


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _paces(took: dict[str, list[float]], before: dict[str, list[float]]) -> dict[str, list[float]]:
    """method → its runs' seconds at this invocation's pace: the runs trained here, else the runs
    kept from an earlier invocation, scaled by how the methods that have both compare (another
    machine, or the same one busier); 1:1 when none has both."""
    both = [m for m in took if took[m] and before.get(m)]
    scale = sum(_mean(took[m]) for m in both) / sum(_mean(before[m]) for m in both) if both else 1.0
    paces = {m: [s * scale for s in seconds] for m, seconds in before.items() if seconds}
    return paces | {m: seconds for m, seconds in took.items() if seconds}


def expected_seconds(
    method: str, took: dict[str, list[float]], before: dict[str, list[float]] | None = None
) -> float | None:
    """What a run of ``method`` takes at the pace so far: the mean of its runs trained here (else of
    its kept runs, see :func:`_paces`), for a method with none the mean of every run; None before
    any run's time is known."""
    paces = _paces(took, before or {})
    times = paces.get(method) or [seconds for every in paces.values() for seconds in every]
    return _mean(times) if times else None


def time_left(
    pending: Sequence[str],
    running: Sequence[tuple[str, float]],
    took: dict[str, list[float]],
    jobs: int,
    before: dict[str, list[float]] | None = None,
) -> float | None:
    """Seconds until a sweep ends if each method's runs take what its runs so far took on average
    (:func:`expected_seconds`: ``took`` the runs trained by this invocation, ``before`` those kept from
    an earlier one), ``jobs`` at a time; ``pending``: the methods of the runs not started,
    ``running``: (method, seconds so far) of those running. None before any run's time is known,
    and when only runs past their pace are left (no telling)."""
    if not _paces(took, before or {}):
        return None
    pace = partial(expected_seconds, took=took, before=before)
    owed = [(pace(m) or 0.0) - elapsed for m, elapsed in running]
    if not pending and all(seconds <= 0 for seconds in owed):
        return None
    return (sum(pace(m) or 0.0 for m in pending) + sum(max(0.0, s) for s in owed)) / jobs


def time_left_text(
    pending: Sequence[str],
    running: Sequence[tuple[str, float]],
    took: dict[str, list[float]],
    jobs: int,
    before: dict[str, list[float]] | None = None,
) -> str:
    """A console line's ", ≈ 2 h 10 min left at this pace" (whole minutes: it is a guess); "" when
    there is nothing to say (see :func:`time_left`). A running run past its pace adds time the
    guess cannot know, so then the line says "at least"."""
    seconds = time_left(pending, running, took, jobs, before)
    if seconds is None:
        return ""
    past = [m for m, elapsed in running if elapsed >= (expected_seconds(m, took, before) or float("inf"))]
    hours, minutes = divmod(round(seconds / 60), 60)
    if past:
        why = f"{', '.join(dict.fromkeys(past))} past the pace so far"
        if not hours and not minutes:
            return f", time left unknown ({why})"
        return f", at least {f'{hours} h {minutes:02d} min' if hours else f'{minutes} min'} left ({why})"
    if not hours and not minutes:
        return ", under a minute left at this pace"
    return f", ≈ {f'{hours} h {minutes:02d} min' if hours else f'{minutes} min'} left at this pace"


def train_in_process(request: Any, threads: int) -> tuple[Any, float]:
    """A worker's job: one run on ``threads`` CPU threads, its output in the run's log."""
    import torch

    from brats_ssl.pipeline import run_training
    from brats_ssl.progress import file_console

    torch.set_num_threads(threads)
    request.run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(request.run_dir / LOG_NAME, "a") as log:
        console = file_console(log)
        try:
            summary = run_training(request, console=console)
        except BaseException as error:  # the log says why the run stopped, as the console would have
            detail = str(error) if isinstance(error, BadInputError) else traceback.format_exc()
            console.print(f"error: {detail}", markup=False, highlight=False, soft_wrap=True)
            raise
    return summary, time.perf_counter() - start


def run_side_by_side(
    planned: Sequence[Any],
    *,
    jobs: int,
    threads: int | None,
    reuse: Callable[[Path, Path], bool],
    finished: Callable[[int, Any, float], None],
    console=None,
) -> None:
    """Run ``planned`` (experiment.PlannedRun) ``jobs`` at a time; ``finished(index, summary,
    seconds)`` is called in this process as each run ends."""

    def say(text: str) -> None:
        if console is not None:
            console.print(text, markup=False, highlight=False, soft_wrap=True)  # a path is not broken

    threads_each = f"{threads or 1} CPU thread(s) each"
    say(f"{len(planned)} runs, {jobs} side by side with {threads_each}; a run's output: RUN/{LOG_NAME}")
    first: dict[Path, int] = {}  # run folder -> the first planned run in it
    for index, run in enumerate(planned):
        first.setdefault(run.request.run_dir, index)
    # a run waits for the supervised run whose teacher it copies, and for an earlier run of its folder
    # (a method at a fraction with no unlabeled case is the supervised run itself)
    after = {
        index: {first[p] for p in (run.teacher_from, run.request.run_dir) if p in first and first[p] != index}
        for index, run in enumerate(planned)
    }
    waiting = list(range(len(planned)))
    done: set[int] = set()
    earlier: set[int] = set()  # runs a previous invocation finished
    running: dict[Future, int] = {}
    began: dict[int, float] = {}  # run -> when it started
    took: dict[str, list[float]] = {}  # method -> seconds of its runs trained here (not kept from before)
    before: dict[str, list[float]] = {}  # method -> seconds its kept runs took when they were trained
    failure: tuple[int, BaseException] | None = None

    def ready(index: int) -> bool:
        return after[index] <= done

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        while waiting or running:
            while failure is None and len(running) < jobs and (start := next(filter(ready, waiting), None)) is not None:
                waiting.remove(start)
                run = planned[start]
                if run.teacher_from is not None:
                    reuse(run.teacher_from, run.request.run_dir)
                running[pool.submit(train_in_process, run.request, threads or 1)] = start
                began[start] = time.perf_counter()
                if (run.request.run_dir / SUMMARY_NAME).is_file():
                    earlier.add(start)  # a resumed sweep: its process only checks the settings
                else:
                    say(f"({len(done)}/{len(planned)} done) started {run.title} → {run.request.run_dir / LOG_NAME}")
            if not running:
                break  # a failure stopped the rest (or nothing left could start)
            for future in wait(running, return_when=FIRST_COMPLETED).done:
                index = running.pop(future)
                run = planned[index]
                try:
                    summary, seconds = future.result()
                except BaseException as error:  # noqa: BLE001 - reported below with the run's name
                    say(f"failed: {run.title}: {error} (log: {run.request.run_dir / LOG_NAME})")
                    failure = failure or (index, error)
                    continue
                done.add(index)
                finished(index, summary, seconds)
                if index not in earlier:
                    took.setdefault(run.method, []).append(seconds)
                elif (own := kept_seconds(run.request.run_dir)) is not None:
                    before.setdefault(run.method, []).append(own)
                now = time.perf_counter()
                left = time_left_text(  # runs finished before cost nothing, queued or being checked
                    [planned[i].method for i in waiting if not (planned[i].request.run_dir / SUMMARY_NAME).is_file()],
                    [(planned[i].method, now - began[i]) for i in running.values() if i not in earlier],
                    took,
                    jobs,
                    before,
                )
                how = "finished before, kept" if index in earlier else f"finished in {seconds / 60:.1f} min"
                say(f"({len(done)}/{len(planned)} done{left}) {run.title}: {how}")
    if failure is not None:
        index, cause = failure
        run = planned[index]
        where = f"run {run.request.run_dir} ({run.title}; its output: {run.request.run_dir / LOG_NAME})"
        if isinstance(cause, BadInputError):
            raise BadInputError(f"{where}: {cause}") from cause
        raise RuntimeError(f"{where} failed: {cause!r}") from cause
