"""``brats-ssl pseudolabel RUN DATA -o OUT --format nnunet --dataset-id N``: the run's labeled cases
and its confident pseudo-labels as an nnU-Net v2 raw dataset, ``OUT/DatasetNNN_NAME/``, ready for
``nnUNetv2_plan_and_preprocess -d N``: the round trip from semi-supervised labelling to nnU-Net.

Layout (nnU-Net v2 raw)::

    DatasetNNN_NAME/
      imagesTr/<case>_0000.nii.gz ... _0003.nii.gz   T1, T1ce, T2, FLAIR (dataset.json channel_names)
      labelsTr/<case>.nii.gz                         ground truth, or the pseudo-label
      dataset.json                                   channel_names, labels, regions_class_order, ...
      pseudolabels.json                              which cases are pseudo-labeled, their confidence

Which cases: every case of the run's split with ground truth (``labeled``, and ``val`` unless
``include_val=False``), plus each unlabeled case whose image-level confidence in the run's latest
``ranking.csv`` is at least ``min_confidence``. Decisions made in ``brats-ssl review``
(``RUN/review.json``) come first: a rejected case is left out, an accepted one goes in whatever
its confidence. Unlabeled cases left out are listed in the sidecar, not written (nnU-Net requires a
label for every training image).

Labels are BraTS regions, as in nnU-Net's own BraTS conversion (Dataset137_BraTS21): files hold
1 edema, 2 NCR, 3 ET, and ``labels`` declares whole tumour (1, 2, 3), tumour core (2, 3) and
enhancing tumour (3) with ``regions_class_order`` (1, 2, 3). nnU-Net then trains on the nested
regions that BraTS scores (sigmoid per region), which is what its BraTS entries do; the files stay
plain integer label maps, and ``brats-ssl check`` reads them back as NCR / ED / ET.

Images are copied byte for byte where they are ``.nii.gz`` files already; labels are written in
the geometry of the case's own files. The dataset folder appears whole (written to a temporary
folder, then renamed) and a re-run replaces it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from brats_ssl import atomic, folder_lock
from brats_ssl.data.conventions import MODALITIES, nnunet_convention
from brats_ssl.data.dataset import CaseRef
from brats_ssl.errors import BadInputError
from brats_ssl.paths import safe_name
from brats_ssl.postprocess import IDENTITY, apply_rule, load_rule

# The internal channel order, named as nnU-Net's BraTS conversion names them.
CHANNEL_NAMES = {"t1": "T1", "t1ce": "T1ce", "t2": "T2", "flair": "FLAIR"}
REGION_LABELS = {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]}
REGIONS_CLASS_ORDER = [1, 2, 3]
LABEL_CONVENTION = nnunet_convention(REGION_LABELS)  # the reader's mapping: 1 edema, 2 NCR, 3 ET
FILE_ENDING = ".nii.gz"
SIDECAR = "pseudolabels.json"


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """``Dataset137_BraTS21``: nnU-Net's name for dataset ``dataset_id``."""
    if not 1 <= dataset_id <= 999:
        raise BadInputError(f"--dataset-id {dataset_id}: nnU-Net dataset ids are 1 to 999")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        raise BadInputError(f"--name {name!r}: letters, digits, '_' and '-' only (it becomes a folder name)")
    return f"Dataset{dataset_id:03d}_{name}"


def image_confidence(round_dir: Path) -> dict[str, dict]:
    """case → its row of the round's ``ranking.csv`` (rank, image-level confidence ``score``)."""
    from brats_ssl.ssl.labelling import read_ranking

    path = round_dir / "ranking.csv"
    if not path.is_file():
        raise BadInputError(f"file {path}: missing; the run's pseudo-labels have no ranking (re-run `brats-ssl train`)")
    try:
        rows = read_ranking(path)
        return {row["case"]: {"rank": int(row["rank"]), "confidence": float(row["score"])} for row in rows}
    except (KeyError, ValueError) as error:
        raise BadInputError(f"file {path}: not a brats-ssl ranking ({error})") from error


def choose_pseudo_labeled(
    cases: list[CaseRef], ranking: dict[str, dict], decisions: dict[str, str], min_confidence: float
) -> tuple[list[dict], list[dict]]:
    """(included, left out) unlabeled cases, each ``{"case", "confidence", "rank", "review", "reason"}``,
    in ranking order: review decisions first, then the confidence threshold."""
    included, left_out = [], []
    for case in sorted(cases, key=lambda c: ranking.get(c.case_id, {}).get("rank", 1 << 30)):
        row = ranking.get(case.case_id)
        if row is None:
            raise BadInputError(
                f"case {case.case_id}: not in the run's ranking.csv; the run's pseudo-labels "
                "are incomplete (re-run `brats-ssl train`)"
            )
        decision = decisions.get(case.case_id)
        entry = {
            "case": case.case_id,
            "confidence": round(row["confidence"], 4),
            "rank": row["rank"],
            "review": decision if decision in ("accept", "reject") else None,
        }
        if decision == "reject":
            left_out.append({**entry, "reason": "rejected in review"})
        elif decision == "accept" or row["confidence"] >= min_confidence:
            included.append(
                {
                    **entry,
                    "reason": "accepted in review" if decision == "accept" else f"confidence >= {min_confidence:g}",
                }
            )
        else:
            left_out.append({**entry, "reason": f"confidence < {min_confidence:g}"})
    return included, left_out


