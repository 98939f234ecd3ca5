"""The report of one run folder: settings, validation metrics of the teacher and the final model
(per region and per case), each phase's ``progress.png``, then the stages, the unlabeled pool and
the case overlays from their own modules. Sections whose inputs are missing are left out.
"""

from __future__ import annotations

from pathlib import Path

from brats_ssl.metrics import EVALUATED, HD95_MAX
from brats_ssl.records import MetricSummary
from brats_ssl.report.document import Document, Link, Picture, Section, Table, write_document
from brats_ssl.report.formatting import format_number, region_label
from brats_ssl.report.overlays import overlay_section
from brats_ssl.report.pool import case_link, pool_section
from brats_ssl.report.run_summary import (
    REGIONS_SLASHED,
    final_phase,
    has_metrics,
    mean_region_dice,
    metric_of,
    recorded_split,
)
from brats_ssl.report.stages import stages_section
from brats_ssl.run_folder import RunFolder
from brats_ssl.ssl.registry import get_method


def write_run_report(run_dir: Path, *, console=None) -> Path:
    """report.md/.html in a run folder (see :mod:`brats_ssl.report`); returns report.md."""
    run = RunFolder(run_dir)
    sections = [
        _header_section(run),
        _results_section(run),
        _curves_section(run),
        stages_section(run),
        pool_section(run),
        overlay_section(run, console),
    ]
    document = Document(f"brats-ssl run report: {run.path.resolve().name}", [s for s in sections if s])
    return write_document(document, run.path)


def _header_section(run: RunFolder) -> Section:
    config, split = run.config, recorded_split(run)
    model = config.model
    student = f"{config.ssl.stages} × {config.ssl.stage_steps}"
    steps = get_method(config.method).steps_text.format(teacher=config.train.steps, student=student)
    rows = [
        ["method", config.method],
        ["preset", config.preset],
        ["model", f"{model.name}, {model.spatial_dims}-D, features {list(model.features)}, dropout {model.dropout}"],
        ["training steps", steps],
        ["seed", str(config.seed)],
        [
            "labeled / unlabeled / val / selection cases",
            " / ".join(str(len(split.get(k, []))) for k in ("labeled", "unlabeled", "val", "selection")),
        ],
        [
            "choices made on (best checkpoint, promotion, final model, post-processing)",
            "the selection cases"
            if split.get("selection")
            else "the val cases (no selection set: their Dice is optimistic)",
        ],
        ["final model (phase)", final_phase(run) or "- (training unfinished: no summary.json)"],
        ["post-processing", (run.summary or {}).get("postprocessing", "none")],
        ["training phases", ", ".join(run.phases) or "-"],
        ["dataset", str(split.get("dataset", "-"))],
        ["run folder", str(run.path.resolve())],
    ]
    return Section("Run", [Table(["setting", "value"], rows)])


def _result_models(run: RunFolder) -> dict[str, MetricSummary]:
    """Summaries to compare, by column name: teacher, final model, last student if different."""
    summary = run.summary or {}
    final = final_phase(run)
    models: dict[str, MetricSummary] = {}
    teacher = summary.get("teacher")
    if final == "teacher":
        models["teacher (final model)"] = summary
    else:
        if has_metrics(teacher):
            models["teacher"] = teacher
        models[f"final ({final})"] = summary
    raw = summary.get("raw")
    if has_metrics(raw) and raw.get("mean") != summary.get("mean"):
        models["final before post-processing"] = raw
    student = summary.get("student")
    last = run.phases[-1] if run.phases else "student"
    if has_metrics(student) and student.get("mean") != summary.get("mean") and last != final:
        models[f"last student ({last})"] = student
    return models


def _review_link(run: RunFolder, case: str) -> str | Link:
    """A case linked to its page in ``brats-ssl review`` (a run with pseudo-labels only)."""
    return case_link(case) if run.rounds else case


def _results_section(run: RunFolder) -> Section:
    summary = run.summary
    if not has_metrics(summary):
        reason = "no summary.json yet (training unfinished)" if summary is None else "the run has no validation cases"
        return Section("Results on the validation cases", [f"No validation metrics: {reason}."])
    models = _result_models(run)
    headers = ["region"] + [f"{name} {m}" for name in models for m in ("Dice", "HD95 (mm)")]
    rows = [
        [region_label(region)]
        + [
            cell
            for s in models.values()
            for cell in (format_number(metric_of(s, region, "dice"), 4), format_number(metric_of(s, region, "hd95"), 2))
        ]
        for region in EVALUATED
    ]
    score_row = [f"mean Dice {REGIONS_SLASHED}"] + [
        c for s in models.values() for c in (format_number(mean_region_dice(s), 4), "")
    ]
    blocks: list = [
        Table(
            headers,
            rows + [score_row],
            caption=(
                f"Mean over {summary.get('n_cases')} validation case(s), scored in the original geometry. HD95 "
                f"{HD95_MAX} mm is BraTS' value when exactly one of prediction and ground truth is empty."
            ),
        )
    ]
    per_case_models = {name: {e["case"]: e for e in s.get("per_case", [])} for name, s in models.items()}
    cases = [e["case"] for e in summary.get("per_case", [])]
    if cases:
        several = len(models) > 1
        case_rows = []
        for case in cases:
            for name, entries in per_case_models.items():
                entry = entries.get(case)
                if entry is None:
                    continue
                cells = [format_number(entry.get(r, {}).get("dice"), 4) for r in EVALUATED]
                case_rows.append([_review_link(run, case), *([name] if several else []), *cells])
        blocks.append("Per-case Dice on the validation cases:")
        blocks.append(
            Table(["case"] + (["model"] if several else []) + [region_label(r) for r in EVALUATED], case_rows)
        )
    return Section("Results on the validation cases", blocks)


def _curves_section(run: RunFolder) -> Section | None:
    pictures = [
        Picture(
            run.path / phase / "progress.png",
            f"{phase}: training loss terms, validation Dice per region and learning rate against step",
        )
        for phase in run.phases
        if (run.path / phase / "progress.png").is_file()
    ]
    return Section("Training curves", list(pictures)) if pictures else None
