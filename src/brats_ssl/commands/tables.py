"""Console tables of results: segmentation metrics (``train``, ``evaluate``, ``demo``) and the
scans to annotate next (``suggest``).

A run's ``summary.json`` holds the final model's metrics at the top (``model`` names its phase), the
teacher's under ``teacher`` and the last trained phase's under ``student``. With ``ours`` the final
model is the best of the teacher and the stages on validation, so the last stage may not be it;
printing that stage as "student" beside the teacher reads as the method making things worse, so
:func:`table_columns` names each column as what it is.

Example::

    >>> print_summary_table(table_columns(summary), console)
    # columns: teacher | final model (stage_1) | last stage (stage_2, not selected)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from rich.console import Console
from rich.table import Table

from brats_ssl.data.conventions import REGIONS
from brats_ssl.metrics import EVALUATED

if TYPE_CHECKING:
    from brats_ssl.report.document import Section
    from brats_ssl.ssl.suggest import Suggestion


def last_phase(summary: Mapping[str, Any]) -> str | None:
    """The last trained phase: the last curriculum stage, or a baseline's one student phase."""
    stages = summary.get("stages") or []
    if stages:
        return f"stage_{stages[-1]['stage']}"
    return summary.get("model") if "student" in summary else None


def table_columns(summary: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """``{column name: summary}`` for :func:`print_summary_table`; a summary without ``model``
    (``brats-ssl evaluate``) is returned as it is."""
    model = summary.get("model")
    if model is None:
        return dict(summary)
    columns: dict[str, Mapping[str, Any]] = {}
    if model == "teacher":
        columns["teacher (final model)"] = summary
    else:
        if summary.get("teacher") is not None:
            columns["teacher"] = summary["teacher"]
        columns[f"final model ({model})"] = summary
    last, student = last_phase(summary), summary.get("student")
    if student is not None and last is not None and last != model:
        columns[f"last stage ({last}, not selected)"] = student
    return columns


def _named_summaries(summary: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The ``{name: summary}`` entries that hold a ``mean``; else ``{"": summary}`` for a plain one."""
    named = {name: s for name, s in summary.items() if isinstance(s, Mapping) and "mean" in s}
    if named:
        return named
    return {"": summary} if "mean" in summary else {}


def _format(value: Any, digits: int) -> str:
    if value is None or not math.isfinite(float(value)):
        return "-"
    return f"{float(value):.{digits}f}"


def print_summary_table(summary: Mapping[str, Any], console: Console) -> None:
    """Print mean Dice and HD95 per region and label as a rich table.

    ``summary`` is one :func:`brats_ssl.metrics.summarize` result, or several by name, e.g.
    ``{"teacher": s1, "student": s2}``, which gives a Dice and HD95 column pair per name. Named
    summaries win over a top-level ``mean`` (a run's summary.json holds both); other keys are
    ignored.
    """
    named = _named_summaries(summary)
    if not named:
        console.print("no metrics to show")
        return
    counts = sorted({n for s in named.values() if (n := s.get("n_cases")) is not None})
    caption = f"mean over {', '.join(str(c) for c in counts)} case(s); HD95 in mm" if counts else "HD95 in mm"
    table = Table(title="Segmentation metrics", caption=caption)
    table.add_column("region", style="bold")
    for name in named:
        prefix = f"{name} " if name else ""
        table.add_column(f"{prefix}Dice", justify="right")
        table.add_column(f"{prefix}HD95", justify="right")
    for index, region in enumerate(EVALUATED):
        cells = []
        for s in named.values():
            scores = s["mean"].get(region) or {}
            cells += [_format(scores.get("dice"), 4), _format(scores.get("hd95"), 2)]
        label = region if region in REGIONS else f"{region} (label)"
        table.add_row(label, *cells, end_section=index == len(REGIONS) - 1)
    console.print(table)


def suggestions_table(suggestions: Sequence[Suggestion]) -> Table:
    """One row per scan to annotate next, most in need first, with the reason."""
    table = Table(title=f"Annotate next ({len(suggestions)} of the unlabeled pool)")
    for column in ("#", "case", "mean rank", "why"):
        table.add_column(column)
    for i, s in enumerate(suggestions, 1):
        table.add_row(str(i), s.case, f"{s.priority:.1f}", s.reason)
    return table


def print_reading(section: Section, console: Console) -> None:
    """The experiment report's "What the sweep says": each question, then its comparison and the
    answer (bold where the interval resolves it); then the section's remarks (few cases, one seed).
    Lines rather than a table: they read alike at any terminal width and in a log file."""
    from rich.markup import escape

    from brats_ssl.report.document import Table as ReportTable

    console.print(f"[bold]{section.title}[/bold]")
    for block in section.blocks:
        if isinstance(block, ReportTable):
            for question, comparison, labeled, cases, difference, answer in (map(str, row) for row in block.rows):
                answer = escape(answer).replace("**", "[bold]", 1).replace("**", "[/bold]", 1)
                console.print(f"  {escape(question)}", soft_wrap=True, highlight=False)
                console.print(
                    f"    {escape(comparison)}, {labeled} labeled, {cases} cases: {difference} → {answer}",
                    soft_wrap=True,
                    highlight=False,
                )
        elif isinstance(block, str):
            console.print(escape(block.replace("`", "")), soft_wrap=True, highlight=False)
