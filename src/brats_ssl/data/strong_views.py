"""The strong view of a batch of patches, for weak-to-strong consistency (FixMatch, UniMatch).

A teacher predicts on the weak view (the patches as the training augmentation left them); the
student learns those targets on a strong view of the same voxels: contrast, intensity and gamma
changed per modality, blur, noise, cut-out boxes, and now and then one modality blanked (a
sequence a site did not acquire). Nothing moves, so targets, labels and confidences stay aligned
voxel for voxel. Intensity changes stay inside the brain: the background remains 0, as the model
always sees it.

Written as batched torch operations in the training step rather than MONAI's per-sample
dictionary transforms: those cost ≈ 0.3 s per 4 × 64³ patch on this project's CPUs (Gaussian
smoothing and numpy noise), more than a training step.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

if TYPE_CHECKING:
    from brats_ssl.engine.trainer import LossFn


@dataclass(frozen=True)
class StrongViewConfig:
    scale: float = 0.25  # per modality intensity factor in [1 - scale, 1 + scale]
    shift: float = 0.25  # per modality offset in [-shift, shift] (the patches are z-scored)
    gamma: tuple[float, float] = (0.7, 1.5)  # per modality, on intensities rescaled to [0, 1], p = 0.5
    blur_prob: float = 0.3  # Gaussian blur, sigma in [0.5, 1] voxel
    noise_std: float = 0.1  # Gaussian noise, std in [0, noise_std], p = 0.5
    cutout_prob: float = 0.5  # 1 to 3 boxes of 1/8 to 1/4 of the patch per axis set to 0
    modality_dropout: float = 0.2  # one modality set to 0


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, *S) with a 5-tap kernel per axis."""
    taps = torch.arange(-2, 3, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels, spatial = x.shape[0], x.dim() - 1
    out = x.unsqueeze(0)
    conv = (F.conv1d, F.conv2d, F.conv3d)[spatial - 1]
    for axis in range(spatial):
        shape = [1] * spatial
        shape[axis] = 5
        weight = kernel.view(1, 1, *shape).repeat(channels, 1, *([1] * spatial))
        padding = [0] * spatial
        padding[axis] = 2
        out = conv(out, weight, padding=padding, groups=channels)
    return out[0]


def strong_view(
    images: torch.Tensor, generator: torch.Generator, config: StrongViewConfig = StrongViewConfig()
) -> torch.Tensor:
    """The strong view of ``images`` (B, C, *S); random draws from ``generator`` (seed it per step
    for a reproducible, resumable run)."""

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=generator, dtype=images.dtype, device="cpu")

    out = images.clone()
    batch, channels = images.shape[:2]
    spatial = images.shape[2:]
    view = (batch, channels) + (1,) * len(spatial)
    brain = (images != 0).any(dim=1, keepdim=True)
    out = out * uniform(1 - config.scale, 1 + config.scale, batch, channels).view(view).to(out.device)
    out = out + uniform(-config.shift, config.shift, batch, channels).view(view).to(out.device)
    for b in range(batch):
        if float(uniform(0, 1, 1)) < 0.5:  # gamma on intensities rescaled to [0, 1], mean and std kept
            per_channel = (channels,) + (1,) * len(spatial)
            low, high = (v.view(per_channel) for v in torch.aminmax(out[b].flatten(1), dim=1))
            std, mean = torch.std_mean(out[b].flatten(1), dim=1)
            gamma = uniform(*config.gamma, channels).view(per_channel).to(out.device)
            x = ((out[b] - low) / (high - low).clamp_min(1e-6)).pow(gamma)
            new_std, new_mean = torch.std_mean(x.flatten(1), dim=1)
            scale = (std / new_std.clamp_min(1e-6)).view(per_channel)
            out[b] = (x - new_mean.view(per_channel)) * scale + mean.view(per_channel)
        if float(uniform(0, 1, 1)) < config.blur_prob:
            out[b] = _blur(out[b], float(uniform(0.5, 1.0, 1)))
        if float(uniform(0, 1, 1)) < 0.5:
            noise_std = float(uniform(0, config.noise_std, 1))
            out[b] = out[b] + noise_std * torch.randn(out[b].shape, generator=generator, dtype=out.dtype).to(out.device)
    out = out * brain  # intensity changes stay inside the brain
    for b in range(batch):
        if float(uniform(0, 1, 1)) < config.cutout_prob:
            for _ in range(int(torch.randint(1, 4, (1,), generator=generator))):
                box = []
                for size in spatial:
                    length = int(torch.randint(max(1, size // 8), max(2, size // 4 + 1), (1,), generator=generator))
                    start = int(torch.randint(0, size - length + 1, (1,), generator=generator))
                    box.append(slice(start, start + length))
                index: tuple[int | slice, ...] = (b, slice(None), *box)
                out[index] = 0
        if channels > 1 and float(uniform(0, 1, 1)) < config.modality_dropout:
            out[b, int(torch.randint(0, channels, (1,), generator=generator))] = 0
    return out


def strong_view_some(images: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """``images`` (B, C, *S) with each patch replaced by its strong view with ``probability``, the
    others left as they are (a supervised batch: the teacher learns the true labels on both kinds)."""
    if probability <= 0:
        return images
    chosen = (torch.rand(images.shape[0], generator=generator) < probability).to(images.device)
    if not bool(chosen.any()):
        return images
    out = images.clone()
    out[chosen] = strong_view(images[chosen], generator)
    return out


def with_strong_labeled_views(loss_fn: LossFn, probability: float, *, seed: int, stream: str) -> LossFn:
    """``loss_fn`` fed each labeled patch of its batch (``kind`` LABELED) as its strong view with
    ``probability`` (``train.strong_views``), labels unchanged; pseudo-labeled and unlabeled patches
    are left to the loss (ours' student makes their strong views itself, from their weak ones).
    The draws are a function of (seed, phase, step), so a resumed phase sees the views an
    uninterrupted one would."""
    if probability <= 0:
        return loss_fn
    from brats_ssl.data.batches import LABELED
    from brats_ssl.engine.trainer import step_seed

    stream_id = zlib.crc32(stream.encode())

    def wrapped(model, batch: dict[str, torch.Tensor], step: int):
        labeled = batch["kind"] == LABELED
        if bool(labeled.any()):
            generator = torch.Generator().manual_seed((step_seed(seed, step, 11) + stream_id) % 2**63)
            image = batch["image"].clone()
            image[labeled] = strong_view_some(batch["image"][labeled], probability, generator)
            batch = {**batch, "image": image}
        return loss_fn(model, batch, step)

    return wrapped
