"""Validate a dataset case by case before anything is trained or written.

Each file is read once into a :class:`~brats_ssl.data.file_summary.FileSummary` (cached); the
per-case checks here compare those summaries: shapes, co-registration, geometry, label values.

Example::

    reports = validate_dataset(open_dataset("data/brats"))
    bad = [r for r in reports if not r.usable]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brats_ssl.data.conventions import CLASS_NAMES, MODALITIES
from brats_ssl.data.dataset import CaseRef, Dataset, ImageRef, duplicate_id_problems
from brats_ssl.data.file_summary import FileSummary, summarise_file
from brats_ssl.errors import BadInputError, case_message
from brats_ssl.progress import make_progress
from brats_ssl.resources import available_memory, require_memory

AFFINE_TOLERANCE_MM = 1e-3
# |cosine| between two voxel axes above this is a sheared (non-orthogonal) grid, which ITK-based
# viewers (3D Slicer, ITK-SNAP) refuse and which per-axis spacings cannot describe.
SHEAR_TOLERANCE = 1e-3
_MAX_LISTED_PROBLEMS = 10


@dataclass
class CaseReport:
    """The outcome of validating one case. ``problems`` are full messages naming case and file."""

    case_id: str
    labeled: bool
    shape: tuple[int, int, int] | None
    spacing: tuple[float, float, float] | None
    labels_present: tuple[str, ...]  # internal class names; file values when some do not map
    site: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return not self.problems


# --- checking one case -------------------------------------------------------------------------


def _geometry_problems(summary: FileSummary) -> list[str]:
    problems = []
    spacing = summary.pixdim[: min(3, len(summary.shape))]
    if any(not np.isfinite(s) or s <= 0 for s in spacing):
        problems.append(f"voxel spacing {tuple(spacing)} must be positive")
    affine = np.asarray(summary.affine, dtype=float)
    if not np.all(np.isfinite(affine)):
        problems.append("affine holds NaN/Inf")
    elif abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        problems.append("affine is not invertible (zero determinant)")
    else:
        axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
        cosines = np.abs(axes.T @ axes - np.eye(3))
        if cosines.max() > SHEAR_TOLERANCE:
            angle = float(np.degrees(np.arcsin(min(cosines.max(), 1.0))))
            problems.append(
                f"affine is not orthogonal (voxel axes sheared by {angle:.2f} degrees); "
                "resample the scan to an orthogonal grid"
            )
    return problems


def _format_shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _same_affine(a: list[list[float]], b: list[list[float]]) -> bool:
    return np.allclose(np.asarray(a), np.asarray(b), rtol=0, atol=AFFINE_TOLERANCE_MM)


def _images_by_path(case: CaseRef) -> dict[Path, list[tuple[str, ImageRef]]]:
    """Modalities grouped by file (an MSD file holds all four), in MODALITIES order."""
    by_path: dict[Path, list[tuple[str, ImageRef]]] = {}
    for modality in MODALITIES:
        if modality in case.images:
            ref = case.images[modality]
            by_path.setdefault(ref.path, []).append((modality, ref))
    return by_path


def _summarise_case(case: CaseRef, *, cache: bool) -> dict[tuple[Path, str], FileSummary]:
    """Every file of the case summarised, one at a time (threads gave no gain on 2 busy cores)."""
    jobs = [(path, "image") for path in _images_by_path(case)]
    if case.seg is not None:
        jobs.append((case.seg, "seg"))
    return {(path, role): summarise_file(path, role=role, cache=cache) for path, role in jobs}


def _check_images(
    case: CaseRef, summaries: dict[tuple[Path, str], FileSummary], add
) -> tuple[str, Path, FileSummary] | None:
    """Check every modality file; returns the first good one as the geometry reference."""
    reference: tuple[str, Path, FileSummary] | None = None
    for path, refs in _images_by_path(case).items():
        summary = summaries[(path, "image")]
        if summary.error:
            add(path, summary.error)
            continue
        four_d = refs[0][1].volume is not None
        if four_d:
            expected = max(len(MODALITIES), max(r.volume or 0 for _, r in refs) + 1)
            if len(summary.shape) != 4 or summary.shape[3] != expected:
                add(
                    path,
                    f"expected a 4-D image with {expected} volumes (one per modality), found shape {summary.shape}",
                )
                continue
        elif len(summary.shape) != 3:
            add(path, f"expected a 3-D image, found {len(summary.shape)}-D shape {summary.shape}")
            continue
        for problem in _geometry_problems(summary):
            add(path, problem)
        for modality, ref in refs:
            index = ref.volume or 0
            if summary.nonfinite[index]:
                add(ref, f"{modality}: {summary.nonfinite[index]} NaN/Inf voxels")
            if summary.overflow and summary.overflow[index]:
                add(
                    ref,
                    f"{modality}: {summary.overflow[index]} voxels too large for float32 arithmetic "
                    "(the image's sum overflows; check scl_slope / scl_inter)",
                )
            if summary.all_zero[index]:
                add(ref, f"{modality} is all zero (empty image)")
        if reference is None:
            reference = (refs[0][0], path, summary)
            continue
        ref_modality, ref_path, ref_summary = reference
        if summary.shape[:3] != ref_summary.shape[:3]:
            add(
                path,
                f"shape {_format_shape(summary.shape[:3])} differs from {ref_modality} "
                f"{_format_shape(ref_summary.shape[:3])} ({ref_path.name})",
            )
        elif not _same_affine(summary.affine, ref_summary.affine):
            add(
                path,
                f"affine differs from {ref_modality} ({ref_path.name}) by more than "
                f"{AFFINE_TOLERANCE_MM} mm; the modalities are not co-registered",
            )
    return reference


def _check_seg(case: CaseRef, summary: FileSummary, reference, add) -> tuple[str, ...]:
    """Check the seg file; returns the labels present (internal names, or file values)."""
    assert case.seg is not None
    if summary.error:
        add(case.seg, summary.error)
        return ()
    if len(summary.shape) != 3:
        add(case.seg, f"expected a 3-D seg, found {len(summary.shape)}-D shape {summary.shape}")
        return ()
    for problem in _geometry_problems(summary):
        add(case.seg, problem)
    if reference is not None:
        ref_modality, ref_path, ref_summary = reference
        if summary.shape != ref_summary.shape[:3]:
            add(
                case.seg,
                f"seg shape {_format_shape(summary.shape)} differs from {ref_modality} "
                f"{_format_shape(ref_summary.shape[:3])} ({ref_path.name})",
            )
        elif not _same_affine(summary.affine, ref_summary.affine):
            add(
                case.seg,
                f"seg affine differs from {ref_modality} ({ref_path.name}) by more than {AFFINE_TOLERANCE_MM} mm",
            )
    if summary.non_integer:
        add(case.seg, "seg holds non-integer values (a label map must hold whole numbers)")
    values = summary.values or []
    convention = case.convention
    unknown = [v for v in values if v not in convention.file_to_internal]
    if unknown:
        add(
            case.seg,
            f"labels {unknown} are not part of the {convention.name} convention "
            f"(valid: {list(convention.valid_file_labels)})",
        )
        return tuple(str(v) for v in values)
    internal = sorted({convention.file_to_internal[v] for v in values} - {0})
    return tuple(CLASS_NAMES[i] for i in internal)


def _ambiguous_files(case: CaseRef) -> list[tuple[Path, str]]:
    """A stem present both as .nii and .nii.gz: discovery can use only one of them."""
    found = []
    for path in case.files():
        name = path.name
        other = path.with_name(name[:-3]) if name.endswith(".nii.gz") else path.with_name(name + ".gz")
        if other.exists():
            found.append((path, f"both {path.name} and {other.name} exist; keep one"))
    return found


def validate_case(case: CaseRef, *, cache: bool = True) -> CaseReport:
    """Check one case's files (existence, integrity, dimensions, geometry, voxels, labels)."""
    problems: list[str] = []

    def add(path: object, problem: str) -> None:
        problems.append(case_message(case.case_id, path, problem))

    if case.missing_modalities:
        where = case.reference_path.parent if (case.images or case.seg) else None
        add(where, f"missing modality {', '.join(case.missing_modalities)}")
    for path, problem in _ambiguous_files(case):
        add(path, problem)
    summaries = _summarise_case(case, cache=cache)
    reference = _check_images(case, summaries, add)
    labels: tuple[str, ...] = ()
    if case.seg is not None:
        labels = _check_seg(case, summaries[(case.seg, "seg")], reference, add)
    shape = spacing = None
    if reference is not None:
        shape = tuple(reference[2].shape[:3])
        spacing = tuple(round(s, 4) for s in reference[2].pixdim[:3])
    return CaseReport(
        case_id=case.case_id,
        labeled=case.labeled,
        shape=shape,  # type: ignore[arg-type]
        spacing=spacing,  # type: ignore[arg-type]
        labels_present=labels,
        site=case.site,
        problems=problems,
    )


