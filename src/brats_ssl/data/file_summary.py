"""What one read of a NIfTI file finds, cached so an unchanged file is never decompressed twice.

Every file is read once, decompressed to its end (so a truncated ``.nii.gz`` is caught even when
the voxels happen to be complete) and reduced to a small :class:`FileSummary`; summaries are cached
under ``$BRATS_SSL_CACHE/validate`` keyed by the file's path, size and modification time. The
per-case checks in :mod:`brats_ssl.data.validate` compare these summaries.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import nibabel as nib
import numpy as np

from brats_ssl import atomic
from brats_ssl.data.io import float32_overflow
from brats_ssl.paths import default_cache_dir, file_problem

# Bump when FileSummary or the checks that fill it change: old cache entries are then ignored.
_SUMMARY_VERSION = 2


@dataclass
class FileSummary:
    """What one read of a NIfTI file found; ``error`` set means the file could not be read."""

    error: str | None = None
    shape: tuple[int, ...] = ()
    affine: list[list[float]] = field(default_factory=list)
    pixdim: tuple[float, ...] = ()  # raw header spacing, before nibabel "fixes" zero/negative values
    nonfinite: list[int] = field(default_factory=list)  # NaN/Inf voxel count, per volume
    overflow: list[int] = field(default_factory=list)  # voxels too large for float32 sums, per volume
    all_zero: list[bool] = field(default_factory=list)  # per volume
    values: list[int] | None = None  # distinct values (seg files only)
    non_integer: bool = False  # seg holds fractional or non-finite values

    @classmethod
    def from_json(cls, data: dict) -> "FileSummary":
        data = dict(data)
        data["shape"] = tuple(data["shape"])
        data["pixdim"] = tuple(data["pixdim"])
        return cls(**data)


def _cache_dir() -> Path:
    return default_cache_dir() / "validate"


def _cache_path(path: Path, role: str) -> Path | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    identity = json.dumps([_SUMMARY_VERSION, role, str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return _cache_dir() / f"{hashlib.sha256(identity.encode()).hexdigest()[:32]}.json"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, fully decompressed when gzipped; raises ``ValueError`` with the reason."""
    problem = file_problem(path)  # before reading: a FIFO would block forever
    if problem is not None:
        raise ValueError(problem)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ValueError("file does not exist") from None
    except PermissionError:
        raise ValueError("permission denied") from None
    except OSError as error:
        raise ValueError(f"unreadable ({error.strerror or error})") from None
    if not raw:
        raise ValueError("empty file (0 bytes)")
    if raw[:2] != b"\x1f\x8b":
        if path.name.endswith(".gz"):
            raise ValueError("not a gzip file although named .gz (corrupt or not a NIfTI image)")
        return raw
    try:
        # Decompressing to the end checks the CRC and length trailer, not just the voxels.
        return gzip.decompress(raw)
    except EOFError:
        raise ValueError(
            f"truncated gzip stream: the file ends early ({len(raw)} bytes); re-copy or re-download it"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as error:
        raise ValueError(f"corrupt gzip data ({error})") from None


@contextlib.contextmanager
def _quiet_nibabel() -> Iterator[None]:
    """Silence nibabel's header warnings ("pixdim[1,2,3] should be non-zero; setting ..."): the
    checks below report the same problems, naming the file. (nibabel's LoggingOutputSuppressor
    removes the handlers, which makes Python's last-resort handler print them anyway.)"""
    logger = logging.getLogger("nibabel.global")
    was_disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was_disabled


def _parse_nifti(data: bytes) -> nib.Nifti1Image:
    errors = []
    for image_class in (nib.Nifti1Image, nib.Nifti2Image):
        try:
            with _quiet_nibabel():  # we report header problems ourselves
                return image_class.from_bytes(data)
        except Exception as error:  # nibabel raises several types for a bad header
            errors.append(str(error).splitlines()[0] if str(error) else type(error).__name__)
    raise ValueError(f"not a readable NIfTI image ({errors[0]})")


def _raw_pixdim(data: bytes, image: nib.Nifti1Image) -> tuple[float, ...]:
    header_class = type(image.header)
    raw_header = header_class(data[: header_class.sizeof_hdr], check=False)
    return tuple(float(v) for v in raw_header["pixdim"][1:4])


def _distinct_values(array: np.ndarray) -> list[int]:
    if array.size == 0:
        return []
    low, high = int(array.min()), int(array.max())
    if low >= 0 and high < 1 << 16:  # bincount is ~10x faster than unique on label maps
        return np.flatnonzero(np.bincount(array.ravel())).tolist()
    return [int(v) for v in np.unique(array)]


def _summarise(path: Path, role: str) -> FileSummary:
    try:
        data = _read_bytes(path)
        image = _parse_nifti(data)
    except ValueError as error:
        return FileSummary(error=str(error))
    try:
        with _quiet_nibabel():
            voxels = np.asanyarray(image.dataobj)
    except (OSError, ValueError, EOFError) as error:
        # nibabel: "Expected N bytes, got M bytes" for an uncompressed file cut short
        reason = " ".join(str(error).split()) or type(error).__name__
        return FileSummary(error=f"truncated or corrupt file ({reason})")
    summary = FileSummary(
        shape=tuple(int(s) for s in voxels.shape),
        affine=np.asarray(image.affine, dtype=float).tolist(),
        pixdim=_raw_pixdim(data, image),
    )
    del data
    if voxels.ndim == 4:
        volumes = [voxels[..., i] for i in range(voxels.shape[3])]
    else:  # 3-D, or a wrong dimensionality reported by the caller from ``shape``
        volumes = [voxels]
    floating = np.issubdtype(voxels.dtype, np.floating)
    for volume in volumes:
        summary.nonfinite.append(int(np.count_nonzero(~np.isfinite(volume))) if floating else 0)
        # nibabel scales integers in float64: a huge scl_slope gives values float32 cannot handle
        summary.overflow.append(float32_overflow(volume) if role == "image" else 0)
        summary.all_zero.append(not np.any(volume))
    if role == "seg":
        if floating:
            finite = volumes[0][np.isfinite(volumes[0])] if volumes else voxels
            summary.non_integer = bool(summary.nonfinite and summary.nonfinite[0]) or bool(
                np.any(finite != np.round(finite))
            )
            summary.values = _distinct_values(np.round(finite).astype(np.int64))
        else:
            summary.values = _distinct_values(voxels)
    return summary


def summarise_file(path: Path, *, role: str = "image", cache: bool = True) -> FileSummary:
    """Read ``path`` once (``role`` "image" or "seg") or reuse the cached summary of the same file."""
    cache_path = _cache_path(path, role) if cache else None
    if cache_path is not None and cache_path.is_file():
        try:
            return FileSummary.from_json(json.loads(cache_path.read_text()))
        except (OSError, ValueError, TypeError, KeyError):
            pass  # a damaged entry is recomputed
    summary = _summarise(path, role)
    if cache_path is not None:
        try:
            atomic.write_json(cache_path, asdict(summary))
        except OSError:
            pass  # a read-only cache only costs speed
    return summary
