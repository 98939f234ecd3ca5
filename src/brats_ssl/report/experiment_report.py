"""The report of an experiment folder: the sweep's settings and total time, results per method and
labeled fraction with bootstrap intervals, paired comparisons between methods, the effect of
post-processing, the data-efficiency and stage curves, and a row per run linking its own report
(written or refreshed first).

The folder is read through :class:`brats_ssl.experiment_folder.ExperimentFolder`, so a moved or
copied experiment finds its runs again. Per-case rows are gathered from the runs' summaries where
they are now, not taken from per_case.csv (which names the runs where the sweep left them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

from brats_ssl.errors import BadInputError
from brats_ssl.experiment_folder import ExperimentFolder, reused_seconds
from brats_ssl.experiment_tables import DEFAULT_REFERENCES, collect_case_rows, comparison_rows, method_means
from brats_ssl.metrics import EVALUATED
from brats_ssl.report.document import (
    FIGURE_PREFIX,
    REPORT_HTML,
    REPORT_MD,
    Document,
    Link,
    Picture,
    Section,
    Table,
    write_document,
)
from brats_ssl.report.experiment_figures import (
    comparison_figure,
    efficiency_figure,
    experiment_stage_figure,
    stage_curve,
)
from brats_ssl.report.formatting import as_float, format_duration, format_interval, format_number, log, region_label
from brats_ssl.report.reading import reading_section
from brats_ssl.report.run_report import write_run_report
from brats_ssl.report.run_summary import BRATS_REGIONS, REGIONS_SLASHED
from brats_ssl.run_folder import RunFolder
from brats_ssl.ssl.registry import staged_methods
from brats_ssl.variants import Variant, base_method, variants_from_info

HD95_REGION = "WT"  # the post-processing table shows one HD95: the whole tumour's

Groups = dict[tuple[str, float], list[dict]]  # (method, fraction) → results.csv rows


def group_results(rows: list[dict], methods: Sequence[str] = ()) -> Groups:
    """Rows of results.csv by (method, fraction): methods in ``methods`` order then first seen, fractions up."""
    order = list(dict.fromkeys(list(methods) + [r["method"] for r in rows]))
    groups: Groups = {}
    for row in sorted(rows, key=lambda r: (order.index(r["method"]), float(r["fraction"]), int(r["seed"]))):
        groups.setdefault((row["method"], float(row["fraction"])), []).append(row)
    return groups


def write_experiment_report(folder: Path, *, console=None) -> Path:
    """report.md/.html in an experiment folder, after (re)writing each run's own report."""
    experiment = ExperimentFolder(folder)
    folder = experiment.path
    info, rows = experiment.info, experiment.results
    if not rows:
        document = Document(
            f"brats-ssl experiment report: {folder.resolve().name}",
            [Section("Experiment", [f"No results yet: no run of the sweep{_of_planned(info)} has finished."])],
        )
        return write_document(document, folder)
    groups = group_results(rows, info.get("methods", ()))
    variants = variants_from_info(info)
    run_dirs = experiment.run_dirs
    unique_runs: dict[Path, float] = {}  # a run shared by two rows (no unlabeled cases) once, with its seconds
    for row in rows:
        unique_runs.setdefault(run_dirs[row["run"]].resolve(), as_float(row.get("seconds")) or 0.0)
    run_reports = {run_dir: _run_report(run_dir, console) for run_dir in unique_runs}

    n_val = _val_cases(unique_runs)
    sections = [_header_section(info, rows, groups, unique_runs, n_val, variants)]
    case_rows = collect_case_rows(rows, locate=lambda r: run_dirs[r["run"]])
    reading = reading_section(case_rows, list(dict.fromkeys(m for m, _ in groups)), variants)
    if reading is not None:
        sections.append(reading)
    sections.append(_results_section(groups, case_rows))
    comparisons = comparison_rows(case_rows, info.get("references", DEFAULT_REFERENCES))
    if comparisons:
        sections.append(_comparisons_section(comparisons, folder))
    postprocessing = _postprocessing_section(groups, case_rows, run_dirs)
    if postprocessing is not None:
        sections.append(postprocessing)
    sections.append(_curves_section(folder, groups, run_dirs, n_val, variants))
    sections.append(_runs_section(folder, groups, run_dirs, run_reports))
    document = Document(f"brats-ssl experiment report: {folder.resolve().name}", sections)
    return write_document(document, folder)


