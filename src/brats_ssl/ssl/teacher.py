"""The supervised teacher phase, shared by every method that starts from a teacher, and the
supervised method, which is that phase alone."""

from __future__ import annotations

from brats_ssl.data.batches import LABELED, Pool
from brats_ssl.run.context import RunContext
from brats_ssl.run.method_result import MethodResult
from brats_ssl.run.phase import PhaseResult, supervised_loss_fn, train_phase

TEACHER_PHASE = "teacher"


def train_teacher(ctx: RunContext) -> PhaseResult:
    """Supervised training on the labeled cases: the teacher of every semi-supervised method.
    Its final model (last checkpoint) comes back loaded, ready for labelling."""
    pools = [Pool(ctx.labeled_items(), ctx.config.train.batch_size, LABELED)]
    return train_phase(
        ctx, TEACHER_PHASE, pools=pools, loss_fn=supervised_loss_fn(ctx.config.train.loss), steps=ctx.config.train.steps
    )


def run_supervised(ctx: RunContext) -> MethodResult:
    teacher = train_teacher(ctx)
    return MethodResult(final_phase=teacher.name, val=teacher.summary, teacher=teacher.summary)
