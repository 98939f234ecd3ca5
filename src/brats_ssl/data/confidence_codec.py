"""How maps of values in [0, 1] are stored as uint8: pseudo-label confidences with a reserved 0,
mutual information and probabilities as plain fractions of 255.

Confidence: 0 = no information (voxels padded beyond the volume, patches of unlabeled cases), so
those voxels are neither learned nor unlearned; else ``1 + round(c·254)``, so that a confidence of
0 (:data:`LEAST_CONFIDENT`) is still information and a true label is :data:`CERTAIN`. Pseudo-label
files, training batches, agreement refinement and the student's loss all read it here.

>>> encode(np.array([0.0, 0.5, 1.0])).tolist(), decode(np.array([0, 1, 255], np.uint8)).tolist()
([1, 128, 255], [0.0, 0.0, 1.0])
"""

from __future__ import annotations

import numpy as np
import torch

NO_INFORMATION = 0
LEAST_CONFIDENT = 1
CERTAIN = 255
_CONFIDENCE_STEPS = CERTAIN - LEAST_CONFIDENT  # 254
FRACTION_STEPS = 255  # mutual information, probabilities: round(x·255), no reserved value


def encode(confidence: np.ndarray) -> np.ndarray:
    """Confidences (clipped to [0, 1]) → uint8 ``1 + round(c·254)``: never 0, that is no information."""
    return (LEAST_CONFIDENT + np.round(np.clip(confidence, 0, 1) * _CONFIDENCE_STEPS)).astype(np.uint8)


def decode(q: np.ndarray) -> np.ndarray:
    """uint8 confidences → float32 in [0, 1]; no information reads as 0."""
    return np.clip((np.asarray(q, dtype=np.float32) - LEAST_CONFIDENT) / _CONFIDENCE_STEPS, 0, 1)


def decode_tensor(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched uint8 confidences → (confidence in [0, 1], mask of the voxels that carry information)."""
    q = q.float()
    return ((q - LEAST_CONFIDENT) / _CONFIDENCE_STEPS).clamp(0, 1), q > NO_INFORMATION


def encode_fraction(values: np.ndarray) -> np.ndarray:
    """Values (clipped to [0, 1]) → uint8 ``round(x·255)``."""
    return np.round(np.clip(values, 0, 1) * FRACTION_STEPS).astype(np.uint8)


def decode_fraction(q: np.ndarray) -> np.ndarray:
    """uint8 fractions → float32 in [0, 1]."""
    return np.asarray(q, np.float32) / FRACTION_STEPS
