"""Read an experiment folder written by ``brats-ssl experiment``: its settings, its tables and the
run folders its rows name; the twin of :mod:`brats_ssl.run_folder`.

``experiment.py`` writes the folder; everything that reads it afterwards (the report, tests) goes
through here, so the file names and the way a moved experiment finds its runs again are written
once. Runs are recorded by the path the sweep was given (often relative to where it was started);
when the folder has been moved or copied, a run is looked for beside it under ``runs/``.
"""

from __future__ import annotations

import csv
import json
from functools import cached_property
from pathlib import Path

EXPERIMENT_JSON = "experiment.json"  # the sweep's settings
RESULTS_CSV = "results.csv"  # a row per run
PER_CASE_CSV = "per_case.csv"  # a row per run and val case
COMPARISONS_CSV = "comparisons.csv"  # paired differences between methods
RUNS = "runs"  # the run folders
REUSED_MARKER = "reused_from.txt"  # in a phase folder copied from another run


def is_experiment_folder(path: str | Path) -> bool:
    """Whether ``path`` holds an experiment (its settings or its results), finished or not."""
    return (Path(path) / RESULTS_CSV).is_file() or (Path(path) / EXPERIMENT_JSON).is_file()


def read_csv(path: str | Path) -> list[dict]:
    with Path(path).open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_results(folder: str | Path) -> list[dict]:
    """Rows of an experiment's results.csv, as strings (one per finished run)."""
    return read_csv(Path(folder) / RESULTS_CSV)


def _phase_seconds(run_dir: Path, *, reused_only: bool = False) -> float:
    """Sum of the finished phases' training time (done.json, summed over resumed processes);
    ``reused_only``: just the phases copied from another run."""
    return sum(
        float(json.loads(done.read_text()).get("seconds", 0.0))
        for done in Path(run_dir).glob("*/done.json")
        if not reused_only or (done.parent / REUSED_MARKER).is_file()
    )


def run_seconds(run_dir: str | Path) -> float | None:
    """Training time of a run, its reused teacher included (what the run took on its own); None
    before any phase finished."""
    return _phase_seconds(Path(run_dir)) or None


def reused_seconds(run_dir: str | Path) -> float:
    """Training time of the run's phases copied from another run (already counted there)."""
    return _phase_seconds(Path(run_dir), reused_only=True)


class ExperimentFolder:
    """An experiment folder; every file is optional (a sweep that has not finished a run has no
    results.csv), so each reader says what it returns when its file is missing."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @cached_property
    def info(self) -> dict:
        """experiment.json: data, fractions, methods, seeds, folds, references, preset, threads; {} when absent."""
        path = self.path / EXPERIMENT_JSON
        return json.loads(path.read_text()) if path.is_file() else {}

    @cached_property
    def results(self) -> list[dict]:
        """results.csv rows; [] when no run has finished."""
        return read_results(self.path) if (self.path / RESULTS_CSV).is_file() else []

    @property
    def per_case(self) -> list[dict]:
        """per_case.csv rows as the sweep wrote them (runs at their recorded paths); [] when absent."""
        path = self.path / PER_CASE_CSV
        return read_csv(path) if path.is_file() else []

    @property
    def comparisons(self) -> list[dict]:
        """comparisons.csv rows as the sweep wrote them; [] when absent."""
        path = self.path / COMPARISONS_CSV
        return read_csv(path) if path.is_file() else []

    def run_dir(self, recorded: str) -> Path:
        """The run folder of a results.csv ``run`` entry: the recorded path (absolute, or relative to
        the working directory or to this folder) when a run is there, else ``runs/<name>`` here
        (the experiment was moved or copied)."""
        path = Path(recorded)
        for candidate in ([path] if path.is_absolute() else [Path.cwd() / path, self.path / path]) + [
            self.path / RUNS / path.name
        ]:
            if (candidate / "config.yaml").is_file():
                return candidate
        return self.path / RUNS / path.name

    @cached_property
    def run_dirs(self) -> dict[str, Path]:
        """results.csv ``run`` entry → its run folder (see :meth:`run_dir`); rows may share a run."""
        return {row["run"]: self.run_dir(row["run"]) for row in self.results}
