"""The experiment report's plain-language reading: questions, answers and their caveats."""

import random

from brats_ssl.report.document import Table
from brats_ssl.report.reading import answer, questions, reading_section
from brats_ssl.variants import Variant

MIXED = {"mixed": Variant("ours", ["ssl.labeled_extra_share=0.5"])}
METHODS = ["supervised", "ours", "ours-control", "ours-student-control", "ua-mt", "mixed"]


def _rows(cases=12, seeds=(0, 1)):
    """Per-case rows where ours is 0.05 above supervised and below the student control, level with
    ours-control (noise of ± 0.02 around it), and UA-MT level with supervised."""
    rng = random.Random(0)
    rows = []
    for seed in seeds:
        for i in range(cases):
            base = 0.4 + 0.04 * i
            dice = {
                "supervised": base,
                "ours-control": base + 0.05 + rng.uniform(-0.02, 0.02),
                "ours": base + 0.05,
                "ours-student-control": base + 0.10,
                "ua-mt": base + rng.uniform(-0.02, 0.02),
                "mixed": base + 0.06,
            }
            for method, value in dice.items():
                row = {"method": method, "fraction": 0.25, "seed": seed, "fold": 0, "case": f"c{i}"}
                rows.append(row | {"WT": value, "TC": value, "ET": value})
    return rows


def _table(section) -> dict[str, list[str]]:
    table = next(b for b in section.blocks if isinstance(b, Table))
    return {row[1]: row for row in table.rows}


def test_the_questions_for_ours_its_variants_and_the_baselines():
    asked = questions(METHODS, MIXED)
    pairs = [(m, r) for _, m, r in asked]
    for reference in ("supervised", "ours-control", "ours-student-control"):
        assert ("ours", reference) in pairs and ("ua-mt", reference) in pairs and ("mixed", reference) in pairs
    assert ("ours", "ua-mt") in pairs and ("mixed", "ours") in pairs
    assert not any(m in ("supervised", "ours-control", "ours-student-control") for m, _ in pairs)  # controls: none
    text = dict(((m, r), q) for q, m, r in asked)
    assert text[("ours", "ours-student-control")].endswith("Do the unlabeled scans add to its student?")
    assert text[("mixed", "ours-control")].endswith("Is its gain more than extra training?")
    assert "unlabeled scans add" not in text[("ua-mt", "ours-student-control")]
    assert text[("mixed", "ours")] == "Does ssl.labeled_extra_share=0.5 make ours better?"
    supervised_variant = {"strong-teacher": Variant("supervised", ["train.strong_views=0.5"])}
    assert questions(["supervised", "strong-teacher"], supervised_variant) == [
        ("Does train.strong_views=0.5 make supervised better?", "strong-teacher", "supervised")
    ]


def test_answers_are_yes_no_or_not_shown_by_the_interval():
    assert answer((0.05, 0.01, 0.09, 10)) == "**yes**: higher by 0.050"
    assert answer((-0.05, -0.09, -0.01, 10)) == "**no**: lower by 0.050"
    assert answer((0.05, -0.01, 0.09, 10)).startswith("not shown")


def test_the_reading_answers_from_the_per_case_rows():
    section = reading_section(_rows(), METHODS, MIXED)
    table = _table(section)
    assert table["ours − supervised"][3] == "12" and table["ours − supervised"][5] == "**yes**: higher by 0.050"
    assert table["ours − ours-student-control"][5] == "**no**: lower by 0.050"
    assert table["ours − ours-control"][5].startswith("not shown")
    assert table["ours − ua-mt"][5].startswith("**yes**")  # no reference row for it in comparisons.csv
    assert table["mixed − ours"][4].startswith("+0.010 [+0.010, +0.010]")
    assert len(section.blocks) == 1  # 12 cases and 2 seeds: the table, no caveat


def test_few_cases_or_one_seed_are_said():
    section = reading_section(_rows(cases=5, seeds=(0,)), METHODS, MIXED)
    remarks = [b for b in section.blocks if isinstance(b, str)]
    assert any("rest on 5 val cases" in r for r in remarks)
    assert any("rest on one seed" in r for r in remarks)


def test_nothing_to_read_without_a_pair():
    only = [r for r in _rows() if r["method"] == "supervised"]
    assert reading_section(only, ["supervised"], {}) is None


def test_the_console_prints_the_questions_answers_and_remarks():
    from rich.console import Console

    from brats_ssl.commands.tables import print_reading

    console = Console(record=True, width=250)
    print_reading(reading_section(_rows(cases=5, seeds=(0,)), METHODS, MIXED), console)
    text = console.export_text()
    lines = text.splitlines()
    at = next(i for i, x in enumerate(lines) if "ours − ours-student-control" in x)
    assert lines[at - 1].strip().endswith("Do the unlabeled scans add to its student?")
    assert lines[at].strip().startswith("ours − ours-student-control, 25% labeled, 5 cases: -0.050 [")
    assert lines[at].endswith("→ no: lower by 0.050")
    assert "**" not in text and "rest on 5 val cases" in text and "rest on one seed" in text
