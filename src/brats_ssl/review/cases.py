"""What the review shows of a run: one row per case (the unlabeled pool with rank, stage,
confidence, agreement, volumes and decision; the labeled and val cases with their Dice) and, per
case, the layers its viewer can draw (modalities, pseudo-labels or predictions, uncertainty,
ground truth). Reads the run folder only; nothing here writes or needs torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from brats_ssl.data.conventions import MODALITIES, NUM_CLASSES, REGIONS, TUMOUR_CLASS_NAMES
from brats_ssl.data.dataset import CaseRef, Dataset
from brats_ssl.errors import BadInputError
from brats_ssl.paths import safe_name
from brats_ssl.run_folder import RunFolder
from brats_ssl.ssl.labelling import case_folder, read_ranking
from brats_ssl.ssl.pseudolabels import PseudoLabel
from brats_ssl.ssl.review_decisions import read_review

POOL, LABELED, VAL, SELECTION = "unlabeled", "labeled", "val", "selection"
# Where a phase keeps its predictions of the cases of each set with ground truth it is scored on.
PREDICTIONS = {VAL: "val_predictions", SELECTION: "selection_predictions"}
PSEUDO_MAPS = ("pseudo_label", "confidence", "mutual_information")  # the files `pseudolabel` writes


@dataclass(frozen=True)
class Source:
    """A labelling of a case that the viewer can switch to: a pseudo-label round, a student's MC
    labels, or a model's validation prediction."""

    key: str  # URL-safe: round_0, student_stage_1, prediction_teacher, ...
    title: str
    folder: Path  # a pseudo-label folder (PseudoLabel.save) or a val_predictions/<case>.nii.gz file
    with_uncertainty: bool


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


