"""BCP baseline: bidirectional copy-paste with a mean teacher (Bai et al., CVPR 2023), as in the
paper's 3-D (LA) code path, in this project's engine.

The supervised teacher is BCP's pre-trained model (the paper pre-trains on the labeled scans with
copy-paste among them; here the teacher phase is the same supervised training every teacher-based
method starts from, so an experiment trains it once). Then one phase of ``ssl.stages ×
ssl.stage_steps`` steps: an EMA teacher (initialised from the teacher) labels the unlabeled patches
(argmax, the largest tumour component kept, as BCP's ``get_cut_mask``); each labeled patch and an
unlabeled one swap a box of 2/3 of the patch per axis both ways; the student learns Dice + CE on
the mixed patches, the pseudo-labeled voxels weighted by ``u_weight`` = 0.5 (BCP's default).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import nn
from torch.nn import functional as F

from brats_ssl.batch_mix import batch_counts
from brats_ssl.data.batches import LABELED, UNLABELED, Pool
from brats_ssl.engine.trainer import step_seed
from brats_ssl.run.context import RunContext
from brats_ssl.run.method_result import MethodResult
from brats_ssl.run.phase import final_weights, train_phase
from brats_ssl.ssl import copy_paste
from brats_ssl.ssl.baselines import student_steps, unlabeled_pool
from brats_ssl.ssl.losses import EMATeacher, learn_loss
from brats_ssl.ssl.teacher import train_teacher

PHASE = "bcp"
U_WEIGHT = 0.5  # BCP's weight of the pseudo-labeled voxels of a mixed patch


def largest_component(labels: torch.Tensor) -> torch.Tensor:
    """Per sample, the tumour classes inside the largest connected tumour component only."""
    out = labels.clone()
    for b in range(labels.shape[0]):
        tumour = labels[b].cpu().numpy() > 0
        components, count = ndimage.label(tumour)
        if count > 1:
            sizes = np.bincount(components.ravel())[1:]
            keep = torch.from_numpy(components == 1 + int(np.argmax(sizes))).to(labels.device)
            out[b] = torch.where(keep, labels[b], torch.zeros_like(labels[b]))
    return out


class BCPLoss:
    """``loss_fn(model, batch, step)``: copy-paste labeled and EMA-pseudo-labeled patches both ways."""

    def __init__(self, *, teacher: EMATeacher, ratio: float, seed: int):
        self.teacher, self.ratio, self.seed = teacher, ratio, seed

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], step: int):
        generator = torch.Generator().manual_seed(step_seed(self.seed, step, 11))
        kind = batch["kind"]
        labeled, unlabeled = (kind == LABELED).nonzero().flatten(), (kind == UNLABELED).nonzero().flatten()
        image, label = batch["image"].clone(), batch["label"].clone()
        with torch.no_grad():
            self.teacher.model.eval()
            pseudo = largest_component(self.teacher.model(image[unlabeled]).argmax(1))
        label[unlabeled] = pseudo
        weight = torch.where(
            (kind == LABELED).view(-1, *([1] * (label.dim() - 1))),
            torch.ones_like(label, dtype=torch.float32),
            torch.full_like(label, U_WEIGHT, dtype=torch.float32),
        )
        for i, j in zip(labeled.tolist(), unlabeled.tolist()):
            a = {"image": image[i], "label": label[i], "weight": weight[i]}
            b = {"image": image[j], "label": label[j], "weight": weight[j]}
            into_a, into_b = copy_paste.bidirectional(a, b, ratio=self.ratio, generator=generator)
            for key, target in (("image", image), ("label", label), ("weight", weight)):
                target[i], target[j] = into_a[key], into_b[key]
        log_p = F.log_softmax(model(image).float(), 1)
        valid = torch.ones_like(label, dtype=torch.bool)
        loss = learn_loss(log_p, label, weight, valid, 0.0, weighted=True)
        return loss, {"pseudo_tumour": float((pseudo > 0).float().mean())}


def run_bcp(ctx: RunContext) -> MethodResult:
    cfg, s = ctx.config, ctx.config.ssl
    teacher = train_teacher(ctx)
    model = ctx.new_model()
    ema = EMATeacher(teacher.model, s.ema_decay)
    n_labeled, n_unlabeled = batch_counts(cfg.train.batch_size, s.unlabeled_ratio, s.pseudo_fraction)
    pools = [Pool(ctx.labeled_items(), n_labeled, LABELED), unlabeled_pool(ctx, n_unlabeled)]
    loss = BCPLoss(teacher=ema, ratio=s.copy_paste_ratio, seed=cfg.seed)
    result = train_phase(
        ctx,
        PHASE,
        pools=pools,
        loss_fn=loss,
        steps=student_steps(ctx),
        hooks=[ema],
        model=model,
        init_from=final_weights(ctx, teacher.name),
    )
    return MethodResult(final_phase=PHASE, val=result.summary, teacher=teacher.summary, student=result.summary)
