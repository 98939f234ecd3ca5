"""Dataset conventions: how each BraTS-like layout names files and encodes labels.

Internally every case is four channels in the order of :data:`MODALITIES` and a label map with
0 background, 1 NCR/NET, 2 ED (edema), 3 ET (enhancing tumour). A :class:`Convention` translates
label values between a file and that internal form, both ways, so predictions are written back in
the input's own convention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

MODALITIES: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")
CLASS_NAMES: tuple[str, ...] = ("background", "NCR", "ED", "ET")
NUM_CLASSES = len(CLASS_NAMES)
TUMOUR_CLASS_NAMES: tuple[str, ...] = CLASS_NAMES[1:]  # every class but background

# Evaluated regions, as sets of internal classes (METHOD.md, Labels).
REGIONS: dict[str, tuple[int, ...]] = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}
LABELS: dict[str, tuple[int, ...]] = {"NCR": (1,), "ED": (2,), "ET": (3,)}


@dataclass(frozen=True)
class Convention:
    """A dataset convention: its name and how its label values map to internal classes."""

    name: str
    description: str
    file_to_internal: Mapping[int, int]
    seg_dtype: str = "uint8"
    # Per-convention facts used by discovery; kept here so one object describes one layout.
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def internal_to_file(self) -> dict[int, int]:
        return {v: k for k, v in self.file_to_internal.items()}

    @property
    def valid_file_labels(self) -> tuple[int, ...]:
        return tuple(sorted(self.file_to_internal))

    def to_internal(self, seg: np.ndarray) -> np.ndarray:
        """File label values → internal classes (uint8). Unknown values raise ``ValueError``."""
        values = np.unique(seg)
        unknown = [int(v) for v in values if int(v) not in self.file_to_internal]
        if unknown:
            raise ValueError(
                f"labels {unknown} are not part of the {self.name} convention (valid: {list(self.valid_file_labels)})"
            )
        lut = np.zeros(max(self.file_to_internal) + 1, dtype=np.uint8)
        for file_value, internal in self.file_to_internal.items():
            lut[file_value] = internal
        return lut[seg.astype(np.int64, copy=False)]

    def to_file(self, labels: np.ndarray) -> np.ndarray:
        """Internal classes → this convention's label values, in its usual dtype."""
        lut = np.zeros(NUM_CLASSES, dtype=np.int64)
        for internal, file_value in self.internal_to_file.items():
            lut[internal] = file_value
        return lut[labels.astype(np.int64, copy=False)].astype(self.seg_dtype)


BRATS2021 = Convention(
    name="brats2021",
    description="BraTS 2017-2021: <case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz, ET = 4",
    file_to_internal={0: 0, 1: 1, 2: 2, 4: 3},
    extra={"suffixes": {"t1": "_t1", "t1ce": "_t1ce", "t2": "_t2", "flair": "_flair"}, "seg": "_seg"},
)
BRATS2023 = Convention(
    name="brats2023",
    description="BraTS 2023+: <case>/<case>-{t1n,t1c,t2w,t2f,seg}.nii.gz, ET = 3",
    file_to_internal={0: 0, 1: 1, 2: 2, 3: 3},
    extra={"suffixes": {"t1": "-t1n", "t1ce": "-t1c", "t2": "-t2w", "flair": "-t2f"}, "seg": "-seg"},
)
# MSD Task01_BrainTumour: 1 edema, 2 non-enhancing tumour, 3 enhancing tumour; images are 4-D
# with channels FLAIR, T1w, T1gd, T2w.
MSD = Convention(
    name="msd",
    description="Medical Segmentation Decathlon Task01: imagesTr/*.nii.gz 4-D, labelsTr/, "
    "1 edema, 2 non-enhancing, 3 enhancing",
    file_to_internal={0: 0, 1: 2, 2: 1, 3: 3},
    extra={"channel_order": ("flair", "t1", "t1ce", "t2")},
)


def nnunet_convention(label_names: Mapping[str, Any]) -> Convention:
    """The convention of an nnU-Net raw dataset, from its dataset.json ``labels``.

    Plain labels are matched by name (necrosis / edema / enhancing). Region-based labels, as in
    nnU-Net's own BraTS conversion (whole tumour (1,2,3), tumour core (2,3), enhancing (3,)),
    mean 1 edema, 2 NCR, 3 ET.
    """
    values = list(label_names.values())
    if any(isinstance(v, (list, tuple)) for v in values):
        return Convention(
            name="nnunet",
            description="nnU-Net raw (region-based BraTS labels: 1 edema, 2 NCR, 3 ET)",
            file_to_internal={0: 0, 1: 2, 2: 1, 3: 3},
        )
    mapping: dict[int, int] = {}
    for name, value in label_names.items():
        key = name.lower()
        if "background" in key:
            internal = 0
        elif "enhanc" in key and "non" not in key:
            internal = 3
        elif "edema" in key or "oedema" in key:
            internal = 2
        elif "necro" in key or "non" in key or "ncr" in key or "core" in key:
            internal = 1
        else:
            raise ValueError(f"dataset.json label {name!r} matches no tumour class")
        mapping[int(value)] = internal
    mapping.setdefault(0, 0)
    return Convention(
        name="nnunet",
        description="nnU-Net raw: imagesTr/<case>_000{0..3}.nii.gz, labelsTr/<case>.nii.gz",
        file_to_internal=mapping,
    )


def modality_from_name(channel_name: str) -> str | None:
    """Map a channel name such as 'T1Gd', 'FLAIR', 't2w' or 'T1-native' to an internal modality."""
    key = channel_name.lower().replace("-", "").replace("_", "").replace(" ", "")
    if "flair" in key or key in ("t2f",):
        return "flair"
    if any(tag in key for tag in ("t1ce", "t1gd", "t1c", "t1contrast", "t1post")):
        return "t1ce"
    if key.startswith("t2"):
        return "t2"
    if key.startswith("t1"):
        return "t1"
    return None
