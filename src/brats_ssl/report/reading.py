"""What an experiment says, in words: the questions a researcher asks of a semi-supervised sweep,
each answered from its paired comparison (mean WT/TC/ET Dice) — yes, no, or not shown — with
how much evidence is behind it (val cases, seeds).

The questions, for every method that learns from unlabeled scans:

- against ``supervised``: does it beat training on the labeled cases alone?
- against ``ours-control``: does it beat the same extra training steps on the labeled cases alone?
- against ``ours-student-control``: does it beat ours' student fed with labeled cases alone, that
  is, do the unlabeled scans' content add anything?
- against the other methods that use unlabeled scans, and a variant against its base method.

Computed from the per-case rows, as comparisons.csv is, so a pair the sweep's references leave
out (ours against UA-MT) is answered too.
"""

from __future__ import annotations

from typing import Sequence

from brats_ssl.experiment_tables import compare
from brats_ssl.report.document import Section, Table
from brats_ssl.report.formatting import format_interval
from brats_ssl.report.run_summary import REGIONS_SLASHED
from brats_ssl.ssl.registry import METHODS
from brats_ssl.variants import Variant, base_method

CONTROLS = ("supervised", "ours-control", "ours-student-control")
QUESTIONS = {
    "supervised": "Does {m} beat supervised training on the labeled cases alone?",
    "ours-control": "Does {m} beat ours' extra training steps on the labeled cases alone (ours-control)?",
    "ours-student-control": "Does {m} beat ours' student fed with the labeled cases alone (ours-student-control)?",
}
# what the answer means for ours (and its variants): the product's own questions
OURS_MEANING = {
    "ours-control": " Is its gain more than extra training?",
    "ours-student-control": " Do the unlabeled scans add to its student?",
}
FEW_CASES = 10  # below this a bootstrap interval over cases is rough (too narrow)

Difference = tuple[float, float, float, int]  # mean, low, high, cases


def answer(difference: Difference) -> str:
    """yes / no / not shown, by whether the 95 % interval excludes 0."""
    mean, low, high, _ = difference
    if low > 0:
        return f"**yes**: higher by {mean:.3f}"
    if high < 0:
        return f"**no**: lower by {-mean:.3f}"
    return "not shown: the interval includes 0"


def learns_from_unlabeled(method: str, variants: dict[str, Variant]) -> bool:
    base = base_method(method, variants)
    return base in METHODS and METHODS[base].uses_unlabeled


def questions(methods: Sequence[str], variants: dict[str, Variant]) -> list[tuple[str, str, str]]:
    """(question, method, reference) in the order the report asks them."""
    asked: list[tuple[str, str, str]] = []
    ssl_methods = [m for m in methods if m not in CONTROLS and learns_from_unlabeled(m, variants)]
    for method in ssl_methods:
        meaning = OURS_MEANING if base_method(method, variants) == "ours" else {}
        asked += [
            (QUESTIONS[reference].format(m=method) + meaning.get(reference, ""), method, reference)
            for reference in CONTROLS
        ]
    plain = [m for m in ssl_methods if m not in variants]
    for i, method in enumerate(plain):
        asked += [(f"Does {method} beat {other}?", method, other) for other in plain[i + 1 :]]
    for method in methods:
        variant = variants.get(method)
        if variant is not None:
            asked.append((f"Does {' '.join(variant.overrides)} make {variant.method} better?", method, variant.method))
    return asked


def reading_section(case_rows: list[dict], methods: Sequence[str], variants: dict[str, Variant]) -> Section | None:
    """The questions the sweep's per-case results can answer (both methods validated the same cases),
    with their answers; None when none can be."""
    seeds: dict[str, set] = {}
    for row in case_rows:
        seeds.setdefault(row["method"], set()).add(str(row["seed"]))
    fractions = sorted({float(r["fraction"]) for r in case_rows})
    rows, smallest, fewest_seeds = [], None, None
    for question, method, reference in questions(methods, variants):
        for fraction in fractions:
            result = compare(case_rows, method, reference, fraction, "mean")
            if result is None:
                continue
            difference = (result.mean, result.ci_low, result.ci_high, result.n)
            smallest = result.n if smallest is None else min(smallest, result.n)
            pair_seeds = min(len(seeds.get(method, ())), len(seeds.get(reference, ())))
            fewest_seeds = pair_seeds if fewest_seeds is None else min(fewest_seeds, pair_seeds)
            rows.append(
                [
                    question,
                    f"{method} − {reference}",
                    f"{fraction:.0%}",
                    str(result.n),
                    format_interval(difference, signed=True),
                    answer(difference),
                ]
            )
    if not rows:
        return None
    blocks: list = [
        Table(
            ["question", "comparison", "labeled", "cases", f"{REGIONS_SLASHED} Dice difference [95 % CI]", "answer"],
            rows,
            caption="Yes or no only where the paired 95 % bootstrap interval over the val cases excludes 0; "
            "'not shown' is not 'no difference': the cases cannot tell.",
        )
    ]
    if smallest is not None and smallest < FEW_CASES:
        blocks.append(
            f"Some answers rest on {smallest} val cases: with fewer than {FEW_CASES} the bootstrap interval "
            "is too narrow, so a 'yes' or 'no' there is weak; a sweep with `--folds 5` validates every case "
            "once when all its folds have run."
        )
    if fewest_seeds == 1:
        blocks.append(
            "Some answers rest on one seed, one draw of which cases are labeled and of the training's "
            "randomness: a difference resolved on one seed can shrink or turn on another (`--seeds 0 1`)."
        )
    return Section("What the sweep says", blocks)
