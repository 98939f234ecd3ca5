"""Paired tables (markdown) over finished run folders of any experiments, fold by fold: for runs
of different code or settings that no single experiment folder holds (a screening run beside a
sweep). Each method is a run-folder pattern with ``{f}`` for the fold; per case the mean WT/TC/ET
Dice of the run's final model (after post-processing) is read from its summary.json. A pattern may
end in ``@WHICH`` to read another model of the run, all before post-processing: ``@raw`` the final
model, ``@teacher`` / ``@stage_2`` / ... that phase's chosen checkpoint, ``@last`` the run's last
stage - so that a rule for the final model can be compared across folds without training again.
With ``{s}`` in a pattern and ``--seeds 0 1``, a case's score is its mean over the seeds (the
experiment tables' rule), counted once every seed has finished it.

Run folders live outside the project and can be lost with the machine; ``--save FILE.csv`` keeps
the per-case means of every run in a small CSV (committed under ``bench/results/``), and a run
written as ``FILE.csv#COLUMN`` reads that column back, so a new run still pairs with the old ones.
Sources joined by `` + `` are averaged per case like seeds (a case counts once every source has it):
``"ours=bench/results/cv5_seed0_final.csv#ours + /work/exp7/runs/ours_fold{f}_f0.25_s1"`` pools a
saved seed 0 with seed 1's run folders.

Usage: python bench/cv_runs_table.py --run "ours=/work/exp5b/runs/ours_fold{f}_f0.25_s0" \\
           --run "ours-control=/work/exp5/runs/ours-control_fold{f}_f0.25_s0" --compare ours:ours-control
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from brats_ssl.commands.tables import last_phase
from brats_ssl.stats import mean_ci, paired


def per_case(run: Path, which: str) -> list[dict] | None:
    """The per-case scores of one model of a finished run (None while it is not finished)."""
    summary = run / "summary.json"
    if not summary.is_file():
        return None
    found = json.loads(summary.read_text())
    if which in ("final", "raw"):
        return found["per_case"] if which == "final" else found["raw"]["per_case"]
    name = last_phase(found) if which == "last" else which
    phase = run / (name or "-") / "summary.json"  # a run without stages has no last one
    return json.loads(phase.read_text())["per_case"] if phase.is_file() else None


def saved_column(source: str) -> dict[str, float]:
    """case → value of one column of a saved per-case CSV (``FILE.csv#COLUMN``; empty cells skip)."""
    path, _, column = source.partition("#")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and column not in rows[0]:
        raise SystemExit(f"{path}: no column {column!r} (columns: {', '.join(rows[0])})")
    return {row["case"]: float(row[column]) for row in rows if row[column]}


def save(data: dict[str, dict[str, float]], path: Path) -> None:
    """Write the per-case means of every run (one column each, 4 decimals) as a CSV. An existing
    file is updated: a cell with no value now keeps the one it had, so that folds saved session
    by session (the run folders of the earlier ones gone) add up to the whole sweep."""
    if path.is_file():
        with open(path, newline="") as handle:
            before = list(csv.DictReader(handle))
        old = (
            {
                column: {r["case"]: float(r[column]) for r in before if r[column]}
                for column in before[0]
                if column != "case"
            }
            if before
            else {}
        )
        data = {m: old.get(m, {}) | data.get(m, {}) for m in dict.fromkeys([*old, *data])}
    every = sorted(set().union(*data.values()))
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case", *data])
        for case in every:
            writer.writerow([case, *(f"{data[m][case]:.4f}" if case in data[m] else "" for m in data)])


def case_means(pattern: str, folds: int, seeds: list[int]) -> dict[str, float]:
    """case → mean WT/TC/ET Dice, averaged over the seeds (``{s}`` in the pattern) and over the
    sources joined by `` + ``; a case counts once every seed and source has finished it, so that
    methods are compared on the same draws."""
    if " + " in pattern:
        parts = [case_means(part.strip(), folds, seeds) for part in pattern.split(" + ")]
        return {case: sum(p[case] for p in parts) / len(parts) for case in set.intersection(*map(set, parts))}
    if ".csv#" in pattern:
        return saved_column(pattern)
    pattern, _, which = pattern.partition("@")
    found: dict[str, list[float]] = {}
    for seed in seeds if "{s}" in pattern else [None]:
        for fold in range(folds):
            for case in per_case(Path(pattern.format(f=fold, s=seed)), which or "final") or []:
                found.setdefault(case["case"], []).append(sum(case[r]["dice"] for r in ("WT", "TC", "ET")) / 3)
    wanted = len(seeds) if "{s}" in pattern else 1
    return {case: sum(v) / len(v) for case, v in found.items() if len(v) == wanted}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", action="append", required=True, help="label=run folder pattern with {f} [and {s}]")
    parser.add_argument("--compare", action="append", default=[], help="label:reference")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="the seeds a pattern's {s} takes")
    parser.add_argument("--per-case", action="store_true")
    parser.add_argument("--save", type=Path, help="write every run's per-case means to this CSV (updated if it exists)")
    args = parser.parse_args()
    data = {
        label: case_means(pattern, args.folds, args.seeds) for label, pattern in (r.split("=", 1) for r in args.run)
    }
    if not any(data.values()):
        raise SystemExit("no finished run matches any --run pattern (a run counts once its summary.json exists)")
    if args.save:
        save(data, args.save)
    common = sorted(set.intersection(*(set(v) for v in data.values() if v)))
    print(f"Mean WT/TC/ET Dice on the {len(common)} val cases that every method has finished:\n")
    print("| method | cases | mean [95 % CI] |\n| --- | --- | --- |")
    for label, values in data.items():
        if values and common:
            mean, low, high = mean_ci([values[c] for c in common])
            print(f"| {label} | {len(common)} | {mean:.3f} [{low:.3f}, {high:.3f}] |")
    print("\n| comparison | cases | mean difference [95 % CI] | Wilcoxon p |\n| --- | --- | --- | --- |")
    for pair in args.compare:
        a, b = pair.split(":")
        cases = sorted(set(data[a]) & set(data[b]))
        if len(cases) < 2:
            continue
        result = paired([data[a][c] - data[b][c] for c in cases])
        mark = " **resolved**" if result.resolved else ""
        print(
            f"| {a} − {b} | {len(cases)} | {result.mean:+.3f} [{result.ci_low:+.3f}, {result.ci_high:+.3f}]{mark} "
            f"| {result.p_value:.3f} |"
        )
    if args.per_case:
        every = sorted(set().union(*data.values()))
        print("\n| case | " + " | ".join(data) + " |\n| --- |" + " --- |" * len(data))
        for case in every:
            cells = [f"{data[m][case]:.3f}" if case in data[m] else "-" for m in data]
            print(f"| {case} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
