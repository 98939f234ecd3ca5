"""The unlabeled pool as the teacher labelled it: case scores that order the curriculum, voxel
confidences of the predicted tumour, and the ranking tables of the first and last rounds.

Case names link to their page in ``brats-ssl review``, where a pseudo-label can be looked at and
accepted or rejected; runs without pseudo-label rounds (supervised, the control) get no section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from brats_ssl.data.conventions import CLASS_NAMES, TUMOUR_CLASS_NAMES
from brats_ssl.report.document import FIGURE_PREFIX, Link, Picture, Section, Table, save_figure
from brats_ssl.review import case_url
from brats_ssl.run_folder import RunFolder
from brats_ssl.ssl.labelling import read_ranking
from brats_ssl.ssl.pseudolabels import PseudoLabel
from brats_ssl.viz import DPI, LABEL_COLOURS

REVIEW_NOTE = (
    "Case names link to the case's page in `brats-ssl review RUN` (while it runs on the default port): "
    "pseudo-label and uncertainty in a viewer, and accept / reject decisions the next stage honours."
)


def case_link(case: str) -> Link:
    """A case linked to its page in ``brats-ssl review`` (on the default port)."""
    return Link(case, case_url(case), case_url(case))


def _ranking(round_dir: Path) -> list[dict]:
    path = round_dir / "ranking.csv"
    return read_ranking(path) if path.is_file() else []


def tumour_confidences(round_dir: Path) -> dict[str, np.ndarray]:
    """Voxel confidences of every pseudo-label in a round, per predicted tumour class (NCR, ED, ET)."""
    values: dict[str, list[np.ndarray]] = {name: [] for name in TUMOUR_CLASS_NAMES}
    for folder in sorted(p for p in round_dir.iterdir() if p.is_dir()):
        if not PseudoLabel.exists(folder):
            continue
        pseudo = PseudoLabel.load(folder)
        label, confidence = np.asarray(pseudo.label), pseudo.confidence_float
        for c, name in enumerate(TUMOUR_CLASS_NAMES, start=1):
            values[name].append(confidence[label == c])
    return {name: np.concatenate(v) if v else np.zeros(0, np.float32) for name, v in values.items()}


UNUSED_COLOUR = (0.75, 0.75, 0.75, 1.0)  # cases outside the pool the stages use (ssl.pool_fraction)


def _entry_stage(row: dict) -> int:
    """The ranking CSV's stage; empty (0) for a case the stages never train on."""
    return int(row["stage"]) if row["stage"] else 0


def _sequential_colour(index: int, count: int) -> tuple[float, ...]:
    """A colour from a sequential map: early stages dark, late ones light."""
    return matplotlib.colormaps["viridis"](0.15 + 0.7 * index / max(count - 1, 1))


