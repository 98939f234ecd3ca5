"""A resumed run takes its saved config.yaml: a preset default changed by a newer version does not
block it; only a setting the command names explicitly and that differs is refused."""

from __future__ import annotations

import json

import pytest
import yaml

from brats_ssl import config as config_lib
from brats_ssl.errors import BadInputError
from brats_ssl.pipeline import TrainRequest, resolve_config

from conftest import run_cli_output

original_preset = config_lib.preset


def newer_preset(name: str) -> config_lib.Config:
    """The presets as a later version might ship them: other defaults for the same names."""
    config = original_preset(name)
    config.train.lr = 0.0123
    config.train.patch_size = [24, 24, 24]
    config.inference.mc_samples = 6
    return config


@pytest.fixture
def saved_run(tmp_path):
    run = tmp_path / "run"
    request = TrainRequest(data=tmp_path / "data", run_dir=run, preset="tiny", method="supervised", steps=3)
    config_lib.save(resolve_config(request), run / "config.yaml")
    return run, request


def test_resumed_run_keeps_its_config_after_a_preset_default_changed(saved_run, monkeypatch):
    run, request = saved_run
    saved = config_lib.load(run / "config.yaml")
    monkeypatch.setattr(config_lib, "preset", newer_preset)
    for same_command in (request, TrainRequest(data=request.data, run_dir=run)):  # as first given, or bare
        resumed = resolve_config(same_command)
        assert resumed == saved
        assert (resumed.train.lr, resumed.train.patch_size, resumed.inference.mc_samples) == (3e-3, [32, 32, 32], 4)
    # A new run takes the new defaults.
    fresh = resolve_config(TrainRequest(data=request.data, run_dir=run.parent / "fresh", preset="tiny"))
    assert (fresh.train.lr, fresh.method) == (0.0123, "ours")


def test_only_explicit_differences_are_refused(saved_run, tmp_path):
    run, request = saved_run
    same = TrainRequest(
        data=request.data, run_dir=run, overrides=["train.lr=0.003"], method="supervised", preset="tiny"
    )
    assert resolve_config(same).train.lr == 3e-3  # explicit, and equal to the saved value: fine
    with pytest.raises(BadInputError, match=r"train\.lr: run has 0\.003, command asks 0\.5"):
        resolve_config(TrainRequest(data=request.data, run_dir=run, overrides=["train.lr=0.5"]))
    with pytest.raises(BadInputError, match="method: run has 'supervised', command asks 'ours'"):
        resolve_config(TrainRequest(data=request.data, run_dir=run, method="ours"))
    with pytest.raises(BadInputError, match="preset: run has 'tiny', command asks 'cpu'"):
        resolve_config(TrainRequest(data=request.data, run_dir=run, preset="cpu"))
    with pytest.raises(BadInputError, match="ssl.curriculum: run has True, command asks False"):
        resolve_config(TrainRequest(data=request.data, run_dir=run, curriculum=False))
    config_file = tmp_path / "mine.yaml"
    config_file.write_text(yaml.safe_dump({"train": {"batch_size": 4}}))
    with pytest.raises(BadInputError, match="train.batch_size: run has 2, command asks 4"):
        resolve_config(TrainRequest(data=request.data, run_dir=run, config_file=config_file))


def test_interrupted_run_resumes_through_the_cli_after_a_preset_default_changed(
    tmp_path, tiny_dataset, capsys, monkeypatch
):
    run = tmp_path / "run"
    args = ["train", tiny_dataset, "-o", run, "--preset", "tiny", "--method", "supervised", "--steps", "2"]
    assert run_cli_output(args, capsys)[0] == 0
    saved_text = (run / "config.yaml").read_text()
    for unfinished in (run / "summary.json", run / "teacher" / "done.json", run / "teacher" / "summary.json"):
        unfinished.unlink(missing_ok=True)  # as if stopped just before the end
    monkeypatch.setattr(config_lib, "preset", newer_preset)
    code, output = run_cli_output(args, capsys)
    assert code == 0, output
    assert (run / "config.yaml").read_text() == saved_text
    assert json.loads((run / "summary.json").read_text())["model"] == "teacher"
    code, output = run_cli_output([*args, "--set", "train.lr=0.5"], capsys)
    assert code == 2 and "train.lr: run has 0.003, command asks 0.5" in output
