"""Find the cases of a dataset folder and detect its convention from file names.

Discovery only looks at names; reading and validating voxels is :mod:`brats_ssl.data.io` and
:mod:`brats_ssl.data.validate`. A case without a seg file is a valid unlabeled case.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from brats_ssl.data.conventions import (
    BRATS2021,
    BRATS2023,
    CLASS_NAMES,
    MODALITIES,
    MSD,
    Convention,
    modality_from_name,
    nnunet_convention,
)
from brats_ssl.errors import BadInputError
from brats_ssl.paths import find_nifti, nifti_stem, read_text_file

# BraTS 2017-2020 ids carry the contributing institution: Brats18_CBICA_ABM_1, Brats18_2013_3_1.
_BRATS_SITE = re.compile(r"^brats\d{2}_(?P<site>[A-Za-z]+\d*|\d{4})_", re.IGNORECASE)


@dataclass(frozen=True)
class ImageRef:
    """One modality of a case: a 3-D file, or one volume of a 4-D file (``volume`` index)."""

    path: Path
    volume: int | None = None

    def __str__(self) -> str:
        return str(self.path) if self.volume is None else f"{self.path}[volume {self.volume}]"


@dataclass(frozen=True)
class CaseRef:
    """Where a case's files are. ``images`` maps modality → file; a missing modality is absent."""

    case_id: str
    images: dict[str, ImageRef]
    seg: Path | None
    convention: Convention
    site: str | None = None

    @property
    def labeled(self) -> bool:
        return self.seg is not None

    @property
    def missing_modalities(self) -> list[str]:
        return [m for m in MODALITIES if m not in self.images]

    @property
    def reference_path(self) -> Path:
        """The file whose geometry and header a written label map copies."""
        if self.seg is not None:
            return self.seg
        for modality in MODALITIES:
            if modality in self.images:
                return self.images[modality].path
        raise BadInputError(f"case {self.case_id}: no image files")

    def without_seg(self) -> "CaseRef":
        """The same case with its labels hidden: how unlabeled cases enter training."""
        return replace(self, seg=None)

    def files(self) -> list[Path]:
        paths = sorted({ref.path for ref in self.images.values()})
        return paths + ([self.seg] if self.seg is not None else [])


@dataclass
class Dataset:
    root: Path
    convention: Convention
    cases: list[CaseRef]
    # Problems found from names alone (e.g. duplicate case ids); per-case voxel checks come later.
    problems: list[str] = field(default_factory=list)
    # Folders whose scans joined as unlabeled cases (``--unlabeled``), each in its own layout.
    unlabeled_roots: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.cases)

    def case(self, case_id: str) -> CaseRef:
        for case in self.cases:
            if case.case_id == case_id:
                return case
        raise BadInputError(f"case {case_id}: not found in {self.root}")

    def subset(self, case_ids: list[str], *, hide_labels: bool = False) -> list[CaseRef]:
        """Cases by id, in the given order; ``hide_labels`` drops their seg files."""
        by_id = {c.case_id: c for c in self.cases}
        ambiguous = [
            p for p in self.problems if "duplicate case id" in p and any(p.startswith(f"case {i}:") for i in case_ids)
        ]
        if ambiguous:  # two folders share an id: which one is meant cannot be known
            raise BadInputError("; ".join(dict.fromkeys(ambiguous)) + "; give every case a unique folder name")
        missing = [i for i in case_ids if i not in by_id]
        if missing:
            raise BadInputError(
                f"{len(missing)} case(s) named in the split are not in {self.root}: " + ", ".join(missing[:10])
            )
        chosen = [by_id[i] for i in case_ids]
        return [c.without_seg() for c in chosen] if hide_labels else chosen

    @property
    def sites(self) -> dict[str, str | None]:
        return {c.case_id: c.site for c in self.cases}


