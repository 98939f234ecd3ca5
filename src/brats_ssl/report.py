"""``brats-ssl report``: report.md and a self-contained report.html for a run or an experiment.

A run report shows the settings, the validation metrics of teacher and final model, each training
phase's ``progress.png``, the per-stage Dice and curriculum of ``--method ours``, the teacher's
confidence over the unlabeled pool, and overlay panels of validation cases with the final model's
MC-dropout uncertainty (computed at report time). An experiment report shows mean ± std per
method and labeled fraction, the data-efficiency curves, ours' per-stage curves, the total time
and links to each run's own report (written too).

Sections whose inputs are missing (a supervised run has no stages and no pool) are left out.
Figures are :class:`matplotlib.figure.Figure` objects (no pyplot) written beside report.md as
``report_*.png``; report.html embeds every picture as base64, so it is one file to send.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from brats_ssl import atomic
from brats_ssl.data.cache import PreprocessCache
from brats_ssl.data.conventions import CLASS_NAMES, MODALITIES, REGIONS
from brats_ssl.config import Config
from brats_ssl.data.dataset import CaseRef, open_dataset
from brats_ssl.data.io import load_case, read_seg
from brats_ssl.data.preprocess import PreprocessParams, restore_map
from brats_ssl.engine.device import resolve_device
from brats_ssl.engine.progress_plot import REGION_COLOURS
from brats_ssl.errors import BadInputError
from brats_ssl.experiment_folder import read_results, reused_seconds
from brats_ssl.experiment_tables import DEFAULT_REFERENCES, collect_case_rows, comparison_rows, method_means
from brats_ssl.inference import InferenceOptions, predict_volume
from brats_ssl.metrics import EVALUATED, HD95_MAX
from brats_ssl.paths import safe_name
from brats_ssl.predict import load_run_model
from brats_ssl.review import case_url
from brats_ssl.run_folder import RunFolder
from brats_ssl.ssl.labelling import read_ranking
from brats_ssl.ssl.pseudolabels import PseudoLabel
from brats_ssl.viz import (
    LABEL_COLOURS, VIEWS, Cell, brain_box, display_slice, intensity_window, overlay_panel, to_display_orientation,
    tumour_slice,
)

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
FIGURE_PREFIX = "report_"
MAX_OVERLAY_CASES = 3
DPI = 100
BRATS_REGIONS = tuple(REGIONS)  # WT, TC, ET: the model-selection score is their mean Dice
METHOD_COLOURS = {"supervised": "#6c757d", "ours": "#d62828", "ours-control": "#7b2cbf",
                  "self-training": "#f77f00", "mean-teacher": "#457b9d", "ua-mt": "#2a9d8f"}
_VIEW_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}  # LPS voxel axis each view slices across
_VIEW_HINT = {"axial": "anterior up, patient's right on the left", "coronal": "superior up",
              "sagittal": "superior up, anterior on the left"}


# --- document model: one structure rendered as Markdown and as HTML -------------------------------

@dataclass(frozen=True)
class Link:
    text: str
    md_href: str
    html_href: str


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str | Link]]
    caption: str = ""


@dataclass
class Picture:
    path: Path
    caption: str


@dataclass
class Section:
    title: str
    blocks: list[str | Table | Picture] = field(default_factory=list)


@dataclass
class Document:
    title: str
    sections: list[Section]


def _md_cell(cell: str | Link) -> str:
    text = f"[{cell.text}]({cell.md_href})" if isinstance(cell, Link) else str(cell)
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(document: Document, folder: Path) -> str:
    """Markdown text; pictures are linked relative to ``folder`` (where report.md lies)."""
    lines = [f"# {document.title}", ""]
    for section in document.sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
                lines.append("|" + "|".join(" --- " for _ in block.headers) + "|")
                lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
                if block.caption:
                    lines += ["", f"*{block.caption}*"]
            elif isinstance(block, Picture):
                lines += [f"![{block.caption}]({Path(os.path.relpath(block.path, folder)).as_posix()})", "",
                          f"*{block.caption}*"]
            else:
                lines.append(block)
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1450px;
       margin: 1.5em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ccc; padding-bottom: .2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .6em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 3px 9px; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption, .caption { font-size: 13px; color: #555; font-style: italic; }
"""


def _html_cell(cell: str | Link, tag: str) -> str:
    inner = (f'<a href="{html.escape(cell.html_href)}">{html.escape(cell.text)}</a>' if isinstance(cell, Link)
             else html.escape(str(cell)))
    return f"<{tag}>{inner}</{tag}>"