class ReviewCatalogue:
    """The run's cases as the review shows them, in review order: the pool by rank, then the
    val cases, then the labeled training cases."""

    def __init__(self, run_dir: str | Path, data: str | Path | None = None):
        self.run = RunFolder(run_dir)
        self.run.require_pseudo()
        self._data = data

    @cached_property
    def dataset(self) -> Dataset:
        return self.run.dataset(self._data)

    # Read afresh on every call: a run may go on training while it is reviewed.

    def _ranking(self) -> dict[str, dict]:
        """The latest ranking (of the last round that has finished one): the next stage's order."""
        for round_dir in reversed(self.run.rounds):
            if (round_dir / "ranking.csv").is_file():
                return {row["case"]: row for row in read_ranking(round_dir / "ranking.csv")}
        return {}

    @property
    def sets(self) -> dict[str, str]:
        """case → unlabeled | val | selection | labeled, in review order."""
        split, ranking = self.run.split, self._ranking()
        ranked = sorted(split["unlabeled"], key=lambda c: (int(ranking.get(c, {}).get("rank", 10**9)), c))
        return {
            **{c: POOL for c in ranked},
            **{c: VAL for c in split["val"]},
            **{c: SELECTION for c in split.get("selection", [])},
            **{c: LABELED for c in split["labeled"]},
        }

    @property
    def case_ids(self) -> list[str]:
        return list(self.sets)

    def require_case(self, case_id: str) -> str:
        if case_id not in self.sets:
            raise BadInputError(f"case {case_id}: not in run {self.run.path}")
        return self.sets[case_id]

    def case(self, case_id: str) -> CaseRef:
        """The case's files; an unlabeled case's seg stays hidden, as in training."""
        case = self.dataset.case(case_id)
        return case.without_seg() if self.require_case(case_id) == POOL else case

    def neighbours(self, case_id: str) -> tuple[str | None, str | None]:
        ids = self.case_ids
        i = ids.index(case_id)
        return (ids[i - 1] if i > 0 else None), (ids[i + 1] if i + 1 < len(ids) else None)

    # --- table rows --------------------------------------------------------------------------

    def _val_dice(self) -> dict[str, dict]:
        """case → Dice entry of the final model: its val cases and its selection cases."""
        summary = self.run.summary or self.run.phase_summary(self.final_phase or "teacher") or {}
        selection = self.run.phase_selection_summary(self.final_phase or "teacher") or {}
        return {entry["case"]: entry for entry in selection.get("per_case", []) + summary.get("per_case", [])}

    def rows(self) -> list[dict]:
        """One JSON-ready row per case (``GET /api/cases``)."""
        review, dice, ranking = read_review(self.run.path), self._val_dice(), self._ranking()
        rows = []
        for case_id, kind in self.sets.items():
            entry = review.get(case_id, {})
            row: dict = {
                "case": case_id,
                "set": kind,
                "decision": entry.get("decision", "undecided"),
                "note": entry.get("note", ""),
            }
            if kind == POOL:
                ranked = ranking.get(case_id, {})
                row.update(
                    {
                        "rank": int(ranked["rank"]) if ranked.get("rank") else None,
                        # 0: ranked, but outside the share of the pool the stages train on
                        "stage": int(ranked["stage"] or 0) if ranked else None,
                        "confidence": _number(ranked.get("score")),
                        "agreement": _number(ranked.get("agreement")),
                        "volumes_ml": {k: _number(ranked.get(f"{k}_ml")) for k in TUMOUR_CLASS_NAMES},
                    }
                )
            else:
                scores = dice.get(case_id, {})
                row["dice"] = {r: _number(scores.get(r, {}).get("dice")) for r in REGIONS} if scores else None
            rows.append(row)
        return rows

    # --- viewer layers -----------------------------------------------------------------------

    @property
    def final_phase(self) -> str | None:
        """The run's final model (summary.json), else its latest phase with val predictions."""
        named = (self.run.summary or {}).get("model")
        if named:
            return named
        with_predictions = [p for p in self.run.phases if (self.run.path / p / "val_predictions").is_dir()]
        return with_predictions[-1] if with_predictions else None

    def sources(self, case_id: str) -> list[Source]:
        """The labellings of a case, the one to show first at the front."""
        kind = self.require_case(case_id)
        if kind == POOL:
            return self._pseudo_sources(case_id)
        if kind in PREDICTIONS:
            phases = [p for p in dict.fromkeys([self.final_phase, "teacher"]) if p]
            found = [(p, self.run.path / p / PREDICTIONS[kind] / f"{safe_name(case_id)}.nii.gz") for p in phases]
            model = {p: "teacher" if p == "teacher" else f"final model ({p})" for p in phases}
            return [
                Source(f"prediction_{p}", f"prediction of the {model[p]}", path, with_uncertainty=False)
                for p, path in found
                if path.is_file()
            ]
        return []

    def _pseudo_sources(self, case_id: str) -> list[Source]:
        rounds = self.run.rounds
        sources = []
        if len(rounds) > 1:
            k = rounds[-1].name.split("_")[1]
            sources.append(Source(rounds[-1].name, f"pseudo-label refined after stage {k}", rounds[-1], True))
        sources.append(Source(rounds[0].name, "teacher's pseudo-label (round 0)", rounds[0], True))
        students = sorted(
            (p for p in self.run.path.glob("stage_*/student_pseudo") if p.is_dir()),
            key=lambda p: int(p.parent.name.split("_")[1]),
        )
        if students:
            stage = students[-1].parent.name
            sources.append(Source(f"student_{stage}", f"student of {stage.replace('_', ' ')} (MC)", students[-1], True))
        return [s for s in sources if PseudoLabel.exists(case_folder(s.folder, case_id))]

    def source(self, case_id: str, key: str) -> Source:
        for source in self.sources(case_id):
            if source.key == key:
                return source
        raise BadInputError(f"case {case_id}: no labelling {key!r} in run {self.run.path}")

    def label_colours(self, case_id: str) -> list[dict]:
        """BraTS colours by the label values of the case's own convention (its files keep them)."""
        import numpy as np

        from brats_ssl.data.conventions import CLASS_NAMES
        from brats_ssl.viz import LABEL_COLOURS

        convention = self.dataset.case(case_id).convention
        values = convention.to_file(np.arange(NUM_CLASSES))
        return [
            {"value": int(values[c]), "name": CLASS_NAMES[c], "rgb": [round(255 * x) for x in LABEL_COLOURS[c]]}
            for c in range(1, NUM_CLASSES)
        ]

    def modalities(self) -> tuple[str, ...]:
        return MODALITIES
