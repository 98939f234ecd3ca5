"""Error types that map to the command line's exit codes."""

from __future__ import annotations


class BadInputError(Exception):
    """The user's input is unusable (exit code 2).

    The message must say what is wrong and name the case and file where there is one, e.g.
    ``case Brats18_2013_3_1: file .../Brats18_2013_3_1_t1ce.nii.gz: truncated gzip stream``.
    """


def case_message(case_id: str | None, path: object | None, problem: str) -> str:
    """One uniform wording for a problem with a case and/or a file."""
    parts = []
    if case_id:
        parts.append(f"case {case_id}")
    if path:
        parts.append(f"file {path}")
    parts.append(problem)
    return ": ".join(parts)
