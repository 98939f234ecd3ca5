"""Per-case table (markdown) of a cross-validated experiment: one row per val case, one column per
method (mean WT/TC/ET Dice after post-processing, seeds averaged), with each case's fold,
and each method's training time summed over its runs (a reused teacher counted once, in
supervised).

Reads only the experiment folder's ``per_case.csv`` and ``results.csv``, so it works on a sweep
that is still running (finished runs only).

Usage: python bench/cv_case_table.py EXP [--methods supervised ours ours-control ua-mt]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from brats_ssl.experiment_folder import ExperimentFolder, reused_seconds, run_seconds
from brats_ssl.experiment_tables import per_case_means


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("exp", type=Path)
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument("--fraction", type=float, default=0.25)
    args = parser.parse_args()
    folder = ExperimentFolder(args.exp)
    rows = folder.per_case
    means = {
        name: cases for (name, fraction), cases in per_case_means(rows, "mean").items() if fraction == args.fraction
    }
    methods = args.methods or list(means)
    fold_of = {r["case"]: r["fold"] for r in rows}
    cases = sorted(fold_of, key=lambda c: (int(fold_of[c]), c))
    print("| fold | case | " + " | ".join(methods) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in methods) + " |")
    for case in cases:
        cells = [f"{means[m][case]:.3f}" if case in means.get(m, {}) else "-" for m in methods]
        print(f"| {fold_of[case]} | {case} | " + " | ".join(cells) + " |")
    seconds: dict[str, float] = {}
    runs: dict[str, int] = {}
    for result in folder.results:
        if float(result["fraction"]) != args.fraction or result["method"] not in methods:
            continue
        run_dir = folder.run_dir(result["run"])
        spent = (run_seconds(run_dir) or 0.0) - reused_seconds(run_dir)
        seconds[result["method"]] = seconds.get(result["method"], 0.0) + spent
        runs[result["method"]] = runs.get(result["method"], 0) + 1
    print()
    print("| method | runs | training time (sum over its runs; a reused teacher is counted in supervised) |")
    print("| --- | --- | --- |")
    for method in methods:
        print(f"| {method} | {runs.get(method, 0)} | {seconds.get(method, 0.0) / 3600:.2f} h |")


if __name__ == "__main__":
    main()
