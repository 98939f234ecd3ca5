"""A cache of preprocessed cases: memory-mappable float16 ``.npy`` plus the inverting metadata.

Each entry is keyed by the identity of its input files (absolute path, size, mtime) and the
preprocessing parameters, so a second run loads without recomputing, and a changed file or
parameter invalidates only its own entry. Entries are written by
:func:`brats_ssl.atomic.atomic_folder` (temporary folder, files synced, then renamed), so a crash
never leaves a half entry, and of two processes filling the same entry the first one wins.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from brats_ssl import atomic
from brats_ssl.data.dataset import CaseRef
from brats_ssl.data.io import load_case
from brats_ssl.data.preprocess import Preprocessed, PreprocessMeta, PreprocessParams, preprocess
from brats_ssl.paths import default_cache_dir, safe_name

CACHE_VERSION = 1


def _file_identity(path: Path) -> list:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def cache_key(case: CaseRef, params: PreprocessParams) -> str:
    files = [_file_identity(ref.path) + [ref.volume] for _, ref in sorted(case.images.items())]
    if case.seg is not None:
        files.append(_file_identity(case.seg))
    blob = json.dumps([CACHE_VERSION, files, params.target_spacing, params.crop_margin])
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class PreprocessCache:
    """``cache.get(case)`` returns a :class:`Preprocessed` whose arrays are read-only memmaps."""

    def __init__(self, params: PreprocessParams, root: str | Path | None = None):
        self.params = params
        self.root = Path(root) if root else default_cache_dir()
        self.hits = 0
        self.misses = 0

    def entry_dir(self, case: CaseRef) -> Path:
        return self.root / "preprocessed" / f"{safe_name(case.case_id)[:80]}-{cache_key(case, self.params)}"

    def get(self, case: CaseRef) -> Preprocessed:
        entry = self.entry_dir(case)
        if (entry / "meta.json").is_file():
            try:
                loaded = self._read(entry, case)
                self.hits += 1
                return loaded
            except (OSError, ValueError, KeyError):
                shutil.rmtree(entry, ignore_errors=True)  # a damaged entry is rebuilt
        self.misses += 1
        result = preprocess(load_case(case, with_seg=case.seg is not None), self.params)
        self._write(entry, result)
        return self._read(entry, case)

    def _read(self, entry: Path, case: CaseRef) -> Preprocessed:
        meta = PreprocessMeta.from_json(json.loads((entry / "meta.json").read_text()))
        image = np.load(entry / "image.npy", mmap_mode="r")
        brain = np.load(entry / "brain.npy", mmap_mode="r")
        seg = np.load(entry / "seg.npy", mmap_mode="r") if case.seg is not None else None
        if tuple(image.shape[1:]) != tuple(meta.shape):
            raise ValueError("cache entry shape mismatch")
        return Preprocessed(image, brain, seg, meta)

    def _write(self, entry: Path, result: Preprocessed) -> None:
        try:
            with atomic.atomic_folder(entry, replace=False) as tmp:
                np.save(tmp / "image.npy", result.image)
                np.save(tmp / "brain.npy", result.brain)
                if result.seg is not None:
                    np.save(tmp / "seg.npy", result.seg)
                (tmp / "meta.json").write_text(json.dumps(result.meta.to_json()))
        except OSError:
            if not (entry / "meta.json").is_file():
                raise
            # another process finished the same entry first; its copy is identical
