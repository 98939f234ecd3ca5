"""The review web app (Starlette, served by uvicorn on localhost by default).

Routes: ``GET /`` the tables; ``GET /case/<id>`` a case's viewer; ``GET /api/cases`` the rows as
JSON; ``POST /api/cases/<id>/decision`` with ``{"decision": "accept" | "reject" | "undecided",
"note": "..."}``; ``GET /case/<id>/volume/<name>`` the NIfTI volumes; ``GET /assets/<name>`` the
scripts, styles and NiiVue. A bad request gets a 4xx JSON error and changes nothing.
"""

from __future__ import annotations

import socket
import threading
import webbrowser
from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from brats_ssl.errors import BadInputError
from brats_ssl.review import niivue
from brats_ssl.review.cases import POOL, ReviewCatalogue
from brats_ssl.review.pages import ASSETS, PageMode, asset_text, case_page, index_page, resolve_layers
from brats_ssl.review.volumes import VolumeStore
from brats_ssl.ssl.review_decisions import DECISIONS, read_review, record_decision

NIIVUE_ASSET = "niivue.js"
MAX_NOTE = 4000
NO_STORE = {"Cache-Control": "no-store"}  # tables and decisions change while the page is open


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(run: str | Path, data: str | Path | None = None) -> Starlette:
    catalogue = ReviewCatalogue(run, data)
    store = VolumeStore(catalogue)
    niivue.module_source()  # fail now, not in the browser, when NiiVue is missing
    mode = PageMode(static=False)

    def known_case(request: Request) -> str | None:
        case_id = request.path_params["case_id"]
        return case_id if case_id in catalogue.sets else None

    def index(request: Request) -> Response:
        return HTMLResponse(index_page(catalogue, catalogue.rows(), mode), headers=NO_STORE)

    def case(request: Request) -> Response:
        case_id = known_case(request)
        if case_id is None:
            return HTMLResponse(
                f"<p>No case {request.path_params['case_id']!r} in this run. <a href='/'>All cases</a></p>",
                status_code=404,
            )
        prefix = f"/case/{quote(case_id, safe='')}/volume/"
        volumes = resolve_layers(store.layers(case_id), lambda name: {"url": prefix + name, "name": name})
        page = case_page(
            catalogue,
            case_id,
            volumes,
            mode=mode,
            niivue=f"/assets/{NIIVUE_ASSET}",
            decision=read_review(catalogue.run.path).get(case_id),
        )
        return HTMLResponse(page, headers=NO_STORE)

    def volume(request: Request) -> Response:
        case_id = known_case(request)
        if case_id is None:
            return _error(404, f"no case {request.path_params['case_id']!r} in this run")
        try:
            path = store.path(case_id, request.path_params["name"])
        except BadInputError as error:
            return _error(404, str(error))
        return FileResponse(path, media_type="application/octet-stream")

    def cases(request: Request) -> Response:
        return JSONResponse(catalogue.rows(), headers=NO_STORE)

    async def decision(request: Request) -> Response:
        case_id = known_case(request)
        if case_id is None:
            return _error(404, f"no case {request.path_params['case_id']!r} in this run")
        if catalogue.sets[case_id] != POOL:
            return _error(400, f"case {case_id} is {catalogue.sets[case_id]}: decisions are for the unlabeled pool")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 'the body must be JSON: {"decision": ..., "note": ...}')
        if not isinstance(body, dict) or body.get("decision") not in DECISIONS:
            return _error(400, f"decision must be one of {', '.join(DECISIONS)}")
        note = body.get("note", "")
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            return _error(400, f"note must be text of at most {MAX_NOTE} characters")
        entry = record_decision(catalogue.run.path, case_id, body["decision"], note)
        return JSONResponse({"case": case_id, **entry})

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name == NIIVUE_ASSET:
            return Response(
                niivue.module_source(), media_type="text/javascript", headers={"Cache-Control": "max-age=3600"}
            )
        if name not in ASSETS:
            return _error(404, f"no asset {name!r}")
        media = "text/css" if name.endswith(".css") else "text/javascript"
        return Response(asset_text(name), media_type=media)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/case/{case_id}", case),
            Route("/case/{case_id}/volume/{name:path}", volume),
            Route("/api/cases", cases),
            Route("/api/cases/{case_id}/decision", decision, methods=["POST"]),
            Route("/assets/{name}", asset),
        ]
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections made once the URL is printed wait for the server to start
    except OSError as error:
        sock.close()
        raise BadInputError(
            f"--host {host} --port {port}: cannot listen there ({error.strerror}); choose another --port"
        ) from error
    return sock


def serve(
    run: Path,
    data: Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = True,
    console=None,
) -> None:
    """Serve the review of ``run`` until interrupted; prints the URL (``--port 0``: any free port)."""
    import uvicorn

    app = create_app(run, data)
    sock = _bind(host, port)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{sock.getsockname()[1]}/"
    if console is not None:
        console.print(f"review of {run}: {url}  (Ctrl-C to stop)", soft_wrap=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            console.print(f"listening on {host}: anyone who reaches it can see the scans and change decisions")
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    server.run(sockets=[sock])