def render_html(document: Document) -> str:
    """One self-contained HTML page: pictures embedded as base64 PNG, styles inline."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(document.title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(document.title)}</h1>"]
    for section in document.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Table):
                parts.append("<table><thead><tr>" + "".join(_html_cell(h, "th") for h in block.headers)
                             + "</tr></thead><tbody>")
                parts += ["<tr>" + "".join(_html_cell(c, "td") for c in row) + "</tr>" for row in block.rows]
                parts.append("</tbody></table>")
                if block.caption:
                    parts.append(f'<p class="caption">{html.escape(block.caption)}</p>')
            elif isinstance(block, Picture):
                data = base64.b64encode(block.path.read_bytes()).decode("ascii")
                parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.caption)}">'
                             f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
            else:
                parts.append(f"<p>{html.escape(block)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_document(document: Document, folder: Path) -> Path:
    """report.md and report.html in ``folder``; earlier ``report_*.png`` no longer shown are removed."""
    shown = {p.path.resolve() for s in document.sections for p in s.blocks if isinstance(p, Picture)}
    for old in folder.glob(f"{FIGURE_PREFIX}*.png"):
        if old.resolve() not in shown:
            old.unlink(missing_ok=True)
    atomic.write_text(folder / REPORT_HTML, render_html(document))
    return atomic.write_text(folder / REPORT_MD, render_markdown(document, folder))


# --- small helpers ---------------------------------------------------------------------------------

def _log(console, message: str) -> None:
    if console is not None:
        console.print(message)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fmt(value: Any, digits: int) -> str:
    number = _float(value)
    return "-" if number is None else f"{number:.{digits}f}"


def _metric(summary: dict | None, region: str, metric: str) -> float | None:
    return _float((((summary or {}).get("mean") or {}).get(region) or {}).get(metric))


def _mean_region_dice(summary: dict | None) -> float | None:
    values = [_metric(summary, r, "dice") for r in BRATS_REGIONS]
    return float(np.mean(values)) if values and all(v is not None for v in values) else None


def _has_metrics(summary: dict | None) -> bool:
    return bool(summary) and bool(summary.get("mean")) and summary.get("n_cases", 1) > 0


def _save_figure(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    return atomic.write_with(path, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI), suffix=".png")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def _region_label(region: str) -> str:
    return region if region in REGIONS else f"{region} (label)"


# --- entry point -----------------------------------------------------------------------------------

def write_report(target: Path, console=None) -> Path:
    """Write report.md and report.html for a run folder or an experiment folder; returns report.md."""
    target = Path(target)
    if not target.is_dir():
        raise BadInputError(f"folder {target}: does not exist or is not a folder")
    if (target / "results.csv").is_file() or (target / "experiment.json").is_file():
        return write_experiment_report(target, console=console)
    if (target / "config.yaml").is_file():
        return write_run_report(target, console=console)
    raise BadInputError(f"folder {target}: neither a run folder (config.yaml) nor an experiment folder "
                        "(results.csv); pass the folder given to `brats-ssl train -o` or `brats-ssl experiment -o`")


# --- run report ------------------------------------------------------------------------------------

def write_run_report(run_dir: Path, *, console=None) -> Path:
    """report.md/.html in a run folder (see module docstring); returns report.md."""
    run = RunFolder(run_dir)
    sections = [_header_section(run), _results_section(run), _curves_section(run), _stages_section(run),
                _pool_section(run), _overlay_section(run, console)]
    document = Document(f"brats-ssl run report: {run.path.resolve().name}", [s for s in sections if s])
    return write_document(document, run.path)


def _split(run: RunFolder) -> dict:
    try:
        return run.split
    except (OSError, ValueError):
        return {}


def _final_phase(run: RunFolder) -> str | None:
    return (run.summary or {}).get("model")


def _header_section(run: RunFolder) -> Section:
    config, split = run.config, _split(run)
    model = config.model
    student = f"{config.ssl.stages} × {config.ssl.stage_steps}"
    steps = {"supervised": f"{config.train.steps}",
             "ours": f"{config.train.steps} (teacher) + {student} (student stages)",
             "ours-control": f"{config.train.steps} (teacher) + {student} (stages on the labeled cases only)",
             "self-training": f"{config.train.steps} (teacher) + {student} (student)",
             }.get(config.method, f"{config.train.steps} + {student} (one phase)")
    rows = [
        ["method", config.method], ["preset", config.preset],
        ["model", f"{model.name}, {model.spatial_dims}-D, features {list(model.features)}, dropout {model.dropout}"],
        ["training steps", steps], ["seed", str(config.seed)],
        ["labeled / unlabeled / val / selection cases",
         " / ".join(str(len(split.get(k, []))) for k in ("labeled", "unlabeled", "val", "selection"))],
        ["choices made on (best checkpoint, promotion, final model, post-processing)",
         "the selection cases" if split.get("selection") else
         "the val cases (no selection set: their Dice is optimistic)"],
        ["final model (phase)", _final_phase(run) or "- (training unfinished: no summary.json)"],
        ["post-processing", (run.summary or {}).get("postprocessing", "none")],
        ["training phases", ", ".join(run.phases) or "-"],
        ["dataset", str(split.get("dataset", "-"))], ["run folder", str(run.path.resolve())],
    ]
    return Section("Run", [Table(["setting", "value"], rows)])


def _result_models(run: RunFolder) -> dict[str, dict]:
    """Summaries to compare, by column name: teacher, final model, last student if different."""
    summary = run.summary or {}
    final = _final_phase(run)
    models: dict[str, dict] = {}
    teacher = summary.get("teacher")
    if final == "teacher":
        models["teacher (final model)"] = summary
    else:
        if _has_metrics(teacher):
            models["teacher"] = teacher
        models[f"final ({final})"] = summary
    raw = summary.get("raw")
    if _has_metrics(raw) and raw.get("mean") != summary.get("mean"):
        models["final before post-processing"] = raw
    student = summary.get("student")
    last = run.phases[-1] if run.phases else "student"
    if _has_metrics(student) and student.get("mean") != summary.get("mean") and last != final:
        models[f"last student ({last})"] = student
    return models


def _results_section(run: RunFolder) -> Section:
    summary = run.summary
    if not _has_metrics(summary):
        reason = "no summary.json yet (training unfinished)" if summary is None else "the run has no validation cases"
        return Section("Results on the validation cases", [f"No validation metrics: {reason}."])
    models = _result_models(run)
    headers = ["region"] + [f"{name} {m}" for name in models for m in ("Dice", "HD95 (mm)")]
    rows = [[_region_label(region)] + [cell for s in models.values()
                                       for cell in (_fmt(_metric(s, region, "dice"), 4),
                                                    _fmt(_metric(s, region, "hd95"), 2))]
            for region in EVALUATED]
    score_row = ["mean Dice WT/TC/ET"] + [c for s in models.values() for c in (_fmt(_mean_region_dice(s), 4), "")]
    blocks: list = [Table(headers, rows + [score_row], caption=(
        f"Mean over {summary.get('n_cases')} validation case(s), scored in the original geometry. HD95 "
        f"{HD95_MAX} mm is BraTS' value when exactly one of prediction and ground truth is empty."))]
    per_case_models = {name: {e["case"]: e for e in s.get("per_case", [])} for name, s in models.items()}
    cases = [e["case"] for e in summary.get("per_case", [])]
    if cases:
        several = len(models) > 1
        rows = []
        for case in cases:
            for name, entries in per_case_models.items():
                entry = entries.get(case)
                if entry is None:
                    continue
                cells = [_fmt(entry.get(r, {}).get("dice"), 4) for r in EVALUATED]
                rows.append([_review_link(run, case)] + ([name] if several else []) + cells)
        blocks.append("Per-case Dice on the validation cases:")
        blocks.append(Table(["case"] + (["model"] if several else []) + [_region_label(r) for r in EVALUATED],
                            rows))
    return Section("Results on the validation cases", blocks)


def _curves_section(run: RunFolder) -> Section | None:
    pictures = [Picture(run.path / phase / "progress.png",
                        f"{phase}: training loss terms, validation Dice per region and learning rate against step")
                for phase in run.phases if (run.path / phase / "progress.png").is_file()]
    return Section("Training curves", list(pictures)) if pictures else None


# --- ours: stages ------------------------------------------------------------------------------------

def _stage_phases(stages: list[dict]) -> list[str]:
    return ["teacher"] + [f"stage_{s['stage']}" for s in stages]


def stages_figure(run: RunFolder, out_png: Path) -> Path:
    """Val Dice per region of the teacher and each student stage; promoted stages starred."""
    stages = run.stages
    phases = _stage_phases(stages)
    x = np.arange(len(phases))
    figure = Figure(figsize=(max(6.5, 1.6 * len(phases) + 2.5), 4.4), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    for region in BRATS_REGIONS:
        values = [_metric(run.phase_summary(p), region, "dice") for p in phases]
        ax.plot(x, [np.nan if v is None else v for v in values], marker="o", color=REGION_COLOURS[region],
                lw=1.6, label=region)
    score = [stages[0].get("teacher_val")] + [s.get("student_val") for s in stages]
    ax.plot(x, [np.nan if _float(v) is None else v for v in score], color="black", ls="--", marker="s", ms=4,
            lw=1.2, label="mean of WT/TC/ET")
    promoted = [i + 1 for i, s in enumerate(stages) if s.get("promoted")]
    if promoted:
        ax.scatter(x[promoted], [score[i] for i in promoted], marker="*", s=260, color="gold", edgecolor="black",
                   zorder=5, label="promoted to teacher")
    final = _final_phase(run)
    if final in phases:
        i = phases.index(final)
        ax.axvspan(i - 0.3, i + 0.3, color="#ffe8a3", alpha=0.6, zorder=0)
        ax.text(i, 1.02, "final model", ha="center", va="bottom", fontsize=9)
    labels = ["teacher\n(labeled only)"] + [f"stage {s['stage']}\nτ={s['tau']:.2f}, {s['members']} cases"
                                            if s["members"] else f"stage {s['stage']}\n(labeled only)"
                                            for s in stages]
    ax.set_xticks(x, labels, fontsize=9)
    ax.set_xlim(-0.5, len(phases) - 0.5)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("validation Dice (mean over cases)")
    ax.set_xlabel("training phase (τ: confidence threshold; cases: pseudo-labeled cases used)")
    n_val = (run.summary or {}).get("n_cases")
    ax.set_title(f"Validation Dice after each phase{f' ({n_val} val cases)' if n_val else ''}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    return _save_figure(figure, out_png)


def _confident_share(stats: dict | None) -> str:
    if not stats:
        return "-"
    confident = total = 0.0
    for name in CLASS_NAMES[1:]:
        voxels = stats.get("class_voxels", {}).get(name) or 0
        share = stats.get("confident_share", {}).get(name) or 0.0
        confident, total = confident + share * voxels, total + voxels
    return f"{confident / total:.1%}" if total else "-"


def _stages_section(run: RunFolder) -> Section | None:
    stages = run.stages
    if not stages:
        return None
    picture = Picture(stages_figure(run, run.path / f"{FIGURE_PREFIX}stages.png"),
                      "Validation Dice of WT, TC and ET after the teacher and each student stage; a star marks "
                      "a stage that beat its teacher and became the teacher of the next stage")
    rows = []
    for s in stages:
        stats_path = run.path / f"stage_{s['stage']}" / "pseudo_stats.json"
        stats = json.loads(stats_path.read_text()) if stats_path.is_file() else None
        tau = f"{s['tau']:.2f}" if s["members"] else "-"  # τ only acts on pseudo-labeled patches
        rows.append([str(s["stage"]), tau, str(s["members"]), _confident_share(stats),
                     s.get("teacher", "-"), _fmt(s.get("teacher_val"), 4), _fmt(s.get("student_val"), 4),
                     _fmt(s.get("mean_agreement"), 4), "yes" if s.get("promoted") else "no"])
    table = Table(["stage", "τ", "pseudo-labeled cases", "confident tumour voxels", "started from",
                   "its val Dice", "student val Dice", "mean agreement", "promoted"], rows,
                  caption="Val Dice: mean Dice of WT, TC and ET. Confident tumour voxels: share of the members' "
                          "pseudo-labeled tumour voxels with confidence ≥ τ (learned; the rest is unlearned). "
                          "Mean agreement: teacher–student Dice over the pool after the stage's refinement.")
    title = ("Stages (ours-control: ours' schedule on the labeled cases only)" if run.config.method == "ours-control"
             else "Curriculum stages (ours)")
    return Section(title, [picture, table])


# --- unlabeled pool --------------------------------------------------------------------------------

def _ranking(round_dir: Path) -> list[dict]:
    path = round_dir / "ranking.csv"
    return read_ranking(path) if path.is_file() else []


def tumour_confidences(round_dir: Path) -> dict[str, np.ndarray]:
    """Voxel confidences of every pseudo-label in a round, per predicted tumour class (NCR, ED, ET)."""
    values: dict[str, list[np.ndarray]] = {name: [] for name in CLASS_NAMES[1:]}
    for folder in sorted(p for p in round_dir.iterdir() if p.is_dir()):
        if not PseudoLabel.exists(folder):
            continue
        pseudo = PseudoLabel.load(folder)
        label, confidence = np.asarray(pseudo.label), pseudo.confidence_float
        for c, name in enumerate(CLASS_NAMES[1:], start=1):
            values[name].append(confidence[label == c])
    return {name: np.concatenate(v) if v else np.zeros(0, np.float32) for name, v in values.items()}


def pool_figure(ranking: list[dict], confidences: dict[str, np.ndarray], taus: Sequence[float],
                out_png: Path) -> Path:
    """Left: image-level confidence scores, coloured by curriculum stage; right: voxel confidences
    inside the predicted tumour per class, with the stages' thresholds."""
    figure = Figure(figsize=(12.5, 4.2), dpi=DPI, layout="constrained")
    ax_scores, ax_voxels = figure.subplots(1, 2, width_ratios=(1, 1.25)) if ranking else (None, figure.add_subplot())
    if ranking:
        scores = np.array([float(r["score"]) for r in ranking])
        stages = sorted({int(r["stage"]) for r in ranking})
        edges = np.histogram_bin_edges(scores, bins=min(20, max(6, len(scores))))
        groups = [scores[[int(r["stage"]) == k for r in ranking]] for k in stages]
        colours = [_sequential_colour(i, len(stages)) for i in range(len(stages))]
        ax_scores.hist(groups, bins=edges, stacked=True, color=colours, edgecolor="white",
                       label=[f"stage {k} ({len(g)} cases)" for k, g in zip(stages, groups)])
        ax_scores.set_xlabel("image-level confidence score (higher = more reliable)")
        ax_scores.set_ylabel("unlabeled cases")
        ax_scores.set_title(f"Teacher's confidence per case ({len(scores)} cases), by curriculum stage")
        ax_scores.legend(fontsize=8, title="enters at", title_fontsize=8)
        ax_scores.yaxis.get_major_locator().set_params(integer=True)
        ax_scores.grid(alpha=0.3)
    bins = np.linspace(0, 1, 41)
    total = 0
    for name, values in confidences.items():
        if values.size:
            total += values.size
            weights = np.full(values.size, 1.0 / values.size)
            colour = LABEL_COLOURS[CLASS_NAMES.index(name)]
            ax_voxels.hist(values, bins=bins, weights=weights, histtype="step", lw=2, color=colour,
                           label=f"{name} ({values.size:,} voxels)")
    for k, tau in enumerate(taus, start=1):
        ax_voxels.axvline(tau, color="#444", ls="--", lw=1)
        ax_voxels.text(tau, 0.98, f" τ{k}={tau:.2f}", transform=ax_voxels.get_xaxis_transform(), ha="left",
                       va="top", fontsize=8, color="#444")
    ax_voxels.set_xlim(0, 1)
    ax_voxels.set_xlabel("voxel confidence (1 − normalised predictive entropy)")
    ax_voxels.set_ylabel("share of the class's voxels")
    ax_voxels.set_title(f"Voxel confidence inside the predicted tumour ({total:,} voxels)")
    if total:
        ax_voxels.legend(fontsize=8, loc="upper left", title="predicted class", title_fontsize=8)
    ax_voxels.grid(alpha=0.3)
    return _save_figure(figure, out_png)


