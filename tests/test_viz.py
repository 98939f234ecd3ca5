"""Slice pictures: colours, display orientation, panel sizes and montages."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from brats_ssl.data.synthetic import write_cohort
from brats_ssl.viz import (
    CELL_PX,
    LABEL_COLOURS,
    LEGEND_PX,
    ROW_CAPTION_PX,
    TITLE_PX,
    Cell,
    case_cells,
    case_montage,
    dataset_montage,
    display_slice,
    overlay_panel,
    overlay_rgb,
    to_display_orientation,
    tumour_slice,
)

from conftest import real_data_or_skip

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _png_shape(path: Path) -> tuple[int, int]:
    pixels = matplotlib.image.imread(str(path))
    return pixels.shape[0], pixels.shape[1]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("viz") / "cohort"
    write_cohort(root, cases=3, shape=(48, 48, 32), seed=2, unlabeled=1)
    return root


def test_overlay_rgb_greys_colours_and_heat():
    image = np.tile(np.linspace(0, 100, 10, dtype=np.float32), (6, 1))
    labels = np.zeros((6, 10), np.uint8)
    labels[0, :3], labels[1, :3], labels[2, :3] = 1, 2, 3
    rgb = overlay_rgb(image, labels, alpha=0.5, window=(0.0, 100.0))
    assert rgb.shape == (6, 10, 3) and rgb.min() >= 0 and rgb.max() <= 1
    plain = labels == 0
    assert np.allclose(rgb[plain][:, 0], rgb[plain][:, 1]) and np.allclose(rgb[plain][:, 1], rgb[plain][:, 2])
    assert np.isclose(rgb[5, 0, 0], 0.0) and np.isclose(rgb[5, 9, 0], 1.0)  # window ends
    for row, label in enumerate((1, 2, 3)):
        expected = 0.5 * rgb[5, 1] + 0.5 * np.asarray(LABEL_COLOURS[label])
        assert np.allclose(rgb[row, 1], expected)
        assert np.argmax(rgb[row, 1]) == np.argmax(LABEL_COLOURS[label])
    heat = np.zeros((6, 10), np.float32)
    heat[3, 5] = 1.0
    hot = overlay_rgb(image, heat=heat, window=(0.0, 100.0))
    assert np.allclose(hot[4], overlay_rgb(image, window=(0.0, 100.0))[4])  # zero heat: anatomy only
    assert not np.allclose(hot[3, 5], hot[3, 5, 0])  # full heat: coloured


def test_axial_display_puts_anterior_up_and_patient_right_on_the_left():
    volume = np.zeros((8, 10, 6), np.float32)
    volume[0, 0, 3] = 1.0  # LPS voxel axes: index 0 is the patient's right, anterior
    volume[7, 9, 5] = 2.0  # left, posterior, top slice
    axial = display_slice(volume, "axial", 3)
    assert axial.shape == (10, 8) and axial[0, 0] == 1.0
    assert display_slice(volume, "coronal", 9)[0, 7] == 2.0  # superior up
    assert display_slice(volume, "sagittal", 7)[0, 9] == 2.0  # superior up, anterior left
    with pytest.raises(ValueError):
        display_slice(volume, "oblique", 0)


def test_any_orientation_is_shown_like_brats():
    rng = np.random.default_rng(0)
    lps = rng.random((4, 8, 10, 6)).astype(np.float32)
    ras = lps[:, ::-1, ::-1, :]  # the same head stored with RAS voxel axes
    ras_affine = np.diag([1.0, 1.0, 1.0, 1.0])
    assert np.array_equal(to_display_orientation(ras, ras_affine), lps)
    assert np.array_equal(to_display_orientation(lps[0], LPS), lps[0])
    seg = (lps[0] > 0.9).astype(np.uint8)
    from_lps = case_cells(lps, seg, affine=LPS, crop=False)
    from_ras = case_cells(ras, seg[::-1, ::-1, :], affine=ras_affine, crop=False)
    for a, b in zip(from_lps, from_ras):
        assert np.array_equal(a.image, b.image)
        assert (a.labels is None) == (b.labels is None)


def test_tumour_slice_picks_most_tumour_or_most_brain():
    seg = np.zeros((6, 6, 9), np.uint8)
    seg[1:3, 1:3, 2] = 2
    seg[1:5, 1:5, 6] = 1
    assert tumour_slice(seg) == 6
    assert tumour_slice(seg, view="coronal") in (1, 2, 3, 4)
    brain = np.zeros((6, 6, 9), bool)
    brain[:, :, 4] = True
    assert tumour_slice(np.zeros_like(seg), brain=brain) == 4


def test_overlay_panel_size_and_no_pyplot_figures(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    image = np.random.default_rng(1).random((30, 20)).astype(np.float32)
    labels = (image > 0.8).astype(np.uint8) * 3
    rows = [
        ("teacher", [Cell(image, "image"), Cell(image, "gt", labels=labels), Cell(image, "u", heat=image)]),
        ("student", [Cell(image, "image")]),
    ]
    out = overlay_panel(rows, tmp_path / "panel.png", title="report", cell_px=50)
    assert out == tmp_path / "panel.png"
    assert _png_shape(out) == (TITLE_PX + 2 * (50 + ROW_CAPTION_PX) + LEGEND_PX, 3 * 50)
    plain = overlay_panel([("x", [Cell(image)])], tmp_path / "plain.png", cell_px=40)
    assert _png_shape(plain) == (40 + ROW_CAPTION_PX, 40)
    assert plt.get_fignums() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.png", "plain.png"]  # no temporaries left
    with pytest.raises(ValueError):
        overlay_panel([], tmp_path / "empty.png")


def test_case_montage_row_of_five(cohort, tmp_path):
    from brats_ssl.data.dataset import open_dataset
    from brats_ssl.data.io import load_case

    loaded = load_case(open_dataset(cohort).cases[0])
    out = case_montage(loaded.image, loaded.seg, tmp_path / "case.png", title="case", affine=loaded.affine)
    assert _png_shape(out) == (CELL_PX + ROW_CAPTION_PX + LEGEND_PX, 5 * CELL_PX)
    cells = case_cells(loaded.image, loaded.seg, affine=loaded.affine)
    assert [c.title for c in cells] == ["t1", "t1ce", "t2", "flair", "flair + seg"]
    assert np.any(cells[-1].labels > 0)  # the slice with the most tumour shows tumour
    no_seg = case_montage(loaded.image, None, tmp_path / "noseg.png")
    assert _png_shape(no_seg) == (CELL_PX + ROW_CAPTION_PX, 4 * CELL_PX)


def test_dataset_montage_one_row_per_labeled_case(cohort, tmp_path):
    out = dataset_montage(cohort, tmp_path / "montage.png", n_cases=2)
    assert out.stat().st_size > 10_000
    assert _png_shape(out) == (TITLE_PX + 2 * (CELL_PX + ROW_CAPTION_PX) + LEGEND_PX, 5 * CELL_PX)
    everything = dataset_montage(cohort, tmp_path / "all.png", n_cases=10)  # only 3 are labeled
    assert _png_shape(everything)[0] == TITLE_PX + 3 * (CELL_PX + ROW_CAPTION_PX) + LEGEND_PX


@pytest.mark.realdata
def test_dataset_montage_on_real_data(tmp_path):
    root = real_data_or_skip()
    out = dataset_montage(root, tmp_path / "real.png", n_cases=1)
    assert _png_shape(out) == (TITLE_PX + CELL_PX + ROW_CAPTION_PX + LEGEND_PX, 5 * CELL_PX)


def test_viz_does_not_switch_the_matplotlib_backend():
    """Importing and drawing must leave a user's backend alone (e.g. in a notebook)."""
    import os
    import subprocess
    import sys

    code = (
        "import matplotlib, numpy as np, tempfile, pathlib; from brats_ssl import viz; "
        "viz.overlay_panel([('a', [viz.Cell(np.ones((4, 4)))])], pathlib.Path(tempfile.mkdtemp()) / 'a.png'); "
        "print(matplotlib.get_backend())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MPLBACKEND": "svg"},
    )
    assert result.stdout.strip() == "svg"
