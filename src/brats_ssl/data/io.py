"""Reading cases into the internal form and writing label maps back in a case's own convention.

Internal form: ``image`` float32 (4, X, Y, Z) in :data:`MODALITIES` order, ``seg`` uint8 with
0 background, 1 NCR, 2 ED, 3 ET. Writing copies the reference file's affine and header, so the
output lies on the input in 3D Slicer / ITK-SNAP.
"""

from __future__ import annotations

import errno
import gzip
import shutil
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np

from brats_ssl import atomic
from brats_ssl.data.conventions import MODALITIES
from brats_ssl.data.dataset import CaseRef, ImageRef
from brats_ssl.errors import BadInputError, case_message
from brats_ssl.paths import file_problem
from brats_ssl.resources import require_memory


@dataclass
class LoadedCase:
    case: CaseRef
    image: np.ndarray
    seg: np.ndarray | None
    affine: np.ndarray
    spacing: tuple[float, float, float]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.image.shape[1:])


def load_nifti(path: Path, case_id: str | None = None) -> nib.Nifti1Image:
    """Open a NIfTI file with an error that names the case and file when it cannot be read."""
    problem = file_problem(path)
    if problem is not None:
        raise BadInputError(case_message(case_id, path, problem))
    try:
        return cast(nib.Nifti1Image, nib.load(str(path)))  # .nii(.gz): Nifti1Image or its subclass Nifti2Image
    except FileNotFoundError as error:
        raise BadInputError(case_message(case_id, path, "file does not exist")) from error
    except PermissionError as error:
        raise BadInputError(case_message(case_id, path, "permission denied")) from error
    except OSError as error:
        problem = "symbolic link loop" if error.errno == errno.ELOOP else f"unreadable ({error})"
        raise BadInputError(case_message(case_id, path, problem)) from error
    except Exception as error:  # nibabel raises ImageFileError and others for garbage
        raise BadInputError(case_message(case_id, path, f"not a readable NIfTI image ({error})")) from error


def read_array(
    image: nib.Nifti1Image, path: Path, case_id: str | None, volume: int | None = None, dtype=np.float32
) -> np.ndarray:
    """The voxel array, with truncated or corrupt files reported as bad input."""
    try:
        if volume is None:
            data = np.asarray(image.dataobj, dtype=dtype) if dtype is not None else np.asarray(image.dataobj)
        else:
            data = np.asarray(image.dataobj[..., volume])
            data = data.astype(dtype, copy=False) if dtype is not None else data
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise BadInputError(case_message(case_id, path, f"truncated or corrupt file ({error})")) from error
    except (OSError, ValueError) as error:
        raise BadInputError(case_message(case_id, path, f"truncated or corrupt file ({error})")) from error
    return data


FLOAT32_MAX = float(np.finfo(np.float32).max)


def float32_overflow(volume: np.ndarray) -> int:
    """How many finite voxels are too large for float32 arithmetic on the image: beyond float32's
    range, or so large that the sum over the volume (means, z-scores) overflows. Integer files
    scaled by a huge ``scl_slope`` are the usual cause; real intensities are far below this."""
    if not np.issubdtype(volume.dtype, np.floating) or volume.size == 0:
        return 0
    limit = FLOAT32_MAX / volume.size
    return int(np.count_nonzero(np.abs(volume[np.isfinite(volume)]) > limit))  # NaN/Inf are counted apart


