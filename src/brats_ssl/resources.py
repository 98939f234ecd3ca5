"""Will a case fit in memory? Checked before its voxels are read, so a scan too large for the
machine is refused with a clear message instead of the process being killed halfway.

The estimate covers what loading and segmenting one case holds at once: the four modalities as
float32, one modality as read by nibabel (float64 after scaling), the class probabilities
(float32, four classes) and a label map. Available memory is the smallest of the kernel's
``MemAvailable``, the cgroup's limit minus its usage (containers) and ``$BRATS_SSL_MEMORY_LIMIT``.

Example::

    require_memory("BraTS2021_00006", (240, 240, 155))  # ~0.4 GB; raises BadInputError if it cannot fit
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from brats_ssl.errors import BadInputError

MEMORY_LIMIT_ENV = "BRATS_SSL_MEMORY_LIMIT"
# float32 image x 4 modalities + one float64 read + float32 probabilities x 4 classes + uint8 labels
BYTES_PER_VOXEL = 4 * 4 + 8 + 4 * 4 + 1
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_CGROUP_V2 = Path("/sys/fs/cgroup")
_CGROUP_V1 = Path("/sys/fs/cgroup/memory")


def case_memory_bytes(shape: tuple[int, ...]) -> int:
    """Bytes needed to load and segment a case of spatial ``shape``."""
    return math.prod(int(n) for n in shape[:3]) * BYTES_PER_VOXEL


def parse_bytes(text: str) -> int:
    """``"512M"``, ``"2G"``, ``"1.5g"``, ``"1000000"`` → bytes (binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text.lower())
    if match is None:
        raise ValueError(text)
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def format_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"  # pragma: no cover


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" = no limit


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # other Unix systems: free pages
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    for limit_file, usage_file in (
        (_CGROUP_V2 / "memory.max", _CGROUP_V2 / "memory.current"),
        (_CGROUP_V1 / "memory.limit_in_bytes", _CGROUP_V1 / "memory.usage_in_bytes"),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:  # v1 "no limit" is a huge number
            return max(limit - usage, 0)
    return None


def available_memory() -> tuple[int | None, str]:
    """(bytes available, where that figure comes from); None when nothing can be read."""
    candidates: list[tuple[int, str]] = []
    meminfo = _meminfo_available()
    if meminfo is not None:
        candidates.append((meminfo, "available system memory"))
    cgroup = _cgroup_available()
    if cgroup is not None:
        candidates.append((cgroup, "memory left under the container's limit"))
    limit = os.environ.get(MEMORY_LIMIT_ENV)
    if limit:
        try:
            candidates.append((parse_bytes(limit), f"${MEMORY_LIMIT_ENV}"))
        except ValueError:
            raise BadInputError(f"{MEMORY_LIMIT_ENV}={limit!r}: expected a size such as 8G, 512M or 1000000") from None
    if not candidates:
        return None, "unknown"
    return min(candidates)


def require_memory(case_id: str, shape: tuple[int, ...], path: object | None = None) -> None:
    """Raise :class:`BadInputError` naming the case, its shape and the needed vs available memory
    when the case cannot fit."""
    needed = case_memory_bytes(shape)
    available, source = available_memory()
    if available is None or needed <= available:
        return
    where = f"case {case_id}: " + (f"file {path}: " if path else "")
    raise BadInputError(
        f"{where}shape {'x'.join(str(int(n)) for n in shape[:3])} needs about {format_bytes(needed)} of memory "
        f"to load and segment, but only {format_bytes(available)} is available ({source}); free memory, "
        "use a machine with more, or crop/resample the scan"
    )
