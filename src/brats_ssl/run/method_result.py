"""What a method hands back to the pipeline: typed, so every method reports the same things and
``summary.json`` is laid out in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from brats_ssl.records import MetricSummary, Summary


@dataclass
class MethodResult:
    """The final phase (the run's model) and the val summaries the run's ``summary.json`` records.
    ``teacher``, ``student`` and ``stages`` are left out of the summary when a method has none."""

    final_phase: str  # the phase folder whose last checkpoint is the run's final model
    val: MetricSummary  # that phase's metrics on the val cases (before post-processing)
    teacher: MetricSummary | None = None  # the supervised teacher phase's val summary
    student: MetricSummary | None = None  # the last student phase's val summary
    stages: list[dict[str, Any]] | None = None  # staged methods: a row per stage (as in stages.json)

    def summary(self) -> Summary:
        """The run's summary before post-processing: the final phase's metrics, ``model`` (its name),
        then teacher, student and stages where the method has them."""
        summary: Summary = {**self.val, "model": self.final_phase}
        if self.teacher is not None:
            summary["teacher"] = self.teacher
        if self.student is not None:
            summary["student"] = self.student
        if self.stages is not None:
            summary["stages"] = self.stages
        return summary
