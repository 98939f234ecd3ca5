"""``brats-ssl review RUN --static OUT``: the review as files to share without a server.

One ``index.html`` with the tables and one self-contained page per case: NiiVue (gzipped; the
browser unpacks it), the scripts and every volume the page shows are inlined as base64, so a page
opens from disk or an attachment, offline. Decisions cannot be made there (no server to store
them). To keep a page near 20 MB, the uncertainty maps are inlined rounded to steps of 1/255 —
the precision the run stores them at (uint8) — which lets them compress about 3x better; the
scans and labels are the files as they are. A page is written even when it is larger than
:data:`PAGE_LIMIT`, with a warning naming it.
"""

from __future__ import annotations

import base64
import gzip
from pathlib import Path
from typing import cast

import numpy as np

from brats_ssl import atomic
from brats_ssl.paths import inside, safe_name
from brats_ssl.progress import make_progress, track
from brats_ssl.review import niivue
from brats_ssl.review.cases import ReviewCatalogue
from brats_ssl.review.pages import PageMode, case_page, index_page, resolve_layers
from brats_ssl.review.volumes import VolumeStore
from brats_ssl.ssl.review_decisions import read_review

PAGE_LIMIT = 20 * 2**20


ROUNDED_MAPS = ("confidence.nii.gz", "mutual_information.nii.gz")


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _inlined(path: Path) -> str:
    """A volume file as base64; an uncertainty map rounded to 1/255 first (see the module doc)."""
    if not path.name.endswith(ROUNDED_MAPS):
        return _base64(path.read_bytes())
    import nibabel as nib

    image = cast(nib.Nifti1Image, nib.load(str(path)))  # the run's own maps, written as NIfTI-1
    rounded = (np.round(np.asarray(image.dataobj, np.float32) * 255) / 255).astype(np.float32)
    return _base64(gzip.compress(nib.Nifti1Image(rounded, image.affine, image.header).to_bytes(), 6))


def write_static(run: Path, out: Path, data: Path | None = None, *, console=None) -> list[Path]:
    """index.html and ``<case>.html`` for every case of the run; returns the pages written."""
    catalogue = ReviewCatalogue(run, data)
    store = VolumeStore(catalogue)
    mode = PageMode(static=True)
    niivue_module = {"gzip_base64": _base64(gzip.compress(niivue.module_source().encode("utf-8"), 9))}
    review = read_review(catalogue.run.path)
    out = Path(out)
    written = []
    with make_progress(console) as progress:
        for case_id in track(progress, catalogue.case_ids, description="static pages", total=len(catalogue.case_ids)):
            files = store.build_all(case_id)
            volumes = resolve_layers(
                store.layers(case_id),
                # resolve_layers calls it at once, with this iteration's files
                lambda name: {"name": name, "data": _inlined(files[name])},  # noqa: B023
            )
            page = case_page(catalogue, case_id, volumes, mode=mode, niivue=niivue_module, decision=review.get(case_id))
            path = atomic.write_text(inside(out, f"{safe_name(case_id)}.html"), page)
            size = path.stat().st_size
            if size > PAGE_LIMIT and console is not None:
                console.print(f"case {case_id}: page {path} is {size / 2**20:.1f} MB, above {PAGE_LIMIT // 2**20} MB")
            written.append(path)
    written.append(atomic.write_text(out / "index.html", index_page(catalogue, catalogue.rows(), mode)))
    return written
