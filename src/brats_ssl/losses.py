"""Supervised segmentation losses (MONAI underneath) and the matching logits → probabilities.

``dice_ce``: softmax over the four classes, batch Dice + cross-entropy.
``region``: sigmoid over the nested BraTS regions WT, TC, ET with Dice + BCE, as nnU-Net does
for BraTS; its outputs are turned back into class probabilities so that everything downstream
(uncertainty, pseudo-labels, metrics) sees one form.
"""

from __future__ import annotations

import torch
from monai.losses import DiceCELoss, DiceLoss
from torch import nn
from torch.nn import functional as F

from brats_ssl.data.conventions import NUM_CLASSES, REGIONS

REGION_ORDER = tuple(REGIONS)  # the output channels of the "region" loss: WT, TC, ET


def output_channels(loss: str) -> int:
    return len(REGION_ORDER) if loss == "region" else NUM_CLASSES


def region_targets(label: torch.Tensor) -> torch.Tensor:
    """(B, *S) class labels → (B, 3, *S) float WT/TC/ET masks."""
    masks = [torch.isin(label, torch.tensor(REGIONS[r], device=label.device)) for r in REGION_ORDER]
    return torch.stack(masks, 1).float()


def probabilities(logits: torch.Tensor, loss: str = "dice_ce") -> torch.Tensor:
    """Class probabilities (B, 4, *S) from either output form."""
    if loss != "region":
        return torch.softmax(logits.float(), 1)
    wt, tc, et = torch.sigmoid(logits.float()).unbind(1)
    tc = torch.minimum(tc, wt)  # enforce nesting ET ⊂ TC ⊂ WT
    et = torch.minimum(et, tc)
    return torch.stack([1 - wt, tc - et, wt - tc, et], 1)


class SupervisedLoss(nn.Module):
    def __init__(self, kind: str = "dice_ce"):
        super().__init__()
        self.kind = kind
        if kind == "region":
            self.dice = DiceLoss(sigmoid=True, batch=True)
        else:
            self.dice_ce = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.kind == "region":
            target = region_targets(label)
            return self.dice(logits, target) + F.binary_cross_entropy_with_logits(logits, target)
        return self.dice_ce(logits, label.unsqueeze(1).long())
