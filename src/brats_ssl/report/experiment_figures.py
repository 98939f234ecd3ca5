"""The experiment report's figures: the data-efficiency curves (Dice against labeled fraction, a
line per method), the per-phase curves of the staged methods (teacher, stage 1..K) and the paired
differences between methods with their intervals.

Both zoom the Dice axis to the values drawn: differences between methods and stages are a few
hundredths and vanish on a 0-1 axis. A method keeps its colour in every figure.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from brats_ssl.report.document import save_figure
from brats_ssl.report.formatting import as_float, mean_std
from brats_ssl.report.run_summary import BRATS_REGIONS, REGIONS_LISTED, mean_region_dice
from brats_ssl.report.stages import stage_phases
from brats_ssl.run_folder import RunFolder
from brats_ssl.ssl.registry import method_colour
from brats_ssl.viz import DPI

FRACTION_STYLES = ("-", "--", ":", "-.")


def _row_mean_dice(row: dict) -> float | None:
    values = [as_float(row.get(f"{r}_dice")) for r in BRATS_REGIONS]
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if len(present) == len(values) else None


def _zoom_to(ax, values: list[float]) -> None:
    """Dice axis zoomed to the values drawn, with a margin (see module docstring)."""
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max(0.02, 0.1 * (high - low))
    ax.set_ylim(max(0.0, low - pad), min(1.0, high + pad))


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
            colour = method_colour(method, f"C{i}")
            ax.plot(xs, means, marker="o", color=colour, lw=2, label=method)
            drawn += list(np.subtract(means, stds)) + list(np.add(means, stds))
            if max_seeds > 1 and xs:
                ax.fill_between(xs, np.subtract(means, stds), np.add(means, stds), color=colour, alpha=0.18, lw=0)
        ax.set_xscale("log")
        ax.set_xticks([f * 100 for f in fractions], [f"{f:.0%}\n({n_labeled[f]} cases)" for f in fractions], fontsize=8)
        ax.minorticks_off()
        ax.set_title(f"mean of {REGIONS_LISTED}" if panel == "mean" else panel)
        ax.set_xlabel("labeled fraction of the training pool")
        _zoom_to(ax, drawn)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation Dice")
    figure.legend(*axes[0].get_legend_handles_labels(), fontsize=9, loc="outside right upper")
    spread = f"mean ± std over {max_seeds} seeds" if max_seeds > 1 else "one seed"
    figure.suptitle(
        f"Data efficiency: validation Dice against labeled fraction ({spread}"
        f"{f', {n_val} val cases' if n_val else ''}; each panel's axis zoomed to its values)"
    )
    return save_figure(figure, out_png)


def stage_curve(run_dir: Path) -> list[float | None] | None:
    """Val mean Dice of WT/TC/ET after the teacher and each stage of a run; None without stages.json."""
    if not (run_dir / "stages.json").is_file():
        return None
    run = RunFolder(run_dir)
    return [mean_region_dice(run.phase_summary(p)) for p in stage_phases(run.stages)]


def experiment_stage_figure(curves: dict[tuple[str, float], list[list[float | None]]], out_png: Path) -> Path:
    """Val mean Dice per phase (teacher, stage 1..K), a line per (method, labeled fraction) with a
    ± std band: colour = method, line style = fraction."""
    figure = Figure(figsize=(8, 4.4), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    n_phases = max(len(c) for runs in curves.values() for c in runs)
    fractions = sorted({fraction for _, fraction in curves})
    drawn: list[float] = []
    order = list(dict.fromkeys(method for method, _ in curves))  # the report's method order (variants last)
    for method, fraction in sorted(curves, key=lambda key: (order.index(key[0]), key[1])):
        runs = curves[(method, fraction)]
        per_phase = [[c[k] for c in runs if k < len(c) and c[k] is not None] for k in range(n_phases)]
        stats = [mean_std(v) for v in per_phase]
        points = [(k, m, s or 0.0) for k, (m, s, _) in enumerate(stats) if m is not None]
        xs = [k for k, _, _ in points]
        means = [m for _, m, _ in points]
        stds = [s for _, _, s in points]
        drawn += list(np.subtract(means, stds)) + list(np.add(means, stds))
        colour = method_colour(method, f"C{order.index(method)}")  # a variant: a colour of its own
        style = FRACTION_STYLES[fractions.index(fraction) % len(FRACTION_STYLES)]
        ax.plot(
            xs,
            means,
            marker="o",
            color=colour,
            lw=2,
            ls=style,
            label=f"{method}, {fraction:.0%} labeled ({len(runs)} run{'s' if len(runs) > 1 else ''})",
        )
        if len(runs) > 1:
            ax.fill_between(xs, np.subtract(means, stds), np.add(means, stds), color=colour, alpha=0.18, lw=0)
    ax.set_xticks(range(n_phases), ["teacher"] + [f"stage {k}" for k in range(1, n_phases)])
    _zoom_to(ax, drawn)
    ax.set_xlabel("training phase")
    ax.set_ylabel(f"validation Dice (mean of {REGIONS_LISTED})")
    ax.set_title("Validation Dice after each phase, per method and labeled fraction")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return save_figure(figure, out_png)


def comparison_figure(comparisons: list[dict], out_png: Path) -> Path:
    """The paired comparisons of mean WT/TC/ET Dice (comparisons.csv rows, metric "mean"): a row per
    method − reference and labeled fraction, the mean difference with its 95 % interval; filled
    where the interval excludes 0 (resolved), hollow where it does not."""
    rows = [r for r in comparisons if r["metric"] == "mean"]
    figure = Figure(figsize=(9, 1.2 + 0.42 * len(rows)), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    order = list(dict.fromkeys(r["method"] for r in rows))
    fractions = {float(r["fraction"]) for r in rows}
    for y, row in enumerate(rows):
        mean, low, high = (float(row[k]) for k in ("mean_diff", "ci_low", "ci_high"))
        colour = method_colour(row["method"], f"C{order.index(row['method'])}")
        resolved = low > 0 or high < 0
        ax.errorbar(
            mean,
            y,
            xerr=[[mean - low], [high - mean]],
            fmt="o",
            color=colour,
            markerfacecolor=colour if resolved else "white",
            markersize=7,
            capsize=3,
            lw=1.8,
        )
    where = [f" ({float(r['fraction']):.0%} labeled)" if len(fractions) > 1 else "" for r in rows]
    labels = [f"{r['method']} − {r['reference']}{w}, {r['n']} cases" for r, w in zip(rows, where)]
    ax.set_yticks(range(len(rows)), labels)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the table's order, top down
    ax.axvline(0.0, color="0.3", lw=1)
    ax.set_xlabel(f"paired difference of validation Dice (mean of {REGIONS_LISTED}), 95 % bootstrap interval")
    figure.suptitle("Method − reference on the same cases (filled: the interval excludes 0)")
    ax.grid(axis="x", alpha=0.3)
    return save_figure(figure, out_png)