def pool_figure(ranking: list[dict], confidences: dict[str, np.ndarray], taus: Sequence[float], out_png: Path) -> Path:
    """Left: image-level confidence scores, coloured by curriculum stage; right: voxel confidences
    inside the predicted tumour per class, with the stages' thresholds."""
    figure = Figure(figsize=(12.5, 4.2), dpi=DPI, layout="constrained")
    if ranking:
        ax_scores, ax_voxels = figure.subplots(1, 2, width_ratios=(1, 1.25))
        scores = np.array([float(r["score"]) for r in ranking])
        entries = [_entry_stage(r) for r in ranking]
        stages = sorted(set(entries) - {0}) + ([0] if 0 in entries else [])
        edges = np.histogram_bin_edges(scores, bins=min(20, max(6, len(scores))))
        groups = [scores[[e == k for e in entries]] for k in stages]
        colours = [_sequential_colour(i, len(stages)) if k else UNUSED_COLOUR for i, k in enumerate(stages)]
        ax_scores.hist(
            groups,
            bins=edges,
            stacked=True,
            color=colours,
            edgecolor="white",
            label=[f"stage {k} ({len(g)} cases)" if k else f"never ({len(g)} cases)" for k, g in zip(stages, groups)],
        )
        ax_scores.set_xlabel("image-level confidence score (higher = more reliable)")
        ax_scores.set_ylabel("unlabeled cases")
        ax_scores.set_title(f"Teacher's confidence per case ({len(scores)} cases), by curriculum stage")
        ax_scores.legend(fontsize=8, title="enters at", title_fontsize=8)
        ax_scores.yaxis.get_major_locator().set_params(integer=True)
        ax_scores.grid(alpha=0.3)
    else:
        ax_voxels = figure.add_subplot()
    bins = np.linspace(0, 1, 41).tolist()
    total = 0
    for name, values in confidences.items():
        if values.size:
            total += values.size
            weights = np.full(values.size, 1.0 / values.size)
            colour = LABEL_COLOURS[CLASS_NAMES.index(name)]
            ax_voxels.hist(
                values,
                bins=bins,
                weights=weights,
                histtype="step",
                lw=2,
                color=colour,
                label=f"{name} ({values.size:,} voxels)",
            )
    for k, tau in enumerate(taus, start=1):
        ax_voxels.axvline(tau, color="#444", ls="--", lw=1)
        ax_voxels.text(
            tau,
            0.98 - 0.05 * ((k - 1) % 2),  # neighbouring thresholds are close: labels alternate in height
            f" τ{k}={tau:.2f}",
            transform=ax_voxels.get_xaxis_transform(),
            ha="left",
            va="top",
            fontsize=8,
            color="#444",
        )
    ax_voxels.set_xlim(0, 1)
    ax_voxels.set_xlabel("voxel confidence (1 − normalised predictive entropy)")
    ax_voxels.set_ylabel("share of the class's voxels")
    ax_voxels.set_title(f"Voxel confidence inside the predicted tumour ({total:,} voxels)")
    if total:
        ax_voxels.legend(fontsize=8, loc="upper left", title="predicted class", title_fontsize=8)
    ax_voxels.grid(alpha=0.3)
    return save_figure(figure, out_png)


def _ranking_table(ranking: list[dict], *, agreement: bool, caption: str) -> Table:
    volumes = [f"{k}_ml" for k in TUMOUR_CLASS_NAMES]  # the ranking CSV's columns (ssl/labelling.py)
    headers = (
        ["rank", "case"]
        + (["agreement"] if agreement else [])
        + ["score"]
        + [f"{k} (ml)" for k in TUMOUR_CLASS_NAMES]
        + ["stage"]
    )
    rows = [
        [r["rank"], case_link(r["case"])]
        + ([r.get("agreement") or "-"] if agreement else [])
        + [r["score"]]
        + [r[v] for v in volumes]
        + [r["stage"] or "never"]
        for r in ranking
    ]
    return Table(headers, rows, caption=caption)


def pool_section(run: RunFolder) -> Section | None:
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
    blocks: list = [
        Picture(
            pool_figure(ranking, confidences, taus, run.path / f"{FIGURE_PREFIX}pool.png"),
            f"Unlabeled pool as the teacher labelled it (round 0, MC dropout T={mc}): case scores "
            "that order the curriculum, and voxel confidences of the predicted tumour classes",
        )
    ]
    if ranking:
        blocks.append(
            _ranking_table(
                ranking,
                agreement=False,
                caption=(
                    "Curriculum order of round 0: teacher pseudo-labels ranked by image-level confidence; volumes of "
                    "the predicted classes in ml; stage: the student stage from which the case is used (never: "
                    "ranked below the share of the pool the stages train on, ssl.pool_fraction)."
                ),
            )
        )
    last = rounds[-1]
    last_ranking = _ranking(last) if last != first else []
    if last_ranking:
        k = last.name.split("_")[1]
        blocks.append(
            _ranking_table(
                last_ranking,
                agreement=True,
                caption=(
                    f"Order after stage {k}'s refinement ({last.name}): ranked by teacher–student agreement "
                    "(scan-level Dice of their pseudo-labels)."
                ),
            )
        )
    blocks.append(REVIEW_NOTE)
    return Section("Unlabeled pool", blocks)
