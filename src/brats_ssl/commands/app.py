"""The ``brats-ssl`` typer app and the two consoles every command prints on.

Each verb module registers itself on :data:`app` when imported; :mod:`brats_ssl.commands` imports
them in the order ``--help`` lists them.
"""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="brats-ssl",
    help="Semi-supervised brain-tumour segmentation: uncertainty-aware teacher, confidence "
    "curriculum, learn-and-unlearn student.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    """Global options (they go before the command)."""
