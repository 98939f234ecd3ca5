"""Agreement-based refinement of pseudo-labels (METHOD step 7).

Per voxel, given the current pseudo-label (the teacher's) and the student's MC prediction:
- they agree: the label stands, its confidence is the mean of the two (``agree="mean"``; the
  larger of the two with ``"max"``, as runs before did - which only ever raised confidences, so
  more voxels passed τ at unchanged precision);
- they disagree: the more confident model's label is taken if its confidence ≥ τ_agree;
  otherwise the voxel keeps the teacher's label with confidence 0, i.e. it joins the unlearn set.
Classes stay "ruled out" only where both models rule them out. The scan-level agreement is the
mean Dice of the two label maps over the tumour classes either one predicts; 0 when neither
predicts any tumour (an empty pseudo-label of a tumour scan is a failure both share, and would
otherwise rank first).
"""

from __future__ import annotations

import numpy as np

from brats_ssl.data import confidence_codec
from brats_ssl.data.conventions import NUM_CLASSES
from brats_ssl.ssl.pseudolabels import PseudoLabel

TUMOUR_CLASSES = tuple(range(1, NUM_CLASSES))


def agreement_dice(a: np.ndarray, b: np.ndarray) -> float:
    scores = []
    for c in TUMOUR_CLASSES:
        x, y = a == c, b == c
        total = int(x.sum()) + int(y.sum())
        if total:
            scores.append(2.0 * int((x & y).sum()) / total)
    return float(np.mean(scores)) if scores else 0.0


AGREE_RULES = ("mean", "max")


def refine(
    teacher: PseudoLabel, student: PseudoLabel, *, tau_agree: float, agree: str = "mean"
) -> tuple[PseudoLabel, float]:
    lt, ls = np.asarray(teacher.label), np.asarray(student.label)
    qt, qs = np.asarray(teacher.confidence), np.asarray(student.confidence)
    agreeing = lt == ls
    student_wins = qs > qt
    best_q = np.maximum(qt, qs)
    # Encoded values 1..255 average to 1..255: "no information" (0) stays apart below.
    agreed_q = best_q if agree == "max" else ((qt.astype(np.uint16) + qs) // 2).astype(np.uint8)
    confident_switch = ~agreeing & (best_q >= confidence_codec.encode(np.float32(tau_agree)))
    label = np.where(~agreeing & student_wins & confident_switch, ls, lt).astype(np.uint8)
    unlearn_q = np.minimum(best_q, confidence_codec.LEAST_CONFIDENT)
    confidence = np.where(agreeing, agreed_q, np.where(confident_switch, best_q, unlearn_q)).astype(np.uint8)
    confidence[qt == confidence_codec.NO_INFORMATION] = confidence_codec.NO_INFORMATION  # beyond the volume
    refined = PseudoLabel(
        label=label,
        confidence=confidence,
        absent=(np.asarray(teacher.absent) & np.asarray(student.absent)).astype(np.uint8),
        mutual_information=np.maximum(np.asarray(teacher.mutual_information), np.asarray(student.mutual_information)),
    )
    return refined, agreement_dice(lt, ls)
