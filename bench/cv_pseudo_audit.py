"""How good ours' pseudo-labels are, round by round, over the folds of a cross-validated sweep of
the dev cases — where every "unlabeled" case has a ground truth the run never read.

Per run folder and pseudo-label round (round_0 = the teacher's, round_k = after stage k's
refinement), each unlabeled case's stored label is compared with its ground truth in the same
preprocessed space: mean WT/TC/ET Dice per round with a 95 % bootstrap interval over (fold, case),
the paired change from round 0 to each later round, and how well the teacher's image confidence
(the curriculum's ranking) tracks the round-0 quality (Spearman). This is the analysis that
``--audit-labels`` records during a run, done afterwards over finished runs.

Usage: python bench/cv_pseudo_audit.py ../shared/data/brats-dev \\
           --run "/work/exp5b/runs/ours_fold{f}_f0.25_s0" [--folds 5]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from brats_ssl.data.cache import PreprocessCache
from brats_ssl.data.conventions import REGIONS
from brats_ssl.data.preprocess import PreprocessParams
from brats_ssl.metrics import region_dice
from brats_ssl.run_folder import RunFolder
from brats_ssl.ssl.labelling import read_ranking
from brats_ssl.stats import mean_ci, paired


def audit_run(run: RunFolder, data: Path) -> list[dict]:
    """One row per (round, unlabeled case): its pseudo-label's Dice and the round's ranking entry."""
    dataset = run.dataset(data)
    cache = PreprocessCache(PreprocessParams.from_config(run.config.data), run.config.data.cache_dir)
    rows = []
    for round_dir in run.rounds:
        ranking = {r["case"]: r for r in read_ranking(round_dir / "ranking.csv")}
        for case_id, entry in ranking.items():
            label_file = round_dir / case_id / "label.npy"
            if not label_file.is_file():
                continue
            truth = cache.get(dataset.case(case_id)).seg  # read here, never by the run
            dice = region_dice(np.load(label_file), np.asarray(truth))
            rows.append(
                {
                    "round": int(round_dir.name.split("_")[1]),
                    "case": case_id,
                    "score": float(entry["score"]),
                    "stage": entry.get("stage", ""),
                    "dice": float(np.mean([dice[r] for r in REGIONS])),
                    **{r: dice[r] for r in REGIONS},
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--run", required=True, help="run-folder pattern with {f} for the fold")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    rows: list[dict] = []
    for fold in range(args.folds):
        path = Path(args.run.format(f=fold))
        if (path / "summary.json").is_file():
            rows += [{**r, "fold": fold} for r in audit_run(RunFolder(path), args.data)]
    by_round: dict[int, dict[tuple[int, str], dict]] = {}
    for row in rows:
        by_round.setdefault(row["round"], {})[(row["fold"], row["case"])] = row
    print("| round | cases | pseudo-label mean WT/TC/ET Dice [95 % CI] | WT | TC | ET | − round 0 [95 % CI] |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    first = by_round.get(0, {})
    for number in sorted(by_round):
        entries = by_round[number]
        mean, low, high = mean_ci([e["dice"] for e in entries.values()])
        regions = " | ".join(f"{np.mean([e[r] for e in entries.values()]):.3f}" for r in REGIONS)
        shared = sorted(set(entries) & set(first))
        change = "-"
        if number and shared:
            result = paired([entries[k]["dice"] - first[k]["dice"] for k in shared])
            change = f"{result.mean:+.3f} [{result.ci_low:+.3f}, {result.ci_high:+.3f}]"
        print(f"| {number} | {len(entries)} | {mean:.3f} [{low:.3f}, {high:.3f}] | {regions} | {change} |")
    if first:
        scores = [e["score"] for e in first.values()]
        dice = [e["dice"] for e in first.values()]
        rho = spearmanr(scores, dice).statistic
        print(f"\nround 0: Spearman(image confidence, pseudo-label Dice) = {rho:.2f} over {len(first)} (fold, case)")
        by_stage: dict[str, list[float]] = {}
        for entry in first.values():
            by_stage.setdefault(entry["stage"], []).append(entry["dice"])
        for stage in sorted(by_stage):
            values = by_stage[stage]
            print(f"  curriculum stage {stage}: {len(values)} cases, round-0 Dice {np.mean(values):.3f}")


if __name__ == "__main__":
    main()
