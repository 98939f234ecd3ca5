"""`predict --ensemble`: several runs' class probabilities averaged into one segmentation."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml

from brats_ssl.postprocess import IDENTITY, Rule, save_rule

from conftest import make_untrained_run, run_cli_output


@pytest.fixture
def two_runs(tmp_path):
    runs = []
    for seed in (1, 2):
        torch.manual_seed(seed)  # two different sets of weights
        runs.append(make_untrained_run(tmp_path / f"run{seed}"))
    return runs


def _predict(capsys, run, data, out, *more):
    code, output = run_cli_output(
        ["predict", run, data, "-o", out, "--save-probabilities", "--save-uncertainty", *more], capsys
    )
    assert code == 0, output
    return output


def _map(out, case, suffix=""):
    return np.asarray(nib.load(str(out / f"{case}{suffix}.nii.gz")).dataobj, dtype=np.float64)


def test_the_ensemble_is_the_mean_of_its_runs_probabilities(two_runs, tiny_dataset, tmp_path, capsys):
    a, b = two_runs
    _predict(capsys, a, tiny_dataset, tmp_path / "a")
    _predict(capsys, b, tiny_dataset, tmp_path / "b")
    output = _predict(capsys, a, tiny_dataset, tmp_path / "ab", "--ensemble", b)
    assert "(the mean of 2 runs)" in output
    case = sorted(p.name for p in tiny_dataset.iterdir() if p.is_dir())[0]
    pa, pb, pab = (_map(tmp_path / o, case, "_probabilities") for o in ("a", "b", "ab"))
    assert not np.allclose(pa, pb, atol=1e-3)  # the members differ
    np.testing.assert_allclose(pab, (pa + pb) / 2, atol=1e-5)
    labels = _map(tmp_path / "ab", case).astype(int)
    written = np.asarray([0, 1, 2, 4])[pab.argmax(-1)]  # internal classes 0-3 → the dataset's labels
    assert np.array_equal(labels, written)
    # one deterministic run knows no epistemic uncertainty; two runs that disagree do
    assert _map(tmp_path / "a", case, "_mutual_information").max() == 0
    assert _map(tmp_path / "ab", case, "_mutual_information").max() > 0.01
    record = json.loads((tmp_path / "ab" / "predict.json").read_text())
    assert [m["run"] for m in record["ensemble"]] == [str(b.resolve())]
    assert "ensemble" not in json.loads((tmp_path / "a" / "predict.json").read_text())


def test_an_ensemble_post_processes_with_the_rule_all_its_runs_chose(two_runs, tiny_dataset, tmp_path, capsys):
    a, b = two_runs
    largest = Rule(wt="largest")
    for run in (a, b):
        save_rule(run, largest, chosen_on=[], phase="teacher", candidates=[])
    _predict(capsys, a, tiny_dataset, tmp_path / "same", "--ensemble", b)
    assert json.loads((tmp_path / "same" / "predict.json").read_text())["postprocessing"]["wt"] == "largest"
    save_rule(b, IDENTITY, chosen_on=[], phase="teacher", candidates=[])
    output = _predict(capsys, a, tiny_dataset, tmp_path / "differ", "--ensemble", b)
    assert "chose different post-processing rules" in output
    assert json.loads((tmp_path / "differ" / "predict.json").read_text())["postprocessing"]["wt"] == "none"


def test_an_ensemble_needs_distinct_runs_that_preprocess_alike(two_runs, tiny_dataset, tmp_path, capsys):
    a, b = two_runs
    code, output = run_cli_output(["predict", a, tiny_dataset, "-o", tmp_path / "x", "--ensemble", a], capsys)
    assert code == 2 and "a run is given twice" in output
    config = yaml.safe_load((b / "config.yaml").read_text())
    margin = config["data"]["crop_margin"]
    config["data"]["crop_margin"] = margin + 3
    (b / "config.yaml").write_text(yaml.safe_dump(config))
    code, output = run_cli_output(["predict", a, tiny_dataset, "-o", tmp_path / "y", "--ensemble", b], capsys)
    assert code == 2 and f"--ensemble {b}" in output and f"data.crop_margin: {margin} vs {margin + 3}" in output


def test_an_experiment_folder_is_refused_with_the_command_that_ensembles_its_folds(tmp_path, capsys):
    from conftest import tiny_sweep

    exp = tiny_sweep(tmp_path, cases=8, seed=0, folds=2, methods=["supervised"])
    code, output = run_cli_output(["predict", exp, tmp_path / "data", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "an experiment folder, not a run" in output and "2 finished runs" in output
    command = output.split("`")[1].split()
    runs = [exp / "runs" / f"supervised_fold{f}_f0.5_s0" for f in (0, 1)]
    assert command[:5] == ["brats-ssl", "predict", str(runs[0]), "--ensemble", str(runs[1])]
    # the command it gives works
    code, output = run_cli_output([*command[1:5], tmp_path / "data", "-o", tmp_path / "out"], capsys)
    assert code == 0 and "(the mean of 2 runs)" in output
