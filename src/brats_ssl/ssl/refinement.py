"""Agreement-based refinement of pseudo-labels (METHOD step 7).

Per voxel, given the current pseudo-label (the teacher's) and the student's MC prediction:
- they agree: the label stands, its confidence is the larger of the two;
- they disagree: the more confident model's label is taken if its confidence ≥ τ_agree;
  otherwise the voxel keeps the teacher's label with confidence 0, i.e. it joins the unlearn set.
Classes stay "ruled out" only where both models rule them out. The scan-level agreement is the
mean Dice of the two label maps over the tumour classes either one predicts.
"""

from __future__ import annotations

import numpy as np

from brats_ssl.ssl.pseudolabels import PseudoLabel, quantise_confidence

TUMOUR_CLASSES = (1, 2, 3)


def agreement_dice(a: np.ndarray, b: np.ndarray) -> float:
    scores = []
    for c in TUMOUR_CLASSES:
        x, y = a == c, b == c
        total = int(x.sum()) + int(y.sum())
        if total:
            scores.append(2.0 * int((x & y).sum()) / total)
    return float(np.mean(scores)) if scores else 1.0


def refine(teacher: PseudoLabel, student: PseudoLabel, *, tau_agree: float) -> tuple[PseudoLabel, float]:
    lt, ls = np.asarray(teacher.label), np.asarray(student.label)
    qt, qs = np.asarray(teacher.confidence), np.asarray(student.confidence)
    agree = lt == ls
    student_wins = qs > qt
    best_q = np.maximum(qt, qs)
    confident_switch = ~agree & (best_q >= quantise_confidence(np.float32(tau_agree)))
    label = np.where(~agree & student_wins & confident_switch, ls, lt).astype(np.uint8)
    confidence = np.where(agree | confident_switch, best_q, np.minimum(best_q, 1)).astype(np.uint8)
    confidence[qt == 0] = 0  # beyond the volume stays "no information"
    refined = PseudoLabel(
        label=label,
        confidence=confidence,
        absent=(np.asarray(teacher.absent) & np.asarray(student.absent)).astype(np.uint8),
        mutual_information=np.maximum(np.asarray(teacher.mutual_information), np.asarray(student.mutual_information)),
    )
    return refined, agreement_dice(lt, ls)
