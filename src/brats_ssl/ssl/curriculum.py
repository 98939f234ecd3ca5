"""The progressive curriculum (METHOD step 5): which unlabeled cases each stage trains on, and
the voxel confidence threshold of each stage."""

from __future__ import annotations

import math


def pool_size(n_unlabeled: int, pool_fraction: float = 1.0) -> int:
    """How many ranked cases the curriculum ever trains on: the ⌈f·N⌉ most confident, at least one.
    The rest are pseudo-labeled and ranked (a later round may move them up) but never trained on."""
    if n_unlabeled <= 0:
        return 0
    # the epsilon keeps 0.07·100 at 7 where binary floating point makes it 7.000000000000001
    return max(1, min(n_unlabeled, math.ceil(pool_fraction * n_unlabeled - 1e-9)))


def stage_size(stage: int, n_unlabeled: int, stages: int, pool_fraction: float = 1.0) -> int:
    """Stage k (1-based) uses the ⌈k·M/K⌉ most confident unlabeled cases, M = :func:`pool_size`."""
    used = pool_size(n_unlabeled, pool_fraction)
    return min(used, math.ceil(stage * used / stages))


def entry_stage(index: int, n_unlabeled: int, stages: int, pool_fraction: float = 1.0) -> int:
    """The first stage (1-based) whose members include the case ranked ``index`` (0-based); 0 for a
    case outside the pool the curriculum uses."""
    for stage in range(1, stages + 1):
        if index < stage_size(stage, n_unlabeled, stages, pool_fraction):
            return stage
    return 0


def stage_members(
    ranked_cases: list[str], stage: int, stages: int, *, curriculum: bool = True, pool_fraction: float = 1.0
) -> list[str]:
    if not curriculum:
        return list(ranked_cases[: pool_size(len(ranked_cases), pool_fraction)])
    return list(ranked_cases[: stage_size(stage, len(ranked_cases), stages, pool_fraction)])


def threshold(stage: int, stages: int, tau_start: float, tau_end: float) -> float:
    """τ_k relaxes linearly from tau_start (stage 1) to tau_end (stage K)."""
    if stages <= 1:
        return tau_start
    return tau_start + (tau_end - tau_start) * (stage - 1) / (stages - 1)
