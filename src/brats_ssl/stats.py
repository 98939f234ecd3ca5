"""Paired statistics over cases: mean with a bootstrap confidence interval, and the Wilcoxon
signed-rank test (both from SciPy).

Two methods are compared on the same cases: the per-case difference (averaged over seeds first,
so a case counts once) is resampled over cases with replacement (percentile bootstrap, seeded,
10,000 resamples by default), and tested against zero with the two-sided Wilcoxon signed-rank
test. A difference is *resolved* when its 95 % interval excludes 0.

Example::

    >>> paired([0.01, 0.03, -0.005, 0.02])
    Paired(n=4, mean=0.01375, ci_low=..., ci_high=..., p_value=0.25)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

RESAMPLES = 10_000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Paired:
    n: int
    mean: float
    ci_low: float
    ci_high: float
    p_value: float

    @property
    def resolved(self) -> bool:
        """The interval excludes 0: the data fix the sign of the difference."""
        return self.n >= 2 and (self.ci_low > 0 or self.ci_high < 0)


def mean_ci(
    values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(mean, low, high): the percentile bootstrap interval of the mean over ``values``."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if data.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(data.mean())
    if data.size < 2 or np.all(data == data[0]):
        return mean, mean, mean
    result = stats.bootstrap(
        (data,),
        np.mean,
        n_resamples=resamples,
        method="percentile",
        confidence_level=confidence,
        rng=np.random.default_rng(seed),
    )
    return mean, float(result.confidence_interval.low), float(result.confidence_interval.high)


def wilcoxon_p(differences: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of ``differences`` against 0 (zeros dropped, as in
    Wilcoxon's original test); 1.0 when no difference is non-zero."""
    data = np.asarray(differences, dtype=np.float64)
    if not np.any(data != 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # tiny samples: SciPy warns, the exact p is right
        return float(stats.wilcoxon(data, zero_method="wilcox", alternative="two-sided").pvalue)


def paired(differences: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0) -> Paired:
    """Mean paired difference over cases with its bootstrap interval and Wilcoxon p-value."""
    data = [float(d) for d in differences if d is not None and math.isfinite(d)]
    mean, low, high = mean_ci(data, resamples=resamples, seed=seed)
    return Paired(n=len(data), mean=mean, ci_low=low, ci_high=high, p_value=wilcoxon_p(data) if data else math.nan)
