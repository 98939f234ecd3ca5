"""Training step: our engine + TransASPP-UNet vs a plain MONAI UNet loop; fp32 vs bf16 +
channels_last; loader overhead (batches built from the cache in a worker vs already in memory).

Usage: MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 .venv/bin/python bench/bench_train_step.py [--steps 30]
Needs ../shared/data/brats-dev (its 2 mm cache is built on first use).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from monai.losses import DiceCELoss
from monai.networks.nets import UNet

from brats_ssl.config import preset
from brats_ssl.data.batches import LABELED, BatchBuilder, Pool, batch_loader
from brats_ssl.data.cache import PreprocessCache
from brats_ssl.data.dataset import open_dataset
from brats_ssl.data.preprocess import PreprocessParams
from brats_ssl.data.sampling import TrainItem
from brats_ssl.engine.trainer import Trainer
from brats_ssl.networks import count_parameters
from brats_ssl.run.model import build_model
from brats_ssl.run.phase import supervised_loss_fn

from common import peak_rss_mb, real_data


def engine_seconds_per_step(config, builder, steps: int, *, in_memory: bool, workers: int) -> float:
    model = build_model(config)
    if in_memory:
        cached = [builder(s) for s in range(steps + 3)]
        batches = lambda a, b: iter(cached[a:b])  # noqa: E731
    else:
        batches = lambda a, b: batch_loader(builder, a, b, workers)  # noqa: E731
    with tempfile.TemporaryDirectory() as out:
        warm = Trainer(
            model=model,
            loss_fn=supervised_loss_fn("dice_ce"),
            batches=batches,
            out_dir=Path(out) / "w",
            steps=3,
            config=config.train,
            device=torch.device("cpu"),
            seed=0,
        )
        warm.fit()  # warm-up: allocator, oneDNN primitives, worker start
        trainer = Trainer(
            model=model,
            loss_fn=supervised_loss_fn("dice_ce"),
            batches=batches,
            out_dir=Path(out) / "t",
            steps=steps,
            config=config.train,
            device=torch.device("cpu"),
            seed=0,
            checkpoint_every=10**9,
        )
        start = time.perf_counter()
        trainer.fit()
        return (time.perf_counter() - start) / steps


def monai_seconds_per_step(builder, steps: int, channels_last: bool) -> tuple[float, int]:
    """The plain loop a MONAI user writes: UNet, DiceCELoss, AdamW, tensors already in memory."""
    model = UNet(3, 4, 4, channels=(20, 40, 80, 160), strides=(2, 2, 2), num_res_units=2)  # ~1.9 M, like ours
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    cached = [builder(s) for s in range(steps + 3)]

    def step(batch):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(batch["image"].contiguous(memory_format=fmt)), batch["label"].unsqueeze(1))
        loss.backward()
        optimizer.step()

    for batch in cached[:3]:
        step(batch)
    start = time.perf_counter()
    for batch in cached[3:]:
        step(batch)
    return (time.perf_counter() - start) / steps, count_parameters(model)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--bf16-steps", type=int, default=2, help="0 skips bf16 (very slow without AVX512-BF16)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = preset("cpu")
    config.train.val_every = 10**9
    dataset = open_dataset(real_data())
    cache = PreprocessCache(PreprocessParams.from_config(config.data))
    items = [TrainItem(c.case_id, (p := cache.get(c)).image, {"label": p.seg}) for c in dataset.cases[:17]]
    builder = BatchBuilder(
        [Pool(items, config.train.batch_size, LABELED)],
        patch_size=tuple(config.train.patch_size),
        foreground_fraction=0.33,
        augment=True,
        seed=0,
        stream="bench",
    )
    params = count_parameters(build_model(config))
    print(
        f"cpu preset: TransASPP-UNet {params:,} parameters, batch {config.train.batch_size} x "
        f"{config.train.patch_size}, 2 threads, {args.steps} timed steps after 3 warm-up steps"
    )
    rows = []
    config.train.precision, config.train.channels_last = "fp32", True
    loaded = engine_seconds_per_step(config, builder, args.steps, in_memory=False, workers=1)
    inline = engine_seconds_per_step(config, builder, args.steps, in_memory=False, workers=0)
    memory = engine_seconds_per_step(config, builder, args.steps, in_memory=True, workers=0)
    rows += [
        ("engine fp32+channels_last, cache + 1 loader worker", loaded),
        ("engine fp32+channels_last, cache, batches built in-process", inline),
        ("engine fp32+channels_last, batches in memory", memory),
    ]
    config.train.channels_last = False
    rows.append(
        (
            "engine fp32, batches in memory",
            engine_seconds_per_step(config, builder, args.steps, in_memory=True, workers=0),
        )
    )
    if args.bf16_steps:  # minutes per step without AVX512-BF16/AMX; bench_network.py shows it too
        config.train.precision, config.train.channels_last = "bf16", True
        rows.append(
            (
                "engine bf16+channels_last, batches in memory",
                engine_seconds_per_step(config, builder, args.bf16_steps, in_memory=True, workers=0),
            )
        )
    monai, monai_params = monai_seconds_per_step(builder, args.steps, channels_last=True)
    rows.append((f"plain MONAI UNet loop ({monai_params:,} params) fp32+cl", monai))
    for label, seconds in rows:
        print(f"{label:<60} {seconds:7.3f} s/step  ({seconds / monai:5.2f}x MONAI loop)")
    print(
        f"loader overhead: {100 * (loaded - memory) / memory:+.1f} % with 1 worker, "
        f"{100 * (inline - memory) / memory:+.1f} % in-process (target <= 5 %)"
    )
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
