"""``brats-ssl pseudolabel``: pseudo-labels, the probabilistic mask and uncertainty maps of every
unlabeled case as NIfTI in the input's geometry, for review in 3D Slicer / ITK-SNAP. The run's
post-processing rule (``postprocessing.json``) is applied to the pseudo-labels unless turned off.
Cases rejected in ``brats-ssl review`` are left out; the review server writes its volumes with
:func:`export_case` too."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brats_ssl import atomic, folder_lock
from brats_ssl.data import confidence_codec
from brats_ssl.data.cache import PreprocessCache
from brats_ssl.data.dataset import CaseRef
from brats_ssl.data.io import write_float_map, write_label_map
from brats_ssl.data.preprocess import (
    PreprocessMeta,
    PreprocessParams,
    restore_labels,
    restore_map,
    restore_probabilities,
)
from brats_ssl.paths import inside, safe_name
from brats_ssl.postprocess import IDENTITY, Rule, apply_rule, load_rule
from brats_ssl.progress import make_progress, track
from brats_ssl.run_folder import RunFolder
from brats_ssl.ssl.labelling import case_folder
from brats_ssl.ssl.pseudolabels import PseudoLabel
from brats_ssl.ssl.review_decisions import read_decisions


def export_case(
    case: CaseRef,
    meta: PreprocessMeta,
    pseudo: PseudoLabel,
    target: Path,
    *,
    probabilities: np.ndarray | None = None,
    rule: Rule = IDENTITY,
) -> Path:
    """One case's pseudo-label (after the post-processing ``rule``), confidence and mutual
    information (and a probabilistic mask) as NIfTI files in ``target``, in the case's own
    geometry and label convention."""
    labels = apply_rule(restore_labels(np.asarray(pseudo.label), meta), rule, float(np.prod(meta.spacing)) / 1000)
    write_label_map(case, labels, target / "pseudo_label.nii.gz")
    write_float_map(
        case, restore_map(confidence_codec.decode(pseudo.confidence), meta, fill=1.0), target / "confidence.nii.gz"
    )
    write_float_map(
        case,
        restore_map(confidence_codec.decode_fraction(pseudo.mutual_information), meta),
        target / "mutual_information.nii.gz",
    )
    if probabilities is not None:
        probs = restore_probabilities(confidence_codec.decode_fraction(probabilities), meta)
        write_float_map(case, np.moveaxis(probs, 0, -1), target / "teacher_probabilities.nii.gz")
    return target


@folder_lock.locks("out")
def export_pseudolabels(run: Path, data: Path, out: Path, *, postprocess: bool = True, console=None) -> list[Path]:
    """Every unlabeled case but those rejected in ``brats-ssl review`` (RUN/review.json)."""
    from brats_ssl.data.validate import require_valid

    folder = RunFolder(run)
    latest = folder.require_pseudo()
    teacher_round = folder.rounds[0]
    dataset = folder.dataset(data)
    rejected = {case for case, decision in read_decisions(folder.path).items() if decision == "reject"}
    cases = [c for c in folder.unlabeled_cases(dataset) if c.case_id not in rejected]
    require_valid(cases)
    cache = PreprocessCache(PreprocessParams.from_config(folder.config.data), folder.config.data.cache_dir)
    rule = load_rule(Path(run)) if postprocess else IDENTITY
    out = Path(out)
    written = []
    with make_progress(console) as progress:
        for case in track(progress, cases, description="export", total=len(cases)):
            teacher = PseudoLabel.load(case_folder(teacher_round, case))
            written.append(
                export_case(
                    case,
                    cache.get(case).meta,
                    PseudoLabel.load(case_folder(latest, case)),
                    inside(out, safe_name(case.case_id)),
                    probabilities=teacher.probabilities,
                    rule=rule,
                )
            )
    ranking = latest / "ranking.csv"
    if ranking.exists():
        atomic.write_text(out / "ranking.csv", ranking.read_text())
    return written
