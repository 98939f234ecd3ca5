"""Methods by name: each composes phases of the one engine; none subclasses it."""

from __future__ import annotations

from typing import Callable

from brats_ssl.data.batches import LABELED, Pool
from brats_ssl.engine.context import RunContext
from brats_ssl.engine.phase import supervised_loss_fn, train_phase
from brats_ssl.errors import BadInputError


def train_teacher(ctx: RunContext):
    """Supervised training on the labeled cases: the teacher of every semi-supervised method."""
    pools = [Pool(ctx.labeled_items(), 1.0, LABELED)]
    return train_phase(ctx, "teacher", pools=pools, loss_fn=supervised_loss_fn(ctx.config.train.loss),
                       steps=ctx.config.train.steps)


def trained_teacher(ctx: RunContext):
    """The teacher phase (trained, resumed or found finished) and its final model, loaded for labelling."""
    from brats_ssl.engine.checkpoint import load_model_weights
    from brats_ssl.engine.phase import final_weights

    _, _, summary = train_teacher(ctx)
    model = ctx.new_model()
    load_model_weights(model, final_weights(ctx, "teacher"), fingerprint=ctx.fingerprint)
    return model.to(ctx.device), summary


def run_supervised(ctx: RunContext) -> dict:
    _, _, summary = train_teacher(ctx)
    return {**summary, "model": "teacher", "teacher": summary}


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
    methods = _methods()
    runner = methods.get(ctx.config.method)
    if runner is None:
        raise BadInputError(f"--method {ctx.config.method!r}: valid methods are {', '.join(methods)}")
    return runner(ctx)
