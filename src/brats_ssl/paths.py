"""Paths: file names derived from case ids (which must never escape their output folder), NIfTI
file names, and what makes an input path unreadable."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path

from brats_ssl.errors import BadInputError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_NAME = 120
# Longest first: "x.nii.gz" is the stem "x", not "x.nii".
NIFTI_SUFFIXES = (".nii.gz", ".nii")


def safe_name(case_id: str) -> str:
    """A single path component: no separators, no leading dots, no control characters.

    Plain ids (letters, digits, ``._-``) are kept as they are. Any other id is cleaned and gets a
    short hash of the original, so two different ids never share an output name (``a b`` and
    ``a_b`` would otherwise overwrite each other's files).
    """
    cleaned = _UNSAFE.sub("_", case_id).lstrip(".")
    if cleaned == case_id and 0 < len(cleaned) <= _MAX_NAME:
        return cleaned
    raw = case_id.encode("utf-8", "surrogateescape")  # non-UTF-8 names from the file system too
    digest = hashlib.sha256(raw).hexdigest()[:8]
    return f"{cleaned[: _MAX_NAME - 9] or 'case'}-{digest}"


def nifti_stem(name: str) -> str | None:
    """``name`` without its NIfTI suffix (``BraTS2021_00000_t1.nii.gz`` → ``BraTS2021_00000_t1``);
    None when it is not a NIfTI file name."""
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def find_nifti(folder: Path, stem: str) -> Path | None:
    """``folder/stem.nii.gz`` or else ``folder/stem.nii`` (a broken link counts: reading it reports
    why); None when neither is there."""
    for suffix in NIFTI_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return None


def inside(folder: str | Path, name: str) -> Path:
    """``folder/name`` after checking that it stays inside ``folder`` (symlinks resolved)."""
    folder = Path(folder)
    target = folder / name
    root = folder.resolve()
    resolved = target.resolve()
    if resolved != root and root not in resolved.parents:
        raise BadInputError(f"output {target}: would be written outside {folder}")
    return target


def file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a file, found without reading it; None when it can.

    Catches what would otherwise hang (a FIFO blocks the reader forever) or read confusingly
    (a folder, a device, a symbolic link loop) before anything opens it.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "broken symbolic link" if os.path.islink(path) else "file does not exist"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic link loop"
        if error.errno == errno.EACCES:
            return "permission denied"
        return f"unreadable ({error.strerror or error})"
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        return f"is {kind}, not a regular file"
    return None


def read_text_file(path: str | Path, *, what: str | None = None) -> str:
    """The UTF-8 text of a settings file (config.yaml, split.json, dataset.json), or a
    :class:`BadInputError` that names the file and says what is wrong with it.

    ``what`` names the file's role before a :func:`file_problem` (``"split file"`` gives
    ``file split.json: split file: is a folder, not a file``). Parsing the text, and the message
    when it does not parse, stay with the caller.
    """
    role = f"{what}: " if what else ""
    problem = file_problem(path)  # before opening: a FIFO would block forever
    if problem is not None:
        raise BadInputError(f"file {path}: {role}{problem}")
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as error:  # removed since the check above
        raise BadInputError(f"file {path}: {role}file does not exist") from error
    except OSError as error:
        raise BadInputError(f"file {path}: cannot be read ({error.strerror or error})") from error
    except UnicodeDecodeError as error:
        raise BadInputError(f"file {path}: not UTF-8 text ({error.reason} at byte {error.start})") from error


def default_cache_dir() -> Path:
    """Where preprocessed cases and validation summaries are cached: $BRATS_SSL_CACHE or
    ~/.cache/brats-ssl."""
    env = os.environ.get("BRATS_SSL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "brats-ssl"
