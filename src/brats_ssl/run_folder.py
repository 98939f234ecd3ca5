"""Read a run folder written by ``brats-ssl train``: settings, split, phases, pseudo-label rounds."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

from brats_ssl import config as config_lib
from brats_ssl.data.dataset import CaseRef, Dataset, add_unlabeled, open_dataset
from brats_ssl.errors import BadInputError
from brats_ssl.records import Split, Summary
from brats_ssl.ssl.registry import get_method


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / "config.yaml").is_file():
            raise BadInputError(f"folder {self.path}: not a brats-ssl run folder (no config.yaml)")

    @cached_property
    def config(self) -> config_lib.Config:
        return config_lib.load(self.path / "config.yaml", saved_run=True)

    @cached_property
    def split(self) -> Split:
        return json.loads((self.path / "split.json").read_text())

    def dataset(self, data: str | Path | None = None) -> Dataset:
        """The run's dataset (``data`` when it moved), with the ``--unlabeled`` folders it recorded."""
        root = Path(data) if data is not None else Path(self.split.get("dataset", ""))
        return add_unlabeled(open_dataset(root), list(self.split.get("unlabeled_roots", [])))

    def unlabeled_cases(self, dataset: Dataset) -> list[CaseRef]:
        return dataset.subset(self.split["unlabeled"], hide_labels=True)

    def val_cases(self, dataset: Dataset) -> list[CaseRef]:
        return dataset.subset(self.split["val"])

    def _json(self, *parts: str) -> Any:
        path = self.path.joinpath(*parts)
        return json.loads(path.read_text()) if path.is_file() else None

    @property
    def summary(self) -> Summary | None:
        return self._json("summary.json")

    @property
    def stages(self) -> list[dict]:
        return self._json("stages.json") or []

    def phase_summary(self, phase: str) -> Summary | None:
        return self._json(phase, "summary.json")

    def phase_selection_summary(self, phase: str) -> Summary | None:
        """The phase on the selection cases (runs whose split has a selection set)."""
        return self._json(phase, "selection_summary.json")

    @property
    def phases(self) -> list[str]:
        """Training phases present, in the order the run's method writes them (its registry entry:
        teacher, stage_1 ... or a baseline's phase)."""
        method = get_method(self.config.method)
        return sorted((p.name for p in self.path.iterdir() if (p / "metrics.jsonl").is_file()), key=method.phase_key)

    @property
    def rounds(self) -> list[Path]:
        """Pseudo-label rounds (round_0 = teacher, round_k = after stage k's refinement)."""
        folder = self.path / "pseudo"
        found = [p for p in folder.glob("round_*") if p.is_dir()] if folder.is_dir() else []
        return sorted(found, key=lambda p: int(p.name.split("_")[1]))

    def require_pseudo(self) -> Path:
        if not self.rounds:
            raise BadInputError(
                f"folder {self.path}: no pseudo-labels yet; train with --method ours (or self-training) first"
            )
        return self.rounds[-1]