def experiment_reading(folder: Path) -> Section | None:
    """The report's "What the sweep says" of an experiment folder (for the console at a sweep's end)."""
    experiment = ExperimentFolder(folder)
    rows, run_dirs = experiment.results, experiment.run_dirs
    case_rows = collect_case_rows(rows, locate=lambda r: run_dirs[r["run"]])
    methods = list(dict.fromkeys(m for m, _ in group_results(rows, experiment.info.get("methods", ()))))
    return reading_section(case_rows, methods, variants_from_info(experiment.info))


def _val_cases(run_dirs: Iterable[Path]) -> int | None:
    """Distinct val cases over the runs whose split can be read (with folds, all folds' together)."""
    cases: set[str] = set()
    for run_dir in run_dirs:
        try:
            cases.update(RunFolder(run_dir).split.get("val", []))
        except (BadInputError, OSError, ValueError):
            continue
    return len(cases) or None


def _header_section(
    info: dict,
    rows: list[dict],
    groups: Groups,
    unique_runs: dict[Path, float],
    n_val: int | None,
    variants: dict[str, Variant],
) -> Section:
    # A teacher reused by ours / ours-control is in those runs' times too: count it once.
    total = sum(unique_runs.values()) - sum(reused_seconds(run_dir) for run_dir in unique_runs)
    header = Table(
        ["setting", "value"],
        [
            ["dataset", str(info.get("data", "-"))],
            ["methods", _methods(info, groups)],
            *[[f"variant {name}", variant.describe()] for name, variant in variants.items()],
            ["labeled fractions", ", ".join(f"{f:g}" for f in sorted({f for _, f in groups}))],
            ["seeds", ", ".join(sorted({r["seed"] for r in rows}, key=int))],
            ["validation cases", str(n_val) if n_val is not None else "-"],
            ["preset / steps", f"{info.get('preset', '-')} / {info.get('steps') or 'preset default'}"],
            ["CPU threads (torch)", ", ".join(map(str, info.get("torch_threads", []))) or "-"],
            ["runs finished", f"{len(rows)}{_of_planned(info)}" if info.get("planned_runs") else str(len(unique_runs))],
            [
                "total training time",
                f"{format_duration(total)} (sum over the runs, each training phase counted once: "
                "a run shared by two rows or a teacher reused by another run is not counted twice)",
            ],
        ],
    )
    return Section("Experiment", [header])


def _of_planned(info: dict) -> str:
    """ " of N planned" for a sweep that recorded its plan (made before: "")."""
    return f" of {info['planned_runs']} planned" if info.get("planned_runs") else ""


def _methods(info: dict, groups: Groups) -> str:
    """The methods with results, then those of the sweep's plan that have none yet (a sweep in progress)."""
    shown = list(dict.fromkeys(m for m, _ in groups))
    waiting = [m for m in info.get("methods", ()) if m not in shown]
    return ", ".join(shown) + (f" (no finished run yet: {', '.join(waiting)})" if waiting else "")


