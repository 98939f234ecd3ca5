"""Cross-validation folds and the nested splits of a sweep.

Fold assignment is fixed (it does not depend on the seed): the cases with a seg file are dealt
round-robin from a site-interleaved order into K folds, so every fold is a stratified K-th and
every case is validated exactly once per (method, fraction, seed). Within a fold, the training
side is split per seed: the last ``selection`` cases of a site-interleaved order become the
selection set, the labeled sets of the fractions are prefixes of the rest (nested: the 10 %
labeled cases are among the 25 % ones), and everything else - cases without a seg file too - is
unlabeled. With ``folds == 1`` the val set is the one fixed set a plain split of seed 0 holds out
(the sweep's behaviour before folds existed; its labeled sets are prefixes of the same draw).
"""

from __future__ import annotations

import random
from pathlib import Path

from brats_ssl.data.dataset import Dataset
from brats_ssl.data.split import _site_interleaved, hold_out_selection, make_split, unlabeled_roots_entry
from brats_ssl.errors import BadInputError
from brats_ssl.records import Split


def assign_folds(dataset: Dataset, folds: int) -> dict[str, int]:
    """case id → fold, for the cases with a seg file (only those can be validated)."""
    with_seg = [c for c in dataset.cases if c.labeled]
    if folds < 1:
        raise BadInputError(f"--folds {folds}: must be at least 1")
    if folds > 1 and len(with_seg) < 2 * folds:
        raise BadInputError(
            f"--folds {folds}: {dataset.root} has {len(with_seg)} labeled cases; "
            f"each fold needs at least 2 (use at most {len(with_seg) // 2} folds)"
        )
    order = _site_interleaved(with_seg, random.Random(0))
    return {case.case_id: i % folds for i, case in enumerate(order)}


def val_cases(dataset: Dataset, fold: int, folds: int, val: float) -> list[str]:
    if folds == 1:
        return make_split(dataset, labeled=1.0, val=val, seed=0)["val"]
    return sorted(case for case, f in assign_folds(dataset, folds).items() if f == fold)


def fold_splits(
    dataset: Dataset, *, fold: int, folds: int, fractions: list[float], seed: int, val: float = 0.2, selection: int = 0
) -> dict[float, Split]:
    """fraction → split.json dict for one fold and seed; labeled sets nested across fractions."""
    held_out = set(val_cases(dataset, fold, folds, val))
    rest = [c for c in dataset.cases if c.case_id not in held_out]
    # Fold 0 (and the single-fold sweep) draws as sweeps did before folds existed.
    order = _site_interleaved([c for c in rest if c.labeled], random.Random(seed + 7919 * fold))
    candidates, chosen = hold_out_selection(order, selection)
    selection_ids = sorted(c.case_id for c in chosen)
    splits: dict[float, Split] = {}
    for fraction in fractions:
        n = min(len(candidates), max(1, round(fraction * (len(rest) - len(chosen)))))
        labeled = sorted(c.case_id for c in candidates[:n])
        taken = set(labeled) | set(selection_ids)
        splits[fraction] = {
            "seed": seed,
            "labeled_fraction": fraction,
            "val_fraction": val,
            "fold": fold,
            "folds": folds,
            "dataset": str(Path(dataset.root).resolve()),
            "labeled": labeled,
            "unlabeled": sorted(c.case_id for c in rest if c.case_id not in taken),
            "val": sorted(held_out),
            "selection": selection_ids,
            "sites": {c.case_id: c.site for c in dataset.cases if c.site},
            **unlabeled_roots_entry(dataset),
        }
    return splits
