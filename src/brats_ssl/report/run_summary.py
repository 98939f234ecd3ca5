"""What the report's sections read out of a run's summary.json and split.json, tolerant of gaps.

A report is also asked for unfinished and damaged runs (no summary.json yet, no validation
cases, an unreadable split): these readers answer None or {} there, and each section decides
whether it has something to show.
"""

from __future__ import annotations

import numpy as np

from brats_ssl.data.conventions import REGIONS
from brats_ssl.report.formatting import as_float
from brats_ssl.run_folder import RunFolder

BRATS_REGIONS = tuple(REGIONS)  # WT, TC, ET: the model-selection score is their mean Dice
REGIONS_SLASHED = "/".join(BRATS_REGIONS)  # "WT/TC/ET", as tables and figures name the score's regions
REGIONS_LISTED = ", ".join(BRATS_REGIONS)  # "WT, TC, ET"


def metric_of(summary: dict | None, region: str, metric: str) -> float | None:
    """A mean metric (``dice``, ``hd95``) of a region in a summary; None when absent."""
    return as_float((((summary or {}).get("mean") or {}).get(region) or {}).get(metric))


def mean_region_dice(summary: dict | None) -> float | None:
    """Mean Dice of WT, TC and ET (the selection score); None unless all three are there."""
    values = [metric_of(summary, r, "dice") for r in BRATS_REGIONS]
    return float(np.mean(values)) if values and all(v is not None for v in values) else None


def has_metrics(summary: dict | None) -> bool:
    """Whether a summary holds validation metrics (a run without val cases has none)."""
    return bool(summary) and bool(summary.get("mean")) and summary.get("n_cases", 1) > 0


def recorded_split(run: RunFolder) -> dict:
    """The run's split.json, or {} when it is missing or unreadable."""
    try:
        return run.split
    except (OSError, ValueError):
        return {}


def final_phase(run: RunFolder) -> str | None:
    """The phase the run chose as its final model (summary.json's ``model``); None while unfinished."""
    return (run.summary or {}).get("model")
