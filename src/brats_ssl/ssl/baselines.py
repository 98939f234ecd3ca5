"""Baselines in the same engine, networks and presets: plain self-training, Mean Teacher, UA-MT.

Like ours, each trains on the full labeled batch plus ``ssl.unlabeled_ratio`` pseudo-labeled /
unlabeled patches per labeled one.
"""

from __future__ import annotations

import numpy as np

from brats_ssl.batch_mix import batch_counts
from brats_ssl.data.batches import LABELED, UNLABELED, Pool
from brats_ssl.data.sampling import TrainItem
from brats_ssl.run.context import RunContext
from brats_ssl.run.method_result import MethodResult
from brats_ssl.run.phase import final_weights, train_phase
from brats_ssl.ssl.labelling import label_pool, pseudo_pool
from brats_ssl.ssl.losses import ConsistencyLoss, DualLoss, EMATeacher
from brats_ssl.ssl.teacher import TEACHER_PHASE, train_teacher


def student_steps(ctx: RunContext) -> int:
    return ctx.config.ssl.stages * ctx.config.ssl.stage_steps


def _counts(ctx: RunContext) -> tuple[int, int]:
    s = ctx.config.ssl
    return batch_counts(ctx.config.train.batch_size, s.unlabeled_ratio, s.pseudo_fraction)


def run_self_training(ctx: RunContext) -> MethodResult:
    """All pseudo-labels (one deterministic pass), no uncertainty, no curriculum, no unlearning."""
    cfg, s = ctx.config, ctx.config.ssl
    teacher = train_teacher(ctx)
    pseudo = label_pool(
        ctx,
        teacher.model,
        ctx.unlabeled,
        ctx.run_dir / "pseudo" / "round_0",
        mc=1,
        tta=False,
        description="pseudo-label",
    )
    steps = student_steps(ctx)
    loss = DualLoss(
        output=cfg.train.loss,
        tau=0.0,
        beta=0.0,
        unlearn="none",
        weighted=False,
        lambda_max=s.lambda_max,
        rampup_steps=int(s.rampup_fraction * s.stage_steps),
    )
    n_labeled, n_pseudo = _counts(ctx)
    pools = [
        Pool(ctx.labeled_items(), n_labeled, LABELED),
        pseudo_pool(ctx, pseudo, [c.case_id for c in ctx.unlabeled], n_pseudo),
    ]
    student = train_phase(
        ctx, "student", pools=pools, loss_fn=loss, steps=steps, init_from=final_weights(ctx, TEACHER_PHASE)
    )
    return MethodResult(final_phase=student.name, val=student.summary, teacher=teacher.summary, student=student.summary)


def unlabeled_pool(ctx: RunContext, samples: int) -> Pool:
    items = [
        TrainItem(c.case_id, ctx.preprocessed(c).image, {}, foreground=np.zeros((0, 3), np.int32))
        for c in ctx.unlabeled
    ]
    return Pool(items, samples, UNLABELED)


def run_consistency(ctx: RunContext, *, uncertainty: bool) -> MethodResult:
    """Mean Teacher (``uncertainty=False``) or UA-MT, trained from scratch for the same total
    number of steps as the method's teacher plus its student stages."""
    cfg, s = ctx.config, ctx.config.ssl
    steps = cfg.train.steps + student_steps(ctx)
    model = ctx.new_model()
    teacher = EMATeacher(model, s.ema_decay)
    loss = ConsistencyLoss(
        teacher=teacher,
        output=cfg.train.loss,
        weight=s.consistency_weight,
        rampup_steps=int(s.rampup_fraction * steps),
        total_steps=steps,
        uncertainty_passes=cfg.inference.mc_samples if uncertainty else 0,
        noise=s.consistency_noise,
        shared_encoder=s.uamt_shared_encoder,
    )
    n_labeled, n_unlabeled = _counts(ctx)
    pools = [Pool(ctx.labeled_items(), n_labeled, LABELED), unlabeled_pool(ctx, n_unlabeled)]
    name = "ua_mt" if uncertainty else "mean_teacher"
    result = train_phase(ctx, name, pools=pools, loss_fn=loss, steps=steps, hooks=[teacher], model=model)
    return MethodResult(final_phase=result.name, val=result.summary, student=result.summary)


def run_mean_teacher(ctx: RunContext) -> MethodResult:
    return run_consistency(ctx, uncertainty=False)


def run_ua_mt(ctx: RunContext) -> MethodResult:
    return run_consistency(ctx, uncertainty=True)
