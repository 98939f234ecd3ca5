"""Error types that map to the command line's exit codes."""

from __future__ import annotations

import errno


class BadInputError(Exception):
    """The user's input is unusable (exit code 2).

    The message must say what is wrong and name the case and file where there is one, e.g.
    ``case Brats18_2013_3_1: file .../Brats18_2013_3_1_t1ce.nii.gz: truncated gzip stream``.
    """


class OutputError(BadInputError):
    """An output cannot be written: disk full, quota, read-only or forbidden folder (exit 2)."""


# errno → (what happened, what to do). Only these are the user's to fix; others are internal errors.
OUTPUT_ERRNOS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on device", "free some space or choose another output folder"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or choose another output folder"),
    errno.EROFS: ("read-only file system", "choose a writable output folder"),
    errno.EACCES: ("permission denied", "choose a folder you may write to"),
    errno.EPERM: ("operation not permitted", "choose a folder you may write to"),
    errno.EISDIR: ("a folder of that name is in the way", "give a file name, not a folder"),
    errno.ENOTDIR: ("part of the path is a file, not a folder", "choose another output path"),
}


def case_message(case_id: str | None, path: object | None, problem: str) -> str:
    """One uniform wording for a problem with a case and/or a file."""
    parts = []
    if case_id:
        parts.append(f"case {case_id}")
    if path:
        parts.append(f"file {path}")
    parts.append(problem)
    return ": ".join(parts)


def output_error(path: object, error: OSError, *, action: str = "be written") -> OutputError | None:
    """An :class:`OutputError` naming ``path`` when ``error`` is a disk-full / read-only /
    permission problem, else None (the error is then not the user's to fix)."""
    known = OUTPUT_ERRNOS.get(error.errno) if error.errno is not None else None
    if known is None:
        return None
    reason, advice = known
    where = f"file {path}: " if path else ""
    return OutputError(f"{where}cannot {action}: {reason}; {advice}")
