"""Shared helpers for the benchmarks: warm-up then medians of repeated runs, peak memory."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path

REAL_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "brats-dev"


def timed(fn, repeats: int, warmup: int = 1) -> tuple[float, float, float]:
    """(median, min, max) seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def show(label: str, stats: tuple[float, float, float], unit: str = "s") -> None:
    median, low, high = stats
    print(f"{label:<52} median {median:8.3f} {unit}  (min {low:.3f}, max {high:.3f})", flush=True)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def real_data() -> Path:
    if not (REAL_DATA / "BraTS2021_00006").is_dir():
        sys.exit(f"real data not found at {REAL_DATA}")
    return REAL_DATA.resolve()
