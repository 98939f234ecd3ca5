"""Cost of uncertainty-aware pseudo-labeling: T = 8 MC with the shared encoder (encode once per
window, decode the 8 samples as one batch) vs 8 full passes vs one deterministic pass.

Usage: .venv/bin/python bench/bench_pseudolabel.py [--cases 4] [--samples 8] [--run RUN]
With --run, the run's trained final model is used (and the three labelings are compared);
otherwise a randomly initialised cpu-preset model (the timing does not depend on the weights).
"""

from __future__ import annotations

import argparse

import torch

from brats_ssl.config import preset
from brats_ssl.data.cache import PreprocessCache
from brats_ssl.data.dataset import open_dataset
from brats_ssl.data.preprocess import PreprocessParams
from brats_ssl.inference import InferenceOptions, predict_volume
from brats_ssl.networks import mc as mc_module
from brats_ssl.run.model import build_model

from common import show, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run", default=None)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.run:
        from brats_ssl.predict import load_run_model

        config, model = load_run_model(args.run, "final", torch.device("cpu"))
    else:
        config = preset("cpu")
        model = build_model(config).eval()
    from common import real_data

    dataset = open_dataset(args.data or real_data())
    cache = PreprocessCache(PreprocessParams.from_config(config.data))
    volumes = [cache.get(c.without_seg()).image for c in dataset.cases[: args.cases]]
    device = torch.device("cpu")
    one = InferenceOptions.from_config(config, mc_samples=1)
    many = InferenceOptions.from_config(config, mc_samples=args.samples)
    print(
        f"{args.cases} real cases at {config.data.target_spacing} mm, patch {config.train.patch_size}, "
        f"overlap {config.inference.overlap}, 2 threads; seconds per case"
    )

    def run(options, split=True):  # reads ``model`` when called: rebinding it below switches models
        original = mc_module.supports_split_mc
        if not split:  # force T full passes
            import brats_ssl.inference as inference

            inference.supports_split_mc = lambda m: False
        try:
            for volume in volumes:
                predict_volume(model, volume, options, device)
        finally:
            import brats_ssl.inference as inference

            inference.supports_split_mc = original

    single = timed(lambda: run(one), args.repeats)
    shared = timed(lambda: run(many), args.repeats)
    full = timed(lambda: run(many, split=False), args.repeats)
    rows = [
        ("1 deterministic pass", single),
        (f"T={args.samples} MC, shared encoder (default)", shared),
        (f"T={args.samples} MC, {args.samples} full passes", full),
    ]
    if not args.run:  # the cheap variant: dropout only before the 1x1 head
        config.model.mc_scope = "head"
        model = build_model(config).eval()
        rows.append((f"T={args.samples} MC, mc_scope head", timed(lambda: run(many), args.repeats)))
    n = len(volumes)
    for label, stats in rows:
        show(label, tuple(t / n for t in stats))
        print(f"{'':<52} = {stats[0] / single[0]:.2f}x one pass (target for T=8: <= 2.5x)")


if __name__ == "__main__":
    main()
