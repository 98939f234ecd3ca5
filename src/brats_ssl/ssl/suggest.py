"""``brats-ssl suggest``: which unlabeled scans an expert should annotate next, and why.

Three signals, each turned into a rank among the unlabeled pool (1 = most in need) and averaged:
the image-level confidence of its pseudo-label (low is bad), the teacher-student disagreement
(1 − agreement Dice, after a refinement round), and the volume of uncertain tumour (ml of
voxels in the tumour region whose confidence is below the last stage's threshold).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brats_ssl import atomic
from brats_ssl.data.cache import PreprocessCache
from brats_ssl.data.preprocess import PreprocessParams
from brats_ssl.run_folder import RunFolder
from brats_ssl.ssl.confidence import region_of_interest
from brats_ssl.ssl.labelling import case_folder, read_ranking
from brats_ssl.ssl.pseudolabels import PseudoLabel


@dataclass
class Suggestion:
    case: str
    confidence: float
    disagreement: float | None
    uncertain_ml: float
    priority: float = 0.0

    @property
    def reason(self) -> str:
        parts = [f"confidence {self.confidence:.2f}"]
        if self.disagreement is not None:
            parts.append(f"teacher-student Dice {1 - self.disagreement:.2f}")
        parts.append(f"{self.uncertain_ml:.1f} ml uncertain tumour")
        return ", ".join(parts)


def _ranks(values: list[float]) -> np.ndarray:
    """Rank 1 for the largest value (most in need); ties share the lower rank."""
    order = np.argsort(-np.asarray(values, dtype=float), kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    return ranks


def build_suggestions(run: Path, data: Path | None = None) -> list[Suggestion]:
    folder = RunFolder(run)
    latest = folder.require_pseudo()
    config = folder.config
    rows = {r["case"]: r for r in read_ranking(latest / "ranking.csv")}
    cache = PreprocessCache(PreprocessParams.from_config(config.data), config.data.cache_dir)
    tau = config.ssl.tau_end
    suggestions = []
    for case in folder.unlabeled_cases(folder.dataset(data)):
        pre = cache.get(case)
        pseudo = PseudoLabel.load(case_folder(latest, case))
        roi = region_of_interest(pseudo.label, pre.brain, pre.meta.voxel_spacing, config.ssl.confidence_margin_mm)
        uncertain = roi & (np.asarray(pseudo.label) > 0) & (pseudo.confidence_float < tau)
        voxel_ml = float(np.prod(pre.meta.voxel_spacing)) / 1000
        row = rows.get(case.case_id, {})
        agreement = row.get("agreement") or ""
        suggestions.append(
            Suggestion(
                case=case.case_id,
                confidence=float(row.get("score", 0.0)),
                disagreement=None if agreement == "" else 1 - float(agreement),
                uncertain_ml=float(uncertain.sum() * voxel_ml),
            )
        )
    signals = [_ranks([-s.confidence for s in suggestions]), _ranks([s.uncertain_ml for s in suggestions])]
    disagreements = [s.disagreement for s in suggestions if s.disagreement is not None]
    if len(disagreements) == len(suggestions):
        signals.append(_ranks(disagreements))
    mean_rank = np.mean(signals, axis=0)
    for s, r in zip(suggestions, mean_rank):
        s.priority = float(r)
    return sorted(suggestions, key=lambda s: (s.priority, s.case))


def suggest_cases(run: Path, data: Path | None, *, top: int) -> list[Suggestion]:
    """The ``top`` unlabeled scans most in need of an expert's labels, most in need first."""
    return build_suggestions(run, data)[:top]


def write_suggestions_csv(suggestions: list[Suggestion], out: Path) -> Path:
    """The suggestions as a CSV table (rank, case, the signals and the reason), written atomically."""

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["rank", "case", "mean_signal_rank", "confidence", "disagreement", "uncertain_ml", "reason"]
            )
            for i, s in enumerate(suggestions, 1):
                writer.writerow(
                    [
                        i,
                        s.case,
                        f"{s.priority:.2f}",
                        f"{s.confidence:.4f}",
                        "" if s.disagreement is None else f"{s.disagreement:.4f}",
                        f"{s.uncertain_ml:.2f}",
                        s.reason,
                    ]
                )

    return atomic.write_with(out, write)
