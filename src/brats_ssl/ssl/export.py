"""``brats-ssl pseudolabel``: pseudo-labels, the probabilistic mask and uncertainty maps of every
unlabeled case as NIfTI in the input's geometry, for review in 3D Slicer / ITK-SNAP."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brats_ssl import atomic, folder_lock
from brats_ssl.data.cache import PreprocessCache
from brats_ssl.data.io import write_float_map, write_label_map
from brats_ssl.data.preprocess import PreprocessParams, restore_labels, restore_map, restore_probabilities
from brats_ssl.paths import inside, safe_name
from brats_ssl.progress import make_progress, track
from brats_ssl.run_folder import RunFolder
from brats_ssl.ssl.labelling import case_folder
from brats_ssl.ssl.pseudolabels import PseudoLabel, dequantise_confidence


@folder_lock.locks("out")
def export_pseudolabels(run: Path, data: Path, out: Path, *, console=None) -> list[Path]:
    from brats_ssl.data.validate import require_valid

    folder = RunFolder(run)
    latest = folder.require_pseudo()
    teacher_round = folder.rounds[0]
    dataset = folder.dataset(data)
    cases = folder.unlabeled_cases(dataset)
    require_valid(cases)
    cache = PreprocessCache(PreprocessParams.from_config(folder.config.data), folder.config.data.cache_dir)
    out = Path(out)
    written = []
    with make_progress(console) as progress:
        for case in track(progress, cases, description="export", total=len(cases)):
            meta = cache.get(case).meta
            pseudo = PseudoLabel.load(case_folder(latest, case))
            teacher = PseudoLabel.load(case_folder(teacher_round, case))
            target = inside(out, safe_name(case.case_id))
            write_label_map(case, restore_labels(np.asarray(pseudo.label), meta), target / "pseudo_label.nii.gz")
            write_float_map(case, restore_map(dequantise_confidence(pseudo.confidence), meta, fill=1.0),
                            target / "confidence.nii.gz")
            write_float_map(case, restore_map(np.asarray(pseudo.mutual_information, np.float32) / 255, meta),
                            target / "mutual_information.nii.gz")
            if teacher.probabilities is not None:
                probs = restore_probabilities(np.asarray(teacher.probabilities, np.float32) / 255, meta)
                write_float_map(case, np.moveaxis(probs, 0, -1), target / "teacher_probabilities.nii.gz")
            written.append(target)
    ranking = latest / "ranking.csv"
    if ranking.exists():
        atomic.write_text(out / "ranking.csv", ranking.read_text())
    return written
