"""Numbers as the report prints them: one place decides digits, the mark of a missing value ("-"),
durations and intervals, so every table of the run and experiment reports reads alike.

Values arrive from JSON and CSV (floats, strings, empty cells, NaN); :func:`as_float` turns
each into a finite float or None, and every formatter prints None as "-".
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Sequence

from brats_ssl.data.conventions import REGIONS


def as_float(value: Any) -> float | None:
    """A finite float, or None for a missing, empty, non-numeric or non-finite value."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def format_number(value: Any, digits: int) -> str:
    number = as_float(value)
    return "-" if number is None else f"{number:.{digits}f}"


def format_duration(seconds: float) -> str:
    """``12 min 05 s`` or ``1 h 02 min 05 s``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def format_interval(values: tuple[float, float, float, int] | None, digits: int = 3, signed: bool = False) -> str:
    """``mean [low, high]`` of a (mean, low, high, n) tuple; ``signed`` prints + on differences."""
    if values is None or values[0] is None or math.isnan(values[0]):
        return "-"
    sign = "+" if signed else ""
    mean, low, high = values[:3]
    return f"{mean:{sign}.{digits}f} [{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"


def region_label(region: str) -> str:
    """A column name: BraTS regions (WT, TC, ET) as they are, single labels (NCR, ED) marked so."""
    return region if region in REGIONS else f"{region} (label)"


def mean_std(values: Sequence[Any]) -> tuple[float | None, float | None, int]:
    """Mean and sample standard deviation (n − 1) of the numeric values; std is None for fewer than 2."""
    numbers = [v for v in (as_float(x) for x in values) if v is not None]
    if not numbers:
        return None, None, 0
    return statistics.fmean(numbers), (statistics.stdev(numbers) if len(numbers) > 1 else None), len(numbers)


def log(console, message: str) -> None:
    """A progress line on the console, when the caller gave one (the library prints nothing itself)."""
    if console is not None:
        console.print(message)
