"""The ``brats-ssl`` command line: one module per verb, each a thin function that parses, calls
the library and prints.

Heavy imports (torch, MONAI) happen inside the commands so ``--help`` stays instant. The verbs
are imported in the order ``brats-ssl --help`` lists them.
"""

from brats_ssl.commands.app import app, console, err_console

# The import order is the order --help lists the verbs in.
# isort: off
from brats_ssl.commands import (  # noqa: F401 - importing a verb registers it on the app
    synth,
    check,
    split,
    train,
    predict,
    pseudolabel,
    suggest,
    review,
    evaluate,
    experiment,
    report,
    demo,
)

# isort: on
from brats_ssl.commands.entry_point import expand_list_options, main

__all__ = ["app", "console", "err_console", "expand_list_options", "main"]
