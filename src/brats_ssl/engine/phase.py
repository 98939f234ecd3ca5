"""A training phase (teacher, a student stage, a baseline) as one call on the one engine, and
the evaluation of its model on the validation cases in their original geometry.

With several processes each rank evaluates its share of the val cases; the per-case results are
gathered, so every rank holds the same metrics, and rank 0 writes the summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from brats_ssl import atomic
from brats_ssl.data.batches import BatchBuilder, Pool, batch_loader
from brats_ssl.data.io import read_seg, write_label_map
from brats_ssl.data.preprocess import restore_probabilities
from brats_ssl.engine import distributed
from brats_ssl.engine.checkpoint import load_model_weights
from brats_ssl.engine.context import RunContext
from brats_ssl.engine.trainer import LossFn, Trainer, TrainResult
from brats_ssl.inference import InferenceOptions, predict_volume
from brats_ssl.paths import inside, safe_name
from brats_ssl.metrics import case_metrics, region_dice, summarize


def make_validator(ctx: RunContext):
    """Dice per region on whole val cases, on the preprocessed grid (fast; used during training)."""
    cases = ctx.val[: ctx.config.train.val_cases] if ctx.config.train.val_cases else ctx.val
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


def evaluate_on_val(ctx: RunContext, model: nn.Module, out_dir: Path, *, save_predictions: bool = True) -> dict:
    """Val metrics in the original geometry (format of ``brats-ssl evaluate``) → out_dir/summary.json."""
    options = InferenceOptions.from_config(ctx.config, mc_samples=1, tta=False)

    def evaluate_case(case) -> dict:
        pre = ctx.preprocessed(case)
        prediction = predict_volume(model, pre.image, options, ctx.device)
        labels = restore_probabilities(prediction.probabilities.numpy(), pre.meta).argmax(0).astype(np.uint8)
        if save_predictions:
            write_label_map(case, labels, inside(out_dir / "val_predictions", f"{safe_name(case.case_id)}.nii.gz"))
        return {"case": case.case_id, **case_metrics(labels, read_seg(case), spacing=pre.meta.spacing)}

    per_case = distributed.gather_sharded([evaluate_case(c) for c in distributed.shard(ctx.val)], len(ctx.val))
    summary = summarize(per_case)
    if distributed.is_main():
        atomic.write_json(out_dir / "summary.json", summary)
    distributed.barrier()  # summary.json is on disk before any rank reads it
    return summary


def train_phase(
    ctx: RunContext,
    name: str,
    *,
    pools: list[Pool],
    loss_fn: LossFn,
    steps: int,
    init_from: Path | None = None,
    hooks: Iterable[Any] = (),
    model: nn.Module | None = None,
) -> tuple[nn.Module, TrainResult, dict]:
    """Train (or resume, or skip when finished) the phase ``name``; returns model, result, val summary."""
    cfg = ctx.config
    out_dir = ctx.run_dir / name
    model = model if model is not None else ctx.new_model()
    if init_from is not None and not (out_dir / "checkpoint_last.pt").exists():
        load_model_weights(model, init_from, fingerprint=ctx.fingerprint)
    builder = BatchBuilder(
        pools, patch_size=tuple(cfg.train.patch_size), batch_size=cfg.train.batch_size,
        foreground_fraction=cfg.train.foreground_fraction, augment=cfg.train.augment, seed=cfg.seed,
        stream=name, spatial_dims=3, rank=distributed.rank(), world=distributed.world_size(),
    )
    trainer = Trainer(
        model=model, loss_fn=loss_fn, batches=lambda a, b: batch_loader(builder, a, b, cfg.train.num_workers),
        out_dir=out_dir, steps=steps, config=cfg.train, device=ctx.device, seed=cfg.seed,
        validator=make_validator(ctx), hooks=hooks, fingerprint=ctx.fingerprint, description=name,
        progress=ctx.progress,
    )
    result = trainer.fit()
    load_model_weights(model, out_dir / "checkpoint_last.pt", fingerprint=ctx.fingerprint)
    model.to(ctx.device).eval()
    summary_path = out_dir / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
    elif ctx.val:
        summary = evaluate_on_val(ctx, model, out_dir)
    else:
        summary = {}
    return model, result, summary


def final_weights(ctx: RunContext, name: str) -> Path:
    return ctx.run_dir / name / "checkpoint_last.pt"


def supervised_loss_fn(kind: str) -> LossFn:
    from brats_ssl.losses import SupervisedLoss

    criterion = SupervisedLoss(kind)

    def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor], step: int):
        return criterion(model(batch["image"]), batch["label"]), {}

    return loss_fn