def dataset_json(name: str, n_training: int, description: str) -> dict:
    return {
        "name": name,
        "description": description,
        "channel_names": {str(i): CHANNEL_NAMES[m] for i, m in enumerate(MODALITIES)},
        "labels": REGION_LABELS,
        "regions_class_order": REGIONS_CLASS_ORDER,
        "numTraining": n_training,
        "file_ending": FILE_ENDING,
        "converted_by": "brats-ssl pseudolabel --format nnunet",
    }


def _write_case(case: CaseRef, labels: np.ndarray, root: Path) -> None:
    """Channel files and the label map (internal classes, in the case's geometry) of one case."""
    from brats_ssl.data.io import write_channel, write_label_map

    name = safe_name(case.case_id)
    for index, modality in enumerate(MODALITIES):
        write_channel(case.images[modality], root / "imagesTr" / f"{name}_{index:04d}{FILE_ENDING}", case.case_id)
    write_label_map(replace(case, convention=LABEL_CONVENTION), labels, root / "labelsTr" / f"{name}{FILE_ENDING}")


@folder_lock.locks("out")
def export_nnunet(
    run: Path,
    data: Path,
    out: Path,
    *,
    dataset_id: int,
    name: str = "BraTSSSL",
    min_confidence: float = 0.0,
    include_val: bool = True,
    postprocess: bool = True,
    console=None,
) -> Path:
    """Write ``out/DatasetNNN_NAME`` and return its path (see the module docstring); the run's
    post-processing rule applies to the pseudo-labels unless ``postprocess`` is False."""
    from brats_ssl.data.cache import PreprocessCache
    from brats_ssl.data.io import read_seg
    from brats_ssl.data.preprocess import PreprocessParams, restore_labels
    from brats_ssl.data.validate import require_valid
    from brats_ssl.progress import make_progress, track
    from brats_ssl.run_folder import RunFolder
    from brats_ssl.ssl.labelling import case_folder
    from brats_ssl.ssl.pseudolabels import PseudoLabel
    from brats_ssl.ssl.review_decisions import REVIEW_FILE, read_decisions

    folder_name = dataset_folder_name(dataset_id, name)
    if not 0.0 <= min_confidence <= 1.0:
        raise BadInputError(f"--min-confidence {min_confidence}: an image-level confidence is between 0 and 1")
    run, out = Path(run), Path(out)
    folder = RunFolder(run)
    latest = folder.require_pseudo()
    dataset = folder.dataset(data)
    labeled = folder.split["labeled"] + folder.split.get("selection", [])
    truth = dataset.subset(labeled + (folder.split["val"] if include_val else []))
    unlabeled = folder.unlabeled_cases(dataset)
    included, left_out = choose_pseudo_labeled(unlabeled, image_confidence(latest), read_decisions(run), min_confidence)
    chosen = [c for c in unlabeled if c.case_id in {e["case"] for e in included}]
    require_valid(truth + chosen)
    cache = PreprocessCache(PreprocessParams.from_config(folder.config.data), folder.config.data.cache_dir)
    val = set(folder.split["val"])
    rule = load_rule(run) if postprocess else IDENTITY
    target = out / folder_name
    with atomic.atomic_folder(target) as tmp, make_progress(console) as progress:
        for case in track(progress, truth + chosen, description="nnU-Net export", total=len(truth) + len(chosen)):
            if case.seg is not None:
                labels = read_seg(case)
            else:
                pseudo = PseudoLabel.load(case_folder(latest, case))
                meta = cache.get(case).meta
                voxel_ml = float(np.prod(meta.spacing)) / 1000
                labels = apply_rule(restore_labels(np.asarray(pseudo.label), meta), rule, voxel_ml)
            _write_case(case, labels, tmp)
        description = (
            f"brats-ssl run {run.resolve()}: {len(truth)} case(s) with ground truth and {len(chosen)} "
            f"pseudo-labeled (image-level confidence >= {min_confidence:g} or accepted in review); "
            f"see {SIDECAR}"
        )
        atomic.write_json(tmp / "dataset.json", dataset_json(name, len(truth) + len(chosen), description))
        atomic.write_json(
            tmp / SIDECAR,
            {
                "run": str(run.resolve()),
                "pseudo_label_round": latest.name,
                "min_confidence": min_confidence,
                "review": str(run / REVIEW_FILE) if (run / REVIEW_FILE).is_file() else None,
                "label_values": {"1": "ED (edema)", "2": "NCR (necrotic / non-enhancing core)", "3": "ET (enhancing)"},
                "ground_truth": [{"case": c.case_id, "split": "val" if c.case_id in val else "labeled"} for c in truth],
                "postprocessing": rule.describe(),
                "pseudo_labeled": included,
                "left_out": left_out,
            },
        )
    return target
