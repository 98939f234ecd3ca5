"""Methods by name: each composes phases of the one engine; none subclasses it."""

from __future__ import annotations

from typing import Callable

from brats_ssl.data.batches import LABELED, Pool
from brats_ssl.run.context import RunContext
from brats_ssl.run.phase import PhaseResult, supervised_loss_fn, train_phase
from brats_ssl.errors import BadInputError


def train_teacher(ctx: RunContext) -> PhaseResult:
    """Supervised training on the labeled cases: the teacher of every semi-supervised method.
    Its final model (last checkpoint) comes back loaded, ready for labelling."""
    pools = [Pool(ctx.labeled_items(), ctx.config.train.batch_size, LABELED)]
    return train_phase(ctx, "teacher", pools=pools, loss_fn=supervised_loss_fn(ctx.config.train.loss),
                       steps=ctx.config.train.steps)


def run_supervised(ctx: RunContext) -> dict:
    teacher = train_teacher(ctx)
    return {**teacher.summary, "model": "teacher", "teacher": teacher.summary}


def _methods() -> dict[str, Callable[[RunContext], dict]]:
    from brats_ssl.ssl.baselines import run_consistency, run_self_training
    from brats_ssl.ssl.ours import run_ours

    return {
        "supervised": run_supervised,
        "ours": run_ours,
        "ours-control": lambda ctx: run_ours(ctx, unlabeled=False),
        "self-training": run_self_training,
        "mean-teacher": lambda ctx: run_consistency(ctx, uncertainty=False),
        "ua-mt": lambda ctx: run_consistency(ctx, uncertainty=True),
    }


def run_method(ctx: RunContext) -> dict:
    """The method's result, finished with the final model's post-processing (every method alike)."""
    from brats_ssl.finalize import finalize

    methods = _methods()
    runner = methods.get(ctx.config.method)
    if runner is None:
        raise BadInputError(f"--method {ctx.config.method!r}: valid methods are {', '.join(methods)}")
    return finalize(ctx, runner(ctx))