# --- whole datasets ----------------------------------------------------------------------------


def _validate_all(cases: list[CaseRef], *, progress: bool, cache: bool, console=None) -> list[CaseReport]:
    if not progress:
        return [validate_case(case, cache=cache) for case in cases]
    reports = []
    with make_progress(console, transient=True) as bar:
        task = bar.add_task("validating", total=len(cases), info="")
        for case in cases:
            bar.update(task, info=case.case_id)
            reports.append(validate_case(case, cache=cache))
            bar.advance(task)
    return reports


def _attach(reports: list[CaseReport], problems: list[str]) -> None:
    """Give each dataset-level problem to the case(s) it names (the first case otherwise)."""
    for problem in problems:
        named = [r for r in reports if problem.startswith(f"case {r.case_id}:")]
        for report in named or reports[:1]:
            if problem not in report.problems:
                report.problems.append(problem)


def validate_dataset(dataset: Dataset, *, progress: bool = True, cache: bool = True, console=None) -> list[CaseReport]:
    """One report per case, in dataset order, with dataset-level problems attached."""
    reports = _validate_all(dataset.cases, progress=progress, cache=cache, console=console)
    _attach(reports, dataset.problems)
    return reports


def _memory_problems(reports: list[CaseReport]) -> list[str]:
    """Cases too large for the memory available now: found before any output is written."""
    available_memory()  # a malformed $BRATS_SSL_MEMORY_LIMIT is reported once, not per case
    problems = []
    for report in reports:
        if report.usable and report.shape is not None:
            try:
                require_memory(report.case_id, report.shape)
            except BadInputError as error:
                problems.append(str(error))
    return problems


def require_valid(cases: list[CaseRef], *, progress: bool = False, cache: bool = True) -> None:
    """Raise :class:`BadInputError` listing the problems when any case is unusable or cannot
    fit in memory."""
    reports = _validate_all(cases, progress=progress, cache=cache)
    _attach(reports, duplicate_id_problems(cases))
    _attach(reports, _memory_problems(reports))
    problems = [p for r in reports for p in r.problems]
    if not problems:
        return
    bad = sum(not r.usable for r in reports)
    listed = "\n  ".join(problems[:_MAX_LISTED_PROBLEMS])
    more = len(problems) - _MAX_LISTED_PROBLEMS
    raise BadInputError(
        f"{bad} of {len(cases)} case(s) unusable ({len(problems)} problem(s)); "
        f"'brats-ssl check DATA' lists them all:\n  {listed}" + (f"\n  ... and {more} more" if more > 0 else "")
    )