def _nifti_files(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError as error:
        raise BadInputError(f"folder {folder}: cannot be listed ({error.strerror})") from error
    return [p for p in entries if nifti_stem(p.name) is not None and not p.name.startswith(".")]


def _folder_case(folder: Path) -> tuple[Convention, CaseRef] | None:
    """A case folder in BraTS 2017-21 or 2023+ naming, or None when it is neither."""
    stems = {}
    # Sorted names put .nii before .nii.gz, so .nii.gz (listed last) wins for the same stem;
    # both present is reported by validation.
    for path in _nifti_files(folder):
        stem = nifti_stem(path.name)
        assert stem is not None
        stems[stem] = path
    for convention in (BRATS2021, BRATS2023):
        suffixes: dict[str, str] = convention.extra["suffixes"]  # type: ignore[assignment]
        seg_suffix: str = convention.extra["seg"]  # type: ignore[assignment]
        images = {}
        for modality, suffix in suffixes.items():
            for stem, path in stems.items():
                if stem.lower().endswith(suffix):
                    images[modality] = ImageRef(path)
        seg = next((p for s, p in stems.items() if s.lower().endswith(seg_suffix)), None)
        if images or seg is not None:
            return convention, CaseRef(folder.name, images, seg, convention)
    return None


def _read_sites_csv(root: Path) -> dict[str, str]:
    path = root / "sites.csv"
    if not path.is_file():  # a FIFO or folder of that name is not read
        return {}
    with path.open(newline="") as handle:
        return {row["case"]: row["site"] for row in csv.DictReader(handle) if row.get("case")}


def infer_site(case_id: str) -> str | None:
    match = _BRATS_SITE.match(case_id)
    return match.group("site") if match else None


def _discover_folders(root: Path) -> tuple[Convention, list[CaseRef]] | None:
    """Case folders directly under root, or one level deeper (BraTS 2018's HGG/ and LGG/)."""
    found: list[tuple[Convention, CaseRef]] = []
    if _folder_case(root) is not None and not any(p.is_dir() for p in root.iterdir()):
        hit = _folder_case(root)
        assert hit is not None
        return hit[0], [hit[1]]
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        hit = _folder_case(child)
        if hit is not None:
            found.append(hit)
            continue
        for grandchild in sorted(p for p in child.iterdir() if p.is_dir()):
            hit = _folder_case(grandchild)
            if hit is not None:
                found.append(hit)
    if not found:
        return None
    conventions = {c.name for c, _ in found}
    if len(conventions) > 1:
        raise BadInputError(
            f"folder {root}: mixes dataset conventions ({', '.join(sorted(conventions))}); "
            "keep one convention per dataset folder"
        )
    return found[0][0], [case for _, case in found]


def _read_dataset_json(root: Path) -> dict:
    path = root / "dataset.json"
    if not path.exists() and not path.is_symlink():
        return {}
    text = read_text_file(path)
    try:
        return json.loads(text)
    except ValueError as error:
        raise BadInputError(f"file {path}: not readable JSON ({error})") from error


def _channel_names(meta: dict) -> dict[int, str]:
    names = meta.get("channel_names") or meta.get("modality") or {}
    return {int(k): str(v) for k, v in names.items()}


def _discover_decathlon(root: Path) -> tuple[Convention, list[CaseRef]] | None:
    images_dir = root / "imagesTr"
    if not images_dir.is_dir():
        return None
    meta = _read_dataset_json(root)
    files = _nifti_files(images_dir)
    extra_dirs = [root / "imagesTs"] if (root / "imagesTs").is_dir() else []
    extra_files = [p for d in extra_dirs for p in _nifti_files(d)]
    nnunet_style = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
    stems = [nifti_stem(p.name) or "" for p in files + extra_files]
    if stems and all(nnunet_style.match(s) for s in stems):
        return _discover_nnunet(root, meta, files + extra_files)
    channel_names = _channel_names(meta)
    if channel_names:
        order = tuple(modality_from_name(channel_names[i]) for i in sorted(channel_names))
    else:
        order = MSD.extra["channel_order"]  # type: ignore[assignment]
    cases = []
    for path in files + extra_files:
        case_id = nifti_stem(path.name) or path.name
        images = {m: ImageRef(path, volume=i) for i, m in enumerate(order) if m in MODALITIES}
        seg = find_nifti(root / "labelsTr", case_id)
        cases.append(CaseRef(case_id, images, seg, MSD))
    return MSD, cases


def _discover_nnunet(root: Path, meta: dict, files: list[Path]) -> tuple[Convention, list[CaseRef]]:
    channel_names = _channel_names(meta)
    if not channel_names:
        raise BadInputError(
            f"file {root / 'dataset.json'}: an nnU-Net raw dataset needs 'channel_names' "
            "(or 'modality') to know which file is which modality"
        )
    channel_to_modality = {}
    for index, name in channel_names.items():
        modality = modality_from_name(name)
        if modality is None:
            raise BadInputError(
                f"file {root / 'dataset.json'}: channel {index} '{name}' is not one of T1, T1ce/T1Gd, T2, FLAIR"
            )
        channel_to_modality[index] = modality
    try:
        convention = nnunet_convention(meta.get("labels", {name: c for c, name in enumerate(CLASS_NAMES)}))
    except ValueError as error:
        raise BadInputError(f"file {root / 'dataset.json'}: {error}") from error
    grouped: dict[str, dict[str, ImageRef]] = {}
    for path in files:
        stem = nifti_stem(path.name) or ""
        case_id, channel = stem.rsplit("_", 1)
        modality = channel_to_modality.get(int(channel))
        images = grouped.setdefault(case_id, {})
        if modality is not None:
            images[modality] = ImageRef(path)
    cases = [
        CaseRef(case_id, images, find_nifti(root / "labelsTr", case_id), convention)
        for case_id, images in sorted(grouped.items())
    ]
    return convention, cases


def _printable(path: Path | str) -> str:
    """A name as text that can always be printed: undecodable bytes shown as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _require_utf8_names(cases: list[CaseRef]) -> None:
    """Refuse file or folder names that are not valid UTF-8 (e.g. Latin-1 names copied from an
    old system): they cannot be written into split.json, CSV files or reports faithfully."""
    for case in cases:
        for path in case.files():
            try:
                str(path).encode("utf-8")
            except UnicodeEncodeError:
                raise BadInputError(
                    f"file {_printable(path)}: the name (or its folder's) is not valid UTF-8; "
                    "rename it with letters, digits, '_' and '-' and run again"
                ) from None


def duplicate_id_problems(cases: list[CaseRef]) -> list[str]:
    """One message per case whose id an earlier case already has (BraTS 2018's HGG/ and LGG/ can
    share names): which folder a split means by that id cannot be known."""
    problems = []
    seen: dict[str, CaseRef] = {}
    for case in cases:
        if case.case_id in seen:
            problems.append(
                f"case {case.case_id}: duplicate case id "
                f"({seen[case.case_id].reference_path.parent} and {case.reference_path.parent})"
            )
        seen[case.case_id] = case
    return problems


def open_dataset(root: str | Path) -> Dataset:
    """Discover the cases under ``root`` and the convention they follow.

    Raises :class:`BadInputError` when the folder is missing or holds no recognisable case.
    """
    root = Path(root)
    if not root.exists():
        raise BadInputError(f"folder {root}: does not exist")
    if not root.is_dir():
        raise BadInputError(f"{root}: is not a folder")
    hit = _discover_decathlon(root) or _discover_folders(root)
    if hit is None or not hit[1]:
        raise BadInputError(
            f"folder {root}: no cases found. Expected BraTS 2017-21 (<case>/<case>_t1.nii.gz ...), "
            "BraTS 2023+ (<case>/<case>-t1n.nii.gz ...), MSD Task01 (imagesTr/, labelsTr/, "
            "dataset.json) or nnU-Net raw (imagesTr/<case>_0000.nii.gz ...)"
        )
    convention, cases = hit
    _require_utf8_names(cases)
    sites = _read_sites_csv(root)
    cases = [replace(c, site=sites.get(c.case_id) or infer_site(c.case_id)) for c in cases]
    return Dataset(root=root, convention=convention, cases=cases, problems=duplicate_id_problems(cases))


def add_unlabeled(dataset: Dataset, roots: list[str | Path]) -> Dataset:
    """``dataset`` with the scans of ``roots`` added as unlabeled cases: any layout the project
    reads, seg files (if any) ignored, each case keeping its own convention. A site without a
    sites.csv entry or a BraTS id is the folder's name. An id that two folders share is refused."""
    known = {c.case_id: c for c in dataset.cases}
    cases, added = list(dataset.cases), list(dataset.unlabeled_roots)
    for root in roots:
        root = Path(root).resolve()
        if root in added or root == Path(dataset.root).resolve():
            continue
        extra = open_dataset(root)
        for case in extra.cases:
            if case.case_id in known:
                raise BadInputError(
                    f"case {case.case_id}: in both {known[case.case_id].reference_path.parent} and "
                    f"{case.reference_path.parent}; case ids must be unique across --unlabeled folders"
                )
            case = replace(case.without_seg(), site=case.site or root.name)
            known[case.case_id] = case
            cases.append(case)
        added.append(root)
    return replace(dataset, cases=cases, problems=list(dataset.problems), unlabeled_roots=added)