def read_image(ref: ImageRef, case_id: str | None = None) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """One modality as float32 with its affine and voxel spacing."""
    image = load_nifti(ref.path, case_id)
    expected_ndim = 3 if ref.volume is None else 4
    if len(image.shape) != expected_ndim:
        raise BadInputError(
            case_message(case_id, ref, f"expected a {expected_ndim}-D image, found shape {image.shape}")
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in the cast: reported below
        data = read_array(image, ref.path, case_id, ref.volume)
    bad = int(data.size - np.count_nonzero(np.isfinite(data))) + float32_overflow(data)
    if bad:  # NaN/Inf in the file, or values (e.g. scaled integers) too large for float32
        raise BadInputError(case_message(case_id, ref, f"{bad} voxels are NaN/Inf or too large for float32"))
    return data, image.affine, tuple(float(z) for z in image.header.get_zooms()[:3])


def read_seg(case: CaseRef) -> np.ndarray:
    """The case's seg converted to internal classes (uint8)."""
    assert case.seg is not None
    image = load_nifti(case.seg, case.case_id)
    if len(image.shape) != 3:
        raise BadInputError(case_message(case.case_id, case.seg, f"expected a 3-D seg, found shape {image.shape}"))
    raw = read_array(image, case.seg, case.case_id, dtype=None)
    if not np.issubdtype(raw.dtype, np.integer):
        if not np.all(np.isfinite(raw)) or not np.all(raw == np.round(raw)):
            raise BadInputError(case_message(case.case_id, case.seg, "seg holds non-integer values"))
        raw = raw.astype(np.int64)
    try:
        return case.convention.to_internal(raw)
    except ValueError as error:
        raise BadInputError(case_message(case.case_id, case.seg, str(error))) from error


def load_case(case: CaseRef, *, with_seg: bool = True) -> LoadedCase:
    """Read every modality (and the seg when ``with_seg`` and present) into the internal form.

    Raises :class:`BadInputError` naming the case and file for unreadable or inconsistent files,
    and before reading any voxel when the case cannot fit in memory (:mod:`brats_ssl.resources`).
    """
    if case.missing_modalities:
        raise BadInputError(
            case_message(
                case.case_id, case.reference_path.parent, f"missing modality {', '.join(case.missing_modalities)}"
            )
        )
    first = case.images[MODALITIES[0]]
    # The header alone gives the shape: refuse a case that cannot fit before reading its voxels.
    require_memory(case.case_id, tuple(load_nifti(first.path, case.case_id).shape[:3]), first)
    volumes: list[np.ndarray] = []
    affine = spacing = None
    for modality in MODALITIES:
        ref = case.images[modality]
        data, this_affine, this_spacing = read_image(ref, case.case_id)
        if volumes and data.shape != volumes[0].shape:
            raise BadInputError(
                case_message(case.case_id, ref, f"shape {data.shape} differs from {MODALITIES[0]} {volumes[0].shape}")
            )
        volumes.append(data)
        affine = this_affine if affine is None else affine
        spacing = this_spacing if spacing is None else spacing
    seg = read_seg(case) if (with_seg and case.seg is not None) else None
    if seg is not None and seg.shape != volumes[0].shape:
        raise BadInputError(
            case_message(case.case_id, case.seg, f"seg shape {seg.shape} differs from image {volumes[0].shape}")
        )
    return LoadedCase(case, np.stack(volumes), seg, np.asarray(affine), spacing)  # type: ignore[arg-type]


def _reference_image(case: CaseRef) -> tuple[nib.Nifti1Image, Path]:
    path = case.reference_path
    if case.seg is None and case.images:
        ref = next(case.images[m] for m in MODALITIES if m in case.images)
        return load_nifti(ref.path, case.case_id), ref.path
    return load_nifti(path, case.case_id), path


def write_label_map(case: CaseRef, labels: np.ndarray, out_path: str | Path) -> Path:
    """Write internal labels as the case's convention, in its reference file's geometry."""
    reference, _ = _reference_image(case)
    shape = tuple(reference.shape[:3])
    if tuple(labels.shape) != shape:
        raise ValueError(f"case {case.case_id}: label map shape {labels.shape} != input shape {shape}")
    data = case.convention.to_file(labels)
    header = reference.header.copy()
    if len(reference.shape) != 3:  # MSD 4-D image as reference: make a 3-D header
        header.set_data_shape(shape)
    header.set_data_dtype(data.dtype)
    header.set_slope_inter(1, 0)
    image = nib.Nifti1Image(data, reference.affine, header)
    return atomic.write_with(out_path, lambda tmp: nib.save(image, str(tmp)))


def write_float_map(case: CaseRef, values: np.ndarray, out_path: str | Path) -> Path:
    """Write a float map (3-D, or 4-D with channels last) in the case's geometry, float32."""
    reference, _ = _reference_image(case)
    shape = tuple(reference.shape[:3])
    if tuple(values.shape[:3]) != shape:
        raise ValueError(f"case {case.case_id}: map shape {values.shape} != input shape {shape}")
    data = values.astype(np.float32, copy=False)
    header = reference.header.copy()
    header.set_data_shape(data.shape)
    header.set_data_dtype(np.float32)
    header.set_slope_inter(1, 0)
    image = nib.Nifti1Image(data, reference.affine, header)
    return atomic.write_with(out_path, lambda tmp: nib.save(image, str(tmp)))


def write_channel(ref: ImageRef, out_path: str | Path, case_id: str | None = None) -> Path:
    """One modality as a 3-D ``.nii.gz`` of its own (an nnU-Net channel file): a ``.nii.gz`` copied
    byte for byte; a volume of a 4-D file (MSD) or an uncompressed ``.nii`` written with the same
    affine and header."""
    if ref.volume is None and ref.path.name.endswith(".nii.gz"):
        return atomic.write_with(out_path, lambda tmp: shutil.copyfile(ref.path, tmp))
    image = load_nifti(ref.path, case_id)
    data = read_array(image, ref.path, case_id, ref.volume, dtype=None)
    header = image.header.copy()
    header.set_data_shape(data.shape)
    header.set_data_dtype(data.dtype)
    header.set_slope_inter(1, 0)
    volume = nib.Nifti1Image(data, image.affine, header)
    return atomic.write_with(out_path, lambda tmp: nib.save(volume, str(tmp)))