REVIEW_NOTE = ("Case names link to the case's page in `brats-ssl review RUN` (while it runs on the default port): "
               "pseudo-label and uncertainty in a viewer, and accept / reject decisions the next stage honours.")


def _case_link(case: str) -> Link:
    return Link(case, case_url(case), case_url(case))


def _review_link(run: RunFolder, case: str) -> str | Link:
    """A case linked to its page in ``brats-ssl review`` (a run with pseudo-labels only)."""
    return _case_link(case) if run.rounds else case


def _sequential_colour(index: int, count: int) -> tuple[float, ...]:
    """A colour from a sequential map: early stages dark, late ones light."""
    return matplotlib.colormaps["viridis"](0.15 + 0.7 * index / max(count - 1, 1))


def _ranking_table(ranking: list[dict], *, agreement: bool, caption: str) -> Table:
    headers = ["rank", "case"] + (["agreement"] if agreement else []) + ["score", "NCR (ml)", "ED (ml)",
                                                                         "ET (ml)", "stage"]
    rows = [[r["rank"], _case_link(r["case"])] + ([r.get("agreement") or "-"] if agreement else [])
            + [r["score"], r["NCR_ml"], r["ED_ml"], r["ET_ml"], r["stage"]] for r in ranking]
    return Table(headers, rows, caption=caption)


