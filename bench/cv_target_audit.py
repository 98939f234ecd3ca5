"""What ours' student would learn from the teacher's pseudo-labels under each kind of offline
target (``ssl.offline_targets``): ``confidence`` (the label with its MC confidence c, 1 − c spread
evenly) or ``probabilities`` (the teacher's stored MC-mean class probabilities) — measured against
the ground truth that every "unlabeled" dev case has and no run reads.

Per run folder (round_0, the teacher's pseudo-labels) and unlabeled case, the targets are built
with the training code's own functions and passed through the hierarchical learn rule
(``ssl/hierarchical.py``): level 1 learns tumour vs background where P(tumour) or P(background)
≥ τ, level 2 a tumour voxel's subclass where P(subclass | tumour) ≥ ``tau_subclass``. For each
level: how many voxels it learns (per ground-truth tumour voxel) and how many of them it learns
right. No training: it says whether the stored probabilities carry more than the argmax before a
run spends hours on them. Paired differences (probabilities − confidence) over (fold, case).

Usage: python bench/cv_target_audit.py ../shared/data/brats-dev \\
           --run "/work/abl_copy_paste/runs/ours_fold{f}_f0.25_s0" [--folds 5] [--tau 0.9 0.7]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from brats_ssl.data import confidence_codec
from brats_ssl.data.cache import PreprocessCache
from brats_ssl.data.conventions import NUM_CLASSES
from brats_ssl.data.preprocess import PreprocessParams
from brats_ssl.run_folder import RunFolder
from brats_ssl.ssl.hierarchical import learn_sets, offline_probabilities, stored_where_they_agree
from brats_ssl.ssl.pseudolabels import PseudoLabel
from brats_ssl.stats import mean_ci, paired

KINDS = ("confidence", "probabilities")
MEASURES = {
    "tumour_learned": "level 1: voxels learned as tumour, per true tumour voxel",
    "tumour_precision": "level 1: share of them truly tumour",
    "background_errors": "level 1: true tumour voxels learned as background, per true tumour voxel",
    "subclass_learned": "level 2: voxels whose subclass is learned, per true tumour voxel",
    "subclass_precision": "level 2: share of them with the true class",
}


def targets(pseudo: PseudoLabel) -> dict[str, torch.Tensor]:
    """Both kinds of offline target (1, C, *S) of one case, as the student's loss builds them."""
    label = torch.from_numpy(np.array(pseudo.label)).unsqueeze(0)
    confidence = torch.from_numpy(confidence_codec.decode(np.asarray(pseudo.confidence))).unsqueeze(0)
    by_confidence = offline_probabilities(label, confidence, NUM_CLASSES)
    stored = torch.from_numpy(np.array(pseudo.probabilities)).unsqueeze(0)
    return {"confidence": by_confidence, "probabilities": stored_where_they_agree(by_confidence, stored, label)}


def scored(target: torch.Tensor, valid: torch.Tensor, tau: float, tau_subclass: float, truth: torch.Tensor) -> dict:
    """The hierarchical rule's two learn sets of one target (1, C, *S), scored against ``truth`` (*S)."""
    sets = learn_sets(target, valid.unsqueeze(0), tau=tau, tau_subclass=tau_subclass)
    tumour, level_1, level_2, subclass = sets.tumour[0], sets.where[0], sets.which[0], sets.subclass[0]
    true_tumour = truth > 0
    n_true = max(int(true_tumour.sum()), 1)
    learned_tumour = level_1 & tumour
    return {
        "tumour_learned": float(learned_tumour.sum()) / n_true,
        "tumour_precision": float((learned_tumour & true_tumour).sum()) / max(int(learned_tumour.sum()), 1),
        "background_errors": float((level_1 & ~tumour & true_tumour).sum()) / n_true,
        "subclass_learned": float(level_2.sum()) / n_true,
        "subclass_precision": float((level_2 & (subclass + 1 == truth)).sum()) / max(int(level_2.sum()), 1),
    }


def audit_run(run: RunFolder, data: Path, taus: list[float], tau_subclass: float | None = None) -> list[dict]:
    """One row per (τ, unlabeled case, kind of target) of the run's teacher round."""
    dataset = run.dataset(data)
    cache = PreprocessCache(PreprocessParams.from_config(run.config.data), run.config.data.cache_dir)
    round_0 = run.path / "pseudo" / "round_0"
    rows = []
    for folder in sorted(p for p in round_0.iterdir() if PseudoLabel.exists(p)):
        pseudo = PseudoLabel.load(folder)
        if pseudo.probabilities is None:
            continue
        truth = torch.from_numpy(np.asarray(cache.get(dataset.case(folder.name)).seg).astype(np.int64))
        valid = torch.from_numpy(np.array(pseudo.confidence) > 0)
        for kind, target in targets(pseudo).items():
            for tau in taus:
                sub = run.config.ssl.tau_subclass if tau_subclass is None else tau_subclass
                sets = scored(target, valid, tau, sub, truth)
                rows.append({"case": folder.name, "kind": kind, "tau": tau, **sets})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--run", required=True, help="run-folder pattern with {f} for the fold")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--tau", type=float, nargs="+", default=[0.9, 0.7], help="level-1 thresholds (stage 1, last)")
    parser.add_argument("--tau-subclass", type=float, help="level-2 threshold (default: the runs' ssl.tau_subclass)")
    args = parser.parse_args()
    rows: list[dict] = []
    for fold in range(args.folds):
        path = Path(args.run.format(f=fold))
        if (path / "pseudo" / "round_0").is_dir():
            rows += [{**r, "fold": fold} for r in audit_run(RunFolder(path), args.data, args.tau, args.tau_subclass)]
    for tau in args.tau:
        by_kind = {k: {(r["fold"], r["case"]): r for r in rows if r["kind"] == k and r["tau"] == tau} for k in KINDS}
        shared = sorted(set(by_kind["confidence"]) & set(by_kind["probabilities"]))
        sub = "the runs' ssl.tau_subclass" if args.tau_subclass is None else args.tau_subclass
        print(f"\nτ = {tau}, tau_subclass {sub}; {len(shared)} (fold, case) pairs")
        print("| measure | confidence [95 % CI] | probabilities [95 % CI] | probabilities − confidence [95 % CI] |")
        print("| --- | --- | --- | --- |")
        for name, description in MEASURES.items():
            cells = []
            for kind in KINDS:
                mean, low, high = mean_ci([by_kind[kind][k][name] for k in shared])
                cells.append(f"{mean:.3f} [{low:.3f}, {high:.3f}]")
            diff = paired([by_kind["probabilities"][k][name] - by_kind["confidence"][k][name] for k in shared])
            cells.append(f"{diff.mean:+.3f} [{diff.ci_low:+.3f}, {diff.ci_high:+.3f}]")
            print(f"| {description} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
