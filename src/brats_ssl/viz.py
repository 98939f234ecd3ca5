"""Slice pictures: grayscale MRI with label colours or heat maps, as PNG panels.

Display convention: volumes are first put in BraTS's own voxel orientation (LPS: axis 0 towards
the patient's left, axis 1 towards posterior, axis 2 towards superior), then axial slices are
shown anterior up with the patient's right on the viewer's left (radiological convention),
coronal and sagittal slices superior up (sagittal: anterior left). Real and synthetic cases
therefore look the same way up.

Figures are :class:`matplotlib.figure.Figure` objects on their own Agg canvas (no pyplot, no
global backend switch), laid out in pixels so a panel's PNG size follows from its rows and
columns; files are written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib
import nibabel as nib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from brats_ssl import atomic
from brats_ssl.data.conventions import CLASS_NAMES, MODALITIES

# One colour per internal class, used by every picture of the project.
# A colour per evaluated region / label in curves (progress.png, report figures).
REGION_COLOURS = {"WT": "#2a9d8f", "TC": "#e76f51", "ET": "#264653", "NCR": "#e9c46a", "ED": "#8ab17d"}
LABEL_COLOURS: dict[int, tuple[float, float, float]] = {
    1: (0.90, 0.15, 0.10),  # NCR: red
    2: (0.20, 0.85, 0.25),  # ED: green
    3: (0.15, 0.45, 1.00),  # ET: blue
}
HEAT_CMAP = "inferno"
VIEWS = ("axial", "coronal", "sagittal")
VIEW_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}  # LPS voxel axis each view slices across

# Layout in pixels (at DPI): each row is a caption strip over square cells.
DPI = 100
CELL_PX = 200
ROW_CAPTION_PX = 22
TITLE_PX = 30
LEGEND_PX = 26


@dataclass(frozen=True)
class Cell:
    """One picture of a panel: a 2-D display slice with optional labels or heat map on top.

    ``labels`` holds internal classes (0..3); ``heat`` a float map drawn with :data:`HEAT_CMAP`
    over ``heat_range`` (e.g. normalised entropy in [0, 1]). ``window`` fixes the grayscale
    range (defaults to the slice's own percentiles).
    """

    image: np.ndarray
    title: str = ""
    labels: np.ndarray | None = None
    heat: np.ndarray | None = None
    heat_range: tuple[float, float] = (0.0, 1.0)
    window: tuple[float, float] | None = None


# --- orientation and slices --------------------------------------------------------------------


def to_display_orientation(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Reorient a (..., X, Y, Z) array from its affine's axes to BraTS's LPS voxel axes."""
    current = nib.orientations.io_orientation(affine)
    target = nib.orientations.axcodes2ornt(("L", "P", "S"))
    transform = nib.orientations.ornt_transform(current, target)
    lead = volume.ndim - 3
    if lead == 0:
        return nib.orientations.apply_orientation(volume, transform)
    flat = volume.reshape((-1,) + volume.shape[lead:])
    out = np.stack([nib.orientations.apply_orientation(v, transform) for v in flat])
    return out.reshape(volume.shape[:lead] + out.shape[1:])


def display_slice(volume: np.ndarray, view: str, index: int) -> np.ndarray:
    """The 2-D slice of an LPS-oriented (X, Y, Z) volume, rows and columns as shown on screen."""
    if view == "axial":  # rows anterior → posterior, columns patient right → left
        return volume[:, :, index].T
    if view == "coronal":  # rows superior → inferior, columns patient right → left
        return volume[:, index, :].T[::-1]
    if view == "sagittal":  # rows superior → inferior, columns anterior → posterior
        return volume[index, :, :].T[::-1]
    raise ValueError(f"view must be one of {VIEWS}, not {view!r}")


def tumour_slice(seg: np.ndarray | None, *, view: str = "axial", brain: np.ndarray | None = None) -> int:
    """Index of the slice with the most tumour; without tumour, the one with the most brain."""
    axis = VIEW_AXIS[view]
    other = tuple(a for a in range(3) if a != axis)
    if seg is not None and np.any(seg > 0):
        return int(np.argmax(np.count_nonzero(seg > 0, axis=other)))
    if brain is not None and np.any(brain):
        return int(np.argmax(np.count_nonzero(brain, axis=other)))
    shape = seg.shape if seg is not None else brain.shape if brain is not None else None
    if shape is None:
        raise ValueError("tumour_slice needs a seg or a brain mask")
    return shape[axis] // 2


def intensity_window(volume: np.ndarray, *, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    """Grayscale range from percentiles of the non-zero (brain) voxels, so black stays background."""
    values = volume[volume != 0]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(x) for x in np.percentile(values, [low, high]))
    return lo, (hi if hi > lo else lo + 1.0)


def brain_box(brain: np.ndarray, *, margin: int = 4) -> tuple[slice, ...]:
    """Bounding box of a mask with a margin, as slices (the whole array when the mask is empty)."""
    if not np.any(brain):
        return tuple(slice(None) for _ in brain.shape)
    box = []
    for axis in range(brain.ndim):
        other = tuple(a for a in range(brain.ndim) if a != axis)
        hits = np.flatnonzero(np.any(brain, axis=other))
        box.append(slice(max(hits[0] - margin, 0), min(hits[-1] + margin + 1, brain.shape[axis])))
    return tuple(box)


# --- colouring ---------------------------------------------------------------------------------


def overlay_rgb(
    image_slice: np.ndarray,
    label_slice: np.ndarray | None = None,
    *,
    alpha: float = 0.45,
    window: tuple[float, float] | None = None,
    heat: np.ndarray | None = None,
    heat_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Grayscale slice as float RGB (H, W, 3) in [0, 1], with label colours and/or a heat map blended in.

    Labels are blended with ``alpha``; a heat map is blended in proportion to its value, so low
    values leave the anatomy visible.
    """
    lo, hi = window if window is not None else intensity_window(image_slice)
    gray = np.clip((image_slice.astype(np.float32) - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    if heat is not None:
        h_lo, h_hi = heat_range
        value = np.clip((heat.astype(np.float32) - h_lo) / max(h_hi - h_lo, 1e-6), 0.0, 1.0)
        colours = matplotlib.colormaps[HEAT_CMAP](value)[..., :3]
        weight = (0.85 * value)[..., None]
        rgb = (1 - weight) * rgb + weight * colours
    if label_slice is not None:
        for label, colour in LABEL_COLOURS.items():
            mask = label_slice == label
            rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.asarray(colour)
    return np.clip(rgb, 0.0, 1.0)  # float rounding can pass 1.0, which imshow warns about


# --- panels ------------------------------------------------------------------------------------


def overlay_panel(
    rows: Sequence[tuple[str, Sequence[Cell]]],
    out_png: str | Path,
    *,
    title: str = "",
    legend: bool | None = None,
    cell_px: int = CELL_PX,
) -> Path:
    """A grid of :class:`Cell` pictures, one captioned row per entry of ``rows``, saved as PNG.

    Size in pixels: width ``n_columns * cell_px``; height ``n_rows * (cell_px + ROW_CAPTION_PX)``
    plus ``TITLE_PX`` with a title and ``LEGEND_PX`` with a label legend (shown by default when
    any cell has labels).
    """
    if not rows or not any(cells for _, cells in rows):
        raise ValueError("overlay_panel needs at least one row with a cell")
    n_cols = max(len(cells) for _, cells in rows)
    if legend is None:
        legend = any(cell.labels is not None for _, cells in rows for cell in cells)
    top = TITLE_PX if title else 0
    bottom = LEGEND_PX if legend else 0
    row_px = cell_px + ROW_CAPTION_PX
    width, height = n_cols * cell_px, top + len(rows) * row_px + bottom

    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="black")
    FigureCanvasAgg(figure)
    if title:
        figure.text(0.5, 1 - (top / 2) / height, title, ha="center", va="center", color="white", fontsize=12)
    for r, (caption, cells) in enumerate(rows):
        row_top = top + r * row_px  # pixels from the top edge
        figure.text(
            4 / width,
            1 - (row_top + ROW_CAPTION_PX / 2) / height,
            caption,
            ha="left",
            va="center",
            color="white",
            fontsize=9,
        )
        for c, cell in enumerate(cells):
            axes = figure.add_axes(
                (c * cell_px / width, 1 - (row_top + row_px) / height, cell_px / width, cell_px / height)
            )
            axes.set_axis_off()
            axes.imshow(
                overlay_rgb(cell.image, cell.labels, window=cell.window, heat=cell.heat, heat_range=cell.heat_range),
                interpolation="nearest",
                aspect="equal",
            )
            if cell.title:
                axes.text(
                    0.03, 0.97, cell.title, transform=axes.transAxes, ha="left", va="top", color="white", fontsize=8
                )
    if legend:
        handles = [Patch(color=LABEL_COLOURS[k], label=CLASS_NAMES[k]) for k in sorted(LABEL_COLOURS)]
        figure.legend(
            handles=handles,
            loc="lower center",
            ncol=len(handles),
            frameon=False,
            fontsize=8,
            labelcolor="white",
            bbox_to_anchor=(0.5, 0.0),
            handlelength=1.2,
        )
    return atomic.write_with(
        out_png, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI, facecolor="black"), suffix=".png"
    )


def case_cells(
    image: np.ndarray,
    seg: np.ndarray | None,
    *,
    view: str = "axial",
    index: int | None = None,
    affine: np.ndarray | None = None,
    crop: bool = True,
) -> list[Cell]:
    """The four modalities and FLAIR with the seg overlaid, at the slice with the most tumour.

    ``image`` is (4, X, Y, Z) in :data:`MODALITIES` order, ``seg`` internal labels; with
    ``affine`` both are first reoriented to the display orientation (see module docstring).
    """
    if image.ndim != 4 or image.shape[0] != len(MODALITIES):
        raise ValueError(f"image must be (4, X, Y, Z), not {image.shape}")
    if affine is not None:
        image = to_display_orientation(image, affine)
        seg = to_display_orientation(seg, affine) if seg is not None else None
    brain = np.any(image != 0, axis=0)
    if crop:
        box = brain_box(brain)
        image, brain = image[(slice(None),) + box], brain[box]
        seg = seg[box] if seg is not None else None
    if index is None:
        index = tumour_slice(seg, view=view, brain=brain)
    cells = [
        Cell(display_slice(volume, view, index), title=name, window=intensity_window(volume))
        for name, volume in zip(MODALITIES, image)
    ]
    flair = cells[MODALITIES.index("flair")]
    if seg is not None:
        cells.append(
            Cell(flair.image, title="flair + seg", labels=display_slice(seg, view, index), window=flair.window)
        )
    return cells


def case_montage(
    image: np.ndarray,
    seg: np.ndarray | None,
    out_png: str | Path,
    *,
    title: str = "",
    affine: np.ndarray | None = None,
    view: str = "axial",
) -> Path:
    """One case as a row of five pictures (t1, t1ce, t2, flair, flair + seg) saved as PNG."""
    cells = case_cells(image, seg, view=view, affine=affine)
    return overlay_panel([(title, cells)], out_png, legend=seg is not None)


def dataset_montage(root: str | Path, out_png: str | Path, n_cases: int = 4) -> Path:
    """``n_cases`` cases spread over a dataset, one row each, captioned with case id and site."""
    from brats_ssl.data.dataset import open_dataset
    from brats_ssl.data.io import load_case

    dataset = open_dataset(root)
    labeled = [c for c in dataset.cases if c.labeled] or dataset.cases
    picks = np.unique(np.linspace(0, len(labeled) - 1, min(n_cases, len(labeled))).round().astype(int))
    rows = []
    for i in picks:
        loaded = load_case(labeled[i])
        caption = f"{loaded.case.case_id}  (site {loaded.case.site or 'unknown'})"
        rows.append((caption, case_cells(loaded.image, loaded.seg, affine=loaded.affine)))
    return overlay_panel(rows, out_png, title=f"{Path(root).name}: {len(dataset)} cases ({dataset.convention.name})")
