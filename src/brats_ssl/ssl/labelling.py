"""Label the unlabeled pool with a model (MC dropout), rank it, and keep each round on disk.

Per case the result is written atomically, so an interrupted round resumes with the cases that
are missing. With several processes the missing cases are shared among the ranks; each case's
MC samples are seeded by its id, so a case gets the same pseudo-label whichever rank labels it.
With ``--audit-labels`` (research only) each pseudo-label's Dice against the hidden ground truth
is recorded beside it.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from brats_ssl import atomic
from brats_ssl.data import confidence_codec
from brats_ssl.data.batches import PROBABILITIES, PSEUDO, Pool
from brats_ssl.data.conventions import NUM_CLASSES, TUMOUR_CLASS_NAMES
from brats_ssl.data.dataset import CaseRef
from brats_ssl.data.sampling import TrainItem
from brats_ssl.engine import distributed
from brats_ssl.inference import InferenceOptions, case_seed, predict_volume
from brats_ssl.metrics import region_dice
from brats_ssl.paths import safe_name
from brats_ssl.progress import track
from brats_ssl.run.context import RunContext
from brats_ssl.ssl.confidence import RankedCase, image_confidence, rank_cases
from brats_ssl.ssl.pseudolabels import PseudoLabel


def case_folder(round_dir: Path, case: CaseRef | str) -> Path:
    return round_dir / safe_name(case if isinstance(case, str) else case.case_id)


def missing_share(cases: list[CaseRef], round_dir: Path) -> list[CaseRef]:
    """This rank's share of the cases that have no folder in ``round_dir`` yet (all of them in one process)."""
    # Rank 0's view of what is missing, so the shares cover each missing case exactly once.
    missing = set(
        distributed.broadcast_object([c.case_id for c in cases if not PseudoLabel.exists(case_folder(round_dir, c))])
    )
    return distributed.shard([c for c in cases if c.case_id in missing])


def audit_info(ctx: RunContext, case: CaseRef, label: np.ndarray) -> dict:
    if not ctx.audit_labels:
        return {}
    full = ctx.audit_case(case)
    if full.seg is None:  # truly unlabeled: nothing to audit against
        return {}
    truth = ctx.preprocessed(full).seg
    return {"audit_dice": region_dice(np.asarray(label), np.asarray(truth))}


def label_pool(
    ctx: RunContext,
    model: nn.Module,
    cases: list[CaseRef],
    round_dir: Path,
    *,
    mc: int,
    tta: bool,
    description: str,
    keep_probabilities: bool = False,
) -> dict[str, PseudoLabel]:
    options = InferenceOptions.from_config(ctx.config, mc_samples=mc, tta=tta)
    todo = missing_share(cases, round_dir)
    model.eval()
    for case in track(ctx.progress, todo, description=description, total=len(todo), info=f"T={mc}"):
        pre = ctx.preprocessed(case)
        start = time.perf_counter()
        # Seeded by round and case: the same masks whichever rank labels it, fresh ones each round.
        torch.manual_seed(case_seed(ctx.config.seed, f"{round_dir.name}/{case.case_id}"))
        prediction = predict_volume(model, pre.image, options, ctx.device)
        pseudo = PseudoLabel.from_prediction(
            prediction, tau_neg=ctx.config.ssl.tau_neg, keep_probabilities=keep_probabilities
        )
        info = {
            "case": case.case_id,
            "seconds": time.perf_counter() - start,
            "mc_samples": mc,
            "tta": tta,
            **audit_info(ctx, case, pseudo.label),
        }
        pseudo.save(case_folder(round_dir, case), info)
    distributed.barrier()  # every rank's cases are on disk before any rank loads them all
    return {c.case_id: PseudoLabel.load(case_folder(round_dir, c)) for c in cases}


