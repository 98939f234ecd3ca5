"""Review decisions: the rule that turns them into a stage's members, RUN/review.json, and a
resumed `train` and `pseudolabel` honouring them."""

import json
import shutil

import pytest

from brats_ssl import atomic
from brats_ssl.cli import main
from brats_ssl.errors import BadInputError
from brats_ssl.ssl.review_decisions import (
    APPLIED_FILE,
    REVIEW_FILE,
    read_decisions,
    record_decision,
    reviewed_members,
    stage_members_after_review,
)

from review_helpers import TINY, ranked_pool

RANKED = ["a", "b", "c", "d", "e"]


def test_rejected_cases_leave_and_accepted_cases_enter_regardless_of_rank():
    assert reviewed_members(RANKED, ["a", "b"], {}) == ["a", "b"]
    assert reviewed_members(RANKED, ["a", "b"], {"a": "reject"}) == ["b"]
    assert reviewed_members(RANKED, ["a", "b"], {"e": "accept"}) == ["a", "b", "e"]
    # members keep rank order, an accepted member is not doubled, undecided changes nothing
    assert reviewed_members(RANKED, ["a", "b"], {"d": "accept", "b": "accept", "c": "undecided"}) == ["a", "b", "d"]
    assert reviewed_members(RANKED, ["a", "b"], {"a": "reject", "b": "reject"}) == []
    # decisions about cases outside the pool (a labeled case, a typo) are ignored
    assert reviewed_members(RANKED, ["a"], {"zz": "accept"}) == ["a"]


def test_decisions_are_stored_with_note_and_time_and_validated(tmp_path):
    entry = record_decision(tmp_path, "case_1", "reject", "edema leaks into the ventricles")
    assert entry["decision"] == "reject" and entry["note"].startswith("edema") and entry["time"].endswith("+00:00")
    record_decision(tmp_path, "case_2", "accept")
    record_decision(tmp_path, "case_1", "undecided")
    assert read_decisions(tmp_path) == {"case_1": "undecided", "case_2": "accept"}
    before = (tmp_path / REVIEW_FILE).read_text()
    with pytest.raises(BadInputError, match="case_3.*maybe"):
        record_decision(tmp_path, "case_3", "maybe")
    assert (tmp_path / REVIEW_FILE).read_text() == before
    assert not [p for p in tmp_path.iterdir() if atomic.is_temporary(p)]


def test_a_damaged_review_file_is_bad_input_naming_it(tmp_path):
    (tmp_path / REVIEW_FILE).write_text("{not json")
    with pytest.raises(BadInputError, match="review.json"):
        read_decisions(tmp_path)
    (tmp_path / REVIEW_FILE).write_text(json.dumps({"case_1": {"decision": "perhaps"}}))
    with pytest.raises(BadInputError, match="case case_1"):
        read_decisions(tmp_path)


def test_a_stage_keeps_the_members_it_started_with(tmp_path):
    run, stage = tmp_path, tmp_path / "stage_1"
    stage.mkdir()
    # no review: the ranking decides, nothing is recorded
    assert stage_members_after_review(run, stage, RANKED, ["a", "b"]) == (["a", "b"], None)
    record_decision(run, "a", "reject")
    record_decision(run, "d", "accept")
    members, record = stage_members_after_review(run, stage, RANKED, ["a", "b"])
    assert members == ["b", "d"] and record["accepted"] == ["d"] and record["rejected"] == ["a"]
    assert json.loads((stage / APPLIED_FILE).read_text())["members"] == ["b", "d"]
    # a later change of mind does not change a stage that has started with the earlier review
    record_decision(run, "a", "accept")
    assert stage_members_after_review(run, stage, RANKED, ["a", "b"])[0] == ["b", "d"]
    # a stage that started training before any review keeps the ranking's members
    started = tmp_path / "stage_2"
    started.mkdir()
    (started / "checkpoint_last.pt").write_bytes(b"")
    assert stage_members_after_review(run, started, RANKED, ["a", "b", "c"]) == (["a", "b", "c"], None)


def _run_cli(*args) -> int:
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    return stop.value.code


def _unstarted_copy(review_run, run):
    """A copy of the review fixture whose teacher is done and whose stages have not started."""
    shutil.copytree(review_run, run)
    for started_later in ("stage_1", "stage_2", "pseudo/round_1", "summary.json", "stages.json"):
        path = run / started_later
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return run


def test_resumed_train_and_pseudolabel_honour_the_review(review_run, tmp_path):
    """Reject the teacher's most confident case and accept its least confident one, then resume a
    run whose stages had not started: stage 1 trains on the accepted case instead of the rejected
    one, stage 2's pool lacks the rejected case, and stages.json records the review."""
    run = _unstarted_copy(review_run, tmp_path / "run")
    first, second, last = ranked_pool(run)
    assert json.loads((review_run / "stage_1" / "pseudo_stats.json").read_text())["members"] == [first, second]
    record_decision(run, first, "reject", "tumour missed")
    record_decision(run, last, "accept")
    data = json.loads((run / "split.json").read_text())["dataset"]

    assert _run_cli("train", data, "-o", run, "--method", "ours", *TINY) == 0

    assert json.loads((run / "stage_1" / "pseudo_stats.json").read_text())["members"] == [second, last]
    stage_2 = json.loads((run / "stage_2" / "pseudo_stats.json").read_text())["members"]
    assert first not in stage_2 and sorted(stage_2) == sorted([second, last])
    stages = json.loads((run / "stages.json").read_text())
    assert stages[0]["review"] == {"accepted": [last], "rejected": [first]} and stages[0]["members"] == 2
    assert stages[1]["review"] == {"accepted": [], "rejected": [first]}
    for stage in ("stage_1", "stage_2"):
        assert json.loads((run / stage / APPLIED_FILE).read_text())["rejected"] == [first]

    out = tmp_path / "export"
    assert _run_cli("pseudolabel", run, data, "-o", out) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted([second, last])


def test_a_stage_whose_every_case_is_rejected_trains_on_the_labeled_cases_and_says_so(review_run, tmp_path, capsys):
    run = _unstarted_copy(review_run, tmp_path / "run")
    for case in ranked_pool(run):
        record_decision(run, case, "reject")
    data = json.loads((run / "split.json").read_text())["dataset"]

    assert _run_cli("train", data, "-o", run, "--method", "ours", *TINY) == 0

    stages = json.loads((run / "stages.json").read_text())
    assert [stage["members"] for stage in stages] == [0, 0]
    captured = capsys.readouterr()
    said = " ".join((captured.out + captured.err).split())
    assert said.count("the review rejected every case of the stage") == 2