def _pool_section(run: RunFolder) -> Section | None:
    rounds = run.rounds
    if not rounds:
        return None
    first = rounds[0]
    ranking = _ranking(first)
    confidences = tumour_confidences(first)
    if not ranking and not any(v.size for v in confidences.values()):
        return None
    taus = [float(s["tau"]) for s in run.stages]
    mc = run.config.inference.mc_samples if run.config.method == "ours" else 1
    blocks: list = [Picture(pool_figure(ranking, confidences, taus, run.path / f"{FIGURE_PREFIX}pool.png"),
                            f"Unlabeled pool as the teacher labelled it (round 0, MC dropout T={mc}): case scores "
                            "that order the curriculum, and voxel confidences of the predicted tumour classes")]
    if ranking:
        blocks.append(_ranking_table(ranking, agreement=False, caption=(
            "Curriculum order of round 0: teacher pseudo-labels ranked by image-level confidence; volumes of "
            "the predicted classes in ml; stage: the student stage from which the case is used.")))
    last = rounds[-1]
    last_ranking = _ranking(last) if last != first else []
    if last_ranking:
        k = last.name.split("_")[1]
        blocks.append(_ranking_table(last_ranking, agreement=True, caption=(
            f"Order after stage {k}'s refinement ({last.name}): ranked by teacher–student agreement "
            "(scan-level Dice of their pseudo-labels).")))
    blocks.append(REVIEW_NOTE)
    return Section("Unlabeled pool", blocks)


# --- overlay panels with uncertainty ---------------------------------------------------------------

def _dataset_root(run: RunFolder) -> Path | None:
    """The dataset the run was trained on; a relative path is tried from here and beside the run."""
    recorded = _split(run).get("dataset")
    if not recorded:
        return None
    path = Path(recorded)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, run.path.parent / path, run.path / path]
    return next((c for c in candidates if c.is_dir()), None)


