"""``experiment --jobs``: a run that fails stops the sweep without losing the runs beside it, and
the sweep run again goes on from there."""

import io
import re
import shutil

import pytest
from rich.console import Console

from brats_ssl.errors import BadInputError
from brats_ssl.experiment_folder import read_csv
from brats_ssl.report import write_report

from conftest import tiny_sweep


def test_a_failed_run_names_itself_and_its_log_and_the_runs_beside_it_finish_and_are_kept(tmp_path):
    # a damaged run folder from an earlier attempt: its run is refused inside its own process
    damaged = tmp_path / "exp" / "runs" / "ours-control_fold0_f0.5_s0"
    damaged.mkdir(parents=True)
    (damaged / "config.yaml").write_text("train: {steps: [\n")
    console = Console(file=io.StringIO(), width=80)
    with pytest.raises(BadInputError) as raised:
        tiny_sweep(tmp_path, cases=6, seed=3, folds=2, jobs=2, threads=1, console=console)
    message = str(raised.value)
    log = damaged / "experiment.log"
    assert f"run {damaged} " in message and f"its output: {log}" in message and "not valid YAML" in message
    assert "not valid YAML" in log.read_text()  # the failed run's own output, kept beside it
    said = console.file.getvalue()  # one line each, however long: paths are not broken
    assert said.startswith("4 runs, 2 side by side with 1 CPU thread(s) each; a run's output: RUN/experiment.log")
    assert "failed: ours-control · 0.5 labeled · seed 0 · fold 1/2: " in said and f"(log: {log})" in said
    # the first run to finish gives the pace: the rest of the sweep's time at it (a floor when the
    # other fold's supervised run, started beside it, is past that pace already)
    left = (
        r"((≈ \d+ min|under a minute) left at this pace"
        r"|(at least \d+ min left|time left unknown) \(.+ past the pace so far\))"
    )
    assert re.search(rf"\(1/4 done, {left}\) supervised · .*: finished in ", said)
    for fold in range(2):  # both supervised runs started before the failure and were finished, not killed
        assert (tmp_path / "exp" / "runs" / f"supervised_fold{fold}_f0.5_s0" / "summary.json").is_file()
    rows = read_csv(tmp_path / "exp" / "results.csv")
    assert ("supervised", "0") in [(r["method"], r["fold"]) for r in rows]
    assert ("ours-control", "0") not in [(r["method"], r["fold"]) for r in rows]
    header = write_report(tmp_path / "exp").read_text()  # a sweep part-way says how far it got, and what waits
    assert f"| runs finished | {len(rows)} of 4 planned |" in header
    # fold 2's ours-control may or may not have started before the failure stopped new runs
    waiting = "ours-control" not in [r["method"] for r in rows]
    methods = "supervised (no finished run yet: ours-control)" if waiting else "supervised, ours-control"
    assert f"| methods | {methods} |" in header

    shutil.rmtree(damaged)  # the user's fix; the same command goes on where the sweep stopped
    console = Console(file=io.StringIO(), width=80)
    tiny_sweep(tmp_path, cases=6, seed=3, folds=2, jobs=2, threads=1, console=console)
    said = console.file.getvalue()
    for fold in (1, 2):  # finished runs are said to be kept, not "started" and "finished in 0.0 min"
        # and their recorded times give the pace before any run is trained again
        pace = r"done, (≈ \d+ min|under a minute) left at this pace\)"
        assert re.search(rf"{pace} supervised · 0.5 labeled · seed 0 · fold {fold}/2: finished before, kept", said)
        assert f"started supervised · 0.5 labeled · seed 0 · fold {fold}/2" not in said
    assert f"started ours-control · 0.5 labeled · seed 0 · fold 1/2 → {log}" in said
    assert "ours-control · 0.5 labeled · seed 0 · fold 1/2: finished in " in said
    rows = read_csv(tmp_path / "exp" / "results.csv")
    every_run = [(method, fold) for method in ("ours-control", "supervised") for fold in "01"]
    assert sorted((r["method"], r["fold"]) for r in rows) == every_run


