"""A synthetic glioma in one hemisphere: necrotic core (NCR), a patchy enhancing rim (ET) and an
edema halo (ED) that spreads through white matter and fades towards its border; LGG-like tumours
have a non-enhancing core and edema only. Shapes are spheres distorted by smooth random fields.
"""

from __future__ import annotations

import numpy as np

from brats_ssl.data.synthetic.anatomy import CSF, DEEP_GREY, GREY, WHITE
from brats_ssl.data.synthetic.fields import grid_for, smooth_field


def _tumour_box(centre: np.ndarray, reach: float, shape) -> tuple[slice, ...]:
    return tuple(slice(max(int(c - reach), 0), min(int(c + reach) + 2, n)) for c, n in zip(centre, shape))


def _tumour_centre(rng: np.random.Generator, tissue: np.ndarray, depth: np.ndarray, min_depth: float) -> np.ndarray:
    """A centre in one hemisphere, deep enough inside the brain and off the ventricles."""
    shape = np.array(tissue.shape)
    for _ in range(50):
        side = rng.choice((-1, 1))
        centre = np.array(
            [
                shape[0] / 2 + side * rng.uniform(0.07, 0.20) * shape[0],
                rng.uniform(0.2, 0.8) * shape[1],
                rng.uniform(0.35, 0.72) * shape[2],
            ]
        )
        index = tuple(np.clip(np.round(centre).astype(int), 0, shape - 1))
        if depth[index] > min_depth and tissue[index] != CSF:
            break
    return centre


def simulate_tumour(
    rng: np.random.Generator, tissue: np.ndarray, depth: np.ndarray, *, grade: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Internal label map, edema strength (1 near the core, 0.1 at the edema border) and a
    tumour texture field, all full size. Shapes are spheres distorted by smooth random fields."""
    shape = tissue.shape
    brain_radius = float(np.cbrt(np.count_nonzero(tissue) * 3 / (4 * np.pi)))
    lgg = grade == "LGG"
    core_r = brain_radius * rng.uniform(0.15, 0.32) * (0.85 if lgg else 1.0)
    edema_r = core_r + brain_radius * rng.uniform(0.08, 0.30) * (0.6 if lgg else 1.0)
    centre = _tumour_centre(rng, tissue, depth, min_depth=core_r + 0.3 * (edema_r - core_r))
    box = _tumour_box(centre, edema_r * 1.7 + 2, shape)
    sub = tuple(s.stop - s.start for s in box)
    offsets = [np.arange(s.start, s.stop, dtype=np.float32) - float(c) for s, c in zip(box, centre)]
    distance = np.sqrt(offsets[0][:, None, None] ** 2 + offsets[1][None, :, None] ** 2 + offsets[2][None, None, :] ** 2)
    grid = grid_for(sub, float(np.clip(max(sub) / 3, 4, 9)))
    core_d = distance * np.maximum(1 + 0.18 * smooth_field(rng, sub, grid), 0.6)  # voxels, distorted
    edema_d = distance / edema_r * np.maximum(1 + 0.28 * smooth_field(rng, sub, grid), 0.6)
    inside = tissue[box] > 0
    core = inside & (core_d < core_r)
    labels = np.zeros(sub, np.uint8)
    # Edema spreads along white matter and deep grey, into cortex only near the tumour.
    spreads = (tissue[box] == WHITE) | (tissue[box] == DEEP_GREY) | ((tissue[box] == GREY) & (edema_d < 0.9))
    labels[inside & (edema_d < 1) & spreads & ~core] = 2
    if lgg:
        labels[core] = 1
    else:  # an enhancing rim of uneven thickness around necrosis, with non-enhancing stretches
        thickness = max(min(brain_radius * rng.uniform(0.035, 0.07), 0.45 * core_r), 1.0)
        rim = thickness * np.clip(1 + 0.5 * smooth_field(rng, sub, grid), 0.4, 2.0)
        necrotic = core_d < core_r - rim
        gaps = smooth_field(rng, sub, grid) < -1.2
        labels[core] = 3
        labels[core & (necrotic | gaps)] = 1
    strength = np.sqrt(np.clip((1 - edema_d) / max(1 - core_r / edema_r, 1e-3), 0, 1))
    full_labels = np.zeros(shape, np.uint8)
    full_labels[box] = labels
    full_strength = np.zeros(shape, np.float32)
    full_strength[box] = np.where(labels == 2, 0.1 + 0.9 * strength, 0.0)
    texture = np.zeros(shape, np.float32)
    texture[box] = smooth_field(rng, sub, grid_for(sub, float(np.clip(max(sub) / 2.5, 4, 16))))
    return full_labels, full_strength, texture