def pick_cases(per_case: list[dict], n: int = MAX_OVERLAY_CASES) -> list[tuple[str, str]]:
    """Up to ``n`` val cases as (case, why): lowest, median and highest WT Dice of the final model."""
    ordered = sorted(per_case, key=lambda e: (_float(e.get("WT", {}).get("dice")) or 0.0, e["case"]))
    if len(ordered) <= n:
        return [(e["case"], "") for e in ordered]
    picks = np.unique(np.linspace(0, len(ordered) - 1, n).round().astype(int))
    names = {0: "lowest WT Dice", len(ordered) - 1: "highest WT Dice"}
    return [(ordered[i]["case"], names.get(int(i), "median WT Dice")) for i in picks]


def predictive_entropy(model: nn.Module, config: Config, case: CaseRef, *, cache: PreprocessCache,
                       device: torch.device) -> np.ndarray:
    """Normalised predictive entropy H(p̄)/log C of ``model`` with MC dropout
    (``config.inference.mc_samples`` passes) on the cached preprocessed case, in original geometry."""
    pre = cache.get(case)
    options = InferenceOptions.from_config(config, mc_samples=config.inference.mc_samples)
    prediction = predict_volume(model, np.asarray(pre.image, dtype=np.float32), options, device)
    return restore_map(prediction.entropy.numpy(), pre.meta)


def _read_prediction(case: CaseRef, path: Path) -> np.ndarray | None:
    return read_seg(replace(case, seg=path)) if path.is_file() else None


def overlay_rows(image: np.ndarray, columns: list[tuple[str, np.ndarray | None, np.ndarray | None]],
                 affine: np.ndarray, guide: np.ndarray | None) -> list[tuple[str, list]]:
    """Rows axial / coronal / sagittal through the tumour (most ``guide`` voxels), one Cell per column.

    ``image`` is FLAIR (X, Y, Z); each column is (title, labels or None, heat map or None).
    """
    flair = to_display_orientation(image, affine)
    box = brain_box(flair != 0)
    flair = flair[box]

    def display(volume: np.ndarray | None) -> np.ndarray | None:
        return None if volume is None else to_display_orientation(volume, affine)[box]

    oriented = [(title, display(labels), display(heat)) for title, labels, heat in columns]
    guide_box = display(guide)
    window = intensity_window(flair)
    rows = []
    for view in VIEWS:
        index = tumour_slice(guide_box, view=view, brain=flair != 0)
        cells = [Cell(display_slice(flair, view, index), title="FLAIR", window=window)]
        for title, labels, heat in oriented:
            cells.append(Cell(cells[0].image, title=title, window=window,
                              labels=None if labels is None else display_slice(labels, view, index),
                              heat=None if heat is None else display_slice(heat, view, index)))
        # Slice number in the whole (LPS-ordered) volume, not in the crop.
        number = index + box[_VIEW_AXIS[view]].start
        rows.append((f"{view}, slice {number} ({_VIEW_HINT[view]})", cells))
    return rows


def _overlay_section(run: RunFolder, console) -> Section | None:
    summary = run.summary
    final = _final_phase(run)
    if not _has_metrics(summary) or not final:
        return None
    title = "Validation cases: overlays and uncertainty"
    root = _dataset_root(run)
    if root is None:
        return Section(title, [f"Overlays skipped: the dataset {_split(run).get('dataset')!r} named in split.json "
                               "was not found."])
    picks = pick_cases(summary.get("per_case", []))
    dataset = open_dataset(root)
    device = resolve_device("auto")
    config, model = load_run_model(run.path, "final", device)
    cache = PreprocessCache(PreprocessParams.from_config(config.data), config.data.cache_dir)
    mc = config.inference.mc_samples
    teacher_dir = run.path / "teacher" / "val_predictions"
    final_dir = run.path / final / "val_predictions"
    scores = {e["case"]: e for e in summary.get("per_case", [])}
    teacher_scores = {e["case"]: e for e in (summary.get("teacher") or {}).get("per_case", [])}
    sampling = f"with MC dropout (T={mc} passes)" if mc > 1 else "of one deterministic pass (inference.mc_samples 1)"
    blocks: list = [
        "Columns: FLAIR; FLAIR with the ground truth, the teacher's and the final model's segmentation (NCR red, "
        f"ED green, ET blue); and the final model's uncertainty, the normalised predictive entropy {sampling}, "
        "computed for this report, from 0 (no colour) to 1 (bright yellow). Rows: axial, coronal and sagittal "
        "slices through the largest extent of the ground-truth tumour."]
    for number, (case_id, why) in enumerate(picks, start=1):
        _log(console, f"report: uncertainty of {case_id} (T={mc})")
        try:
            case = dataset.case(case_id)
            loaded = load_case(case)
        except BadInputError as error:
            blocks.append(f"Case {case_id} skipped: {error}")
            continue
        columns: list[tuple[str, np.ndarray | None, np.ndarray | None]] = [("ground truth", loaded.seg, None)]
        if final != "teacher":
            teacher = _read_prediction(case, teacher_dir / f"{safe_name(case_id)}.nii.gz")
            if teacher is not None:
                columns.append(("teacher", teacher, None))
        final_labels = _read_prediction(case, final_dir / f"{safe_name(case_id)}.nii.gz")
        if final_labels is not None:
            columns.append((f"final ({final})", final_labels, None))
        brain = np.any(loaded.image != 0, axis=0)
        entropy = np.where(brain, predictive_entropy(model, config, case, cache=cache, device=device), 0.0)
        columns.append(("uncertainty (entropy)", None, entropy))
        dice = "/".join(_fmt(scores.get(case_id, {}).get(r, {}).get("dice"), 2) for r in BRATS_REGIONS)
        caption = f"{case_id}{f' ({why})' if why else ''}: final WT/TC/ET Dice {dice}"
        if final != "teacher" and case_id in teacher_scores:
            caption += ", teacher " + "/".join(_fmt(teacher_scores[case_id].get(r, {}).get("dice"), 2)
                                               for r in BRATS_REGIONS)
        rows = overlay_rows(loaded.image[MODALITIES.index("flair")], columns, loaded.affine, loaded.seg)
        path = overlay_panel(rows, run.path / f"{FIGURE_PREFIX}case_{number}_{safe_name(case_id)}.png",
                             title=caption, legend=True)
        blocks.append(Picture(path, caption))
    return Section(title, blocks)