def test_time_left_takes_each_method_at_its_own_pace_and_the_others_at_the_mean():
    from brats_ssl.experiment_jobs import time_left, time_left_text

    took = {"a": [10.0, 30.0], "b": [60.0]}  # a: 20 s a run; b: 60 s; c (none yet): 100 / 3 s
    pending, running = ["a", "b", "c"], [("a", 5.0), ("b", 70.0)]  # a running run owes 15 s; b one past its pace 0
    assert time_left(pending, running, took, jobs=2) == pytest.approx((20 + 60 + 100 / 3 + 15) / 2)
    assert time_left(pending, running, {}, jobs=2) is None  # no pace before a run was trained
    assert time_left_text(pending, [], took, jobs=1) == ", ≈ 2 min left at this pace"  # whole minutes: a guess
    assert time_left_text(["b"] * 150, [], took, jobs=1) == ", ≈ 2 h 30 min left at this pace"
    assert time_left_text([], [("a", 15.0)], took, jobs=1) == ", under a minute left at this pace"
    # only a run past its method's pace left: no telling, rather than "0 min"
    assert time_left([], [("b", 70.0)], took, jobs=2) is None and time_left_text([], [("b", 70.0)], took, 2) == ""
    # a run past its pace beside others: what is left of it is unknown, so the figure is a floor
    # (ours at 40 min with no run of its own, the mean of the others 38 min, bcp just started)
    at_least = time_left_text(["bcp"], [("ours", 2400.0)], {"ours-control": [2280.0]}, jobs=2)
    assert at_least == ", at least 19 min left (ours past the pace so far)"
    assert time_left_text(["b"], [("a", 25.0)], {"a": [20.0], "b": [30.0]}, jobs=2) == (
        ", time left unknown (a past the pace so far)"  # a floor of under a minute says nothing
    )


def test_a_resumed_sweep_takes_the_kept_runs_times_at_this_invocations_pace():
    from brats_ssl.experiment_jobs import expected_seconds, time_left

    # fold 0 kept from a slower machine; here supervised has run 2x faster than it did there
    before = {"supervised": [1400.0], "ours": [5000.0, 5400.0], "bcp": [4600.0]}
    took = {"supervised": [700.0]}
    assert expected_seconds("ours", took, before) == pytest.approx(2600.0)  # kept mean, at this pace
    assert expected_seconds("supervised", took, before) == 700.0  # runs trained here come first
    assert expected_seconds("ua-mt", took, before) == pytest.approx((700 + 2500 + 2700 + 2300) / 4)
    pending = ["ours", "bcp", "supervised"]
    assert time_left(pending, [("ours", 600.0)], took, 2, before) == pytest.approx((2600 + 2300 + 700 + 2000) / 2)
    # without the kept runs every method went at supervised's pace: the guess a resumed sweep gave
    assert time_left(pending, [("ours", 600.0)], took, 2) == pytest.approx((3 * 700 + 100) / 2)
    # only kept runs so far (the first lines of a resumed sweep): their times as they were
    assert time_left(["ours"], [], {}, 1, before) == pytest.approx(5200.0)
    assert time_left(["ours"], [], {}, 1, {}) is None


def test_a_kept_runs_time_is_its_own_phases_without_the_copied_teacher(tmp_path):
    from brats_ssl.experiment_folder import REUSED_MARKER
    from brats_ssl.experiment_jobs import kept_seconds

    run = tmp_path / "ours_fold0"
    for phase, seconds in (("teacher", 1400.0), ("stage_1", 2000.0), ("stage_2", 3000.0)):
        (run / phase).mkdir(parents=True)
        (run / phase / "done.json").write_text(f'{{"seconds": {seconds}}}')
    (run / "teacher" / REUSED_MARKER).write_text("supervised_fold0")
    assert kept_seconds(run) == 5000.0
    assert kept_seconds(tmp_path / "never_trained") is None
