"""Overlay panels of a few validation cases: FLAIR, the ground truth, the teacher's and the final
model's segmentation, and the final model's uncertainty.

The uncertainty (normalised predictive entropy with MC dropout) is not saved by training, so it
is computed here, at report time, from the final checkpoint and the dataset named in split.json;
when that dataset cannot be found the section says so instead of failing the report.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from brats_ssl.config import Config
from brats_ssl.data.cache import PreprocessCache
from brats_ssl.data.conventions import MODALITIES
from brats_ssl.data.dataset import CaseRef, open_dataset
from brats_ssl.data.io import load_case, read_seg
from brats_ssl.data.preprocess import PreprocessParams, restore_map
from brats_ssl.engine.device import resolve_device
from brats_ssl.errors import BadInputError
from brats_ssl.inference import InferenceOptions, predict_volume
from brats_ssl.paths import safe_name
from brats_ssl.predict import load_run_model
from brats_ssl.report.document import FIGURE_PREFIX, Picture, Section
from brats_ssl.report.formatting import as_float, format_number, log
from brats_ssl.report.run_summary import BRATS_REGIONS, REGIONS_SLASHED, final_phase, has_metrics, recorded_split
from brats_ssl.run_folder import RunFolder
from brats_ssl.viz import (
    VIEW_AXIS,
    VIEWS,
    Cell,
    brain_box,
    display_slice,
    intensity_window,
    overlay_panel,
    to_display_orientation,
    tumour_slice,
)

MAX_OVERLAY_CASES = 3
_VIEW_HINT = {
    "axial": "anterior up, patient's right on the left",
    "coronal": "superior up",
    "sagittal": "superior up, anterior on the left",
}


def _dataset_root(run: RunFolder) -> Path | None:
    """The dataset the run was trained on; a relative path is tried from here and beside the run."""
    recorded = recorded_split(run).get("dataset")
    if not recorded:
        return None
    path = Path(recorded)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, run.path.parent / path, run.path / path]
    return next((c for c in candidates if c.is_dir()), None)


def pick_cases(per_case: list[dict], n: int = MAX_OVERLAY_CASES) -> list[tuple[str, str]]:
    """Up to ``n`` val cases as (case, why): lowest, median and highest WT Dice of the final model."""
    ordered = sorted(per_case, key=lambda e: (as_float(e.get("WT", {}).get("dice")) or 0.0, e["case"]))
    if len(ordered) <= n:
        return [(e["case"], "") for e in ordered]
    picks = np.unique(np.linspace(0, len(ordered) - 1, n).round().astype(int))
    names = {0: "lowest WT Dice", len(ordered) - 1: "highest WT Dice"}
    return [(ordered[i]["case"], names.get(int(i), "median WT Dice")) for i in picks]


def predictive_entropy(
    model: nn.Module, config: Config, case: CaseRef, *, cache: PreprocessCache, device: torch.device
) -> np.ndarray:
    """Normalised predictive entropy H(p̄)/log C of ``model`` with MC dropout
    (``config.inference.mc_samples`` passes) on the cached preprocessed case, in original geometry."""
    pre = cache.get(case)
    options = InferenceOptions.from_config(config, mc_samples=config.inference.mc_samples)
    prediction = predict_volume(model, np.asarray(pre.image, dtype=np.float32), options, device)
    return restore_map(prediction.entropy.numpy(), pre.meta)


def _read_prediction(case: CaseRef, path: Path) -> np.ndarray | None:
    return read_seg(replace(case, seg=path)) if path.is_file() else None


def overlay_rows(
    image: np.ndarray,
    columns: list[tuple[str, np.ndarray | None, np.ndarray | None]],
    affine: np.ndarray,
    guide: np.ndarray | None,
) -> list[tuple[str, list]]:
    """Rows axial / coronal / sagittal through the tumour (most ``guide`` voxels), one Cell per column.

    ``image`` is FLAIR (X, Y, Z); each column is (title, labels or None, heat map or None).
    """
    flair = to_display_orientation(image, affine)
    box = brain_box(flair != 0)
    flair = flair[box]

    def display(volume: np.ndarray | None) -> np.ndarray | None:
        return None if volume is None else to_display_orientation(volume, affine)[box]

    oriented = [(title, display(labels), display(heat)) for title, labels, heat in columns]
    guide_box = display(guide)
    window = intensity_window(flair)
    rows = []
    for view in VIEWS:
        index = tumour_slice(guide_box, view=view, brain=flair != 0)
        cells = [Cell(display_slice(flair, view, index), title="FLAIR", window=window)]
        for title, labels, heat in oriented:
            cells.append(
                Cell(
                    cells[0].image,
                    title=title,
                    window=window,
                    labels=None if labels is None else display_slice(labels, view, index),
                    heat=None if heat is None else display_slice(heat, view, index),
                )
            )
        # Slice number in the whole (LPS-ordered) volume, not in the crop.
        number = index + box[VIEW_AXIS[view]].start
        rows.append((f"{view}, slice {number} ({_VIEW_HINT[view]})", cells))
    return rows


def overlay_section(run: RunFolder, console) -> Section | None:
    summary = run.summary
    final = final_phase(run)
    if not has_metrics(summary) or not final:
        return None
    title = "Validation cases: overlays and uncertainty"
    root = _dataset_root(run)
    if root is None:
        return Section(
            title,
            [
                f"Overlays skipped: the dataset {recorded_split(run).get('dataset')!r} named in "
                "split.json was not found."
            ],
        )
    picks = pick_cases(summary.get("per_case", []))
    dataset = open_dataset(root)
    device = resolve_device("auto")
    config, model = load_run_model(run.path, "final", device)
    cache = PreprocessCache(PreprocessParams.from_config(config.data), config.data.cache_dir)
    mc = config.inference.mc_samples
    teacher_dir = run.path / "teacher" / "val_predictions"
    final_dir = run.path / final / "val_predictions"
    scores = {e["case"]: e for e in summary.get("per_case", [])}
    teacher_scores = {e["case"]: e for e in (summary.get("teacher") or {}).get("per_case", [])}
    sampling = f"with MC dropout (T={mc} passes)" if mc > 1 else "of one deterministic pass (inference.mc_samples 1)"
    blocks: list = [
        "Columns: FLAIR; FLAIR with the ground truth, the teacher's and the final model's segmentation (NCR red, "
        f"ED green, ET blue); and the final model's uncertainty, the normalised predictive entropy {sampling}, "
        "computed for this report, from 0 (no colour) to 1 (bright yellow). Rows: axial, coronal and sagittal "
        "slices through the largest extent of the ground-truth tumour."
    ]
    for number, (case_id, why) in enumerate(picks, start=1):
        log(console, f"report: uncertainty of {case_id} (T={mc})")
        try:
            case = dataset.case(case_id)
            loaded = load_case(case)
        except BadInputError as error:
            blocks.append(f"Case {case_id} skipped: {error}")
            continue
        columns: list[tuple[str, np.ndarray | None, np.ndarray | None]] = [("ground truth", loaded.seg, None)]
        if final != "teacher":
            teacher = _read_prediction(case, teacher_dir / f"{safe_name(case_id)}.nii.gz")
            if teacher is not None:
                columns.append(("teacher", teacher, None))
        final_labels = _read_prediction(case, final_dir / f"{safe_name(case_id)}.nii.gz")
        if final_labels is not None:
            columns.append((f"final ({final})", final_labels, None))
        brain = np.any(loaded.image != 0, axis=0)
        entropy = np.where(brain, predictive_entropy(model, config, case, cache=cache, device=device), 0.0)
        columns.append(("uncertainty (entropy)", None, entropy))
        dice = "/".join(format_number(scores.get(case_id, {}).get(r, {}).get("dice"), 2) for r in BRATS_REGIONS)
        caption = f"{case_id}{f' ({why})' if why else ''}: final {REGIONS_SLASHED} Dice {dice}"
        if final != "teacher" and case_id in teacher_scores:
            caption += ", teacher " + "/".join(
                format_number(teacher_scores[case_id].get(r, {}).get("dice"), 2) for r in BRATS_REGIONS
            )
        rows = overlay_rows(loaded.image[MODALITIES.index("flair")], columns, loaded.affine, loaded.seg)
        path = overlay_panel(
            rows, run.path / f"{FIGURE_PREFIX}case_{number}_{safe_name(case_id)}.png", title=caption, legend=True
        )
        blocks.append(Picture(path, caption))
    return Section(title, blocks)
