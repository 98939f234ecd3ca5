"""The JSON records other tools and later commands read back, as TypedDicts: ``summary.json``
(metrics of a set of cases; a run's also says how its model was chosen) and ``split.json``.

They type the dicts for the checker only: at run time they stay plain dicts, and readers stay
tolerant (``.get``), since folders written by earlier versions lack the newer keys. Summaries
declare no key as required: a phase without val cases has the empty summary ``{}``.
"""

from __future__ import annotations

from typing import Any, TypedDict


class RegionMetrics(TypedDict):
    """One region's (or label's) scores; None (JSON null) where nothing could be scored."""

    dice: float | None
    hd95: float | None


# {"case": id, "WT": RegionMetrics, "TC": ..., ...}: the region names are data (metrics.EVALUATED).
CaseMetrics = dict[str, Any]


class MetricSummary(TypedDict, total=False):
    """:func:`brats_ssl.metrics.summarize`: each region's mean over the cases, then every case."""

    mean: dict[str, RegionMetrics]
    n_cases: int
    per_case: list[CaseMetrics]


class Summary(MetricSummary, total=False):
    """A ``summary.json``. ``brats-ssl evaluate`` adds the predictions it could not match; a run
    adds its final model's phase, the phases it came from and how its post-processing was chosen
    (the metrics are then after post-processing, ``raw`` before)."""

    unmatched_predictions: list[str]
    model: str
    teacher: MetricSummary
    student: MetricSummary
    stages: list[dict[str, Any]]
    chosen_on: str
    postprocessing: str
    raw: MetricSummary


class _SplitSets(TypedDict):
    labeled: list[str]
    unlabeled: list[str]
    val: list[str]


class Split(_SplitSets, total=False):
    """A ``split.json``: the case ids of each set (``selection`` is empty or missing in splits
    made before it existed) and how the split was drawn."""

    selection: list[str]
    seed: int
    labeled_fraction: float
    val_fraction: float
    dataset: str  # the dataset folder, absolute
    fold: int  # cross-validation sweeps: which fold of how many
    folds: int
    sites: dict[str, str]  # case id → site, where sites are known
    unlabeled_roots: list[str]  # folders whose scans joined as unlabeled cases (--unlabeled), absolute
