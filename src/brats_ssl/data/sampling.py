"""Random training patches with foreground oversampling, reproducible from (seed, step).

Every batch is a pure function of the seed and the step number, so a resumed run draws exactly
the batches an uninterrupted run would, and batches can be built in a worker process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_FOREGROUND_POINTS = 20000


@dataclass
class TrainItem:
    """One case as the sampler sees it: an image and per-voxel maps aligned with it."""

    case_id: str
    image: np.ndarray  # (C, X, Y, Z), float16 memmap
    maps: dict[str, np.ndarray]  # "label" uint8 and, for pseudo-labels, "confidence", "absent", ...
    foreground: np.ndarray = field(default=None)  # type: ignore[arg-type]  # (N, 3) tumour voxels, computed when None

    def __post_init__(self) -> None:
        if self.foreground is None:
            self.foreground = foreground_points(self.maps["label"])


def foreground_points(label: np.ndarray, seed: int = 0) -> np.ndarray:
    points = np.argwhere(np.asarray(label) > 0).astype(np.int32)
    if len(points) > MAX_FOREGROUND_POINTS:  # keep memory flat for huge tumours
        rng = np.random.default_rng(seed)
        points = points[rng.choice(len(points), MAX_FOREGROUND_POINTS, replace=False)]
    return points


def extract_patch(array: np.ndarray, start: tuple[int, ...], size: tuple[int, ...]) -> np.ndarray:
    """A window of the last len(size) axes starting at ``start``; zero-padded past the edges."""
    spatial = array.shape[-len(size) :]
    lead = array.shape[: -len(size)]
    out = np.zeros(lead + tuple(size), dtype=array.dtype)
    src, dst = [], []
    for s, n, d in zip(start, size, spatial):
        a, b = max(s, 0), min(s + n, d)
        src.append(slice(a, max(a, b)))
        dst.append(slice(a - s, a - s + max(0, b - a)))
    target: tuple[Any, ...] = (Ellipsis, *dst)
    source: tuple[Any, ...] = (Ellipsis, *src)
    out[target] = array[source]
    return out


def patch_start(
    rng: np.random.Generator, shape: tuple[int, ...], size: tuple[int, ...], centre: np.ndarray | None
) -> tuple[int, ...]:
    start = []
    for axis, (n, p) in enumerate(zip(shape, size)):
        if n <= p:  # volume smaller than the patch: centre it, pad both sides
            start.append(-((p - n) // 2))
        elif centre is not None:
            jitter = int(rng.integers(-p // 4, p // 4 + 1))
            start.append(int(np.clip(int(centre[axis]) - p // 2 + jitter, 0, n - p)))
        else:
            start.append(int(rng.integers(0, n - p + 1)))
    return tuple(start)


def sample_patch(
    item: TrainItem, size: tuple[int, ...], rng: np.random.Generator, foreground_fraction: float
) -> dict[str, np.ndarray]:
    """One patch: with probability ``foreground_fraction`` centred near a tumour voxel."""
    shape = item.image.shape[1:]
    centre = None
    if len(item.foreground) and rng.random() < foreground_fraction:
        centre = item.foreground[int(rng.integers(len(item.foreground)))]
    start = patch_start(rng, shape, size, centre)
    patch = {"image": extract_patch(item.image, start, size).astype(np.float32)}
    for key, values in item.maps.items():
        patch[key] = extract_patch(values, start, size)
    return patch
