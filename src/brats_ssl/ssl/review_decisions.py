"""Review decisions: what a person decided about each unlabeled case's pseudo-label in
``brats-ssl review``, kept in ``RUN/review.json``, and how they change a stage's members.

The rule (:func:`reviewed_members`): a rejected case leaves the pseudo-labeled pool; an accepted
case enters the next stage whatever its rank; an undecided case follows the ranking. Members
stay in rank order. A stage's membership is fixed when the stage starts (``review_applied.json``
in its folder), so a stage resumed after a crash trains on the cases it started with, and a
stage that started before any review keeps the ranking's members.

Torch-free: the review server, ``pseudolabel`` and the training loop all read it.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence

from brats_ssl import atomic
from brats_ssl.errors import BadInputError

REVIEW_FILE = "review.json"
APPLIED_FILE = "review_applied.json"  # in a stage's folder: the review that chose its members
DECISIONS = ("accept", "reject", "undecided")
_WRITE_LOCK = threading.Lock()  # one writer at a time within the review server


def reviewed_members(ranked: Sequence[str], members: Sequence[str], decisions: Mapping[str, str]) -> list[str]:
    """A stage's members after review: ``members`` without the rejected cases, plus every accepted
    case of the pool, in the order of ``ranked`` (the whole pool, most trusted first).

    >>> reviewed_members(["a", "b", "c", "d"], ["a", "b"], {"a": "reject", "d": "accept"})
    ['b', 'd']
    """
    chosen = set(members) | {case for case, decision in decisions.items() if decision == "accept"}
    return [case for case in ranked if case in chosen and decisions.get(case) != "reject"]


def read_review(run_dir: str | Path) -> dict[str, dict]:
    """case → {"decision", "note", "time"} from ``RUN/review.json`` ({} when there is none)."""
    path = Path(run_dir) / REVIEW_FILE
    if not path.is_file():
        return {}
    try:
        review = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise BadInputError(f"file {path}: not valid JSON ({error})") from error
    if not isinstance(review, dict):
        raise BadInputError(f"file {path}: expected an object of case → decision")
    for case, entry in review.items():
        if not isinstance(entry, dict) or entry.get("decision") not in DECISIONS:
            raise BadInputError(f"case {case}: file {path}: decision must be one of {', '.join(DECISIONS)}")
    return review


def read_decisions(run_dir: str | Path) -> dict[str, str]:
    """case → "accept" | "reject" | "undecided"."""
    return {case: entry["decision"] for case, entry in read_review(run_dir).items()}


def record_decision(run_dir: str | Path, case: str, decision: str, note: str = "") -> dict:
    """Store one decision in ``RUN/review.json`` (atomically) and return its entry."""
    if decision not in DECISIONS:
        raise BadInputError(f"case {case}: decision {decision!r} is not one of {', '.join(DECISIONS)}")
    entry = {"decision": decision, "note": note, "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with _WRITE_LOCK:
        review = read_review(run_dir)
        review[case] = entry
        atomic.write_json(Path(run_dir) / REVIEW_FILE, dict(sorted(review.items())))
    return entry


def stage_members_after_review(
    run_dir: Path, stage_dir: Path, ranked: Sequence[str], members: Sequence[str]
) -> tuple[list[str], dict | None]:
    """The members a stage trains on and, when a review chose them, its record (else None).

    The record is written to ``stage_dir/review_applied.json`` before the stage trains; every
    process of a ``torchrun`` job takes rank 0's answer.
    """
    from brats_ssl.engine import distributed

    record = _stage_record(run_dir, stage_dir, ranked, members)  # on every rank: bad input fails all alike
    record = distributed.broadcast_object(record)
    if distributed.is_main() and record is not None and not (stage_dir / APPLIED_FILE).is_file():
        atomic.write_json(stage_dir / APPLIED_FILE, record)
    return (list(record["members"]), record) if record is not None else (list(members), None)


def _stage_record(run_dir: Path, stage_dir: Path, ranked: Sequence[str], members: Sequence[str]) -> dict | None:
    applied = stage_dir / APPLIED_FILE
    if applied.is_file():  # the stage started with this review: keep it
        return json.loads(applied.read_text(encoding="utf-8"))
    started = (stage_dir / "checkpoint_last.pt").exists()
    if started or not (run_dir / REVIEW_FILE).is_file():
        return None
    decisions = {case: d for case, d in read_decisions(run_dir).items() if case in set(ranked)}
    chosen = reviewed_members(ranked, members, decisions)
    return {
        "members": chosen,
        "by_rank": list(members),
        "accepted": [case for case in chosen if case not in members],
        "rejected": [case for case in members if case not in chosen],
        "decisions": decisions,
    }
