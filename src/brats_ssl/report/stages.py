"""The curriculum stages of a staged run (``ours``, ``ours-control``): a figure of the validation
Dice after the teacher and each stage, and a table of each stage's threshold, members,
confident share, agreement and promotion. Runs without stages.json get no section.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from brats_ssl.batch_mix import stage_counts
from brats_ssl.config import Config
from brats_ssl.data.conventions import TUMOUR_CLASS_NAMES
from brats_ssl.report.document import FIGURE_PREFIX, Picture, Section, Table, save_figure
from brats_ssl.report.formatting import as_float, format_number
from brats_ssl.report.run_summary import BRATS_REGIONS, REGIONS_SLASHED, final_phase, metric_of
from brats_ssl.run_folder import RunFolder
from brats_ssl.ssl.registry import staged_methods
from brats_ssl.viz import DPI, REGION_COLOURS


def stage_phases(stages: list[dict]) -> list[str]:
    """Phase folders in training order: the teacher, then each stage of stages.json."""
    return ["teacher"] + [f"stage_{s['stage']}" for s in stages]


def stages_figure(run: RunFolder, out_png: Path) -> Path:
    """Val Dice per region of the teacher and each student stage; promoted stages starred."""
    stages = run.stages
    phases = stage_phases(stages)
    x = np.arange(len(phases))
    figure = Figure(figsize=(max(6.5, 1.6 * len(phases) + 2.5), 4.4), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    for region in BRATS_REGIONS:
        values = [metric_of(run.phase_summary(p), region, "dice") for p in phases]
        ax.plot(
            x,
            [np.nan if v is None else v for v in values],
            marker="o",
            color=REGION_COLOURS[region],
            lw=1.6,
            label=region,
        )
    score = [as_float(v) for v in [stages[0].get("teacher_val")] + [s.get("student_val") for s in stages]]
    score_line = [np.nan if v is None else v for v in score]
    ax.plot(x, score_line, color="black", ls="--", marker="s", ms=4, lw=1.2, label=f"mean of {REGIONS_SLASHED}")
    promoted = [i + 1 for i, s in enumerate(stages) if s.get("promoted")]
    if promoted:
        ax.scatter(
            x[promoted],
            [score_line[i] for i in promoted],
            marker="*",
            s=260,
            color="gold",
            edgecolor="black",
            zorder=5,
            label="promoted to teacher",
        )
    final = final_phase(run)
    if final in phases:
        i = phases.index(final)
        ax.axvspan(i - 0.3, i + 0.3, color="#ffe8a3", alpha=0.6, zorder=0)
        ax.text(i, 1.02, "final model", ha="center", va="bottom", fontsize=9)
    labels = ["teacher\n(labeled only)"] + [
        f"stage {s['stage']}\nτ={s['tau']:.2f}, {s['members']} cases"
        if s["members"]
        else f"stage {s['stage']}\n(labeled only)"
        for s in stages
    ]
    ax.set_xticks(x, labels, fontsize=9)
    ax.set_xlim(-0.5, len(phases) - 0.5)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("validation Dice (mean over cases)")
    ax.set_xlabel("training phase (τ: confidence threshold; cases: pseudo-labeled cases used)")
    n_val = (run.summary or {}).get("n_cases")
    ax.set_title(f"Validation Dice after each phase{f' ({n_val} val cases)' if n_val else ''}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    return save_figure(figure, out_png)


def _confident_share(stats: dict | None) -> str:
    """Share of a stage's pseudo-labeled tumour voxels at or above τ, over NCR, ED and ET."""
    if not stats:
        return "-"
    confident = total = 0.0
    for name in TUMOUR_CLASS_NAMES:
        voxels = stats.get("class_voxels", {}).get(name) or 0
        share = stats.get("confident_share", {}).get(name) or 0.0
        confident, total = confident + share * voxels, total + voxels
    return f"{confident / total:.1%}" if total else "-"


def stages_section(run: RunFolder) -> Section | None:
    stages = run.stages
    if not stages:
        return None
    picture = Picture(
        stages_figure(run, run.path / f"{FIGURE_PREFIX}stages.png"),
        "Validation Dice of WT, TC and ET after the teacher and each student stage; a star marks "
        "a stage that beat its teacher and became the teacher of the next stage",
    )
    rows = []
    for s in stages:
        stats_path = run.path / f"stage_{s['stage']}" / "pseudo_stats.json"
        stats = json.loads(stats_path.read_text()) if stats_path.is_file() else None
        tau = f"{s['tau']:.2f}" if s["members"] else "-"  # τ only acts on pseudo-labeled patches
        rows.append(
            [
                str(s["stage"]),
                tau,
                str(s["members"]),
                _confident_share(stats),
                s.get("teacher", "-"),
                format_number(s.get("teacher_val"), 4),
                format_number(s.get("student_val"), 4),
                format_number(s.get("mean_agreement"), 4),
                "yes" if s.get("promoted") else "no",
            ]
        )
    table = Table(
        [
            "stage",
            "τ",
            "pseudo-labeled cases",
            "confident tumour voxels",
            "started from",
            "its val Dice",
            "student val Dice",
            "mean agreement",
            "promoted",
        ],
        rows,
        caption="Val Dice: mean Dice of WT, TC and ET. Confident tumour voxels: share of the members' "
        "pseudo-labeled tumour voxels with confidence ≥ τ (learned; the rest is unlearned). "
        "Mean agreement: teacher–student Dice over the pool after the stage's refinement." + _batch_text(run.config),
    )
    title = {
        "ours-control": "Stages (ours-control: ours' schedule on the labeled cases only)",
        "ours-student-control": "Stages (ours-student-control: ours' student, extra patches from the labeled cases)",
    }.get(run.config.method, "Curriculum stages (ours)")
    return Section(title, [picture, table])


def _batch_text(config: Config) -> str:
    """What one training step of the stages holds, from the run's own settings."""
    s = config.ssl
    if config.method not in staged_methods():
        return ""
    labeled, true, pseudo = stage_counts(
        config.method, config.train.batch_size, s.unlabeled_ratio, s.pseudo_fraction, s.labeled_extra_share
    )
    if not true + pseudo:
        return f" Each step of a stage: {_patches(labeled)}, no extra ones."
    kinds = [f"{true} from the labeled cases with their true labels"] if true else []
    kinds += [f"{pseudo} pseudo-labeled"] if pseudo else []
    settings = f"ssl.unlabeled_ratio {s.unlabeled_ratio:g}"
    settings += f", ssl.labeled_extra_share {s.labeled_extra_share:g}" if config.method == "ours" else ""
    return f" Each step of a stage: {_patches(labeled)} + {true + pseudo} extra: {', '.join(kinds)} ({settings})."


def _patches(labeled: int) -> str:
    return f"{labeled} labeled patch" + ("" if labeled == 1 else "es")