# --- experiment report -----------------------------------------------------------------------------

def mean_std(values: Sequence[Any]) -> tuple[float | None, float | None, int]:
    """Mean and sample standard deviation (n − 1) of the numeric values; std is None for fewer than 2."""
    numbers = [v for v in (_float(x) for x in values) if v is not None]
    if not numbers:
        return None, None, 0
    return statistics.fmean(numbers), (statistics.stdev(numbers) if len(numbers) > 1 else None), len(numbers)


def format_mean_std(values: Sequence[Any], digits: int) -> str:
    mean, std, _ = mean_std(values)
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _row_mean_dice(row: dict) -> float | None:
    values = [_float(row.get(f"{r}_dice")) for r in BRATS_REGIONS]
    return statistics.fmean(values) if all(v is not None for v in values) else None


def group_results(rows: list[dict], methods: Sequence[str] = ()) -> dict[tuple[str, float], list[dict]]:
    """Rows of results.csv by (method, fraction): methods in ``methods`` order then first seen, fractions up."""
    order = list(dict.fromkeys(list(methods) + [r["method"] for r in rows]))
    groups: dict[tuple[str, float], list[dict]] = {}
    for row in sorted(rows, key=lambda r: (order.index(r["method"]), float(r["fraction"]), int(r["seed"]))):
        groups.setdefault((row["method"], float(row["fraction"])), []).append(row)
    return groups


def _run_path(folder: Path, recorded: str) -> Path:
    path = Path(recorded)
    for candidate in ([path] if path.is_absolute() else [Path.cwd() / path, folder / path]) + [
            folder / "runs" / path.name]:
        if (candidate / "config.yaml").is_file():
            return candidate
    return folder / "runs" / path.name


def efficiency_figure(groups: dict[tuple[str, float], list[dict]], out_png: Path, *, n_val: int | None) -> Path:
    """Val Dice against labeled fraction, a line per method (± std band), panels WT, TC, ET, their mean."""
    panels = list(BRATS_REGIONS) + ["mean"]
    figure = Figure(figsize=(15, 4.3), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, len(panels))
    methods = list(dict.fromkeys(m for m, _ in groups))
    fractions = sorted({f for _, f in groups})
    n_labeled = {f: rows[0].get("n_labeled") for (_, f), rows in groups.items()}
    max_seeds = max(len(rows) for rows in groups.values())
    for ax, panel in zip(axes, panels):
        drawn: list[float] = []
        for i, method in enumerate(methods):
            xs, means, stds = [], [], []
            for fraction in fractions:
                rows = groups.get((method, fraction))
                if not rows:
                    continue
                values = [_row_mean_dice(r) if panel == "mean" else r.get(f"{panel}_dice") for r in rows]
                mean, std, _ = mean_std(values)
                if mean is not None:
                    xs.append(fraction * 100)
                    means.append(mean)
                    stds.append(std or 0.0)
            colour = METHOD_COLOURS.get(method, f"C{i}")
            ax.plot(xs, means, marker="o", color=colour, lw=2, label=method)
            drawn += list(np.subtract(means, stds)) + list(np.add(means, stds))
            if max_seeds > 1 and xs:
                ax.fill_between(xs, np.subtract(means, stds), np.add(means, stds), color=colour, alpha=0.18, lw=0)
        ax.set_xscale("log")
        ax.set_xticks([f * 100 for f in fractions],
                      [f"{f:.0%}\n({n_labeled[f]} cases)" for f in fractions], fontsize=8)
        ax.minorticks_off()
        ax.set_title("mean of WT, TC, ET" if panel == "mean" else panel)
        ax.set_xlabel("labeled fraction of the training pool")
        _zoom_to(ax, drawn)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation Dice")
    figure.legend(*axes[0].get_legend_handles_labels(), fontsize=9, loc="outside right upper")
    spread = f"mean ± std over {max_seeds} seeds" if max_seeds > 1 else "one seed"
    figure.suptitle(f"Data efficiency: validation Dice against labeled fraction ({spread}"
                    f"{f', {n_val} val cases' if n_val else ''}; each panel's axis zoomed to its values)")
    return _save_figure(figure, out_png)


def _zoom_to(ax, values: list[float]) -> None:
    """Dice axis zoomed to the values drawn: differences between methods and stages are a few
    hundredths and vanish on a 0-1 axis."""
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max(0.02, 0.1 * (high - low))
    ax.set_ylim(max(0.0, low - pad), min(1.0, high + pad))


STAGED_METHODS = ("ours", "ours-control")  # methods whose runs have teacher → stage phases
FRACTION_STYLES = ("-", "--", ":", "-.")


