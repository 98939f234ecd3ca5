"""Dice and HD95 per tumour region (WT, TC, ET) and label (NCR, ED), per case and mean.

The numbers come from MONAI (:func:`monai.metrics.compute_dice`,
:func:`monai.metrics.compute_hausdorff_distance` with ``percentile=95`` and the voxel spacing in
mm). HD95 there is the larger of the two directed 95th percentiles of the surface distances
(surface = mask minus its 6-connected erosion). panoptica, the engine of the official
``BraTS_evaluation`` package, takes the 95th percentile of both directions pooled, which is never
larger; Dice is the same (``tests/test_evaluate_official.py`` checks both).

Empty masks follow BraTS: empty prediction and empty ground truth give Dice 1 and HD95 0; exactly
one of them empty gives Dice 0 and HD95 :data:`HD95_MAX`.

Example::

    >>> scores = case_metrics(pred_labels, gt_labels, spacing=(1.0, 1.0, 1.0))
    >>> scores["WT"]["dice"], scores["ET"]["hd95"]
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence, cast

import numpy as np
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance

from brats_ssl import atomic
from brats_ssl.data.conventions import LABELS, NUM_CLASSES, REGIONS
from brats_ssl.data.dataset import CaseRef, open_dataset
from brats_ssl.data.io import load_nifti, read_seg
from brats_ssl.errors import BadInputError, case_message
from brats_ssl.paths import find_nifti, nifti_stem, safe_name
from brats_ssl.progress import make_progress, stderr_console
from brats_ssl.records import CaseMetrics, RegionMetrics, Summary

# The diagonal of a 240 x 240 x 155 volume at 1 mm, sqrt(240² + 240² + 155²) = 373.13 mm: the
# largest distance inside a BraTS scan, which BraTS assigns when one of the two masks is empty.
HD95_MAX = 373.13

# What a case is scored on: the three regions, then the two labels that are no region (ET is both).
EVALUATED: dict[str, tuple[int, ...]] = {**REGIONS, **{k: v for k, v in LABELS.items() if k not in REGIONS}}
METRICS: tuple[str, ...] = ("dice", "hd95")
# Voxels kept around the union of both masks. One is enough for the erosion that finds surfaces
# to see background beyond each mask; distances only involve surface voxels, all inside the crop.
_CROP_MARGIN = 2

ArrayLike = np.ndarray | torch.Tensor


class CasePair(NamedTuple):
    """One case to score: internal label maps (uint8 0..3) and the voxel spacing in mm."""

    case: str
    pred: ArrayLike
    gt: ArrayLike
    spacing: Sequence[float] = (1.0, 1.0, 1.0)


def _as_label_array(labels: ArrayLike, name: str) -> np.ndarray:
    array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if array.size and (array.min() < 0 or array.max() >= NUM_CLASSES):
        raise ValueError(
            f"{name} holds values outside the internal labels 0..{NUM_CLASSES - 1} "
            f"(found {array.min()}..{array.max()}); convert it with Convention.to_internal first"
        )
    return array


def _foreground_box(pred: np.ndarray, gt: np.ndarray, margin: int) -> tuple[slice, ...] | None:
    """Bounding box of any tumour voxel in either map, grown by ``margin``; None when both are empty."""
    foreground = (pred > 0) | (gt > 0)
    box = []
    for axis in range(foreground.ndim):
        other_axes = tuple(a for a in range(foreground.ndim) if a != axis)
        hits = np.flatnonzero(foreground.any(axis=other_axes))
        if hits.size == 0:
            return None
        box.append(slice(max(int(hits[0]) - margin, 0), min(int(hits[-1]) + margin + 1, foreground.shape[axis])))
    return tuple(box)


def _region_masks(pred: ArrayLike, gt: ArrayLike) -> tuple[np.ndarray, np.ndarray] | None:
    """One boolean mask per evaluated region, (regions, *box), on the box around any tumour voxel.

    None when neither map has any tumour. Validates labels and shapes.
    """
    pred_array = _as_label_array(pred, "prediction")
    gt_array = _as_label_array(gt, "ground truth")
    if pred_array.shape != gt_array.shape:
        raise ValueError(f"prediction shape {pred_array.shape} differs from ground truth shape {gt_array.shape}")
    box = _foreground_box(pred_array, gt_array, _CROP_MARGIN)
    if box is None:
        return None
    pred_crop, gt_crop = pred_array[box], gt_array[box]
    return (
        np.stack([np.isin(pred_crop, labels) for labels in EVALUATED.values()]),
        np.stack([np.isin(gt_crop, labels) for labels in EVALUATED.values()]),
    )


def mean_region_dice(dice: Mapping[str, float]) -> float:
    """The model-selection score: mean Dice of the BraTS regions WT, TC, ET."""
    return float(sum(dice[region] for region in REGIONS) / len(REGIONS))


def summary_score(summary: Mapping[str, Any] | None) -> float:
    """:func:`mean_region_dice` of a summary's means; -inf for an empty summary (no cases)."""
    mean = (summary or {}).get("mean") or {}
    if any((mean.get(region) or {}).get("dice") is None for region in REGIONS):
        return float("-inf")
    return mean_region_dice({region: mean[region]["dice"] for region in REGIONS})


