"""The method registry: every entry is complete and read everywhere; a new method needs only its
module and one entry (a toy method registered here runs end to end through the command line)."""

from __future__ import annotations

import csv
import json
import re

import pytest

from brats_ssl import config as config_lib
from brats_ssl.cli import expand_list_options
from brats_ssl.errors import BadInputError
from brats_ssl.run_folder import RunFolder
from brats_ssl.ssl import registry
from brats_ssl.ssl.registry import METHODS, STAGES, Method, get_method

from conftest import run_cli_output, write_dataset


@pytest.mark.parametrize("name", list(METHODS))
def test_every_entry_is_complete(name):
    method = METHODS[name]
    assert method.name == name and method.help and method.phases
    assert callable(method.load_runner())
    assert re.fullmatch(r"#[0-9a-f]{6}", method.colour)
    assert str(method.steps_text.format(teacher=7, student="2 × 5")).startswith("7")
    if method.starts_from_teacher or method.staged:
        assert method.phases[0] == "teacher"  # the supervised teacher phase, shared with the supervised run
    assert len(set(method.phase_names(3))) == len(method.phase_names(3))
    config = config_lib.preset("tiny")
    config.method = name
    config_lib.validate(config)


def test_names_colours_and_the_default_are_distinct_and_registered():
    assert len({m.colour for m in METHODS.values()}) == len(METHODS)
    assert registry.DEFAULT_METHOD in METHODS
    assert registry.staged_methods() == [n for n, m in METHODS.items() if STAGES in m.phases]


def test_an_unknown_method_is_bad_input_that_lists_the_valid_ones(tmp_path, capsys):
    with pytest.raises(BadInputError, match="valid methods: " + ", ".join(METHODS)):
        get_method("fixmatch")
    with pytest.raises(BadInputError, match="is not one of " + ", ".join(METHODS)):
        config_lib.from_dict({"preset": "tiny", "method": "fixmatch"})
    code, output = run_cli_output(["train", tmp_path / "data", "-o", tmp_path / "run", "--method", "fixmatch"], capsys)
    assert code == 2 and "fixmatch" in output and all(name in output for name in METHODS)
    assert not (tmp_path / "run").exists()


def test_command_line_help_and_list_parsing_know_every_method(capsys):
    code, output = run_cli_output(["train", "--help"], capsys)
    assert code == 0 and all(name in output for name in METHODS)
    args = expand_list_options(["experiment", "d", "--methods", *METHODS, "--seeds", "0"])
    assert [args[i + 1] for i, a in enumerate(args) if a == "--methods"] == list(METHODS)


def test_phases_sort_in_the_order_the_method_writes_them():
    ours, st = METHODS["ours"], METHODS["self-training"]
    found = ["stage_10", "student_pseudo", "stage_2", "teacher", "stage_1"]
    assert sorted(found, key=ours.phase_key) == ["teacher", "stage_1", "stage_2", "stage_10", "student_pseudo"]
    assert sorted(["student", "teacher"], key=st.phase_key) == ["teacher", "student"]
    assert ours.phase_names(2) == ["teacher", "stage_1", "stage_2"]


# --- a method added by a registry entry alone ---------------------------------------------------


def run_toy(ctx):
    """A toy method: supervised steps in a phase of its own name."""
    from brats_ssl.data.batches import LABELED, Pool
    from brats_ssl.run.method_result import MethodResult
    from brats_ssl.run.phase import supervised_loss_fn, train_phase

    pools = [Pool(ctx.labeled_items(), ctx.config.train.batch_size, LABELED)]
    phase = train_phase(
        ctx, "toy_phase", pools=pools, loss_fn=supervised_loss_fn(ctx.config.train.loss), steps=ctx.config.train.steps
    )
    return MethodResult(final_phase=phase.name, val=phase.summary, student=phase.summary)


TOY = Method(
    "toy",
    f"{__name__}:run_toy",
    "a toy: supervised steps in a phase of its own",
    uses_unlabeled=False,
    starts_from_teacher=False,
    phases=("toy_phase",),
    colour="#123456",
    steps_text="{teacher} (toy)",
)


def test_a_new_method_needs_only_its_registry_entry(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(METHODS, "toy", TOY)
    data = write_dataset(tmp_path / "data", "brats2021", n=6, shape=(24, 28, 20))
    run = tmp_path / "run"
    code, output = run_cli_output(
        ["train", data, "-o", run, "--method", "toy", "--preset", "tiny", "--steps", "2"], capsys
    )
    assert code == 0, output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"] == "toy_phase" and summary["mean"]["WT"]["dice"] is not None
    assert summary["student"]["n_cases"] == summary["n_cases"] and "teacher" not in summary
    assert RunFolder(run).phases == ["toy_phase"]
    code, output = run_cli_output(["report", run], capsys)
    assert code == 0, output
    assert "2 (toy)" in (run / "report.md").read_text()
    # the experiment: --methods parsing, teacher reuse rules, colours of the curves
    assert expand_list_options(["--methods", "supervised", "toy"]) == ["--methods", "supervised", "--methods", "toy"]
    exp = tmp_path / "exp"
    code, output = run_cli_output(
        [
            "experiment",
            data,
            "-o",
            exp,
            "--fractions",
            "1.0",
            "--methods",
            "toy",
            "--selection",
            "1",
            "--preset",
            "tiny",
            "--steps",
            "2",
        ],
        capsys,
    )
    assert code == 0, output
    with (exp / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["method"] for r in rows] == ["toy"] and rows[0]["WT_dice"] != ""
    assert (exp / "report.md").is_file()
