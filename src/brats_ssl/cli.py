"""The ``brats-ssl`` entry point (``[project.scripts]``) and the import tests use; the commands
themselves are in :mod:`brats_ssl.commands`, one module per verb."""

from brats_ssl.commands import app, console, err_console, expand_list_options, main

__all__ = ["app", "console", "err_console", "expand_list_options", "main"]