def _dice(pred_masks: torch.Tensor, gt_masks: torch.Tensor) -> torch.Tensor:
    # float64 ground truth keeps voxel counts exact; ignore_empty=False gives BraTS' empty rules.
    return compute_dice(pred_masks, gt_masks.double(), include_background=True, ignore_empty=False)[0]


def region_dice(pred: ArrayLike, gt: ArrayLike) -> dict[str, float]:
    """Dice of each region and label (no HD95): the cheap score used while training."""
    masks = _region_masks(pred, gt)
    if masks is None:
        return {name: 1.0 for name in EVALUATED}
    dice = _dice(torch.from_numpy(masks[0])[None], torch.from_numpy(masks[1])[None])
    return {name: float(dice[i]) for i, name in enumerate(EVALUATED)}


def case_metrics(
    pred: ArrayLike, gt: ArrayLike, spacing: Sequence[float] = (1.0, 1.0, 1.0)
) -> dict[str, dict[str, float]]:
    """Dice and HD95 (mm) of each region and label, from two internal label maps of one case.

    ``pred`` and ``gt`` are numpy arrays or CPU torch tensors of equal shape holding 0 background,
    1 NCR, 2 ED, 3 ET. Both are cropped to the tumour's bounding box first, so a full
    240 x 240 x 155 case costs a fraction of a second.

    Returns ``{"WT": {"dice": ..., "hd95": ...}, "TC": ..., "ET": ..., "NCR": ..., "ED": ...}``.
    """
    if len(spacing) != np.ndim(gt):
        raise ValueError(f"spacing {tuple(spacing)} needs one value per axis of shape {tuple(np.shape(gt))}")
    masks = _region_masks(pred, gt)
    if masks is None:  # no tumour anywhere: every region is empty in both
        return {name: {"dice": 1.0, "hd95": 0.0} for name in EVALUATED}
    pred_stack, gt_stack = masks
    # One channel per region: (1, regions, *spatial), as MONAI's metric functions expect.
    pred_masks, gt_masks = torch.from_numpy(pred_stack)[None], torch.from_numpy(gt_stack)[None]
    dice = _dice(pred_masks, gt_masks)

    pred_any = pred_stack.reshape(len(EVALUATED), -1).any(axis=1)
    gt_any = gt_stack.reshape(len(EVALUATED), -1).any(axis=1)
    both = np.flatnonzero(pred_any & gt_any)
    hd95 = np.where(pred_any | gt_any, HD95_MAX, 0.0)
    if both.size:  # distances only where both masks exist; the rest follow the empty rules
        channels = torch.from_numpy(both)
        with warnings.catch_warnings():
            # MONAI 1.5-1.6 passes its own deprecated argument internally; not the caller's concern.
            warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*", category=FutureWarning)
            hd95[both] = (
                compute_hausdorff_distance(
                    pred_masks[:, channels],
                    gt_masks[:, channels],
                    include_background=True,
                    percentile=95,
                    spacing=[float(s) for s in spacing],
                )[0]
                .double()
                .numpy()
            )
    return {name: {"dice": float(dice[i]), "hd95": float(hd95[i])} for i, name in enumerate(EVALUATED)}


def _nan_mean(values: Iterable[Any]) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(finite)) if finite else None


def summarize(per_case: list[CaseMetrics]) -> Summary:
    """Mean over cases of every region's Dice and HD95, then the per-case entries.

    Each entry is ``{"case": id, "WT": {"dice", "hd95"}, ...}``. Missing, None and NaN values are
    left out of a mean; a mean with no value at all is None (JSON null).
    """
    mean = {
        name: cast(
            RegionMetrics,
            {metric: _nan_mean(entry.get(name, {}).get(metric) for entry in per_case) for metric in METRICS},
        )
        for name in EVALUATED
    }
    return {"mean": mean, "n_cases": len(per_case), "per_case": list(per_case)}


