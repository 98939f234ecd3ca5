"""``brats-ssl review``: a local web app (or static pages) to accept or reject pseudo-labels."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from brats_ssl.commands.app import app, console
from brats_ssl.review import DEFAULT_HOST, DEFAULT_PORT


@app.command()
def review(
    run: Path = typer.Argument(..., help="Run folder trained with --method ours (or self-training)."),
    data: Optional[Path] = typer.Argument(None, help="The dataset folder (default: the one in the run's split.json)."),
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to listen on (default: this machine only)."),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=0, max=65535, help="Port (0: any free port)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser."),
    static: Optional[Path] = typer.Option(
        None, "--static", help=("Write self-contained HTML pages here instead of serving.")
    ),
) -> None:
    """Review pseudo-labels and uncertainty in the browser (NiiVue); accept / reject decisions go to
    RUN/review.json, and a resumed `train` and `pseudolabel` honour them."""
    if static is not None:
        from brats_ssl.review.static_site import write_static

        written = write_static(run, static, data, console=console)
        console.print(f"wrote {len(written) - 1} case pages and {static / 'index.html'}")
        return
    from brats_ssl.review.app import serve

    serve(run, data, host=host, port=port, open_browser=not no_browser, console=console)
