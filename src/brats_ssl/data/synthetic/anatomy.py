"""Synthetic brain anatomy: an ellipsoidal, skull-stripped brain with an irregular outline, a
cortical grey-matter ribbon with sulci, interhemispheric fissure, lateral ventricles, deep grey
nuclei and white matter.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from brats_ssl.data.synthetic.fields import bounding_box, grid_for, smooth_field

TISSUES: tuple[str, ...] = ("background", "csf", "grey", "white", "deep_grey")
CSF, GREY, WHITE, DEEP_GREY = 1, 2, 3, 4


def _axes(shape: tuple[int, int, int], centre, semi) -> list[np.ndarray]:
    """Broadcastable normalised coordinates (x - centre) / semi-axis for each voxel axis."""
    out = []
    for axis, n in enumerate(shape):
        coord = (np.arange(n, dtype=np.float32) - float(centre[axis])) / float(semi[axis])  # stays float32
        view = [1, 1, 1]
        view[axis] = n
        out.append(coord.reshape(view))
    return out


def simulate_anatomy(rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Tissue map (indices into :data:`TISSUES`) and depth below the brain surface in voxels.

    Voxel axes are LPS (0: right → left, 1: anterior → posterior, 2: inferior → superior).
    Sizes scale with the volume, so small test volumes hold small brains of the same layout.
    """
    shape = tuple(int(s) for s in shape)  # type: ignore[assignment]
    semi = np.array([0.37 * shape[0], 0.44 * shape[1], 0.42 * shape[2]]) * rng.uniform(0.93, 1.03, 3)
    centre = np.array([(shape[0] - 1) / 2 + rng.uniform(-0.5, 0.5), (shape[1] - 1) / 2, 0.46 * shape[2]])
    mean_semi = float(semi.mean())
    k = mean_semi / 36.0  # 1 for the default 96x96x64 grid
    u, v, w = _axes(shape, centre, semi)
    # Brains are boxier than ellipsoids, narrower in front (v < 0 is anterior) and rounder on top
    # (w > 0) than at the base. Powers of the 1-D axes first: one full-size power instead of three.
    p = 2.4
    top = np.abs(w) ** np.where(w > 0, np.float32(2.0), np.float32(p))
    # The outline wobbles by ~3 % in radius, i.e. ~7 % in the sum of powers.
    power_sum = np.abs(u) ** p / (1.0 + 0.08 * v) ** p + np.abs(v) ** p + top
    power_sum *= 1.0 + 0.072 * smooth_field(rng, shape, grid_for(shape, 6))
    box = bounding_box(power_sum < 1.0)
    # From here on only the brain's box is computed.
    radius = power_sum[box] ** (1 / p)
    u, v, w = u[box[0]], v[:, box[1]], w[:, :, box[2]]
    centre = centre - np.array([s.start for s in box])
    sub = radius.shape
    brain = radius < 1.0
    depth = np.where(brain, (1.0 - radius) * mean_semi, 0.0).astype(np.float32)

    # Sulci: zero crossings of a random field are curved sheets; reading the field part way along
    # rays from the centre makes them run roughly perpendicular to the surface, as real sulci do.
    sulcus_depth = 0.24 * mean_semi * (1.0 + 0.35 * smooth_field(rng, sub, grid_for(sub, 8)))
    cortex = max(0.8, 1.15 * k) * (1.0 + 0.15 * smooth_field(rng, sub, grid_for(sub, 4)))
    folds = smooth_field(rng, sub, grid_for(sub, 26 * max(sub) / max(shape)), sigma=0.8)
    slope = np.sqrt(sum(g * g for g in np.gradient(folds)))
    sheet = np.abs(folds) / (slope + 1e-3)  # voxels to the nearest zero crossing
    shell = np.nonzero(brain & (depth < sulcus_depth))
    shell_radius = np.maximum(radius[shell], 0.3)
    towards_surface = (0.5 * shell_radius + 0.46) / shell_radius
    # A smooth displacement of the read-out points makes the sulci meander instead of running straight.
    warp_grid = grid_for(sub, 10 * max(sub) / max(shape))
    rays = [
        c + (i - c) * towards_surface + 2.5 * k * smooth_field(rng, sub, warp_grid)[shell]
        for i, c in zip(shell, centre)
    ]
    sulcus = np.full(sub, np.inf, np.float32)
    sulcus[shell] = ndimage.map_coordinates(sheet, rays, order=1, mode="nearest") / towards_surface

    csf = brain & ((depth < 0.5) | ((sulcus < 0.55) & (depth < sulcus_depth - 1.0)))
    grey = brain & ((depth < cortex + 0.5) | (sulcus < cortex + 0.55))
    # Interhemispheric fissure, lined by medial cortex, down to the corpus callosum.
    midline = np.abs(u * float(semi[0])) - 0.6
    upper = brain & (radius > 0.45)
    csf |= upper & (midline < 0)
    grey |= upper & (midline < cortex)
    tissue = np.where(brain, WHITE, 0).astype(np.uint8)
    tissue[grey] = GREY
    tissue[csf] = CSF
    # Deep structures, computed in the central box they occupy (|u| < 0.45, |v| < 0.5, |w| < 0.35).
    indices = [np.flatnonzero(np.abs(a.ravel()) < limit) for a, limit in ((u, 0.45), (v, 0.5), (w, 0.35))]
    central = tuple(slice(int(i[0]), int(i[-1]) + 1) for i in indices)
    u, v, w = u[central[0]], v[:, central[1]], w[:, :, central[2]]
    deep = tissue[central]
    inside = brain[central]
    # Deep grey nuclei (thalamus, basal ganglia) either side of the ventricles.
    for side in (-1, 1):
        nuclei = ((u - side * 0.22) / 0.12) ** 2 + ((v - 0.02) / 0.22) ** 2 + ((w + 0.05) / 0.14) ** 2 < 1
        deep[nuclei & inside] = DEEP_GREY
    # Lateral ventricles: bodies near the midline whose horns diverge, size varying between cases.
    size = rng.uniform(0.75, 1.35)
    for side in (-1, 1):
        bend = (v + 0.05) ** 2 / 0.38**2
        body = (
            ((u - side * (0.09 + 0.12 * bend)) / (0.075 * size)) ** 2
            + ((v + 0.05) / 0.38) ** 2
            + ((w - 0.12 + 0.08 * bend) / (0.16 * size)) ** 2
        ) < 1
        deep[body & inside] = CSF
    full_tissue = np.zeros(shape, np.uint8)
    full_tissue[box] = tissue
    full_depth = np.zeros(shape, np.float32)
    full_depth[box] = depth
    return full_tissue, full_depth