def experiment_stage_figure(curves: dict[tuple[str, float], list[list[float | None]]], out_png: Path) -> Path:
    """Val mean Dice per phase (teacher, stage 1..K), a line per (method, labeled fraction) with a
    ± std band: colour = method, line style = fraction."""
    figure = Figure(figsize=(8, 4.4), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    n_phases = max(len(c) for runs in curves.values() for c in runs)
    fractions = sorted({fraction for _, fraction in curves})
    drawn: list[float] = []
    for method, fraction in sorted(curves, key=lambda key: (STAGED_METHODS.index(key[0]), key[1])):
        runs = curves[(method, fraction)]
        per_phase = [[c[k] for c in runs if k < len(c) and c[k] is not None] for k in range(n_phases)]
        stats = [mean_std(v) for v in per_phase]
        xs = [k for k, (m, _, _) in enumerate(stats) if m is not None]
        means = [stats[k][0] for k in xs]
        stds = [stats[k][1] or 0.0 for k in xs]
        drawn += list(np.subtract(means, stds)) + list(np.add(means, stds))
        colour = METHOD_COLOURS.get(method, "black")
        style = FRACTION_STYLES[fractions.index(fraction) % len(FRACTION_STYLES)]
        ax.plot(xs, means, marker="o", color=colour, lw=2, ls=style,
                label=f"{method}, {fraction:.0%} labeled ({len(runs)} run{'s' if len(runs) > 1 else ''})")
        if len(runs) > 1:
            ax.fill_between(xs, np.subtract(means, stds), np.add(means, stds), color=colour, alpha=0.18, lw=0)
    ax.set_xticks(range(n_phases), ["teacher"] + [f"stage {k}" for k in range(1, n_phases)])
    _zoom_to(ax, drawn)
    ax.set_xlabel("training phase")
    ax.set_ylabel("validation Dice (mean of WT, TC, ET)")
    ax.set_title("Validation Dice after each phase, per method and labeled fraction")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return _save_figure(figure, out_png)


def _stage_curve(run_dir: Path) -> list[float | None] | None:
    if not (run_dir / "stages.json").is_file():
        return None
    run = RunFolder(run_dir)
    return [_mean_region_dice(run.phase_summary(p)) for p in _stage_phases(run.stages)]


def write_experiment_report(folder: Path, *, console=None) -> Path:
    """report.md/.html in an experiment folder, after (re)writing each run's own report."""
    folder = Path(folder)
    info = json.loads((folder / "experiment.json").read_text()) if (folder / "experiment.json").is_file() else {}
    rows = read_results(folder) if (folder / "results.csv").is_file() else []
    if not rows:
        document = Document(f"brats-ssl experiment report: {folder.resolve().name}",
                            [Section("Experiment", ["No results yet: no run of the sweep has finished."])])
        return write_document(document, folder)
    groups = group_results(rows, info.get("methods", ()))
    run_dirs = {r["run"]: _run_path(folder, r["run"]) for r in rows}
    unique_runs: dict[Path, float] = {}
    for row in rows:
        unique_runs.setdefault(run_dirs[row["run"]].resolve(), _float(row.get("seconds")) or 0.0)

    run_reports: dict[Path, Path | None] = {}
    for run_dir in unique_runs:
        run_reports[run_dir] = _run_report(run_dir, console)

    n_val = None
    for run_dir in unique_runs:
        try:
            n_val = len(RunFolder(run_dir).split.get("val", []))
            break
        except (BadInputError, OSError, ValueError):
            continue
    # A teacher reused by ours / ours-control is in those runs' times too: count it once.
    total = sum(unique_runs.values()) - sum(reused_seconds(run_dir) for run_dir in unique_runs)
    header = Table(["setting", "value"], [
        ["dataset", str(info.get("data", "-"))], ["methods", ", ".join(dict.fromkeys(m for m, _ in groups))],
        ["labeled fractions", ", ".join(f"{f:g}" for f in sorted({f for _, f in groups}))],
        ["seeds", ", ".join(sorted({r["seed"] for r in rows}, key=int))],
        ["validation cases", str(n_val) if n_val is not None else "-"],
        ["preset / steps", f"{info.get('preset', '-')} / {info.get('steps') or 'preset default'}"],
        ["CPU threads (torch)", ", ".join(map(str, info.get("torch_threads", []))) or "-"],
        ["runs finished", str(len(unique_runs))],
        ["total training time", f"{_duration(total)} (sum over the runs, each training phase counted once: a run "
                                "shared by two rows or a teacher reused by another run is not counted twice)"],
    ])
    sections = [Section("Experiment", [header])]

    case_rows = collect_case_rows(rows, locate=lambda r: run_dirs[r["run"]])
    sections.append(_results_with_intervals(groups, case_rows))
    comparisons = comparison_rows(case_rows, info.get("references", DEFAULT_REFERENCES))
    if comparisons:
        sections.append(_comparisons_section(comparisons))
    postprocessing = _postprocessing_section(groups, case_rows, run_dirs)
    if postprocessing is not None:
        sections.append(postprocessing)

    figures: list = [Picture(efficiency_figure(groups, folder / f"{FIGURE_PREFIX}efficiency.png", n_val=n_val),
                             "Validation Dice against the labeled fraction, one line per method, one panel per "
                             "region and one for their mean; the band is ± one standard deviation over seeds")]
    curves: dict[tuple[str, float], list[list[float | None]]] = {}
    for (method, fraction), members in groups.items():
        for row in members:
            curve = _stage_curve(run_dirs[row["run"]]) if method in STAGED_METHODS else None
            if curve:
                curves.setdefault((method, fraction), []).append(curve)
    if curves:
        figures.append(Picture(experiment_stage_figure(curves, folder / f"{FIGURE_PREFIX}stages.png"),
                               "ours (and ours-control: the same stages without unlabeled scans): "
                               "validation mean Dice of WT, TC and ET after the teacher and each stage, one line "
                               "per method and labeled fraction (mean over seeds, band ± std)"))
    sections.append(Section("Curves", figures))

    run_rows = []
    for row in (r for members in groups.values() for r in members):
        run_dir = run_dirs[row["run"]].resolve()
        report = run_reports.get(run_dir)
        if report is not None:
            rel = Path(os.path.relpath(run_dir, folder.resolve())).as_posix()
            link: str | Link = Link(run_dir.name, f"{rel}/{REPORT_MD}", f"{rel}/{REPORT_HTML}")
        else:
            link = f"{run_dir.name} (no report)"
        run_rows.append([row["method"], row["fraction"], row["seed"], f"{row['n_labeled']} / {row['n_unlabeled']}"]
                        + [_fmt(row.get(f"{k}_dice"), 4) for k in BRATS_REGIONS]
                        + [_duration(_float(row.get("seconds")) or 0.0), row.get("note") or "", link])
    sections.append(Section("Runs", [Table(
        ["method", "fraction", "seed", "labeled / unlabeled", "Dice WT", "Dice TC", "Dice ET", "time", "note",
         "report"], run_rows)]))
    document = Document(f"brats-ssl experiment report: {folder.resolve().name}", sections)
    return write_document(document, folder)


def _interval(values: tuple[float, float, float, int] | None, digits: int = 3, signed: bool = False) -> str:
    if values is None or values[0] is None or math.isnan(values[0]):
        return "-"
    sign = "+" if signed else ""
    mean, low, high = values[:3]
    return f"{mean:{sign}.{digits}f} [{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"


def _results_with_intervals(groups: dict[tuple[str, float], list[dict]], case_rows: list[dict]) -> Section:
    """Mean over the val cases (each case averaged over its seeds) with the 95 % bootstrap interval."""
    dice = {k: method_means(case_rows, k) for k in tuple(EVALUATED) + ("mean",)}
    hd95 = {k: method_means(case_rows, k, prefix="hd95_") for k in BRATS_REGIONS}
    table_rows = []
    for (method, fraction), members in groups.items():
        key = (method, fraction)
        cases = dice["mean"].get(key, (None, None, None, 0))[3]
        folds = sorted({r.get("fold", "0") for r in members})
        table_rows.append([method, f"{fraction:.0%} ({members[0].get('n_labeled', '-')})",
                           f"{len({r['seed'] for r in members})} × {len(folds)}", str(cases)]
                          + [_interval(dice[k].get(key)) for k in EVALUATED]
                          + [_interval(hd95[k].get(key), 1) for k in BRATS_REGIONS]
                          + [_interval(dice["mean"].get(key)),
                             "; ".join(dict.fromkeys(r["note"] for r in members if r.get("note")))])
    return Section("Results", [Table(
        ["method", "labeled (cases)", "seeds × folds", "val cases"] + [f"Dice {_region_label(k)}" for k in EVALUATED]
        + [f"HD95 {k} (mm)" for k in BRATS_REGIONS] + ["mean Dice WT/TC/ET", "note"], table_rows,
        caption="Final model of each run (after its post-processing) on the val cases: mean over cases, each case "
                "averaged over the seeds that validated it, with the 95 % bootstrap interval of the mean "
                "[low, high] (10,000 resamples of the cases). With cross-validation every case is validated once "
                "per seed.")])


def _comparisons_section(comparisons: list[dict]) -> Section:
    by_pair: dict[tuple[str, str, float], dict[str, dict]] = {}
    for row in comparisons:
        by_pair.setdefault((row["method"], row["reference"], float(row["fraction"])), {})[row["metric"]] = row

    def cell(row: dict | None) -> str:
        if row is None:
            return "-"
        text = _interval((float(row["mean_diff"]), float(row["ci_low"]), float(row["ci_high"]), int(row["n"])),
                         signed=True)
        resolved = float(row["ci_low"]) > 0 or float(row["ci_high"]) < 0
        return f"{text}{' **resolved**' if resolved else ''} (p {float(row['p_value']):.3f})"

    metrics = ("mean",) + tuple(EVALUATED)
    table_rows = [[method, reference, f"{fraction:.0%}", str(next(iter(cells.values()))["n"])]
                  + [cell(cells.get(m)) for m in metrics]
                  for (method, reference, fraction), cells in by_pair.items()]
    return Section("Paired comparisons", [Table(
        ["method", "reference", "labeled", "cases"] + ["mean WT/TC/ET" if m == "mean" else m for m in metrics],
        table_rows,
        caption="Per-case Dice difference method − reference on the same val cases (seeds averaged per case): mean "
                "[95 % bootstrap interval], two-sided Wilcoxon signed-rank p-value; **resolved**: the interval "
                "excludes 0. comparisons.csv holds the same numbers.")])


def _postprocessing_section(groups: dict[tuple[str, float], list[dict]], case_rows: list[dict],
                            run_dirs: dict[str, Path]) -> Section | None:
    before = {k: method_means(case_rows, k, prefix="raw_") for k in BRATS_REGIONS}
    after = {k: method_means(case_rows, k) for k in BRATS_REGIONS}
    hd_before, hd_after = method_means(case_rows, "WT", prefix="raw_hd95_"), method_means(case_rows, "WT", prefix="hd95_")
    table_rows = []
    for (method, fraction), members in groups.items():
        rules = [json.loads(p.read_text()).get("describe", "?") for r in members
                 if (p := run_dirs[r["run"]] / "postprocessing.json").is_file()]
        if not rules:
            continue
        key = (method, fraction)
        counts = ", ".join(f"{rule} ×{rules.count(rule)}" for rule in dict.fromkeys(rules))
        table_rows.append([method, f"{fraction:.0%}", counts]
                          + [f"{_fmt((before[k].get(key) or [None])[0], 3)} → {_fmt((after[k].get(key) or [None])[0], 3)}"
                             for k in BRATS_REGIONS]
                          + [f"{_fmt((hd_before.get(key) or [None])[0], 1)} → {_fmt((hd_after.get(key) or [None])[0], 1)}"])
    if not table_rows:
        return None
    return Section("Post-processing", [Table(
        ["method", "labeled", "rule chosen on the selection cases (runs)"] + [f"Dice {k} before → after"
                                                                             for k in BRATS_REGIONS]
        + ["HD95 WT (mm) before → after"], table_rows,
        caption="Each run chooses its rule on its own selection cases (postprocessing.json); val Dice before and "
                "after it, mean over cases.")])


def _run_report(run_dir: Path, console) -> Path | None:
    """A run's own report, rewritten unless it is newer than the run's summary.json."""
    report, summary = run_dir / REPORT_MD, run_dir / "summary.json"
    if report.is_file() and summary.is_file() and report.stat().st_mtime >= summary.stat().st_mtime:
        return report
    if not (run_dir / "config.yaml").is_file():
        return None
    _log(console, f"report: {run_dir}")
    try:
        return write_run_report(run_dir, console=console)
    except BadInputError as error:
        _log(console, f"[yellow]warning:[/] no report for {run_dir}: {error}")
        return None
