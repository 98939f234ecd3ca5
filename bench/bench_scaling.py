"""Scaling with the number of cases (synthetic cohorts of 10, 50, 200): time and peak memory of
MC pseudo-labeling and of one training epoch (one patch per case), each in a fresh process.
Time should grow linearly and memory stay flat: cases are memory-mapped, never all in RAM.

Usage: .venv/bin/python bench/bench_scaling.py [--sizes 10 50 200] [--shape 96 96 64] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch


def worker(data: Path, n: int, out: Path) -> None:
    from brats_ssl.config import preset
    from brats_ssl.data.batches import LABELED, BatchBuilder, Pool, batch_loader
    from brats_ssl.data.cache import PreprocessCache
    from brats_ssl.data.dataset import open_dataset
    from brats_ssl.data.preprocess import PreprocessParams
    from brats_ssl.data.sampling import TrainItem
    from brats_ssl.engine.trainer import Trainer
    from brats_ssl.inference import InferenceOptions, predict_volume
    from brats_ssl.run.model import build_model
    from brats_ssl.run.phase import supervised_loss_fn
    from brats_ssl.ssl.pseudolabels import PseudoLabel

    from common import peak_rss_mb

    torch.set_num_threads(2)
    config = preset("cpu")
    config.data.target_spacing = None  # the synthetic cohort is already at 2 mm
    config.train.val_every = 10**9
    cases = open_dataset(data).cases[:n]
    cache = PreprocessCache(PreprocessParams.from_config(config.data))
    for case in cases:  # build the cache outside the timed parts
        cache.get(case.without_seg())
        cache.get(case)
    model = build_model(config).eval()
    options = InferenceOptions.from_config(config)
    start = time.perf_counter()
    for case in cases:
        pre = cache.get(case.without_seg())
        PseudoLabel.from_prediction(predict_volume(model, pre.image, options, torch.device("cpu")), tau_neg=0.05).save(
            out / "pseudo" / case.case_id
        )
    label_seconds = time.perf_counter() - start
    label_rss = peak_rss_mb()
    items = [TrainItem(c.case_id, (p := cache.get(c)).image, {"label": p.seg}) for c in cases]
    builder = BatchBuilder(
        [Pool(items, config.train.batch_size, LABELED)],
        patch_size=tuple(config.train.patch_size),
        foreground_fraction=0.33,
        augment=True,
        seed=0,
        stream="scaling",
    )
    steps = max(1, n // config.train.batch_size)
    trainer = Trainer(
        model=build_model(config),
        loss_fn=supervised_loss_fn("dice_ce"),
        batches=lambda a, b: batch_loader(builder, a, b, 1),
        out_dir=out / "train",
        steps=steps,
        config=config.train,
        device=torch.device("cpu"),
        seed=0,
        checkpoint_every=10**9,
    )
    start = time.perf_counter()
    trainer.fit()
    epoch_seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "cases": n,
                "pseudo_label_s": label_seconds,
                "pseudo_label_peak_mb": label_rss,
                "epoch_steps": steps,
                "epoch_s": epoch_seconds,
                "peak_mb": peak_rss_mb(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--shape", type=int, nargs=3, default=[96, 96, 64], help="synthetic volume, 2 mm voxels")
    parser.add_argument("--work", default=str(Path(__file__).resolve().parent / "out" / "scaling"))
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker[0]), int(args.worker[1]), Path(args.worker[2]))
        return
    work = Path(args.work)
    data = work / ("cohort_" + "x".join(map(str, args.shape)))
    if not (data / "sites.csv").exists():
        from brats_ssl.data.synthetic import write_cohort

        write_cohort(data, cases=max(args.sizes), shape=tuple(args.shape), spacing=2.0, sites=4, seed=0)
    print(
        f"{'cases':>6} {'pseudo-label s':>15} {'s/case':>7} {'peak MB':>8} {'epoch s':>8} {'s/step':>7} {'peak MB':>8}"
    )
    for n in args.sizes:
        out = work / f"run_{n}_{data.name}"
        result = subprocess.run(
            [sys.executable, __file__, "--worker", str(data), str(n), str(out)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{n:>6} {r['pseudo_label_s']:>15.1f} {r['pseudo_label_s'] / n:>7.2f} {r['pseudo_label_peak_mb']:>8.0f} "
            f"{r['epoch_s']:>8.1f} {r['epoch_s'] / r['epoch_steps']:>7.2f} {r['peak_mb']:>8.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
