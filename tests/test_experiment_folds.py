"""A tiny cross-validated sweep: every case validated once per method, per-case table, paired
comparisons recomputed from it, post-processing chosen on the selection cases only."""

import csv
import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from brats_ssl.experiment_folder import read_csv
from brats_ssl.experiment_tables import COMPARISON_COLUMNS, PER_CASE_COLUMNS
from brats_ssl.stats import paired

from conftest import tiny_sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, _isolated_cache) -> Path:
    console = Console(file=io.StringIO(), width=80)
    out = tiny_sweep(tmp_path_factory.mktemp("folds"), cases=9, seed=1, folds=3, console=console)
    (out.parent / "console.txt").write_text(console.file.getvalue())
    return out


def test_the_console_says_how_far_the_sweep_is_and_how_long_the_rest_takes(sweep):
    said = (sweep.parent / "console.txt").read_text()
    rules = re.findall(r"─ (\S+) · 0.5 labeled · seed 0 · fold (\d)/3 \((\d)/6 done\) ─", said)
    assert rules == [
        (m, str(f), str(2 * (f - 1) + i)) for f in (1, 2, 3) for i, m in enumerate(("supervised", "ours-control"))
    ]
    # from the second run on, the time left at the pace of the runs trained so far
    assert len(re.findall(r"^sweep: (≈ \d+ min|under a minute) left at this pace$", said, re.MULTILINE)) == 5


def test_every_case_is_validated_exactly_once_per_method(sweep):
    with (sweep / "per_case.csv").open() as handle:
        assert next(csv.reader(handle)) == PER_CASE_COLUMNS
    rows = read_csv(sweep / "per_case.csv")
    for method in ("supervised", "ours-control"):
        cases = [r["case"] for r in rows if r["method"] == method]
        assert sorted(cases) == sorted(set(cases)) and len(cases) == 9
        assert {r["fold"] for r in rows if r["method"] == method} == {"0", "1", "2"}
    for fold in range(3):
        split = json.loads((sweep / "splits" / f"fold{fold}_f0.5_s0.json").read_text())
        run = json.loads((sweep / "runs" / f"supervised_fold{fold}_f0.5_s0" / "split.json").read_text())
        assert run == split and len(split["selection"]) == 1
        # the selection case of the fold, never one of its val cases, chose the post-processing
        rule = json.loads((sweep / "runs" / f"supervised_fold{fold}_f0.5_s0" / "postprocessing.json").read_text())
        assert rule["chosen_on"] == split["selection"] and not set(rule["chosen_on"]) & set(split["val"])


def test_comparisons_are_recomputed_from_the_per_case_table(sweep):
    with (sweep / "comparisons.csv").open() as handle:
        assert next(csv.reader(handle)) == COMPARISON_COLUMNS
    rows = read_csv(sweep / "per_case.csv")
    comparisons = read_csv(sweep / "comparisons.csv")
    assert {(c["method"], c["reference"]) for c in comparisons} == {("ours-control", "supervised")}
    assert sorted(c["metric"] for c in comparisons) == sorted(["WT", "TC", "ET", "NCR", "ED", "mean"])
    by_case = {(r["method"], r["case"]): r for r in rows}
    diffs = [
        sum(float(by_case[("ours-control", c)][k]) - float(by_case[("supervised", c)][k]) for k in ("WT", "TC", "ET"))
        / 3
        for c in sorted({r["case"] for r in rows})
    ]
    expected = paired(diffs)
    mean_row = next(c for c in comparisons if c["metric"] == "mean")
    assert int(mean_row["n"]) == 9
    assert float(mean_row["mean_diff"]) == pytest.approx(expected.mean, abs=1e-5)
    assert float(mean_row["ci_low"]) == pytest.approx(expected.ci_low, abs=1e-5)
    assert float(mean_row["p_value"]) == pytest.approx(expected.p_value, abs=1e-5)
    md = (sweep / "report.md").read_text()
    assert "## Paired comparisons" in md and "| ours-control | supervised | 50% | 9 |" in md
    assert "| validation cases | 9 |" in md  # the folds' val sets together, not one fold's 3


def test_folds_trained_in_two_invocations_and_side_by_side_make_the_same_sweep(sweep, tmp_path_factory):
    # `--fold 2`, then `--fold 0 --fold 1` in the same folder: the way a sweep is trained over
    # several sessions; the second invocation's tables hold every fold, as one invocation's do.
    # Both train 2 runs at a time in processes of their own, at the thread count the sequential
    # sweep ran with: every per-case score is the same, bit for bit.
    threads = json.loads((sweep / "experiment.json").read_text())["torch_threads"][0]
    root = tmp_path_factory.mktemp("split_folds")
    first = tiny_sweep(root, cases=9, seed=1, folds=3, only_folds=[2], threads=threads, jobs=2)
    assert sorted(p.name for p in (first / "runs").iterdir()) == [
        "ours-control_fold2_f0.5_s0",
        "supervised_fold2_f0.5_s0",
    ]
    assert {r["fold"] for r in read_csv(first / "results.csv")} == {"2"}
    assert json.loads((first / "experiment.json").read_text())["planned_runs"] == 6  # the report's "2 of 6"
    tiny_sweep(root, cases=9, seed=1, folds=3, only_folds=[0, 1], threads=threads, jobs=2)

    def scores(exp: Path) -> dict:
        return {
            (r["method"], r["fold"], r["case"]): (r["WT"], r["TC"], r["ET"]) for r in read_csv(exp / "per_case.csv")
        }

    assert scores(first) == scores(sweep) and len(scores(first)) == 18
    results = read_csv(first / "results.csv")
    assert [(r["method"], r["fold"]) for r in results] == [
        (r["method"], r["fold"]) for r in read_csv(sweep / "results.csv")
    ]
    for fold in range(3):
        run = first / "runs" / f"ours-control_fold{fold}_f0.5_s0"
        # ours-control waited for its fold's supervised run and started from a copy of its teacher
        assert (
            (run / "teacher" / "reused_from.txt").read_text().strip().endswith(f"supervised_fold{fold}_f0.5_s0/teacher")
        )
        assert "ours-control" in (run / "experiment.log").read_text()
    assert json.loads((first / "experiment.json").read_text())["torch_threads"] == [threads]


def test_a_fold_outside_the_split_is_refused(tmp_path):
    from brats_ssl.errors import BadInputError

    with pytest.raises(BadInputError, match=r"--fold 3: folds are numbered 0 to 2 \(--folds 3\)"):
        tiny_sweep(tmp_path, cases=9, seed=1, folds=3, only_folds=[3])
