"""Training-time augmentation of patches, built from MONAI dictionary transforms.

The image is interpolated bilinearly; every label-like map (labels, confidences, masks) with
nearest neighbour, so a pseudo-label and its confidence stay aligned voxel for voxel.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.data import set_track_meta
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandAffined,
    RandFlipd,
    RandomizableTransform,
    RandScaleIntensityd,
    RandShiftIntensityd,
)


class GaussianNoised(RandomizableTransform):
    """MONAI's ``RandGaussianNoised(key, prob, std)`` (σ drawn uniformly in [0, std], mean 0) with the
    noise drawn in float32 by torch: numpy's float64 normals took 32 ms per 4×64³ patch, torch's
    8 ms, and the batch build competes with training for the same cores."""

    def __init__(self, key: str, prob: float, std: float):
        super().__init__(prob)
        self.key, self.std = key, std

    def __call__(self, data: dict) -> dict:
        self.randomize(None)
        if not self._do_transform:
            return data
        sigma = float(self.R.uniform(0, self.std))
        generator = torch.Generator().manual_seed(int(self.R.randint(2**31)))
        image = torch.as_tensor(data[self.key])
        out = dict(data)
        out[self.key] = image + sigma * torch.randn(image.shape, generator=generator, dtype=image.dtype)
        return out


def build_augmentation(label_keys: tuple[str, ...]) -> Compose:
    """Augmentation of 3-D patches: ``image`` plus the label-like maps under ``label_keys``."""
    keys = ("image",) + tuple(label_keys)
    modes = ("bilinear",) + ("nearest",) * len(label_keys)
    return Compose(
        [
            RandAffined(
                keys, prob=0.2, rotate_range=(0.26,) * 3, scale_range=(0.1,) * 3, mode=modes, padding_mode="zeros"
            ),
            *[RandFlipd(keys, prob=0.5, spatial_axis=axis) for axis in range(3)],
            RandScaleIntensityd("image", factors=0.1, prob=0.3),
            RandShiftIntensityd("image", offsets=0.1, prob=0.3),
            RandAdjustContrastd("image", gamma=(0.7, 1.5), prob=0.2, retain_stats=True),
            GaussianNoised("image", prob=0.15, std=0.05),
        ]
    )


class Augmenter:
    """Applies the augmentation to one patch dict of numpy arrays, seeded per call.

    The label-like maps travel as the channels of one tensor: one nearest-neighbour resampling
    and one flip for all of them instead of one per map (the batch build competes with training
    for the same cores). A map is (*S) or, with channels of its own, (C, *S).
    """

    def __init__(self, label_keys: tuple[str, ...]):
        set_track_meta(False)  # plain tensors: MONAI metadata tracking costs time and is unused
        self.label_keys = label_keys
        self.transform = build_augmentation(("maps",) if label_keys else ())

    def __call__(self, patch: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
        self.transform.set_random_state(seed=seed % (2**32))
        data = {"image": torch.from_numpy(patch["image"])}
        spatial = patch["image"].shape[1:]
        channels = [patch[key].reshape(-1, *spatial) for key in self.label_keys]
        if self.label_keys:
            data["maps"] = torch.from_numpy(np.concatenate(channels).astype(np.float32))
        out = self.transform(data)
        result = dict(patch)
        result["image"] = np.asarray(out["image"], dtype=np.float32)
        if self.label_keys:
            maps = np.asarray(out["maps"]).round()
            first = 0
            for key, block in zip(self.label_keys, channels):
                result[key] = maps[first : first + len(block)].reshape(patch[key].shape).astype(patch[key].dtype)
                first += len(block)
        return result
