"""Console tables: the metrics table (one summary, or several by name), and the train / demo
table that shows the teacher against the final model; the last stage appears only when it is not
the final model, and says so."""

from __future__ import annotations

from rich.console import Console

from brats_ssl.commands.tables import print_summary_table, table_columns
from brats_ssl.metrics import summarize

NAMES = ("WT", "TC", "ET", "NCR", "ED")


def scores(dice: float) -> dict:
    return {"n_cases": 2, "mean": {r: {"dice": dice, "hd95": 1.0} for r in ("WT", "TC", "ET", "NCR", "ED")}}


def printed(summary: dict) -> str:
    console = Console(record=True, width=250)
    print_summary_table(table_columns(summary), console=console)
    return " ".join(console.export_text().split())


def _entry(case, dice, hd95):
    return {"case": case, **{n: {"dice": dice, "hd95": hd95} for n in NAMES}}


def test_summary_table_single_and_named():
    single = summarize([_entry("a", 0.8125, 3.5)])
    console = Console(record=True, width=160)
    print_summary_table(single, console=console)
    text = console.export_text()
    assert "0.8125" in text and "3.50" in text and "NCR" in text and "ED" in text

    other = summarize([_entry("a", 0.25, 12.0)])
    console = Console(record=True, width=160)
    print_summary_table({"teacher": single, "student": other, "config": {"x": 1}}, console=console)
    text = console.export_text()
    assert "teacher Dice" in text and "student HD95" in text and "config" not in text
    assert "0.2500" in text and "12.00" in text

    # A run's summary.json: the final model's summary at top level plus the named ones.
    console = Console(record=True, width=160)
    print_summary_table({**other, "model": "student", "teacher": single, "student": other}, console=console)
    text = console.export_text()
    assert "teacher Dice" in text and "student Dice" in text and "0.8125" in text


def ours(model: str) -> dict:
    final = {"teacher": 0.811, "stage_1": 0.891, "stage_2": 0.791}[model]
    return {
        **scores(final),
        "model": model,
        "teacher": scores(0.811),
        "student": scores(0.791),
        "stages": [{"stage": 1}, {"stage": 2}],
    }


def test_final_stage_1_is_shown_against_the_teacher_and_the_last_stage_is_named_as_not_selected():
    text = printed(ours("stage_1"))
    assert "teacher Dice" in text and "final model (stage_1) Dice" in text
    assert "last stage (stage_2, not selected) Dice" in text
    assert "student" not in text
    assert "│ WT │ 0.8110 │ 1.00 │ 0.8910 │ 1.00 │ 0.7910 │ 1.00 │" in text  # teacher | final | last stage


def test_no_third_column_when_the_last_stage_is_the_final_model():
    text = printed(ours("stage_2"))
    assert "teacher Dice" in text and "final model (stage_2) Dice" in text and "last stage" not in text


def test_teacher_kept_as_final_model():
    text = printed(ours("teacher"))
    assert "teacher (final model) Dice" in text and "last stage (stage_2, not selected) Dice" in text


def test_baselines_and_plain_summaries():
    assert list(table_columns({**scores(0.8), "model": "teacher", "teacher": scores(0.8)})) == ["teacher (final model)"]
    self_training = {**scores(0.8), "model": "student", "teacher": scores(0.7), "student": scores(0.8)}
    assert list(table_columns(self_training)) == ["teacher", "final model (student)"]
    ua_mt = {**scores(0.8), "model": "ua_mt", "student": scores(0.8)}
    assert list(table_columns(ua_mt)) == ["final model (ua_mt)"]
    assert table_columns(scores(0.5)) == scores(0.5)  # `brats-ssl evaluate`'s summary: unchanged
