"""Ablation table (markdown) over cross-validated experiment folders: each variant of a method
against the full method and against a reference, paired per case with 95 % bootstrap intervals.

Each variant is an experiment folder (``brats-ssl experiment ... --folds K``) whose ``per_case.csv``
holds the method's runs with one setting changed; the full method and the reference come from the
main folder. Cases are matched by id (seeds averaged per case, as in comparisons.csv).

A variant folder made with ``experiment --variant NAME=...`` holds the variant under its own name:
give it as ``label=FOLDER@NAME``.

Usage: python bench/cv_ablation_table.py MAIN --method ours --reference ours-control \\
           --variant "online targets off=/work/abl_online_weight" \\
           --variant "probabilities=/work/abl_probabilities@probabilities" [--variant ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from brats_ssl.experiment_folder import ExperimentFolder
from brats_ssl.experiment_tables import per_case_means
from brats_ssl.stats import mean_ci, paired


def case_means(folder: Path, method: str, metric: str = "mean") -> dict[str, float]:
    rows = ExperimentFolder(folder).per_case
    by_key = per_case_means(rows, metric)
    found = [cases for (name, _), cases in by_key.items() if name == method]
    return found[0] if found else {}


def cell(a: dict[str, float], b: dict[str, float]) -> str:
    cases = sorted(set(a) & set(b))
    if not cases:
        return "-"
    result = paired([a[c] - b[c] for c in cases])
    mark = " **resolved**" if result.resolved else ""
    return f"{result.mean:+.3f} [{result.ci_low:+.3f}, {result.ci_high:+.3f}]{mark}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("main", type=Path)
    parser.add_argument("--method", default="ours")
    parser.add_argument("--reference", default="ours-control")
    parser.add_argument("--variant", action="append", default=[], help="label=experiment folder")
    args = parser.parse_args()
    full = case_means(args.main, args.method)
    reference = case_means(args.main, args.reference)
    rows = [(f"{args.method} (all on)", full)] + [
        (label, case_means(Path(folder), method or args.method))
        for label, (folder, _, method) in (
            (v.split("=", 1)[0], v.split("=", 1)[1].partition("@")) for v in args.variant
        )
    ]
    print(f"| variant | cases | mean WT/TC/ET [95 % CI] | − {args.method} (all on) | − {args.reference} |")
    print("| --- | --- | --- | --- | --- |")
    for label, values in rows:
        if not values:
            print(f"| {label} | 0 | - | - | - |")
            continue
        mean, low, high = mean_ci(list(values.values()))
        versus_full = "-" if values is full else cell(values, full)
        print(
            f"| {label} | {len(values)} | {mean:.3f} [{low:.3f}, {high:.3f}] | {versus_full} | "
            f"{cell(values, reference)} |"
        )


if __name__ == "__main__":
    main()
