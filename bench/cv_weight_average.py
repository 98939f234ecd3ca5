"""Would an average of a staged run's stage models be a better final model than the one its 2
selection cases choose, or than its last stage? Answered over finished runs, without training:
per fold, the weights of the stages' final checkpoints (``stage_k/checkpoint_last.pt``, the
models the run itself evaluated) are averaged (uniformly; the stages follow one LR schedule, so
this is stochastic weight averaging at stage ends), the average is evaluated on the run's val
cases like any phase (original geometry, before post-processing), and compared case by case with
the run's selected model (``@raw``) and its last stage (``@last``).

Usage: python bench/cv_weight_average.py ../shared/data/brats-dev \\
           --run "/work/exp5b/runs/ours_fold{f}_f0.25_s0" [--folds 5] [--from-stage 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from cv_runs_table import per_case

from brats_ssl.data.conventions import REGIONS
from brats_ssl.engine.checkpoint import LAST_CHECKPOINT, load_checkpoint
from brats_ssl.engine.device import to_memory_format
from brats_ssl.run.context import RunContext
from brats_ssl.run.phase import evaluate_cases
from brats_ssl.run_folder import RunFolder
from brats_ssl.stats import mean_ci, paired


def averaged_weights(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The uniform average of the checkpoints' model weights (integer buffers from the last one)."""
    states = [load_checkpoint(p)["model"] for p in paths]
    average = {}
    for key, last in states[-1].items():
        if torch.is_floating_point(last):
            average[key] = torch.stack([s[key].float() for s in states]).mean(0).to(last.dtype)
        else:
            average[key] = last
    return average


def case_scores(rows: list[dict]) -> dict[str, float]:
    """case → mean WT/TC/ET Dice of a summary's per-case rows."""
    return {row["case"]: float(np.mean([row[r]["dice"] for r in REGIONS])) for row in rows}


def evaluate_average(run: RunFolder, data: Path, from_stage: int) -> dict[str, float] | None:
    stages = [s["stage"] for s in run.stages if s["stage"] >= from_stage]
    paths = [run.path / f"stage_{k}" / LAST_CHECKPOINT for k in stages]
    if not paths or not all(p.is_file() for p in paths):
        return None
    dataset = run.dataset(data)
    config = run.config
    ctx = RunContext(
        run_dir=run.path,
        config=config,
        dataset=dataset,
        split=run.split,
        labeled=[],
        unlabeled=[],
        val=run.val_cases(dataset),
        device=torch.device("cpu"),
    )
    model = ctx.new_model()
    model.load_state_dict(averaged_weights(paths))
    to_memory_format(model, config.train.channels_last).eval()
    with tempfile.TemporaryDirectory() as out:
        return case_scores(evaluate_cases(ctx, model, ctx.val, Path(out), save_predictions=False)["per_case"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--run", required=True, help="run-folder pattern with {f} for the fold")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--from-stage", type=int, default=1, help="average the stages from this one on")
    args = parser.parse_args()
    scores: dict[str, dict[str, float]] = {"selected": {}, "last stage": {}, "average": {}}
    for fold in range(args.folds):
        path = Path(args.run.format(f=fold))
        if not (path / "summary.json").is_file():
            continue
        run = RunFolder(path)
        average = evaluate_average(run, args.data, args.from_stage)
        if average is None:
            continue
        for name, which in (("selected", "raw"), ("last stage", "last")):  # as cv_runs_table reads them
            scores[name].update(case_scores(per_case(path, which) or []))
        scores["average"].update(average)
        print(f"fold {fold}: average of stages {args.from_stage}.. {np.mean(list(average.values())):.3f}", flush=True)
    cases = sorted(scores["average"])
    print(f"\nMean WT/TC/ET Dice before post-processing, {len(cases)} val cases:\n")
    print("| model | mean [95 % CI] |\n| --- | --- |")
    for name, found in scores.items():
        mean, low, high = mean_ci([found[c] for c in cases])
        print(f"| {name} | {mean:.3f} [{low:.3f}, {high:.3f}] |")
    print("\n| comparison | mean difference [95 % CI] | Wilcoxon p |\n| --- | --- | --- |")
    for other in ("selected", "last stage"):
        diff = paired([scores["average"][c] - scores[other][c] for c in cases])
        print(
            f"| average − {other} | {diff.mean:+.3f} [{diff.ci_low:+.3f}, {diff.ci_high:+.3f}] | {diff.p_value:.3f} |"
        )


if __name__ == "__main__":
    main()
