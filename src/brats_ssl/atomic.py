"""Atomic file writing: write to a temporary name in the same folder, fsync, then rename.

A crash leaves either the old file or the new one, never half of one. Every file the project
writes goes through here. A disk-full, read-only or forbidden output raises
:class:`~brats_ssl.errors.OutputError` naming the file (exit code 2), and no temporary file is left.

Modes honour the umask like any other tool (files 0644 and folders 0755 under umask 022, 0600 and
0700 under 077): ``mkstemp`` / ``mkdtemp`` create their temporaries private (0600 / 0700) whatever
the umask, so the mode is set before the rename makes them visible.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from brats_ssl.errors import output_error

TMP_MARK = ".tmp"  # every temporary name is ".<name>.<random>.tmp[<suffix>]"


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``);
    elsewhere set and restored at once (os.umask has no read-only form)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets from ``open()``: 0666 less the umask."""
    return 0o666 & ~current_umask()


def folder_mode() -> int:
    """The mode a new folder gets from ``mkdir``: 0777 less the umask."""
    return 0o777 & ~current_umask()


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def _output_errors(path: Path) -> Iterator[None]:
    """Turn disk-full / read-only / permission errors into an OutputError naming ``path``."""
    try:
        yield
    except OSError as error:
        friendly = output_error(path, error)
        if friendly is None:
            raise
        raise friendly from error


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    ``suffix`` keeps the file extension libraries look at (``.nii.gz``, ``.npy``, ``.png``).
    """
    path = Path(path)
    if suffix is None:
        suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    with _output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f"{TMP_MARK}{suffix}", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            yield tmp
            os.chmod(tmp, file_mode())  # after the writer, which may have made the file anew
            _fsync_file(tmp)
            os.replace(tmp, path)
            _fsync_folder(path.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def atomic_folder(path: str | Path, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it becomes ``path``, with every file
    synced first. A crash leaves a hidden temporary folder that :func:`clean_orphans` removes,
    never a half-written ``path``.

    ``replace=False``: the first writer wins - an existing non-empty ``path`` is kept and the
    rename raises ``OSError`` (for caches that several processes may fill at once).
    """
    path = Path(path)
    with _output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TMP_MARK, dir=path.parent))
        try:
            os.chmod(tmp, folder_mode())  # mkdtemp's 0700 would make the folder private
            yield tmp
            for item in tmp.rglob("*"):
                if item.is_file():
                    _fsync_file(item)
            if replace and path.exists():  # an older version: move it aside, then delete it
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=f".old{TMP_MARK}", dir=path.parent))
                os.replace(path, old / path.name)
                os.rename(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, path)
            _fsync_folder(path.parent)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def write_with(path: str | Path, writer: Callable[[Path], Any], *, suffix: str | None = None) -> Path:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path, suffix=suffix) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def append_line(path: str | Path, line: str) -> None:
    """Append one line to a log (JSONL); a torn last line is skipped by :func:`read_jsonl`."""
    path = Path(path)
    with _output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line.rstrip("\n") + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def read_jsonl(path: str | Path) -> list[dict]:
    rows: list[dict] = []
    path = Path(path)
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line torn by a crash
    return rows


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary name made by this module (an orphan once its writer died)."""
    return path.name.startswith(".") and TMP_MARK in path.name


def clean_orphans(folder: str | Path) -> int:
    """Remove temporary files and folders left by a crash inside ``folder`` (recursively);
    returns the count. Call it only while no other process writes into ``folder``."""
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    # Deepest first, so a temporary folder's own content is not visited after it is gone.
    for tmp in sorted(folder.rglob(f".*{TMP_MARK}*"), key=lambda p: len(p.parts), reverse=True):
        if not is_temporary(tmp):
            continue
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def _json_default(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
