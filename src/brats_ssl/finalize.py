"""The last step of every run, whatever the method: post-processing for the final model.

The rule is chosen on the final phase's predictions of the chooser cases (the selection set, or
the val set when the split has none) and stored as ``postprocessing.json``; it is then applied to
the final phase's val predictions. ``summary.json`` holds the val metrics after the rule, and the
metrics before it under ``raw``, so a report can show what post-processing changed per region.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from brats_ssl.data.dataset import CaseRef
from brats_ssl.data.io import read_seg
from brats_ssl.engine import distributed
from brats_ssl.metrics import case_metrics, summarize
from brats_ssl.postprocess import RULE_FILE, Rule, apply_rule, choose_rule, load_rule, save_rule
from brats_ssl.records import MetricSummary, Summary
from brats_ssl.run.context import RunContext
from brats_ssl.run.method_result import MethodResult
from brats_ssl.run.phase import prediction_path


def _prediction(case: CaseRef, path: Path) -> np.ndarray:
    """A saved prediction in internal labels (read like a seg in the case's own convention)."""
    return read_seg(replace(case, seg=path))


def _voxel_ml(ctx: RunContext, case: CaseRef) -> float:
    return float(np.prod(ctx.preprocessed(case).meta.spacing)) / 1000.0


def choose_postprocessing(ctx: RunContext, phase: str) -> Rule:
    """The run's rule: read when chosen before (a resumed run), else chosen on the chooser cases."""
    if (ctx.run_dir / RULE_FILE).is_file():
        return load_rule(ctx.run_dir)
    kind = ctx.chooser_name
    cases = [
        (_prediction(c, prediction_path(ctx.run_dir / phase, c.case_id, kind)), read_seg(c), _voxel_ml(ctx, c))
        for c in ctx.chooser
    ]
    rule, candidates = choose_rule(cases)
    save_rule(ctx.run_dir, rule, chosen_on=[c.case_id for c in ctx.chooser], phase=phase, candidates=candidates)
    return rule


def postprocessed_summary(ctx: RunContext, phase: str, rule: Rule, raw: MetricSummary) -> MetricSummary:
    """Val metrics of the phase's saved predictions after ``rule`` (``raw`` itself for the identity)."""
    if rule.is_identity or not ctx.val:
        return raw
    per_case = []
    for case in ctx.val:
        pred = apply_rule(
            _prediction(case, prediction_path(ctx.run_dir / phase, case.case_id, "val")), rule, _voxel_ml(ctx, case)
        )
        per_case.append(
            {"case": case.case_id, **case_metrics(pred, read_seg(case), spacing=ctx.preprocessed(case).meta.spacing)}
        )
    return summarize(per_case)


def finalize(ctx: RunContext, result: MethodResult) -> Summary:
    """A method's result → the run's summary (``summary.json``): post-processed val metrics of its
    final phase, the raw ones under ``raw``, and what chose them."""
    phase = result.final_phase
    summary = result.summary()
    if not ctx.chooser or not distributed.is_main():
        summary["chosen_on"] = ctx.chooser_name
        return summary
    rule = choose_postprocessing(ctx, phase)
    raw = _metrics_of(summary)
    final: Summary = {**summary, **postprocessed_summary(ctx, phase, rule, raw)}
    final["chosen_on"] = ctx.chooser_name
    final["postprocessing"] = rule.describe()
    final["raw"] = raw
    return final


def _metrics_of(summary: Summary) -> MetricSummary:
    """The keys of a summary that post-processing changes, in their order."""
    metrics: MetricSummary = {}
    if "mean" in summary:
        metrics["mean"] = summary["mean"]
    if "n_cases" in summary:
        metrics["n_cases"] = summary["n_cases"]
    if "per_case" in summary:
        metrics["per_case"] = summary["per_case"]
    return metrics
