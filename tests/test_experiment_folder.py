"""The experiment-folder reader on hand-made folders: missing files, moved runs, reused seconds,
and the experiment module writing without importing the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from brats_ssl.experiment_folder import (
    COMPARISONS_CSV,
    EXPERIMENT_JSON,
    PER_CASE_CSV,
    RESULTS_CSV,
    REUSED_MARKER,
    ExperimentFolder,
    is_experiment_folder,
    read_results,
    reused_seconds,
    run_seconds,
)


def _run(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.yaml").write_text("method: supervised\n")
    return path


def _phase(run: Path, name: str, seconds: float, *, reused: bool = False) -> None:
    (run / name).mkdir()
    (run / name / "done.json").write_text(json.dumps({"seconds": seconds}))
    if reused:
        (run / name / REUSED_MARKER).write_text("/elsewhere/teacher\n")


def test_an_empty_folder_is_no_experiment_and_reads_as_empty(tmp_path):
    folder = ExperimentFolder(tmp_path)
    assert not is_experiment_folder(tmp_path)
    assert folder.info == {} and folder.results == [] and folder.per_case == [] and folder.comparisons == []
    assert folder.run_dirs == {}


def test_settings_and_tables_are_read_as_written(tmp_path):
    (tmp_path / EXPERIMENT_JSON).write_text(json.dumps({"methods": ["ours"], "torch_threads": [2]}))
    assert is_experiment_folder(tmp_path)
    (tmp_path / RESULTS_CSV).write_text("method,fraction,seed,run\nours,0.5,0,runs/ours_f0.5_s0\n")
    (tmp_path / PER_CASE_CSV).write_text("method,case,WT\nours,c1,0.5\n")
    (tmp_path / COMPARISONS_CSV).write_text("method,reference,metric\nours,supervised,mean\n")
    folder = ExperimentFolder(tmp_path)
    assert folder.info["methods"] == ["ours"]
    assert (
        folder.results
        == read_results(tmp_path)
        == [{"method": "ours", "fraction": "0.5", "seed": "0", "run": "runs/ours_f0.5_s0"}]
    )
    assert folder.per_case == [{"method": "ours", "case": "c1", "WT": "0.5"}]
    assert folder.comparisons == [{"method": "ours", "reference": "supervised", "metric": "mean"}]


def test_runs_are_found_where_recorded_or_beside_a_moved_experiment(tmp_path, monkeypatch):
    folder = ExperimentFolder(tmp_path / "exp")
    recorded = _run(tmp_path / "elsewhere" / "runs" / "a")
    assert folder.run_dir(str(recorded)) == recorded  # absolute, still there
    monkeypatch.chdir(tmp_path)
    assert folder.run_dir("elsewhere/runs/a") == Path.cwd() / "elsewhere/runs/a"  # relative to where it ran
    inside = _run(tmp_path / "exp" / "sub" / "b")
    assert folder.run_dir("sub/b") == inside  # relative to the experiment
    moved = _run(tmp_path / "exp" / "runs" / "c")
    assert folder.run_dir("/old/place/exp/runs/c") == moved  # the experiment was moved: found under runs/
    assert folder.run_dir("gone/runs/d") == tmp_path / "exp" / "runs" / "d"  # nowhere: where it would be


def test_reused_phases_are_counted_apart(tmp_path):
    run = _run(tmp_path / "run")
    assert run_seconds(run) is None and reused_seconds(run) == 0.0  # nothing finished yet
    _phase(run, "teacher", 30.0, reused=True)
    _phase(run, "stage_1", 12.5)
    assert run_seconds(run) == 42.5
    assert reused_seconds(run) == 30.0


def test_the_experiment_module_does_not_import_the_report():
    code = "import sys, brats_ssl.experiment; print(sorted(m for m in sys.modules if m.startswith('brats_ssl.report')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
