"""Baselines in the same engine, networks and presets: plain self-training, Mean Teacher, UA-MT."""

from __future__ import annotations

import numpy as np

from brats_ssl.data.batches import LABELED, UNLABELED, Pool
from brats_ssl.data.sampling import TrainItem
from brats_ssl.engine.context import RunContext
from brats_ssl.engine.phase import final_weights, train_phase
from brats_ssl.ssl.labelling import label_pool, pseudo_pool
from brats_ssl.ssl.losses import ConsistencyLoss, DualLoss, EMATeacher


def student_steps(ctx: RunContext) -> int:
    return ctx.config.ssl.stages * ctx.config.ssl.stage_steps


def run_self_training(ctx: RunContext) -> dict:
    """All pseudo-labels (one deterministic pass), no uncertainty, no curriculum, no unlearning."""
    from brats_ssl.ssl.methods import trained_teacher

    cfg, s = ctx.config, ctx.config.ssl
    teacher, teacher_summary = trained_teacher(ctx)
    pseudo = label_pool(ctx, teacher, ctx.unlabeled, ctx.run_dir / "pseudo" / "round_0", mc=1, tta=False,
                        description="pseudo-label")
    steps = student_steps(ctx)
    loss = DualLoss(output=cfg.train.loss, tau=0.0, beta=0.0, unlearn="none", weighted=False,
                    lambda_max=s.lambda_max, rampup_steps=int(s.rampup_fraction * s.stage_steps))
    pools = [Pool(ctx.labeled_items(), 1 - s.pseudo_fraction, LABELED),
             pseudo_pool(ctx, pseudo, [c.case_id for c in ctx.unlabeled], s.pseudo_fraction)]
    _, _, summary = train_phase(ctx, "student", pools=pools, loss_fn=loss, steps=steps,
                                init_from=final_weights(ctx, "teacher"))
    return {**summary, "model": "student", "teacher": teacher_summary, "student": summary}


def unlabeled_pool(ctx: RunContext, share: float) -> Pool:
    items = [TrainItem(c.case_id, ctx.preprocessed(c).image, {}, foreground=np.zeros((0, 3), np.int32))
             for c in ctx.unlabeled]
    return Pool(items, share, UNLABELED)


def run_consistency(ctx: RunContext, *, uncertainty: bool) -> dict:
    """Mean Teacher (``uncertainty=False``) or UA-MT, trained from scratch for the same total
    number of steps as the method's teacher plus its student stages."""
    cfg, s = ctx.config, ctx.config.ssl
    steps = cfg.train.steps + student_steps(ctx)
    model = ctx.new_model()
    teacher = EMATeacher(model, s.ema_decay)
    loss = ConsistencyLoss(teacher=teacher, output=cfg.train.loss, weight=s.consistency_weight,
                           rampup_steps=int(0.4 * steps), total_steps=steps,
                           uncertainty_passes=cfg.inference.mc_samples if uncertainty else 0)
    pools = [Pool(ctx.labeled_items(), 1 - s.pseudo_fraction, LABELED), unlabeled_pool(ctx, s.pseudo_fraction)]
    name = "ua_mt" if uncertainty else "mean_teacher"
    _, _, summary = train_phase(ctx, name, pools=pools, loss_fn=loss, steps=steps, hooks=[teacher],
                                model=model)
    return {**summary, "model": name, "student": summary}
