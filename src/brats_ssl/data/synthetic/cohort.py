"""A synthetic cohort: which cases it holds (site, grade, acquisition, seed), simulating one case,
and writing them all as NIfTI.

Files: ``OUT/<case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz`` (BraTS 2021: int16 images, uint8 seg
with 0/1/2/4), background exactly 0, voxel axes LPS like BraTS, plus ``sites.csv`` with every
case's acquisition. The same seed gives the same arrays.
"""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from brats_ssl import atomic
from brats_ssl.data.conventions import BRATS2021, MODALITIES
from brats_ssl.data.synthetic.anatomy import simulate_anatomy
from brats_ssl.data.synthetic.fields import bounding_box
from brats_ssl.data.synthetic.scanner import (
    Acquisition,
    acquire,
    assign_sites,
    jitter_acquisition,
    noise_free_signal,
    site_name,
    site_profiles,
)
from brats_ssl.data.synthetic.tumour import simulate_tumour
from brats_ssl.errors import BadInputError

LGG_FRACTION = 0.28


@dataclass(frozen=True)
class CaseSpec:
    """Everything that determines one synthetic case."""

    case_id: str
    site: str
    grade: str  # "HGG" or "LGG"
    labeled: bool
    seed: tuple[int, int]
    acquisition: Acquisition


@dataclass
class SyntheticCase:
    """A simulated case: ``image`` float32 (4, X, Y, Z) as stored (before int16 rounding),
    ``labels`` internal classes (0 bg, 1 NCR, 2 ED, 3 ET), ``tissue`` indices into
    :data:`~brats_ssl.data.synthetic.anatomy.TISSUES`."""

    spec: CaseSpec
    image: np.ndarray
    labels: np.ndarray
    tissue: np.ndarray


def simulate_case(spec: CaseSpec, shape: tuple[int, int, int]) -> SyntheticCase:
    """Simulate one case from its spec (deterministic in ``spec.seed``)."""
    rng = np.random.default_rng(list(spec.seed))
    tissue, depth = simulate_anatomy(rng, shape)
    labels, edema_strength, texture = simulate_tumour(rng, tissue, depth, grade=spec.grade)
    box = bounding_box(tissue > 0)
    signal = noise_free_signal(
        tissue[box], labels[box], edema_strength[box], texture[box], grade=spec.grade, gamma=spec.acquisition.gamma
    )
    image = np.zeros((len(MODALITIES),) + tuple(shape), np.float32)
    image[(slice(None),) + box] = acquire(rng, signal, tissue[box] > 0, spec.acquisition)
    return SyntheticCase(spec=spec, image=image, labels=labels, tissue=tissue)


def plan_cohort(*, cases: int, sites: int = 3, seed: int = 0, unlabeled: int = 0) -> list[CaseSpec]:
    """Case ids, sites, grades and acquisitions of a cohort: ``cases`` labeled then ``unlabeled``."""
    if cases < 1 or unlabeled < 0 or sites < 1:
        raise BadInputError(
            f"synthetic cohort: need cases >= 1, unlabeled >= 0 and sites >= 1 "
            f"(got cases={cases}, unlabeled={unlabeled}, sites={sites})"
        )
    if seed < 0:
        raise BadInputError(f"synthetic cohort: seed must be >= 0 (got {seed})")
    rng = np.random.default_rng([seed, 0])
    total = cases + unlabeled
    profiles = site_profiles(rng, sites)
    site_of = assign_sites(rng, total, sites)
    lgg = np.zeros(total, bool)
    lgg[rng.permutation(total)[: int(round(LGG_FRACTION * total))]] = True
    width = max(3, len(str(total - 1)))
    return [
        CaseSpec(
            case_id=f"Synth_{site_name(site_of[i])}_{i:0{width}d}",
            site=site_name(site_of[i]),
            grade="LGG" if lgg[i] else "HGG",
            labeled=i < cases,
            seed=(seed, i + 1),
            acquisition=jitter_acquisition(rng, profiles[site_of[i]]),
        )
        for i in range(total)
    ]


