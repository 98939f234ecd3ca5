"""An experiment's per-case results and the paired comparisons between its methods.

``per_case.csv``: one row per (method, fraction, seed, fold, val case) with the final model's
Dice after post-processing (``WT, TC, ET, NCR, ED``), HD95 (``hd95_*``) and the same before
post-processing (``raw_*``). ``comparisons.csv``: every method against every reference method
at each fraction, per metric (the five Dice columns and ``mean`` = mean of WT/TC/ET): the
per-case difference averaged over the seeds both ran, its mean over cases, 95 % bootstrap
interval and Wilcoxon p-value (:mod:`brats_ssl.stats`).
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable

from brats_ssl import atomic
from brats_ssl.data.conventions import REGIONS
from brats_ssl.experiment_folder import COMPARISONS_CSV, PER_CASE_CSV
from brats_ssl.metrics import EVALUATED
from brats_ssl.records import Summary
from brats_ssl.stats import Paired, mean_ci, paired

DICE_KEYS = tuple(EVALUATED)  # WT, TC, ET, NCR, ED
METRICS = DICE_KEYS + ("mean",)
PER_CASE_COLUMNS = (
    ["method", "fraction", "seed", "fold", "case"]
    + list(DICE_KEYS)
    + [f"hd95_{k}" for k in DICE_KEYS]
    + [f"raw_{k}" for k in DICE_KEYS]
    + [f"raw_hd95_{k}" for k in DICE_KEYS]
)
COMPARISON_COLUMNS = ["method", "reference", "fraction", "metric", "n", "mean_diff", "ci_low", "ci_high", "p_value"]
DEFAULT_REFERENCES = ("supervised", "ours-control", "ours-student-control")  # those that ran


def _value(entry: dict, region: str, metric: str):
    value = (entry.get(region) or {}).get(metric)
    return "" if value is None else round(float(value), 4)


def case_rows(result: dict, summary: Summary) -> list[dict]:
    """per_case.csv rows of one run (``result``: its results.csv row; ``summary``: its summary.json)."""
    raw = {e["case"]: e for e in (summary.get("raw") or summary).get("per_case", [])}
    rows = []
    for entry in summary.get("per_case", []):
        row = {
            "method": result["method"],
            "fraction": result["fraction"],
            "seed": result["seed"],
            "fold": result.get("fold", 0),
            "case": entry["case"],
        }
        before = raw.get(entry["case"], entry)
        for key in DICE_KEYS:
            row[key] = _value(entry, key, "dice")
            row[f"hd95_{key}"] = _value(entry, key, "hd95")
            row[f"raw_{key}"] = _value(before, key, "dice")
            row[f"raw_hd95_{key}"] = _value(before, key, "hd95")
        rows.append(row)
    return rows


def collect_case_rows(results: Iterable[dict], locate: Callable[[dict], Path] | None = None) -> list[dict]:
    """per_case.csv rows of every finished run in ``results`` (results.csv rows; ``locate`` finds a
    row's run folder, by default its recorded path)."""
    rows = []
    for result in results:
        path = (locate(result) if locate is not None else Path(result["run"])) / "summary.json"
        if path.is_file():
            rows += case_rows(result, json.loads(path.read_text()))
    return rows


def metric_value(row: dict, metric: str, prefix: str = "") -> float | None:
    """A Dice of a per_case row; ``mean`` is the mean of WT/TC/ET (None when one is missing)."""
    keys = tuple(REGIONS) if metric == "mean" else (metric,)
    values = [row.get(f"{prefix}{k}") for k in keys]
    if any(v in (None, "") for v in values):
        return None
    numbers = [float(v) for v in values if v is not None]
    return sum(numbers) / len(numbers)


def per_case_means(rows: list[dict], metric: str, prefix: str = "") -> dict[tuple[str, float], dict[str, float]]:
    """(method, fraction) → case → the metric averaged over the seeds that ran the case."""
    collected: dict[tuple[str, float], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        value = metric_value(row, metric, prefix)
        if value is not None and math.isfinite(value):
            collected[(row["method"], float(row["fraction"]))][row["case"]].append(value)
    return {key: {case: sum(v) / len(v) for case, v in cases.items()} for key, cases in collected.items()}


def compare(
    rows: list[dict], method: str, reference: str, fraction: float, metric: str, *, seed: int = 0
) -> Paired | None:
    """Paired difference method − reference over the cases both ran (seeds averaged per case)."""
    means = per_case_means(rows, metric)
    a, b = means.get((method, fraction), {}), means.get((reference, fraction), {})
    cases = sorted(set(a) & set(b))
    if not cases:
        return None
    return paired([a[c] - b[c] for c in cases], seed=seed)


def comparison_rows(rows: list[dict], references: Iterable[str]) -> list[dict]:
    methods = sorted({r["method"] for r in rows})
    fractions = sorted({float(r["fraction"]) for r in rows})
    out, compared = [], set()
    for reference in [r for r in references if r in methods]:
        for method in methods:
            if method == reference or frozenset((method, reference)) in compared:
                continue  # two references are compared once, the later one against the earlier
            compared.add(frozenset((method, reference)))
            for fraction in fractions:
                for metric in METRICS:
                    result = compare(rows, method, reference, fraction, metric)
                    if result is None:
                        continue
                    out.append(
                        {
                            "method": method,
                            "reference": reference,
                            "fraction": fraction,
                            "metric": metric,
                            "n": result.n,
                            "mean_diff": round(result.mean, 5),
                            "ci_low": round(result.ci_low, 5),
                            "ci_high": round(result.ci_high, 5),
                            "p_value": round(result.p_value, 5),
                        }
                    )
    return out


def method_means(
    rows: list[dict], metric: str, prefix: str = ""
) -> dict[tuple[str, float], tuple[float, float, float, int]]:
    """(method, fraction) → (mean, CI low, CI high, cases) of the metric over cases (seeds averaged)."""
    return {
        key: (*mean_ci(list(cases.values())), len(cases)) for key, cases in per_case_means(rows, metric, prefix).items()
    }


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> Path:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    return atomic.write_with(path, write)


def write_tables(out: Path, results: list[dict], references: Iterable[str] = DEFAULT_REFERENCES) -> list[dict]:
    """Write ``per_case.csv`` and ``comparisons.csv`` into the experiment folder; returns the case rows."""
    rows = collect_case_rows(results)
    _write_csv(Path(out) / PER_CASE_CSV, PER_CASE_COLUMNS, rows)
    _write_csv(Path(out) / COMPARISONS_CSV, COMPARISON_COLUMNS, comparison_rows(rows, references))
    return rows