def _results_section(groups: Groups, case_rows: list[dict]) -> Section:
    """Mean over the val cases (each case averaged over its seeds) with the 95 % bootstrap interval."""
    dice = {k: method_means(case_rows, k) for k in tuple(EVALUATED) + ("mean",)}
    hd95 = {k: method_means(case_rows, k, prefix="hd95_") for k in BRATS_REGIONS}
    table_rows = []
    for (method, fraction), members in groups.items():
        key = (method, fraction)
        cases = dice["mean"].get(key, (None, None, None, 0))[3]
        folds = sorted({r.get("fold", "0") for r in members})
        table_rows.append(
            [
                method,
                f"{fraction:.0%} ({members[0].get('n_labeled', '-')})",
                f"{len({r['seed'] for r in members})} × {len(folds)}",
                str(cases),
            ]
            + [format_interval(dice[k].get(key)) for k in EVALUATED]
            + [format_interval(hd95[k].get(key), 1) for k in BRATS_REGIONS]
            + [
                format_interval(dice["mean"].get(key)),
                "; ".join(dict.fromkeys(r["note"] for r in members if r.get("note"))),
            ]
        )
    return Section(
        "Results",
        [
            Table(
                ["method", "labeled (cases)", "seeds × folds", "val cases"]
                + [f"Dice {region_label(k)}" for k in EVALUATED]
                + [f"HD95 {k} (mm)" for k in BRATS_REGIONS]
                + [f"mean Dice {REGIONS_SLASHED}", "note"],
                table_rows,
                caption="Final model of each run (after its post-processing) on the val cases: mean over cases, "
                "each case averaged over the seeds that validated it, with the 95 % bootstrap interval of the mean "
                "[low, high] (10,000 resamples of the cases). With cross-validation every case is validated once "
                "per seed.",
            )
        ],
    )


def _comparisons_section(comparisons: list[dict], folder: Path) -> Section:
    by_pair: dict[tuple[str, str, float], dict[str, dict]] = {}
    for row in comparisons:
        by_pair.setdefault((row["method"], row["reference"], float(row["fraction"])), {})[row["metric"]] = row

    def cell(row: dict | None) -> str:
        if row is None:
            return "-"
        text = format_interval(
            (float(row["mean_diff"]), float(row["ci_low"]), float(row["ci_high"]), int(row["n"])), signed=True
        )
        resolved = float(row["ci_low"]) > 0 or float(row["ci_high"]) < 0
        return f"{text}{' **resolved**' if resolved else ''} (p {float(row['p_value']):.3f})"

    metrics = ("mean",) + tuple(EVALUATED)
    table_rows = [
        [method, reference, f"{fraction:.0%}", str(next(iter(cells.values()))["n"])]
        + [cell(cells.get(m)) for m in metrics]
        for (method, reference, fraction), cells in by_pair.items()
    ]
    return Section(
        "Paired comparisons",
        [
            Picture(
                comparison_figure(comparisons, folder / f"{FIGURE_PREFIX}comparisons.png"),
                f"Paired difference of mean {REGIONS_SLASHED} Dice, method − reference, on the cases both "
                "validated (seeds averaged per case), with its 95 % bootstrap interval; filled: resolved",
            ),
            Table(
                ["method", "reference", "labeled", "cases"]
                + [f"mean {REGIONS_SLASHED}" if m == "mean" else m for m in metrics],
                table_rows,
                caption="Per-case Dice difference method − reference on the same val cases (seeds averaged per "
                "case): mean [95 % bootstrap interval], two-sided Wilcoxon signed-rank p-value; **resolved**: the "
                "interval excludes 0. comparisons.csv holds the same numbers.",
            ),
        ],
    )


def _before_after(before: tuple | None, after: tuple | None, digits: int) -> str:
    return f"{format_number((before or [None])[0], digits)} → {format_number((after or [None])[0], digits)}"


