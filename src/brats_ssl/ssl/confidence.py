"""Image-level confidence of a pseudo-label and the ranking of the unlabeled pool (METHOD step 4).

s_i = mean voxel confidence over the region that matters: voxels predicted as tumour, dilated by
a margin in mm, inside the brain. When nothing is predicted, the whole brain's mean confidence
times (1 − penalty): an empty prediction is less trustworthy than its flat background suggests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


def region_of_interest(
    label: np.ndarray, brain: np.ndarray, spacing: tuple[float, ...], margin_mm: float
) -> np.ndarray:
    tumour = np.asarray(label) > 0
    if not tumour.any():
        return np.asarray(brain, dtype=bool)
    distance = ndimage.distance_transform_edt(~tumour, sampling=spacing)
    return (distance <= margin_mm) & (np.asarray(brain, dtype=bool) | tumour)


def image_confidence(
    label: np.ndarray,
    confidence: np.ndarray,
    brain: np.ndarray,
    spacing: tuple[float, ...],
    *,
    margin_mm: float,
    empty_penalty: float,
) -> float:
    roi = region_of_interest(label, brain, spacing, margin_mm)
    if not roi.any():
        return 0.0
    score = float(np.asarray(confidence, dtype=np.float32)[roi].mean())
    return score * (1 - empty_penalty) if not (np.asarray(label) > 0).any() else score


@dataclass
class RankedCase:
    case: str
    score: float
    volumes_ml: dict[str, float]
    rank: int = 0
    stage: int = 0
    agreement: float | None = None


def rank_cases(
    rows: list[RankedCase], *, stages: int, by_agreement: bool = False, pool_fraction: float = 1.0
) -> list[RankedCase]:
    """Most confident first (or, after refinement, most teacher-student agreement first, ties by
    confidence); assigns each case its rank and the curriculum stage it enters (0: never)."""
    from brats_ssl.ssl.curriculum import entry_stage

    def key(row: RankedCase) -> tuple:
        first = row.agreement if by_agreement and row.agreement is not None else row.score
        return (-first, -row.score, row.case)

    ordered = sorted(rows, key=key)
    for index, row in enumerate(ordered):
        row.rank = index + 1
        row.stage = entry_stage(index, len(ordered), stages, pool_fraction)
    return ordered
