"""The entry point: command-line words in, an exit code out.

Exit codes: 0 success, 2 bad input (the message names the case, the file and the problem; also a
full disk or a read-only output folder), 1 internal error, 130 interrupted. Tracebacks only with
``--debug``.
"""

from __future__ import annotations

import sys
import traceback

from typer.exceptions import Abort, Exit, TyperException

from brats_ssl.commands.app import app, err_console
from brats_ssl.errors import BadInputError, output_error


def _is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def expand_list_options(args: list[str]) -> list[str]:
    """Allow ``--fractions 0.1 0.25 --methods ours ua-mt --seeds 0 1`` (space-separated lists,
    as people write them) on top of the repeated-flag form the CLI library understands."""
    from brats_ssl.ssl.registry import METHODS

    accepts = {
        "--fractions": _is_number,
        "--seeds": _is_number,
        "--methods": lambda t: t in METHODS,
        "--references": lambda t: t in METHODS,
    }
    out: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        out.append(token)
        i += 1
        if token in accepts and i < len(args):
            out.append(args[i])
            i += 1
            while i < len(args) and accepts[token](args[i]):
                out += [token, args[i]]
                i += 1
    return out


def _printable(text: str) -> str:
    """Text that prints on any console: undecodable file-name bytes shown as ``\\xff``, and
    square brackets kept literal (a path like ``[/tmp]`` is not rich markup)."""
    from rich.markup import escape

    return escape(text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def _report_error(title: str, message: str) -> None:
    err_console.print(f"[bold red]{title}:[/] {_printable(message)}", markup=True, soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps errors to exit codes (2 bad input, also a full disk or read-only output;
    1 internal error)."""
    args = expand_list_options(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in args
    try:
        result = app(args=args, prog_name="brats-ssl", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except Exit as stop:
        code = stop.exit_code
    except Abort:
        err_console.print("aborted")
        code = 130
    except TyperException as error:  # usage errors are bad input too
        show = getattr(error, "show", None)
        show() if show else err_console.print(f"error: {error.format_message()}")
        code = 2
    except BadInputError as error:
        if debug:
            traceback.print_exc()
        _report_error("error", str(error))
        code = 2
    except KeyboardInterrupt:
        err_console.print("interrupted; re-run the same command to resume")
        code = 130
    except Exception as error:  # noqa: BLE001 - the last line of defence
        if debug:
            traceback.print_exc()
        # A full disk, a quota or a read-only / forbidden folder is the user's to fix: exit 2.
        friendly = output_error(error.filename, error, action="be used") if isinstance(error, OSError) else None
        if friendly is not None:
            _report_error("error", str(friendly))
            code = 2
        else:
            _report_error("internal error", f"{type(error).__name__}: {error}")
            err_console.print("re-run with --debug for the traceback and report it", highlight=False)
            code = 1
    sys.exit(code)
