"""Crop to the brain, z-score inside the brain, resample; and the exact inverse of each step.

Forward: crop to the bounding box of voxels non-zero in any modality (+ margin) → per-modality
z-score inside that brain mask (0 outside) → optional resampling to a target spacing (trilinear
for images; one-hot trilinear + argmax for labels, so thin structures survive). The
:class:`PreprocessMeta` records what inverts every step: :func:`restore_probabilities` and
:func:`restore_labels` return arrays with the input's original shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from brats_ssl.data.conventions import NUM_CLASSES
from brats_ssl.data.io import LoadedCase


@dataclass(frozen=True)
class PreprocessParams:
    target_spacing: tuple[float, ...] | None = None  # mm per axis
    crop_margin: int = 4

    @classmethod
    def from_config(cls, data_config) -> "PreprocessParams":
        spacing = data_config.target_spacing
        return cls(tuple(float(s) for s in spacing) if spacing else None, int(data_config.crop_margin))


@dataclass
class PreprocessMeta:
    """Everything needed to map between the original volume and the preprocessed one."""

    case_id: str
    original_shape: tuple[int, ...]  # (X, Y, Z), as are the tuples below
    bbox_start: tuple[int, ...]
    bbox_stop: tuple[int, ...]
    spacing: tuple[float, ...]
    target_spacing: tuple[float, ...] | None
    shape: tuple[int, ...]  # preprocessed (cropped, resampled) shape

    @property
    def cropped_shape(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in zip(self.bbox_start, self.bbox_stop))

    @property
    def voxel_spacing(self) -> tuple[float, ...]:
        """Spacing of the preprocessed grid in mm."""
        return tuple(s * c / p for s, c, p in zip(self.spacing, self.cropped_shape, self.shape))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "PreprocessMeta":
        spacing = data.get("target_spacing")
        return cls(
            case_id=data["case_id"],
            original_shape=tuple(data["original_shape"]),
            bbox_start=tuple(data["bbox_start"]),
            bbox_stop=tuple(data["bbox_stop"]),
            spacing=tuple(data["spacing"]),
            target_spacing=tuple(spacing) if spacing else None,
            shape=tuple(data["shape"]),
        )


@dataclass
class Preprocessed:
    image: np.ndarray  # float16 (4, X, Y, Z)
    brain: np.ndarray  # uint8 (X, Y, Z): 1 inside the brain
    seg: np.ndarray | None  # uint8 internal labels or None
    meta: PreprocessMeta


def brain_bbox(image: np.ndarray, margin: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Bounding box of voxels non-zero in any channel, grown by ``margin`` and clipped."""
    nonzero = np.any(image != 0, axis=0)
    if not nonzero.any():
        return (0, 0, 0), tuple(image.shape[1:])
    start, stop = [], []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(nonzero.any(axis=other))
        start.append(max(int(hits[0]) - margin, 0))
        stop.append(min(int(hits[-1]) + 1 + margin, image.shape[axis + 1]))
    return tuple(start), tuple(stop)


def target_shape(
    shape: tuple[int, ...], spacing: tuple[float, ...], target: tuple[float, ...] | None
) -> tuple[int, ...]:
    if target is None:
        return tuple(shape)
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, target))


def _resize(array: np.ndarray, shape: tuple[int, ...], mode: str = "trilinear") -> np.ndarray:
    """Resize channels-first float data (C, X, Y, Z) to ``shape``."""
    if tuple(array.shape[1:]) == tuple(shape):
        return array
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    kwargs = {"align_corners": False} if mode == "trilinear" else {}
    return F.interpolate(tensor, size=tuple(shape), mode=mode, **kwargs)[0].numpy()


def _resize_labels(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if tuple(labels.shape) == tuple(shape):
        return labels.astype(np.uint8, copy=False)
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[labels].transpose(3, 0, 1, 2)
    return _resize(one_hot, shape).argmax(0).astype(np.uint8)


def zscore_in_mask(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-channel z-score using brain voxels only; 0 outside the brain."""
    out = np.zeros_like(image, dtype=np.float32)
    if not mask.any():
        return out
    for channel in range(image.shape[0]):
        values = image[channel][mask]
        std = float(values.std())
        out[channel][mask] = (values - float(values.mean())) / (std if std > 1e-8 else 1.0)
    return out


def preprocess(loaded: LoadedCase, params: PreprocessParams) -> Preprocessed:
    start, stop = brain_bbox(loaded.image, params.crop_margin)
    window = (slice(None),) + tuple(slice(a, b) for a, b in zip(start, stop))
    image = loaded.image[window]
    brain = np.any(image != 0, axis=0)
    image = zscore_in_mask(image, brain)
    shape = target_shape(image.shape[1:], loaded.spacing, params.target_spacing)
    image = _resize(image, shape)
    brain_resized = _resize(brain[None].astype(np.float32), shape)[0] > 0.5
    seg = None if loaded.seg is None else _resize_labels(loaded.seg[window[1:]], shape)
    meta = PreprocessMeta(
        case_id=loaded.case.case_id,
        original_shape=tuple(int(n) for n in loaded.shape),
        bbox_start=tuple(int(a) for a in start),
        bbox_stop=tuple(int(b) for b in stop),
        spacing=tuple(float(s) for s in loaded.spacing),
        target_spacing=params.target_spacing,
        shape=tuple(int(n) for n in shape),
    )
    return Preprocessed(image.astype(np.float16), brain_resized.astype(np.uint8), seg, meta)


def restore_probabilities(probabilities: np.ndarray, meta: PreprocessMeta) -> np.ndarray:
    """Class probabilities (C, *meta.shape) → (C, *original_shape); background outside the crop."""
    cropped = _resize(probabilities, meta.cropped_shape)
    full = np.zeros((probabilities.shape[0],) + tuple(meta.original_shape), dtype=np.float32)
    full[0] = 1.0
    window = (slice(None),) + tuple(slice(a, b) for a, b in zip(meta.bbox_start, meta.bbox_stop))
    full[window] = cropped
    return full


def restore_map(values: np.ndarray, meta: PreprocessMeta, *, fill: float = 0.0) -> np.ndarray:
    """A scalar map (*meta.shape) → original shape, ``fill`` outside the crop (e.g. uncertainty)."""
    cropped = _resize(values[None].astype(np.float32), meta.cropped_shape)[0]
    full = np.full(tuple(meta.original_shape), fill, dtype=np.float32)
    full[tuple(slice(a, b) for a, b in zip(meta.bbox_start, meta.bbox_stop))] = cropped
    return full


def restore_labels(labels: np.ndarray, meta: PreprocessMeta) -> np.ndarray:
    """Internal labels (*meta.shape) → original shape (one-hot resampling + argmax)."""
    cropped = _resize_labels(labels.astype(np.int64), meta.cropped_shape)
    full = np.zeros(tuple(meta.original_shape), dtype=np.uint8)
    full[tuple(slice(a, b) for a, b in zip(meta.bbox_start, meta.bbox_stop))] = cropped
    return full
