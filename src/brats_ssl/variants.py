"""Method variants: a registered method with some settings changed, run and compared in an
experiment as a method of its own — the ablation of one switch, or a setting tried on the folds
before it becomes a default.

``experiment --variant "no-copy-paste=ours ssl.copy_paste=false"`` adds the method
``no-copy-paste``: ``ours`` with ``ssl.copy_paste=false`` on top of the sweep's own ``--set``
values. Its runs are ``runs/no-copy-paste_fold{f}_f{fraction}_s{seed}``, its rows are in
``per_case.csv`` under its name, and it is compared with its base method case by case (the base
becomes a reference), so ``comparisons.csv`` holds the ablation with its interval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from brats_ssl.errors import BadInputError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")  # a run-folder prefix; "_" separates the name's fields


@dataclass(frozen=True)
class Variant:
    """``method`` run with ``overrides`` (``section.field=value``) added to the sweep's."""

    method: str
    overrides: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return " ".join([self.method] + self.overrides)

    @property
    def keeps_teacher(self) -> bool:
        """Only ``ssl.*`` changed: the teacher is the supervised run's training, reused as for the
        method itself; a changed ``train.*`` / ``model.*`` / ``data.*`` setting trains its own."""
        return all(item.strip().startswith("ssl.") for item in self.overrides)


def parse_variant(text: str) -> tuple[str, Variant]:
    """``NAME=METHOD KEY=VALUE [KEY=VALUE ...]`` → (NAME, Variant); bad input says what is wrong."""
    from brats_ssl import config as config_lib
    from brats_ssl.ssl.registry import METHODS

    example = 'e.g. --variant "no-copy-paste=ours ssl.copy_paste=false"'
    name, _, rest = text.partition("=")
    name, tokens = name.strip(), rest.split()
    if not name or not tokens or len(name.split()) > 1:
        raise BadInputError(f"--variant {text!r}: expected NAME=METHOD KEY=VALUE ..., {example}")
    if not NAME.match(name):
        raise BadInputError(
            f"--variant {text!r}: the name {name!r} names run folders; use letters, digits, '.', '+' and '-'"
        )
    if name in METHODS:
        raise BadInputError(f"--variant {text!r}: {name!r} is a method already; give the variant its own name")
    method, overrides = tokens[0], tokens[1:]
    if method not in METHODS:
        raise BadInputError(f"--variant {text!r}: {method!r} is not a method; valid methods are {', '.join(METHODS)}")
    if not overrides:
        raise BadInputError(f"--variant {text!r}: no setting changed, so it would be {method} itself; {example}")
    try:  # an unknown key or a bad value fails now, not after the runs before it
        config_lib.apply_overrides(config_lib.preset("tiny"), overrides)
    except BadInputError as error:
        raise BadInputError(f"--variant {text!r}: {error}") from error
    return name, Variant(method, overrides)


def parse_variants(texts: list[str]) -> dict[str, Variant]:
    variants: dict[str, Variant] = {}
    for text in texts:
        name, variant = parse_variant(text)
        if name in variants:
            raise BadInputError(f"--variant {name!r} is given twice")
        variants[name] = variant
    return variants


def variants_from_info(info: dict) -> dict[str, Variant]:
    """The variants an experiment.json records (none for sweeps made before variants existed)."""
    return {
        name: Variant(entry["method"], list(entry.get("overrides", [])))
        for name, entry in (info.get("variants") or {}).items()
    }


def base_method(name: str, variants: dict[str, Variant]) -> str:
    """The registered method a row's method name runs: a variant's base, else the name itself."""
    variant = variants.get(name)
    return variant.method if variant is not None else name
