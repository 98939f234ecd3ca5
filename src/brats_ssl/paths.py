"""File names derived from case ids, which must never escape their output folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

from brats_ssl.errors import BadInputError


def safe_name(case_id: str) -> str:
    """A single path component: no separators, no leading dots, no control characters."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", case_id).lstrip(".")[:120]
    return name or "case"


def inside(folder: str | Path, name: str) -> Path:
    """``folder/name`` after checking that it stays inside ``folder`` (symlinks resolved)."""
    folder = Path(folder)
    target = folder / name
    root = folder.resolve()
    resolved = target.resolve()
    if resolved != root and root not in resolved.parents:
        raise BadInputError(f"output {target}: would be written outside {folder}")
    return target


def default_cache_dir() -> Path:
    """Where preprocessed cases and validation summaries are cached: $BRATS_SSL_CACHE or
    ~/.cache/brats-ssl."""
    env = os.environ.get("BRATS_SSL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "brats-ssl"
