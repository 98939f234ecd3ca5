"""Uncertainty-aware pseudo-labels: per-voxel label, confidence, ruled-out classes, mutual
information; stored compactly per case (uint8 memmaps) and written atomically as a folder.

Confidence is quantised to uint8 as ``1 + round(c·254)``: 0 is reserved for "no information"
(voxels padded beyond the volume), so those voxels are neither learned nor unlearned
(:mod:`brats_ssl.data.confidence_codec`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from brats_ssl import atomic
from brats_ssl.data import confidence_codec
from brats_ssl.data.conventions import CLASS_NAMES, NUM_CLASSES
from brats_ssl.inference import VolumePrediction

MAPS = ("label", "confidence", "absent", "mutual_information")
OPTIONAL_MAPS = ("probabilities",)  # the teacher's probabilistic mask, uint8 · 255, (C, *S)


def absent_bits(probabilities: torch.Tensor | np.ndarray, tau_neg: float) -> np.ndarray:
    """Bit c set where the class probability p̄_c < tau_neg: classes the model rules out."""
    p = torch.as_tensor(probabilities)
    bits = torch.zeros(p.shape[1:], dtype=torch.uint8)
    for c in range(p.shape[0]):
        bits |= (p[c] < tau_neg).to(torch.uint8) << c
    return bits.numpy()


@dataclass
class PseudoLabel:
    """One unlabeled case's pseudo-label on the preprocessed grid."""

    label: np.ndarray  # uint8 internal classes
    confidence: np.ndarray  # uint8 quantised, see module doc
    absent: np.ndarray  # uint8 bit mask over classes
    mutual_information: np.ndarray  # uint8, MI (normalised to [0, 1]) · 255
    probabilities: np.ndarray | None = None  # uint8 · 255, kept for the teacher's round only

    @classmethod
    def from_prediction(
        cls, prediction: VolumePrediction, *, tau_neg: float, keep_probabilities: bool = False
    ) -> "PseudoLabel":
        probs = prediction.probabilities.numpy()
        return cls(
            label=prediction.labels.numpy().astype(np.uint8),
            confidence=confidence_codec.encode(prediction.confidence.numpy()),
            absent=absent_bits(prediction.probabilities, tau_neg),
            mutual_information=confidence_codec.encode_fraction(prediction.mutual_information.numpy()),
            probabilities=confidence_codec.encode_fraction(probs) if keep_probabilities else None,
        )

    @property
    def confidence_float(self) -> np.ndarray:
        return confidence_codec.decode(self.confidence)

    def class_volumes(self, voxel_ml: float) -> dict[str, float]:
        counts = np.bincount(np.asarray(self.label).ravel(), minlength=NUM_CLASSES)
        return {CLASS_NAMES[c]: float(counts[c] * voxel_ml) for c in range(1, NUM_CLASSES)}

    def save(self, folder: Path, info: dict | None = None) -> Path:
        """Write all maps (+ info.json) into ``folder`` atomically (temporary folder, rename)."""
        with atomic.atomic_folder(folder) as tmp:
            for name in MAPS + OPTIONAL_MAPS:
                if getattr(self, name) is not None:
                    np.save(tmp / f"{name}.npy", np.ascontiguousarray(getattr(self, name)))
            (tmp / "info.json").write_text(json.dumps(info or {}, indent=1))
        return folder

    @classmethod
    def load(cls, folder: Path) -> "PseudoLabel":
        maps = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in MAPS}
        for name in OPTIONAL_MAPS:
            if (folder / f"{name}.npy").exists():
                maps[name] = np.load(folder / f"{name}.npy", mmap_mode="r")
        return cls(**maps)

    @staticmethod
    def exists(folder: Path) -> bool:
        return (folder / "info.json").is_file()

    @staticmethod
    def info(folder: Path) -> dict:
        return json.loads((folder / "info.json").read_text())
