"""A training phase (teacher, a student stage, a baseline) as one call on the one engine, and
the evaluation of its model on the validation cases in their original geometry.

With several processes each rank evaluates its share of the val cases; the per-case results are
gathered, so every rank holds the same metrics, and rank 0 writes the summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from brats_ssl import atomic
from brats_ssl.data.batches import BatchBuilder, Pool, batch_loader
from brats_ssl.data.conventions import REGIONS
from brats_ssl.data.io import read_seg, write_label_map
from brats_ssl.data.preprocess import restore_probabilities
from brats_ssl.data.strong_views import with_strong_labeled_views
from brats_ssl.engine import distributed
from brats_ssl.engine.checkpoint import LAST_CHECKPOINT, load_model_weights
from brats_ssl.engine.device import to_memory_format
from brats_ssl.engine.progress_plot import ValidationView
from brats_ssl.engine.trainer import LossFn, Trainer, TrainResult
from brats_ssl.inference import InferenceOptions, predict_volume
from brats_ssl.metrics import case_metrics, mean_region_dice, region_dice, summarize, summary_score
from brats_ssl.paths import inside, safe_name
from brats_ssl.records import Summary
from brats_ssl.run.context import RunContext
from brats_ssl.viz import REGION_COLOURS

# What the trainer shows of the validator's Dice: every region and label in progress.png, the
# BraTS regions (the selection score's terms) on the progress bar.
VALIDATION_VIEW = ValidationView(colours=REGION_COLOURS, bar=tuple(REGIONS), title="validation Dice")


def make_validator(ctx: RunContext):
    """Dice per region on whole cases of the chooser set (the selection cases, or the val cases
    when the split has none), on the preprocessed grid: fast; picks the best checkpoint."""
    cases = ctx.chooser[: ctx.config.train.val_cases] if ctx.config.train.val_cases else ctx.chooser
    options = InferenceOptions.from_config(ctx.config, mc_samples=1, tta=False)
    if not cases:
        return None

    def validate(model: nn.Module) -> dict[str, float]:
        def case_dice(case) -> dict[str, float]:
            pre = ctx.preprocessed(case)
            labels = predict_volume(model, pre.image, options, ctx.device).labels.numpy()
            return region_dice(labels, np.asarray(pre.seg))

        per_case = distributed.gather_sharded([case_dice(c) for c in distributed.shard(cases)], len(cases))
        scores: dict[str, list[float]] = {}
        for dice in per_case:
            for key, value in dice.items():
                scores.setdefault(key, []).append(value)
        return {k: float(np.mean(v)) for k, v in scores.items()}

    return validate


def evaluate_cases(
    ctx: RunContext, model: nn.Module, cases: list, out_dir: Path, *, kind: str = "val", save_predictions: bool = True
) -> Summary:
    """Metrics of ``cases`` in their original geometry (format of ``brats-ssl evaluate``) →
    ``out_dir/<summary file of kind>``; predictions in ``out_dir/<kind>_predictions/``."""
    options = InferenceOptions.from_config(ctx.config, mc_samples=1, tta=False)

    def evaluate_case(case) -> dict:
        pre = ctx.preprocessed(case)
        prediction = predict_volume(model, pre.image, options, ctx.device)
        labels = restore_probabilities(prediction.probabilities.numpy(), pre.meta).argmax(0).astype(np.uint8)
        if save_predictions:
            write_label_map(case, labels, prediction_path(out_dir, case.case_id, kind))
        return {"case": case.case_id, **case_metrics(labels, read_seg(case), spacing=pre.meta.spacing)}

    per_case = distributed.gather_sharded([evaluate_case(c) for c in distributed.shard(cases)], len(cases))
    summary = summarize(per_case)
    if distributed.is_main():
        atomic.write_json(out_dir / SUMMARY_FILES[kind], summary)
    distributed.barrier()  # the summary is on disk before any rank reads it
    return summary


def evaluate_on_val(ctx: RunContext, model: nn.Module, out_dir: Path, *, save_predictions: bool = True) -> Summary:
    return evaluate_cases(ctx, model, ctx.val, out_dir, kind="val", save_predictions=save_predictions)


SUMMARY_FILES = {"val": "summary.json", "selection": "selection_summary.json"}


def prediction_path(out_dir: Path, case_id: str, kind: str) -> Path:
    return inside(out_dir / f"{kind}_predictions", f"{safe_name(case_id)}.nii.gz")


@dataclass
class PhaseResult:
    """A finished training phase: its final model (the last checkpoint's weights), the training
    record, and its metrics on the val cases (reported) and on the chooser cases (decisions)."""

    name: str
    model: nn.Module
    train: TrainResult
    summary: Summary  # val cases, original geometry
    choice: Summary  # selection cases (the val summary itself when the split has none)

    @property
    def score(self) -> float:
        """What choices compare: mean WT/TC/ET Dice on the chooser cases (-inf without cases)."""
        return summary_score(self.choice)


def _phase_summary(ctx: RunContext, model: nn.Module, out_dir: Path, kind: str, cases: list) -> Summary:
    path = out_dir / SUMMARY_FILES[kind]
    if path.exists():
        return json.loads(path.read_text())
    return evaluate_cases(ctx, model, cases, out_dir, kind=kind) if cases else {}


def train_phase(
    ctx: RunContext,
    name: str,
    *,
    pools: list[Pool],
    loss_fn: LossFn,
    steps: int,
    init_from: Path | None = None,
    init_optimizer: bool = False,
    schedule_window: tuple[int, int] | None = None,
    hooks: Iterable[Any] = (),
    model: nn.Module | None = None,
) -> PhaseResult:
    """Train (or resume, or skip when finished) the phase ``name``. ``init_from``: start from that
    checkpoint's weights (and, with ``init_optimizer``, its optimizer state)."""
    cfg = ctx.config
    out_dir = ctx.run_dir / name
    model = model if model is not None else ctx.new_model()
    optimizer_state = None
    if init_from is not None and not (out_dir / LAST_CHECKPOINT).exists():
        state = load_model_weights(model, init_from, fingerprint=ctx.fingerprint)
        optimizer_state = state.get("optimizer") if init_optimizer else None
    builder = BatchBuilder(
        pools,
        patch_size=tuple(cfg.train.patch_size),
        foreground_fraction=cfg.train.foreground_fraction,
        augment=cfg.train.augment,
        seed=cfg.seed,
        stream=name,
        rank=distributed.rank(),
        world=distributed.world_size(),
    )
    # train.strong_views: the labeled patches of every phase, so a control continues the teacher's training as it was
    loss_fn = with_strong_labeled_views(loss_fn, cfg.train.strong_views, seed=cfg.seed, stream=name)
    trainer = Trainer(
        model=model,
        loss_fn=loss_fn,
        batches=lambda a, b: batch_loader(builder, a, b, cfg.train.num_workers),
        out_dir=out_dir,
        steps=steps,
        config=cfg.train,
        device=ctx.device,
        seed=cfg.seed,
        validator=make_validator(ctx),
        score=mean_region_dice,
        view=VALIDATION_VIEW,
        hooks=hooks,
        fingerprint=ctx.fingerprint,
        description=name,
        progress=ctx.progress,
        schedule_window=schedule_window,
        optimizer_state=optimizer_state,
    )
    result = trainer.fit()
    load_model_weights(model, out_dir / LAST_CHECKPOINT, fingerprint=ctx.fingerprint)
    # The same memory format whether the phase trained in this process or was found finished:
    # the kernels (and their last bits) depend on it, and a resumed run must equal an uninterrupted one.
    to_memory_format(model.to(ctx.device), cfg.train.channels_last).eval()
    summary = _phase_summary(ctx, model, out_dir, "val", ctx.val)
    choice = _phase_summary(ctx, model, out_dir, "selection", ctx.selection) if ctx.selection else summary
    return PhaseResult(name, model, result, summary, choice)


def final_weights(ctx: RunContext, name: str) -> Path:
    return ctx.run_dir / name / LAST_CHECKPOINT


def supervised_loss_fn(kind: str) -> LossFn:
    from brats_ssl.losses import SupervisedLoss

    criterion = SupervisedLoss(kind)

    def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor], step: int):
        return criterion(model(batch["image"]), batch["label"]), {}

    return loss_fn
