"""What the report's sections read out of a run's summary.json and split.json, tolerant of gaps.

A report is also asked for unfinished and damaged runs (no summary.json yet, no validation
cases, an unreadable split): these readers answer None or {} there, and each section decides
whether it has something to show.
"""

from __future__ import annotations

from typing import Any, Mapping, TypeGuard, TypeVar

import numpy as np

from brats_ssl.data.conventions import REGIONS
from brats_ssl.records import MetricSummary
from brats_ssl.report.formatting import as_float
from brats_ssl.run_folder import RunFolder

AnySummary = TypeVar("AnySummary", bound=MetricSummary)

BRATS_REGIONS = tuple(REGIONS)  # WT, TC, ET: the model-selection score is their mean Dice
REGIONS_SLASHED = "/".join(BRATS_REGIONS)  # "WT/TC/ET", as tables and figures name the score's regions
REGIONS_LISTED = ", ".join(BRATS_REGIONS)  # "WT, TC, ET"


def metric_of(summary: MetricSummary | None, region: str, metric: str) -> float | None:
    """A mean metric (``dice``, ``hd95``) of a region in a summary; None when absent."""
    mean = summary.get("mean") if summary else None
    scores: Mapping[str, Any] = (mean or {}).get(region) or {}
    return as_float(scores.get(metric))


def mean_region_dice(summary: MetricSummary | None) -> float | None:
    """Mean Dice of WT, TC and ET (the selection score); None unless all three are there."""
    values = [metric_of(summary, r, "dice") for r in BRATS_REGIONS]
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present and len(present) == len(values) else None


def has_metrics(summary: AnySummary | None) -> TypeGuard[AnySummary]:
    """Whether a summary holds validation metrics (a run without val cases has none)."""
    if summary is None:
        return False
    record: Mapping[str, Any] = summary
    return bool(record.get("mean")) and record.get("n_cases", 1) > 0


def recorded_split(run: RunFolder) -> Mapping[str, Any]:
    """The run's split.json, or {} when it is missing or unreadable."""
    try:
        return run.split
    except (OSError, ValueError):
        return {}


def final_phase(run: RunFolder) -> str | None:
    """The phase the run chose as its final model (summary.json's ``model``); None while unfinished."""
    return (run.summary or {}).get("model")
