"""Method variants in a cross-validated sweep: a method with settings changed runs under its own
name, is compared with its base case by case, and reuses the teacher only when the teacher is the
same training."""

import json
from pathlib import Path

import pytest
import yaml

from brats_ssl.errors import BadInputError
from brats_ssl.experiment_folder import REUSED_MARKER, read_csv
from brats_ssl.variants import parse_variant, parse_variants

from conftest import tiny_sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, _isolated_cache) -> Path:
    variants = parse_variants(["two-stages=ours-control ssl.stages=2", "longer=ours-control train.steps=3"])
    return tiny_sweep(tmp_path_factory.mktemp("variants"), cases=8, seed=2, folds=2, variants=variants)


def _config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def test_a_variant_runs_its_base_with_its_settings_on_top_of_the_sweeps(sweep):
    for fold in range(2):
        base = sweep / "runs" / f"ours-control_fold{fold}_f0.5_s0"
        variant = sweep / "runs" / f"two-stages_fold{fold}_f0.5_s0"
        assert _config(base)["method"] == _config(variant)["method"] == "ours-control"
        assert _config(base)["ssl"]["stages"] == 1 and _config(variant)["ssl"]["stages"] == 2
        assert (variant / "stage_2").is_dir() and not (base / "stage_2").exists()
        assert json.loads((variant / "split.json").read_text()) == json.loads((base / "split.json").read_text())
        # only ssl.* changed: the supervised run's teacher is reused, as for the base method
        assert (variant / "teacher" / REUSED_MARKER).is_file()
        # train.steps changes the teacher too: that variant trains its own
        longer = sweep / "runs" / f"longer_fold{fold}_f0.5_s0"
        assert (longer / "teacher" / "done.json").is_file() and not (longer / "teacher" / REUSED_MARKER).exists()
    info = json.loads((sweep / "experiment.json").read_text())
    assert info["variants"]["two-stages"] == {"method": "ours-control", "overrides": ["ssl.stages=2"]}
    assert info["methods"] == ["supervised", "ours-control", "two-stages", "longer"]


def test_a_variant_is_compared_with_its_base_per_case(sweep):
    rows = read_csv(sweep / "per_case.csv")
    variant_cases = sorted(r["case"] for r in rows if r["method"] == "two-stages")
    assert variant_cases == sorted(r["case"] for r in rows if r["method"] == "ours-control") and len(variant_cases) > 0
    pairs = {(c["method"], c["reference"]) for c in read_csv(sweep / "comparisons.csv")}
    assert {("two-stages", "ours-control"), ("longer", "ours-control"), ("two-stages", "supervised")} <= pairs
    md = (sweep / "report.md").read_text()
    assert "| variant two-stages | ours-control ssl.stages=2 |" in md
    assert "| two-stages | ours-control | 50% |" in md


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("no-copy-paste ours ssl.copy_paste=false", "expected NAME=METHOD"),
        ("ours=ours ssl.copy_paste=false", "is a method already"),
        ("bad_name=ours ssl.copy_paste=false", "names run folders"),
        ("x=nothing ssl.copy_paste=false", "'nothing' is not a method"),
        ("x=ours", "no setting changed"),
        ("x=ours ssl.no_such_switch=1", "no_such_switch"),
    ],
)
def test_a_bad_variant_says_what_is_wrong(text, complaint):
    with pytest.raises(BadInputError, match=complaint):
        parse_variant(text)


def test_a_variant_name_is_given_once():
    with pytest.raises(BadInputError, match="given twice"):
        parse_variants(["x=ours ssl.copy_paste=false", "x=ours ssl.strong_views=false"])
