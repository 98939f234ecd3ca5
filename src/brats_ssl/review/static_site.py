"""``brats-ssl review RUN --static OUT``: the review as files to share without a server.

One ``index.html`` with the tables and one self-contained page per case: NiiVue, the scripts and
every volume the page shows are inlined as base64, so a page opens from disk or an attachment,
offline. Decisions cannot be made there (no server to store them). A page is written even when
it is larger than :data:`PAGE_LIMIT`, with a warning naming the case.
"""

from __future__ import annotations

import base64
from pathlib import Path

from brats_ssl import atomic
from brats_ssl.paths import inside, safe_name
from brats_ssl.progress import make_progress, track
from brats_ssl.review import niivue
from brats_ssl.review.cases import ReviewCatalogue
from brats_ssl.review.pages import PageMode, case_page, index_page, resolve_layers
from brats_ssl.review.volumes import VolumeStore
from brats_ssl.ssl.review_decisions import read_review

PAGE_LIMIT = 20 * 2**20


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def write_static(run: Path, out: Path, data: Path | None = None, *, console=None) -> list[Path]:
    """index.html and ``<case>.html`` for every case of the run; returns the pages written."""
    catalogue = ReviewCatalogue(run, data)
    store = VolumeStore(catalogue)
    mode = PageMode(static=True)
    niivue_url = "data:text/javascript;base64," + _base64(niivue.module_source().encode("utf-8"))
    review = read_review(catalogue.run.path)
    out = Path(out)
    written = []
    with make_progress(console) as progress:
        for case_id in track(progress, catalogue.case_ids, description="static pages", total=len(catalogue.case_ids)):
            files = store.build_all(case_id)
            volumes = resolve_layers(store.layers(case_id),
                                     lambda name: {"name": name, "data": _base64(files[name].read_bytes())})
            page = case_page(catalogue, case_id, volumes, mode=mode, niivue_url=niivue_url,
                             decision=review.get(case_id))
            path = atomic.write_text(inside(out, f"{safe_name(case_id)}.html"), page)
            size = path.stat().st_size
            if size > PAGE_LIMIT and console is not None:
                console.print(f"case {case_id}: page {path} is {size / 2**20:.0f} MB, above {PAGE_LIMIT // 2**20} MB")
            written.append(path)
    written.append(atomic.write_text(out / "index.html", index_page(catalogue, catalogue.rows(), mode)))
    return written
