"""Smooth random fields for the synthetic cohort, and the box a mask occupies.

A field is small Gaussian-filtered noise on a coarse grid, upsampled with cubic B-splines one
axis at a time (what ``scipy.ndimage.zoom`` does, as three small matrix products), so a 96x96x64
case takes about a tenth of a second to simulate on one core.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage


@lru_cache(maxsize=64)
def _upsampling_matrix(n_low: int, n_high: int) -> np.ndarray:
    """(n_high, n_low) matrix doing cubic-spline zoom along one axis (scipy.ndimage.zoom on the identity)."""
    eye = np.eye(n_low, dtype=np.float64)
    matrix = ndimage.zoom(eye, (n_high / n_low, 1.0), order=3, mode="reflect", grid_mode=True)
    return matrix.astype(np.float32)


def smooth_field(
    rng: np.random.Generator, shape: tuple[int, ...], grid: tuple[int, ...], *, sigma: float = 0.8
) -> np.ndarray:
    """A smooth random 3-D field of about unit standard deviation: noise on a coarse ``grid``,
    Gaussian-filtered, then upsampled to ``shape`` one axis at a time (three matrix products)."""
    coarse = ndimage.gaussian_filter(rng.standard_normal(grid), sigma, mode="reflect")
    coarse = ((coarse - coarse.mean()) / (coarse.std() + 1e-8)).astype(np.float32)
    along_x, along_y, along_z = (_upsampling_matrix(n, m) for n, m in zip(grid, shape))
    field = np.tensordot(along_x, coarse, axes=1)  # (X, gy, gz)
    field = np.matmul(along_y, field)  # (X, Y, gz)
    return np.ascontiguousarray(field @ along_z.T)  # (X, Y, Z)


def grid_for(shape: tuple[int, ...], cells: float) -> tuple[int, ...]:
    """A coarse grid with about ``cells`` points along the longest axis, at least 3 per axis."""
    longest = max(shape)
    return tuple(max(3, int(round(cells * s / longest))) for s in shape)


def bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    """Tightest box around a non-empty 3-D mask."""
    box = []
    for axis in range(3):
        hits = np.flatnonzero(np.any(mask, axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)  # type: ignore[return-value]