def synthetic_affine(shape: tuple[int, int, int], spacing: float) -> np.ndarray:
    """BraTS-like LPS voxel axes (diag(-s, -s, s)) with the origin near the brain's centre."""
    affine = np.diag([-spacing, -spacing, spacing, 1.0])
    affine[:3, 3] = [spacing * (shape[0] - 1) / 2, spacing * (shape[1] - 1) / 2, -spacing * 0.46 * shape[2]]
    return affine


def _save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    atomic.write_with(path, lambda tmp: nib.save(image, str(tmp)))


def _check_target(out: Path, case_ids: list[str]) -> None:
    """Refuse to mix a new cohort with unrelated files (stale cases would join the dataset)."""
    if out.exists() and not out.is_dir():
        raise BadInputError(f"{out}: exists and is not a folder")
    if not out.is_dir():
        return
    expected = set(case_ids) | {"sites.csv"}
    strays = sorted(p.name for p in out.iterdir() if p.name not in expected)
    if strays:
        raise BadInputError(
            f"folder {out}: holds {len(strays)} other entr{'y' if len(strays) == 1 else 'ies'} "
            f"({', '.join(strays[:5])}); write the synthetic cohort into a new or empty folder"
        )


def write_cohort(
    out: str | Path,
    *,
    cases: int,
    shape: tuple[int, int, int] = (96, 96, 64),
    spacing: float = 2.0,
    sites: int = 3,
    seed: int = 0,
    unlabeled: int = 0,
) -> list[str]:
    """Write a synthetic cohort in BraTS 2021 layout plus ``sites.csv``; returns the case ids.

    The first ``cases`` cases have a seg file, the ``unlabeled`` after them do not.
    """
    out = Path(out)
    shape = tuple(int(s) for s in shape)  # type: ignore[assignment]
    if len(shape) != 3 or min(shape) < 16:
        raise BadInputError(f"synthetic cohort: shape must be three sizes >= 16 voxels (got {shape})")
    if not spacing > 0:
        raise BadInputError(f"synthetic cohort: spacing must be > 0 mm (got {spacing})")
    specs = plan_cohort(cases=cases, sites=sites, seed=seed, unlabeled=unlabeled)
    _check_target(out, [s.case_id for s in specs])
    affine = synthetic_affine(shape, spacing)
    # gzip and numpy release the GIL: write one case while the next is simulated (one in flight).
    with ThreadPoolExecutor(max_workers=1) as writer:
        writing = None
        for spec in specs:
            case = simulate_case(spec, shape)
            if writing is not None:
                writing.result()
            writing = writer.submit(_write_case, out, case, affine)
        if writing is not None:
            writing.result()
    atomic.write_text(out / "sites.csv", _sites_csv(specs))
    return [s.case_id for s in specs]


def _write_case(out: Path, case: SyntheticCase, affine: np.ndarray) -> None:
    case_id = case.spec.case_id
    for m, modality in enumerate(MODALITIES):
        _save_nifti(np.rint(case.image[m]).astype(np.int16), affine, out / case_id / f"{case_id}_{modality}.nii.gz")
    seg = out / case_id / f"{case_id}_seg.nii.gz"
    if case.spec.labeled:
        _save_nifti(BRATS2021.to_file(case.labels), affine, seg)
    else:
        seg.unlink(missing_ok=True)  # left by an earlier run in which this case was labeled


def _sites_csv(specs: list[CaseSpec]) -> str:
    fields = ["case", "site", "grade", "labeled"] + list(asdict(specs[0].acquisition))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for spec in specs:
        writer.writerow(
            {
                "case": spec.case_id,
                "site": spec.site,
                "grade": spec.grade,
                "labeled": int(spec.labeled),
                **asdict(spec.acquisition),
            }
        )
    return buffer.getvalue()