def rank_pool(
    ctx: RunContext, pseudo: dict[str, PseudoLabel], agreement: dict[str, float] | None = None
) -> list[RankedCase]:
    s = ctx.config.ssl
    rows = []
    for case in ctx.unlabeled:
        pre = ctx.preprocessed(case)
        label = pseudo[case.case_id]
        voxel_ml = float(np.prod(pre.meta.voxel_spacing)) / 1000.0
        score = image_confidence(
            label.label,
            label.confidence_float,
            pre.brain,
            pre.meta.voxel_spacing,
            margin_mm=s.confidence_margin_mm,
            empty_penalty=s.empty_penalty,
        )
        rows.append(
            RankedCase(
                case.case_id,
                score,
                label.class_volumes(voxel_ml),
                agreement=None if agreement is None else agreement[case.case_id],
            )
        )
    return rank_cases(rows, stages=s.stages, by_agreement=agreement is not None, pool_fraction=s.pool_fraction)


def write_ranking(ranking: list[RankedCase], path: Path) -> Path:
    """Write the ranking as CSV (rank 0 only: every rank holds the same ranking)."""
    if not distributed.is_main():
        return path

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["rank", "case", "score", "agreement", *(f"{k}_ml" for k in TUMOUR_CLASS_NAMES), "stage"])
            for r in ranking:
                writer.writerow(
                    [
                        r.rank,
                        r.case,
                        f"{r.score:.4f}",
                        "" if r.agreement is None else f"{r.agreement:.4f}",
                        *(f"{r.volumes_ml[k]:.1f}" for k in TUMOUR_CLASS_NAMES),
                        r.stage or "",  # empty: outside the pool the stages use (ssl.pool_fraction)
                    ]
                )

    return atomic.write_with(path, write)


def read_ranking(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def pseudo_pool(
    ctx: RunContext,
    pseudo: dict[str, PseudoLabel],
    members: list[str],
    samples: int,
    probabilities: dict[str, PseudoLabel] | None = None,
) -> Pool:
    """The stage's pseudo-labeled pool; with ``probabilities`` (the teacher's round, which keeps
    its class probabilities) every patch carries them too."""
    items = []
    for case_id in members:
        pre = ctx.preprocessed(ctx.case(case_id))
        label = pseudo[case_id]
        maps = {"label": label.label, "confidence": label.confidence, "absent": label.absent}
        if probabilities is not None:
            stored = probabilities[case_id].probabilities
            if stored is None:
                raise ValueError(f"{case_id}: the teacher's pseudo-label has no class probabilities")
            maps[PROBABILITIES] = stored
        items.append(TrainItem(case_id, pre.image, maps))
    return Pool(items, samples, PSEUDO)


def true_label_maps(label: np.ndarray) -> dict[str, np.ndarray]:
    """A true label as pseudo-label maps: fully confident (a read-only broadcast, no copy), every
    class but the label ruled out."""
    label = np.asarray(label)
    every_class = (1 << NUM_CLASSES) - 1
    return {
        "label": label,
        "confidence": np.broadcast_to(np.uint8(confidence_codec.CERTAIN), label.shape),
        "absent": (every_class ^ (np.uint8(1) << label)).astype(np.uint8),
    }


def labeled_as_pseudo(ctx: RunContext, samples: int) -> Pool:
    """The labeled cases as a pseudo-labeled pool whose pseudo-labels are their true labels (for
    ``ours-student-control``: ours' student fed with labeled content)."""
    items = [TrainItem(i.case_id, i.image, true_label_maps(i.maps["label"]), i.foreground) for i in ctx.labeled_items()]
    return Pool(items, samples, PSEUDO)


def pseudo_statistics(pseudo: dict[str, PseudoLabel], members: list[str], tau: float) -> dict:
    """Share of confident voxels per predicted class and class volumes (voxels) over the members."""
    from brats_ssl.data.conventions import CLASS_NAMES

    confident = {name: [0, 0] for name in CLASS_NAMES}
    for case_id in members:
        label = np.asarray(pseudo[case_id].label)
        conf = pseudo[case_id].confidence_float
        for c, name in enumerate(CLASS_NAMES):
            mask = label == c
            confident[name][0] += int((conf[mask] >= tau).sum())
            confident[name][1] += int(mask.sum())
    return {
        "members": members,
        "tau": tau,
        "confident_share": {k: (a / b if b else None) for k, (a, b) in confident.items()},
        "class_voxels": {k: b for k, (_, b) in confident.items()},
    }
