"""NiiVue, the web NIfTI viewer of the review pages, as one self-contained ES module.

The project's set-up (``make install``, ``make test``, ``make demo``) takes the file
``build/index.min.js`` of the npm package ``@niivue/niivue`` at an exact version, checked against
its registry integrity, into ``review/vendor/niivue-<version>.min.js`` (git-ignored). That file
wraps the whole bundled library, dependencies included, in one URL-encoded string
(``export const esm = "..."``): decoded, it is a module exporting ``Niivue``, with nothing to
fetch at run time. ``BRATS_SSL_NIIVUE`` may point to another copy of that file.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from functools import lru_cache
from pathlib import Path

from brats_ssl.errors import BadInputError

VENDOR = Path(__file__).resolve().parent / "vendor"
_NAME = re.compile(r"niivue-(\d+)\.(\d+)\.(\d+)\.min\.js")
_WRAPPED = re.compile(r'\s*export const esm = "(.*)"\s*;?\s*', re.S)


def bundle_path() -> Path:
    """The NiiVue file to use: ``$BRATS_SSL_NIIVUE``, else the newest one in ``review/vendor/``."""
    override = os.environ.get("BRATS_SSL_NIIVUE")
    if override:
        path = Path(override)
        if not path.is_file():
            raise BadInputError(f"file {path} (BRATS_SSL_NIIVUE): does not exist")
        return path
    versions = {
        p: tuple(int(x) for x in match.groups())
        for p in VENDOR.glob("niivue-*.min.js")
        if (match := _NAME.fullmatch(p.name))
    }
    found = sorted(versions, key=versions.__getitem__)
    if not found:
        raise BadInputError(
            f"folder {VENDOR}: NiiVue is not installed; run `make install` (it takes @niivue/niivue from the npm "
            "registry) or set BRATS_SSL_NIIVUE to a copy of that package's build/index.min.js"
        )
    return found[-1]


def bundle_version(path: Path | None = None) -> str:
    match = _NAME.fullmatch((path or bundle_path()).name)
    return ".".join(match.groups()) if match else "unknown"


@lru_cache(maxsize=2)
def _module_source(path: Path, mtime_ns: int) -> str:
    match = _WRAPPED.fullmatch(path.read_text(encoding="utf-8"))
    if match is None:
        raise BadInputError(f"file {path}: not NiiVue's build/index.min.js (no `export const esm` string)")
    return urllib.parse.unquote(match.group(1))


def module_source() -> str:
    """NiiVue as the text of an ES module that exports ``Niivue``, ``NVImage``, ``SLICE_TYPE`` ..."""
    path = bundle_path()
    return _module_source(path, path.stat().st_mtime_ns)
