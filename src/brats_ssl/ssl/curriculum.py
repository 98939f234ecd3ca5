"""The progressive curriculum (METHOD step 5): which unlabeled cases each stage trains on, and
the voxel confidence threshold of each stage."""

from __future__ import annotations

import math


def stage_size(stage: int, n_unlabeled: int, stages: int) -> int:
    """Stage k (1-based) uses the ⌈k·N/K⌉ most confident unlabeled cases."""
    return min(n_unlabeled, math.ceil(stage * n_unlabeled / stages))


def entry_stage(index: int, n_unlabeled: int, stages: int) -> int:
    """The first stage (1-based) whose members include the case ranked ``index`` (0-based)."""
    for stage in range(1, stages + 1):
        if index < stage_size(stage, n_unlabeled, stages):
            return stage
    return stages


def stage_members(ranked_cases: list[str], stage: int, stages: int, *, curriculum: bool = True) -> list[str]:
    if not curriculum:
        return list(ranked_cases)
    return list(ranked_cases[: stage_size(stage, len(ranked_cases), stages)])


def threshold(stage: int, stages: int, tau_start: float, tau_end: float) -> float:
    """τ_k relaxes linearly from tau_start (stage 1) to tau_end (stage K)."""
    if stages <= 1:
        return tau_start
    return tau_start + (tau_end - tau_start) * (stage - 1) / (stages - 1)
