"""Post-processing of a predicted label map, chosen on the selection set, nnU-Net style.

Two decisions, taken in order, each kept only where it raises the mean WT/TC/ET Dice of the
selection cases (a tie keeps the simpler rule):

1. whole tumour: keep every component (``none``), keep the largest connected component only
   (``largest``), or drop components smaller than N ml (``min_ml``). Removes false-positive blobs
   far from the tumour (other hemisphere, cerebellum) that cost little Dice and much HD95.
2. enhancing tumour: relabel ET as NCR when the predicted ET volume is below V ml (BraTS
   convention: a case without enhancing tumour scores ET Dice 1 only with an empty ET).

The chosen rule is stored as ``postprocessing.json`` in the run folder and applied by the run's
own evaluation, ``predict`` and ``pseudolabel`` (``--no-postprocess`` turns it off). Volumes are
in ml, so a rule chosen on one grid applies to another.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage

from brats_ssl import atomic
from brats_ssl.data.conventions import REGIONS
from brats_ssl.errors import BadInputError
from brats_ssl.metrics import mean_region_dice, region_dice

RULE_FILE = "postprocessing.json"
NCR, ET = 1, 3
WT_CHOICES: tuple[tuple[str, float], ...] = (
    ("largest", 0.0),
    ("min_ml", 0.1),
    ("min_ml", 0.5),
    ("min_ml", 2.0),
    ("min_ml", 5.0),
)
ET_CHOICES_ML: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0)
# 26-connectivity: diagonal neighbours belong to the same blob, as in nnU-Net's component removal.
_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class Rule:
    wt: str = "none"  # none | largest | min_ml
    wt_min_ml: float = 0.0
    et_to_ncr_below_ml: float = 0.0  # 0 = never

    def describe(self) -> str:
        parts = []
        if self.wt == "largest":
            parts.append("keep the largest tumour component")
        elif self.wt == "min_ml":
            parts.append(f"drop tumour components < {self.wt_min_ml:g} ml")
        if self.et_to_ncr_below_ml > 0:
            parts.append(f"ET → NCR when ET < {self.et_to_ncr_below_ml:g} ml")
        return "; ".join(parts) or "none"

    @property
    def is_identity(self) -> bool:
        return self.wt == "none" and self.et_to_ncr_below_ml <= 0


IDENTITY = Rule()


def apply_rule(labels: np.ndarray, rule: Rule, voxel_ml: float) -> np.ndarray:
    """``labels`` (internal classes 0..3) after the rule; the input is not modified."""
    if rule.is_identity:
        return labels
    out = np.array(labels, copy=True)
    if rule.wt != "none":
        components, count = ndimage.label(out > 0, structure=_CONNECTIVITY)
        if count > 1 or rule.wt == "min_ml":
            sizes = np.bincount(components.ravel(), minlength=count + 1)[1:]
            if rule.wt == "largest":
                keep = np.zeros(count + 1, bool)
                keep[1 + int(np.argmax(sizes))] = True
            else:
                keep = np.concatenate([[False], sizes * voxel_ml >= rule.wt_min_ml])
            out[~keep[components]] = 0
    if rule.et_to_ncr_below_ml > 0:
        et = out == ET
        if 0 < int(et.sum()) * voxel_ml < rule.et_to_ncr_below_ml:
            out[et] = NCR
    return out


def _score(cases: Sequence[tuple[np.ndarray, np.ndarray, float]], rule: Rule) -> float:
    """Mean over cases of the mean WT/TC/ET Dice after ``rule``."""
    return float(np.mean([mean_region_dice(region_dice(apply_rule(pred, rule, ml), gt)) for pred, gt, ml in cases]))


def choose_rule(cases: Iterable[tuple[np.ndarray, np.ndarray, float]]) -> tuple[Rule, list[dict]]:
    """The rule that raises the mean WT/TC/ET Dice of ``cases`` (prediction, ground truth, ml per
    voxel) the most, and every candidate's score (for the record). Raw: the ``none`` rule."""
    cases = list(cases)
    if not cases:
        return IDENTITY, []
    tried: list[dict] = []

    def trial(rule: Rule) -> float:
        score = _score(cases, rule)
        tried.append({"rule": asdict(rule), "describe": rule.describe(), "score": score})
        return score

    best, best_score = IDENTITY, trial(IDENTITY)
    for wt, min_ml in WT_CHOICES:
        candidate = Rule(wt=wt, wt_min_ml=min_ml)
        score = trial(candidate)
        if score > best_score + 1e-9:
            best, best_score = candidate, score
    wt_rule = best
    for volume in ET_CHOICES_ML:
        candidate = Rule(wt=wt_rule.wt, wt_min_ml=wt_rule.wt_min_ml, et_to_ncr_below_ml=volume)
        score = trial(candidate)
        if score > best_score + 1e-9:
            best, best_score = candidate, score
    return best, tried


def save_rule(run_dir: Path, rule: Rule, *, chosen_on: list[str], phase: str, candidates: list[dict]) -> Path:
    return atomic.write_json(
        Path(run_dir) / RULE_FILE,
        {
            "rule": asdict(rule),
            "describe": rule.describe(),
            "phase": phase,
            "chosen_on": chosen_on,
            "regions": list(REGIONS),
            "candidates": candidates,
        },
    )


def load_rule(run_dir: Path) -> Rule:
    """The run's rule; the identity for runs without one (made before post-processing existed)."""
    path = Path(run_dir) / RULE_FILE
    if not path.is_file():
        return IDENTITY
    try:
        return Rule(**json.loads(path.read_text())["rule"])
    except (ValueError, KeyError, TypeError) as error:
        raise BadInputError(f"file {path}: not a readable post-processing rule ({error})") from error
