"""The NIfTI volumes a case's viewer loads, each in the case's own geometry and label convention.

Modalities, ground truth and validation predictions are files that exist already. Pseudo-label
maps are written by :func:`brats_ssl.ssl.export.export_case` — the files ``brats-ssl
pseudolabel`` writes — on first request, into ``RUN/review_volumes/<case>/<source>/``, and
served from there afterwards. A volume is named ``flair.nii.gz``, ``ground_truth.nii.gz`` or
``<source>/<map>.nii.gz`` (map: pseudo_label, confidence, mutual_information, or label for a
validation prediction).
"""

from __future__ import annotations

import threading
from pathlib import Path

from brats_ssl.errors import BadInputError
from brats_ssl.paths import inside, nifti_stem, safe_name
from brats_ssl.review.cases import PSEUDO_MAPS, ReviewCatalogue, Source
from brats_ssl.ssl.labelling import case_folder

VOLUMES_DIR = "review_volumes"
PREDICTION_MAP = "label"


def _suffix(path: Path) -> str:
    return ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix


class VolumeStore:
    """Names and files of each case's volumes; pseudo-label maps built once, then cached."""

    def __init__(self, catalogue: ReviewCatalogue):
        self.catalogue = catalogue
        self.root = catalogue.run.path / VOLUMES_DIR
        self._locks: dict[Path, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def layers(self, case_id: str) -> dict:
        """Volume names by role, for the viewer's configuration."""
        case = self.catalogue.case(case_id)
        modalities = {
            m: f"{m}{self._modality_suffix(case, m)}" for m in self.catalogue.modalities() if m in case.images
        }
        sources = []
        for source in self.catalogue.sources(case_id):
            maps = PSEUDO_MAPS if source.with_uncertainty else (PREDICTION_MAP,)
            names = {("label" if m == "pseudo_label" else m): f"{source.key}/{m}.nii.gz" for m in maps}
            sources.append({"key": source.key, "title": source.title, **names})
        ground_truth = f"ground_truth{_suffix(case.seg)}" if case.seg is not None else None
        return {"modalities": modalities, "sources": sources, "ground_truth": ground_truth}

    def path(self, case_id: str, name: str) -> Path:
        """The file of volume ``name`` of a case, built first when it is a pseudo-label map."""
        case = self.catalogue.case(case_id)
        stem = nifti_stem(name) or name
        if stem in case.images:
            return self._modality(case, stem)
        if stem == "ground_truth" and case.seg is not None:
            return case.seg
        if "/" in stem:
            key, map_name = stem.split("/", 1)
            source = self.catalogue.source(case_id, key)
            if not source.with_uncertainty and map_name == PREDICTION_MAP:
                return source.folder
            if source.with_uncertainty and map_name in PSEUDO_MAPS:
                return self._pseudo_map(case_id, source, map_name)
        raise BadInputError(f"case {case_id}: no volume {name!r}")

    def build_all(self, case_id: str) -> dict[str, Path]:
        """Every volume of a case (for the static pages): name → file."""
        layers = self.layers(case_id)
        names = list(layers["modalities"].values()) + ([layers["ground_truth"]] if layers["ground_truth"] else [])
        names += [name for source in layers["sources"] for role, name in source.items() if role not in ("key", "title")]
        return {name: self.path(case_id, name) for name in names}

    # --- building -----------------------------------------------------------------------------

    @staticmethod
    def _modality_suffix(case, modality: str) -> str:
        ref = case.images[modality]
        return _suffix(ref.path) if ref.volume is None else ".nii.gz"

    def _lock(self, key: Path) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def _modality(self, case, modality: str) -> Path:
        ref = case.images[modality]
        if ref.volume is None:  # a 3-D file of its own: serve it as it is
            return ref.path
        target = inside(self.root, safe_name(case.case_id)) / f"{modality}.nii.gz"
        with self._lock(target):
            if not target.is_file():  # one volume of a 4-D file (MSD): written as a 3-D file once
                from brats_ssl.data.io import read_image, write_float_map

                data, _, _ = read_image(ref, case.case_id)
                write_float_map(case, data, target)
        return target

    def _pseudo_map(self, case_id: str, source: Source, map_name: str) -> Path:
        target_dir = inside(self.root, safe_name(case_id)) / source.key
        with self._lock(target_dir):
            if not all((target_dir / f"{m}.nii.gz").is_file() for m in PSEUDO_MAPS):
                self._export(case_id, source, target_dir)
        return target_dir / f"{map_name}.nii.gz"

    def _export(self, case_id: str, source: Source, target_dir: Path) -> None:
        from brats_ssl.data.cache import PreprocessCache
        from brats_ssl.data.preprocess import PreprocessParams
        from brats_ssl.ssl.export import export_case
        from brats_ssl.ssl.pseudolabels import PseudoLabel

        config = self.catalogue.run.config
        case = self.catalogue.case(case_id)
        cache = PreprocessCache(PreprocessParams.from_config(config.data), config.data.cache_dir)
        export_case(case, cache.get(case).meta, PseudoLabel.load(case_folder(source.folder, case_id)), target_dir)