def evaluate_cases(pairs: Iterable[CasePair], *, on_case: Callable[[str], None] | None = None) -> Summary:
    """Score each :class:`CasePair` and return :func:`summarize` of them.

    ``pairs`` may be a generator that loads cases lazily; ``on_case(case_id)`` runs after each.
    """
    per_case = []
    for pair in pairs:
        per_case.append({"case": pair.case, **case_metrics(pair.pred, pair.gt, pair.spacing)})
        if on_case is not None:
            on_case(pair.case)
    return summarize(per_case)


def _prediction_path(pred_dir: Path, case_id: str) -> Path | None:
    """``<case>.nii.gz`` (or ``.nii``), or the file-safe name ``brats-ssl predict`` gives an id
    with unusual characters (:func:`brats_ssl.paths.safe_name`)."""
    for stem in dict.fromkeys((case_id, safe_name(case_id))):
        found = find_nifti(pred_dir, stem)
        if found is not None:
            return found
    return None


def _load_pair(case: CaseRef, pred_path: Path) -> CasePair:
    """GT and prediction of a case in internal labels, with the GT header's spacing."""
    assert case.seg is not None
    gt_image = load_nifti(case.seg, case.case_id)
    pred_image = load_nifti(pred_path, case.case_id)
    if tuple(pred_image.shape) != tuple(gt_image.shape):
        raise BadInputError(
            case_message(
                case.case_id,
                pred_path,
                f"prediction shape {tuple(pred_image.shape)} differs from ground truth {case.seg} "
                f"shape {tuple(gt_image.shape)}",
            )
        )
    spacing = tuple(float(z) for z in gt_image.header.get_zooms()[:3])
    gt = read_seg(case)
    # The prediction is read exactly like a seg in the GT's convention, with errors naming its file.
    pred = read_seg(replace(case, seg=pred_path))
    return CasePair(case.case_id, pred, gt, spacing)


def _csv_text(summary: Summary) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["case"] + [f"{name}_{metric}" for name in EVALUATED for metric in METRICS])
    for entry in summary["per_case"]:
        writer.writerow([entry["case"]] + [entry[name][metric] for name in EVALUATED for metric in METRICS])
    return buffer.getvalue()


def evaluate_folder(pred_dir: Path, gt_root: Path, out_json: Path, *, console=None) -> Summary:
    """Score ``pred_dir/<case>.nii.gz`` against every labeled case of the dataset ``gt_root``.

    Predictions use the GT dataset's label convention. Writes ``out_json`` (mean, then per case)
    and a CSV beside it with one row per case; returns the summary. A prediction without a
    labeled GT case is reported on ``console`` (stderr by default) and listed under
    ``"unmatched_predictions"``. Raises :class:`BadInputError` for a missing or unreadable
    prediction, or one whose shape differs from its GT.
    """
    pred_dir, gt_root, out_json = Path(pred_dir), Path(gt_root), Path(out_json)
    console = console if console is not None else stderr_console()
    if not pred_dir.is_dir():
        raise BadInputError(f"folder {pred_dir}: prediction folder does not exist or is not a folder")
    dataset = open_dataset(gt_root)
    labeled = [case for case in dataset.cases if case.seg is not None]
    if not labeled:
        raise BadInputError(f"folder {gt_root}: no case has a ground-truth seg file to evaluate against")

    pred_paths = {case.case_id: _prediction_path(pred_dir, case.case_id) for case in labeled}
    missing = [case.case_id for case in labeled if pred_paths[case.case_id] is None]
    if missing:
        others = f"; {len(missing) - 1} more case(s) lack one: {', '.join(missing[1:6])}" if len(missing) > 1 else ""
        raise BadInputError(
            case_message(missing[0], pred_dir / f"{missing[0]}.nii.gz", f"prediction is missing{others}")
        )

    known = set(pred_paths) | {safe_name(case_id) for case_id in pred_paths}
    unmatched = sorted(
        p.name
        for p in pred_dir.iterdir()
        if not p.name.startswith(".") and (stem := nifti_stem(p.name)) is not None and stem not in known
    )
    if unmatched:
        console.print(
            f"[yellow]warning:[/] {len(unmatched)} prediction(s) in {pred_dir} have no labeled case in "
            f"{gt_root} and are ignored: {', '.join(unmatched[:10])}{' ...' if len(unmatched) > 10 else ''}"
        )

    with make_progress(console, transient=True) as progress:
        task = progress.add_task("evaluating", total=len(labeled), info="")
        pairs = (_load_pair(case, pred_paths[case.case_id]) for case in labeled)  # type: ignore[arg-type]
        summary = evaluate_cases(pairs, on_case=lambda _: progress.advance(task))
    if unmatched:
        summary["unmatched_predictions"] = unmatched

    atomic.write_json(out_json, summary)
    atomic.write_text(out_json.with_suffix(".csv"), _csv_text(summary))
    return summary
