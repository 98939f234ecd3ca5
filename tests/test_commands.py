"""The command layer: one module per verb, the space-separated list options, and the rule that
console layouts (rich) stay out of the library."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import brats_ssl
from brats_ssl.cli import app, expand_list_options

PACKAGE = Path(brats_ssl.__file__).parent
# The one library module allowed rich: it builds every progress bar (issue 13).
RICH_OUTSIDE_COMMANDS = {"progress.py"}


def _imports_rich(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "rich" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "rich":
            return True
    return False


def test_no_library_module_imports_rich():
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.relative_to(PACKAGE).parts[0] != "commands"
        and str(p.relative_to(PACKAGE)) not in RICH_OUTSIDE_COMMANDS
        and _imports_rich(p)
    ]
    assert offenders == []


@pytest.mark.parametrize("command", app.registered_commands, ids=lambda c: c.callback.__name__)
def test_every_verb_lives_in_its_own_module(command):
    name = command.callback.__name__
    assert command.callback.__module__ == f"brats_ssl.commands.{name}"
    assert importlib.import_module(f"brats_ssl.commands.{name}").__doc__.startswith(f"``brats-ssl {name}``")


def test_expand_list_options():
    args = [
        "experiment",
        "d",
        "--fractions",
        "0.1",
        "0.25",
        "--methods",
        "ours",
        "ua-mt",
        "--seeds",
        "0",
        "1",
        "--steps",
        "5",
    ]
    assert expand_list_options(args) == [
        "experiment",
        "d",
        "--fractions",
        "0.1",
        "--fractions",
        "0.25",
        "--methods",
        "ours",
        "--methods",
        "ua-mt",
        "--seeds",
        "0",
        "--seeds",
        "1",
        "--steps",
        "5",
    ]
    # A word that is no method ends the list (here: the positional DATA after the options).
    words = ["experiment", "--methods", "ours", "data"]
    assert expand_list_options(words) == words
    assert expand_list_options(["experiment", "--references", "supervised", "ours"]) == [
        "experiment",
        "--references",
        "supervised",
        "--references",
        "ours",
    ]
