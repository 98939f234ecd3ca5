"""The columns of a run's results table: the teacher against the final model, and the last student
only when it is not the final model, named as what it is.

A run's ``summary.json`` holds the final model's metrics at the top (``model`` names its phase), the
teacher's under ``teacher`` and the last trained phase's under ``student``. With ``ours`` the final
model is the best of the teacher and the stages on validation, so the last stage may not be it;
printing that stage as "student" beside the teacher reads as the method making things worse.

Example::

    >>> print_summary_table(table_columns(summary), console)
    # columns: teacher | final model (stage_1) | last stage (stage_2, not selected)
"""

from __future__ import annotations

from typing import Any, Mapping


def last_phase(summary: Mapping[str, Any]) -> str | None:
    """The last trained phase: the last curriculum stage, or a baseline's one student phase."""
    stages = summary.get("stages") or []
    if stages:
        return f"stage_{stages[-1]['stage']}"
    return summary.get("model") if "student" in summary else None


def table_columns(summary: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """``{column name: summary}`` for :func:`brats_ssl.metrics.print_summary_table`; a summary
    without ``model`` (``brats-ssl evaluate``) is returned as it is."""
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