def _postprocessing_section(groups: Groups, case_rows: list[dict], run_dirs: dict[str, Path]) -> Section | None:
    before = {k: method_means(case_rows, k, prefix="raw_") for k in BRATS_REGIONS}
    after = {k: method_means(case_rows, k) for k in BRATS_REGIONS}
    hd_before = method_means(case_rows, HD95_REGION, prefix="raw_hd95_")
    hd_after = method_means(case_rows, HD95_REGION, prefix="hd95_")
    table_rows = []
    for (method, fraction), members in groups.items():
        rules = [
            json.loads(p.read_text()).get("describe", "?")
            for r in members
            if (p := run_dirs[r["run"]] / "postprocessing.json").is_file()
        ]
        if not rules:
            continue
        key = (method, fraction)
        counts = ", ".join(f"{rule} ×{rules.count(rule)}" for rule in dict.fromkeys(rules))
        table_rows.append(
            [method, f"{fraction:.0%}", counts]
            + [_before_after(before[k].get(key), after[k].get(key), 3) for k in BRATS_REGIONS]
            + [_before_after(hd_before.get(key), hd_after.get(key), 1)]
        )
    if not table_rows:
        return None
    return Section(
        "Post-processing",
        [
            Table(
                ["method", "labeled", "rule chosen on the selection cases (runs)"]
                + [f"Dice {k} before → after" for k in BRATS_REGIONS]
                + [f"HD95 {HD95_REGION} (mm) before → after"],
                table_rows,
                caption="Each run chooses its rule on its own selection cases (postprocessing.json); val Dice "
                "before and after it, mean over cases.",
            )
        ],
    )


def _curves_section(
    folder: Path, groups: Groups, run_dirs: dict[str, Path], n_val: int | None, variants: dict[str, Variant]
) -> Section:
    figures: list = [
        Picture(
            efficiency_figure(groups, folder / f"{FIGURE_PREFIX}efficiency.png", n_val=n_val),
            "Validation Dice against the labeled fraction, one line per method, one panel per "
            "region and one for their mean; the band is ± one standard deviation over seeds",
        )
    ]
    curves: dict[tuple[str, float], list[list[float | None]]] = {}
    for (method, fraction), members in groups.items():
        for row in members:
            curve = stage_curve(run_dirs[row["run"]]) if base_method(method, variants) in staged_methods() else None
            if curve:
                curves.setdefault((method, fraction), []).append(curve)
    if curves:
        figures.append(
            Picture(
                experiment_stage_figure(curves, folder / f"{FIGURE_PREFIX}stages.png"),
                "ours (and its controls: the same stages without unlabeled scans): "
                "validation mean Dice of WT, TC and ET after the teacher and each stage, one line "
                "per method and labeled fraction (mean over seeds, band ± std)",
            )
        )
    return Section("Curves", figures)


def _runs_section(
    folder: Path, groups: Groups, run_dirs: dict[str, Path], run_reports: dict[Path, Path | None]
) -> Section:
    run_rows = []
    for row in (r for members in groups.values() for r in members):
        run_dir = run_dirs[row["run"]].resolve()
        report = run_reports.get(run_dir)
        if report is not None:
            rel = Path(os.path.relpath(run_dir, folder.resolve())).as_posix()
            link: str | Link = Link(run_dir.name, f"{rel}/{REPORT_MD}", f"{rel}/{REPORT_HTML}")
        else:
            link = f"{run_dir.name} (no report)"
        run_rows.append(
            [row["method"], row["fraction"], row["seed"], f"{row['n_labeled']} / {row['n_unlabeled']}"]
            + [format_number(row.get(f"{k}_dice"), 4) for k in BRATS_REGIONS]
            + [format_duration(as_float(row.get("seconds")) or 0.0), row.get("note") or "", link]
        )
    return Section(
        "Runs",
        [
            Table(
                [
                    "method",
                    "fraction",
                    "seed",
                    "labeled / unlabeled",
                    *(f"Dice {k}" for k in BRATS_REGIONS),
                    "time",
                    "note",
                    "report",
                ],
                run_rows,
            )
        ],
    )


def _run_report(run_dir: Path, console) -> Path | None:
    """A run's own report, rewritten unless it is newer than the run's summary.json."""
    report, summary = run_dir / REPORT_MD, run_dir / "summary.json"
    if report.is_file() and summary.is_file() and report.stat().st_mtime >= summary.stat().st_mtime:
        return report
    if not (run_dir / "config.yaml").is_file():
        return None
    log(console, f"report: {run_dir}")
    try:
        return write_run_report(run_dir, console=console)
    except BadInputError as error:
        log(console, f"[yellow]warning:[/] no report for {run_dir}: {error}")
        return None
