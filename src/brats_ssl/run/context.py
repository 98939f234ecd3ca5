"""Everything a training run needs, resolved once: settings, cases, cache, device, output."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brats_ssl.config import Config
from brats_ssl.data.cache import PreprocessCache
from brats_ssl.data.dataset import CaseRef, Dataset
from brats_ssl.data.preprocess import Preprocessed, PreprocessParams
from brats_ssl.data.sampling import TrainItem
from brats_ssl.records import Split
from brats_ssl.run.model import build_model, model_fingerprint


@dataclass
class RunContext:
    run_dir: Path
    config: Config
    dataset: Dataset
    split: Split
    labeled: list[CaseRef]
    unlabeled: list[CaseRef]  # seg files hidden: their labels are never read
    val: list[CaseRef]  # reported only: nothing is chosen on them when there is a selection set
    device: torch.device
    selection: list[CaseRef] = field(default_factory=list)  # labeled, out of every loss: choices are made here
    console: Any = None
    progress: Any = None
    audit_labels: bool = False
    cache: PreprocessCache = field(init=False)

    def __post_init__(self) -> None:
        self.cache = PreprocessCache(PreprocessParams.from_config(self.config.data), self.config.data.cache_dir)

    @property
    def fingerprint(self) -> str:
        return model_fingerprint(self.config)

    def new_model(self) -> nn.Module:
        torch.manual_seed(self.config.seed)
        return build_model(self.config)

    @property
    def chooser(self) -> list[CaseRef]:
        """The cases that choices are made on: the selection set, or the val set when the split
        has none (its Dice is then optimistic; the run records which)."""
        return self.selection or self.val

    @property
    def chooser_name(self) -> str:
        return "selection" if self.selection else "val"

    def case(self, case_id: str) -> CaseRef:
        """A case as this run sees it: unlabeled cases without their seg (never ``dataset.case``)."""
        for case in self.labeled + self.val + self.selection + self.unlabeled:
            if case.case_id == case_id:
                return case
        raise KeyError(case_id)

    def preprocessed(self, case: CaseRef) -> Preprocessed:
        return self.cache.get(case)

    def labeled_items(self) -> list[TrainItem]:
        items = []
        for case in self.labeled:
            pre = self.preprocessed(case)
            assert pre.seg is not None, f"labeled case {case.case_id} has no seg"  # the split checks labeled cases
            items.append(TrainItem(case.case_id, pre.image, {"label": pre.seg}))
        return items

    def audit_case(self, case: CaseRef) -> CaseRef:
        """The unlabeled case with its hidden seg restored - only with ``--audit-labels``."""
        if not self.audit_labels:
            raise PermissionError("the labels of unlabeled cases are only read with --audit-labels")
        return self.dataset.case(case.case_id)

    def log(self, message: str) -> None:
        if self.console is not None:
            self.console.print(message)
