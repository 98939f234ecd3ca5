"""Hierarchical, class-balanced learning from soft pseudo-label targets.

A teacher is far more often right about *where the tumour is* than about *which part of it* a
voxel is: on a real run, voxels confident at τ = 0.9 were 95–99 % right on tumour vs background
but 56 % right on edema (38 % were really necrosis). So the student learns two decisions apart:

1. tumour vs background wherever the target is confident about that (P(tumour) ≥ τ or ≤ 1 − τ);
2. the subclass (NCR, ED, ET) only where the target is confident that the voxel is tumour *and*
   about the subclass (P(class | tumour) ≥ τ_sub).

Each term averages the classes it has in the batch (per-class mean, then mean over classes), so
the background - 98 % of the voxels of a patch - does not drown the tumour classes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.nn import functional as F

EPS = 1e-6


def offline_probabilities(label: torch.Tensor, confidence: torch.Tensor, classes: int) -> torch.Tensor:
    """Soft targets from a stored pseudo-label and its confidence c: c on the label, (1 − c) spread
    evenly over all classes. (B, *S) → (B, C, *S)."""
    one_hot = F.one_hot(label.long(), classes).movedim(-1, 1).to(confidence.dtype)
    c = confidence.unsqueeze(1)
    return c * one_hot + (1 - c) / classes


def stored_where_they_agree(target: torch.Tensor, stored: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """``target`` (B, C, *S) replaced by the stored class probabilities (uint8 fractions of 255,
    renormalised) on the voxels where they are present and their argmax is still ``label``
    (refinement may have changed a label; padding stores zeros)."""
    p = stored.to(target.dtype)
    total = p.sum(1, keepdim=True)
    use = (total > 0) & (p.argmax(1, keepdim=True) == label.unsqueeze(1))
    return torch.where(use, p / total.clamp_min(EPS), target)


def _class_balanced_nll(
    log_q: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, classes: int
) -> torch.Tensor:
    """Mean over the classes present of the weighted mean NLL of each class's voxels.
    ``log_q`` (B, K, *S) log-probabilities over K choices; ``target`` (B, *S) in [0, K)."""
    nll = F.nll_loss(log_q, target, reduction="none")
    terms = []
    for k in range(classes):
        w = weight * (mask & (target == k))
        total = w.sum()
        if float(total) > 0:
            terms.append((w * nll).sum() / total)
    return torch.stack(terms).mean() if terms else log_q.sum() * 0.0


class LearnSets(NamedTuple):
    """What the hierarchical rule learns from soft targets, all (B, *S)."""

    tumour: torch.Tensor  # P(tumour) ≥ 0.5
    sure: torch.Tensor  # max(P(tumour), P(background))
    where: torch.Tensor  # level 1: tumour vs background is learned
    subclass: torch.Tensor  # the likeliest tumour class given tumour, 0-based over NCR, ED, ET
    subclass_sure: torch.Tensor  # its P(class | tumour)
    which: torch.Tensor  # level 2: the subclass is learned too


def learn_sets(target: torch.Tensor, valid: torch.Tensor, *, tau: float, tau_subclass: float) -> LearnSets:
    """The two levels of the rule for soft targets ``target`` (B, C, *S) on ``valid`` voxels."""
    p_tumour = target[:, 1:].sum(1)
    tumour = p_tumour >= 0.5
    sure = torch.maximum(p_tumour, 1 - p_tumour)
    where = valid & (sure >= tau)
    subclass_sure, subclass = (target[:, 1:] / p_tumour.unsqueeze(1).clamp_min(EPS)).max(1)
    which = where & tumour & (subclass_sure >= tau_subclass)
    return LearnSets(tumour, sure, where, subclass, subclass_sure, which)


def hierarchical_loss(
    log_p: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor,
    *,
    tau: float,
    tau_subclass: float,
    weighted: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Student log-probabilities ``log_p`` (B, C, *S; class 0 background) against soft targets
    ``target`` (B, C, *S) on ``valid`` voxels (B, *S). Returns the loss and the shares of voxels
    learned at each level."""
    sets = learn_sets(target, valid, tau=tau, tau_subclass=tau_subclass)
    tumour, sure, level_1 = sets.tumour, sets.sure, sets.where
    subclass, sub_sure, level_2 = sets.subclass, sets.subclass_sure, sets.which
    log_tumour = torch.logsumexp(log_p[:, 1:], dim=1)
    log_background = log_p[:, 0]
    binary_log = torch.stack([log_background, log_tumour], dim=1)
    weight_1 = sure if weighted else torch.ones_like(sure)
    loss_1 = _class_balanced_nll(binary_log, tumour.long(), level_1, weight_1, 2)

    conditional_log = log_p[:, 1:] - log_tumour.unsqueeze(1)  # log p(class | tumour)
    weight_2 = (sure * sub_sure) if weighted else torch.ones_like(sure)
    loss_2 = _class_balanced_nll(conditional_log, subclass, level_2, weight_2, log_p.shape[1] - 1)
    n = valid.float().sum().clamp_min(1)
    return loss_1 + loss_2, {
        "learn_where": float(level_1.float().sum() / n),
        "learn_which": float(level_2.float().sum() / n),
    }
