"""Time the CPU-preset TransASPP-UNet: train step fp32 vs bf16 + channels_last_3d, and split MC decoding.

Usage: .venv/bin/python bench/bench_network.py [--threads 2] [--repeats 7] [--preset cpu]
Other processes may share the CPU, so every figure is a median with its min-max spread.
"""

from __future__ import annotations

import argparse
import contextlib

import torch

from brats_ssl.config import preset
from brats_ssl.networks import build_network, count_parameters, enable_mc_dropout

from common import show, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--bf16-repeats", type=int, default=2, help="0 skips bf16 (very slow without AVX512-BF16)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = preset(args.preset)
    patch = config.train.patch_size
    model = build_network(config.model, patch_size=patch)
    print(
        f"preset {args.preset}: {config.model.name} features {config.model.features}, "
        f"{count_parameters(model):,} parameters, patch {patch}, batch {args.batch}, {args.threads} threads"
    )

    x = torch.randn(args.batch, 4, *patch)
    target = torch.randint(0, 4, (args.batch, *patch))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(inputs: torch.Tensor, autocast: bool) -> None:
        context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        optimizer.zero_grad(set_to_none=True)
        with context:
            loss = torch.nn.functional.cross_entropy(model(inputs), target)
        loss.backward()
        optimizer.step()

    model.train()
    show("train step fp32", timed(lambda: step(x, False), args.repeats))
    model.to(memory_format=torch.channels_last_3d)
    x_cl = x.to(memory_format=torch.channels_last_3d)
    show("train step fp32 + channels_last_3d", timed(lambda: step(x_cl, False), args.repeats))
    # Without AVX512-BF16/AMX, oneDNN has no bf16 convolution and PyTorch falls back to a very slow path.
    print(
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"oneDNN bf16 supported: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}",
        flush=True,
    )
    if args.bf16_repeats:
        show("train step bf16 autocast + channels_last_3d", timed(lambda: step(x_cl, True), args.bf16_repeats, 0))
    model.to(memory_format=torch.contiguous_format)

    window = x[:1]
    enable_mc_dropout(model)

    @torch.no_grad()
    def forwards() -> None:
        for _ in range(args.samples):
            model(window)

    @torch.no_grad()
    def split() -> None:
        state = model.encode(window)
        for _ in range(args.samples):
            model.decode(state)

    @torch.no_grad()
    def split_tiled() -> None:
        model.decode(model.encode(window).tile(args.samples))

    @torch.no_grad()
    def encode_only() -> None:
        model.encode(window)

    @torch.no_grad()
    def decode_only() -> None:
        model.decode(state)

    state = torch.no_grad()(model.encode)(window)
    full = timed(forwards, args.repeats)
    shared = timed(split, args.repeats)
    show(f"MC eval: forward x{args.samples}", full)
    show(f"MC eval: encode x1 + decode x{args.samples}", shared)
    tiled = timed(split_tiled, args.repeats)
    show(f"MC eval: encode x1 + decode(state.tile({args.samples}))", tiled)
    show("MC eval: encode x1", timed(encode_only, args.repeats))
    show("MC eval: decode x1", timed(decode_only, args.repeats))
    print(
        f"ratio (encode + {args.samples} decodes) / ({args.samples} forwards): {shared[0] / full[0]:.2f}; "
        f"tiled: {tiled[0] / full[0]:.2f}"
    )


if __name__ == "__main__":
    main()
