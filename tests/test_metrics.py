"""Dice / HD95 per region and label, summaries, and `brats-ssl evaluate` on tiny datasets."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from rich.console import Console

from brats_ssl.data.conventions import BRATS2021
from brats_ssl.errors import BadInputError
from brats_ssl.metrics import (
    EVALUATED,
    HD95_MAX,
    case_metrics,
    evaluate_folder,
    region_dice,
    summarize,
)

from conftest import real_data_or_skip, write_dataset

NAMES = ("WT", "TC", "ET", "NCR", "ED")


def _line(values, shape=(3, 3, 10)) -> np.ndarray:
    """A label map holding ``values`` along z through the centre of a small volume."""
    labels = np.zeros(shape, np.uint8)
    labels[1, 1, : len(values)] = values
    return labels


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=140)


# --- case_metrics ----------------------------------------------------------------------------


def test_result_has_every_region_and_label_once():
    scores = case_metrics(_line([0, 1, 2, 3]), _line([0, 1, 2, 3]))
    assert tuple(scores) == NAMES == tuple(EVALUATED)
    assert all(set(v) == {"dice", "hd95"} for v in scores.values())


def test_dice_matches_hand_count():
    #        index:  0  1  2  3  4  5  6  7
    gt = _line([0, 1, 1, 3, 3, 2, 2, 2])
    pred = _line([0, 1, 3, 3, 2, 2, 2, 0])
    scores = case_metrics(pred, gt)
    # WT gt 1..7 (7), pred 1..6 (6), both 6       -> 12/13
    # TC gt 1..4 (4), pred 1..3 (3), both 3       -> 6/7
    # ET gt {3,4}, pred {2,3}, both {3}           -> 2/4
    # NCR gt {1,2}, pred {1}, both {1}            -> 2/3
    # ED gt {5,6,7}, pred {4,5,6}, both {5,6}     -> 4/6
    expected = {"WT": 12 / 13, "TC": 6 / 7, "ET": 0.5, "NCR": 2 / 3, "ED": 4 / 6}
    for name, dice in expected.items():
        assert scores[name]["dice"] == pytest.approx(dice, abs=1e-12), name


def test_region_dice_is_the_dice_of_case_metrics():
    gt, pred = _line([0, 1, 1, 3, 3, 2, 2, 2]), _line([0, 1, 3, 3, 2, 2, 2, 0])
    assert region_dice(pred, gt) == {n: v["dice"] for n, v in case_metrics(pred, gt).items()}
    assert region_dice(pred, gt)["TC"] == pytest.approx(6 / 7)
    empty = np.zeros((4, 4, 4), np.uint8)
    assert region_dice(empty, empty) == {n: 1.0 for n in NAMES}


def test_empty_rules():
    empty = np.zeros((6, 6, 6), np.uint8)
    assert case_metrics(empty, empty) == {n: {"dice": 1.0, "hd95": 0.0} for n in NAMES}

    gt = empty.copy()
    gt[2:4, 2:4, 2:4] = 2  # edema only
    scores = case_metrics(empty, gt)  # nothing predicted
    assert scores["WT"] == scores["ED"] == {"dice": 0.0, "hd95": HD95_MAX}
    assert scores["TC"] == scores["ET"] == scores["NCR"] == {"dice": 1.0, "hd95": 0.0}

    pred = gt.copy()
    pred[3, 3, 3] = 3  # an enhancing voxel the reference does not have
    scores = case_metrics(pred, gt)
    assert scores["ET"] == {"dice": 0.0, "hd95": HD95_MAX}  # empty reference, non-empty prediction
    assert scores["NCR"] == {"dice": 1.0, "hd95": 0.0}


def test_hd95_max_is_brats_volume_diagonal():
    assert HD95_MAX == pytest.approx(math.sqrt(240**2 + 240**2 + 155**2), abs=0.005)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.5, 1.25, 3.0)])
def test_hd95_of_shifted_cubes_is_shift_times_spacing(axis, spacing):
    shift = 3
    gt = np.zeros((24, 24, 24), np.uint8)
    gt[5:13, 6:14, 7:15] = 2
    pred = np.roll(gt, shift, axis=axis)
    scores = case_metrics(pred, gt, spacing=spacing)
    # Every surface voxel is within `shift` voxels along `axis` of the other surface, and the
    # two faces across the shift (a quarter of all surface voxels) are exactly that far.
    assert scores["WT"]["hd95"] == pytest.approx(shift * spacing[axis], abs=1e-5)
    assert scores["ED"]["hd95"] == pytest.approx(shift * spacing[axis], abs=1e-5)
    assert scores["WT"]["dice"] == pytest.approx(2 * 8 * 8 * (8 - shift) / (2 * 8**3))
    assert scores["ET"] == {"dice": 1.0, "hd95": 0.0}


def test_torch_tensors_give_the_same_numbers():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 4, size=(12, 10, 8)).astype(np.uint8)
    pred = rng.integers(0, 4, size=(12, 10, 8)).astype(np.uint8)
    spacing = (1.0, 2.0, 0.5)
    assert case_metrics(torch.from_numpy(pred), torch.from_numpy(gt), spacing) == case_metrics(pred, gt, spacing)


def test_region_composition_counts_a_voxel_in_every_region_it_belongs_to():
    gt = _line([0, 3])
    ncr = case_metrics(_line([0, 1]), gt)  # NCR where the reference says ET
    assert ncr["WT"]["dice"] == 1.0 and ncr["TC"]["dice"] == 1.0  # both inside WT and TC
    assert ncr["ET"] == {"dice": 0.0, "hd95": HD95_MAX}
    assert ncr["NCR"] == {"dice": 0.0, "hd95": HD95_MAX}
    ed = case_metrics(_line([0, 2]), gt)  # ED where the reference says ET
    assert ed["WT"]["dice"] == 1.0  # edema is whole tumour ...
    assert ed["TC"] == {"dice": 0.0, "hd95": HD95_MAX}  # ... but not tumour core


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="shape"):
        case_metrics(np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="internal labels"):
        case_metrics(_line([0, 4]), _line([0, 3]))  # ET = 4 is a file convention, not internal


# --- summarize and the table -----------------------------------------------------------------


def _entry(case, dice, hd95):
    return {"case": case, **{n: {"dice": dice, "hd95": hd95} for n in NAMES}}


def test_summarize_means_skip_nan_and_keep_order():
    per_case = [_entry("a", 0.5, 2.0), _entry("b", 1.0, 4.0), _entry("c", float("nan"), 9.0)]
    summary = summarize(per_case)
    assert list(summary) == ["mean", "n_cases", "per_case"]
    assert summary["n_cases"] == 3
    assert summary["mean"]["ET"]["dice"] == pytest.approx(0.75)
    assert summary["mean"]["ET"]["hd95"] == pytest.approx(5.0)
    assert [e["case"] for e in summary["per_case"]] == ["a", "b", "c"]
    assert summarize([_entry("a", float("nan"), 1.0)])["mean"]["WT"]["dice"] is None


# --- evaluate_folder -------------------------------------------------------------------------


def _copy_segs_as_predictions(gt_root: Path, pred_dir: Path) -> list[str]:
    pred_dir.mkdir(parents=True, exist_ok=True)
    cases = sorted(p.name for p in gt_root.iterdir() if (p / f"{p.name}_seg.nii.gz").exists())
    for case in cases:
        shutil.copy(gt_root / case / f"{case}_seg.nii.gz", pred_dir / f"{case}.nii.gz")
    return cases


def test_evaluate_folder_in_file_convention(tmp_path):
    gt_root = write_dataset(tmp_path / "gt", "brats2021", n=3)
    pred_dir = tmp_path / "pred"
    cases = _copy_segs_as_predictions(gt_root, pred_dir)  # ET = 4, exactly the reference
    # Perturb one case: k enhancing voxels (file value 4) predicted as edema (2).
    seg_path = gt_root / cases[1] / f"{cases[1]}_seg.nii.gz"
    reference = nib.load(seg_path)
    gt = np.asarray(reference.dataobj)
    assert set(np.unique(gt)) == {0, 1, 2, 4}
    pred = gt.copy()
    k = 10
    et_voxels = np.argwhere(gt == 4)[:k]
    pred[tuple(et_voxels.T)] = 2
    nib.save(nib.Nifti1Image(pred, reference.affine), str(pred_dir / f"{cases[1]}.nii.gz"))

    out = tmp_path / "eval" / "summary.json"
    summary = evaluate_folder(pred_dir, gt_root, out, console=_quiet())

    by_case = {e["case"]: e for e in summary["per_case"]}
    for case in (cases[0], cases[2]):
        assert all(by_case[case][n] == {"dice": 1.0, "hd95": 0.0} for n in NAMES)
    n_ncr, n_ed, n_et = (int((gt == v).sum()) for v in (1, 2, 4))
    tc = n_ncr + n_et
    expected = {
        "WT": 1.0,
        "TC": 2 * (tc - k) / (2 * tc - k),
        "ET": 2 * (n_et - k) / (2 * n_et - k),
        "NCR": 1.0,
        "ED": 2 * n_ed / (2 * n_ed + k),
    }
    for name, dice in expected.items():
        assert by_case[cases[1]][name]["dice"] == pytest.approx(dice, abs=1e-9), name
    assert by_case[cases[1]]["ET"]["hd95"] > 0
    assert summary["mean"]["ET"]["dice"] == pytest.approx((2 + expected["ET"]) / 3)

    written = json.loads(out.read_text())
    assert list(written)[:3] == ["mean", "n_cases", "per_case"]
    assert written["n_cases"] == 3
    with out.with_suffix(".csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["case"] for r in rows] == cases
    assert list(rows[0]) == ["case"] + [f"{n}_{m}" for n in NAMES for m in ("dice", "hd95")]
    assert float(rows[1]["ET_dice"]) == pytest.approx(expected["ET"])


def test_evaluate_folder_uses_header_spacing(tmp_path):
    gt_root = write_dataset(tmp_path / "gt", "brats2021", n=1)
    case = sorted(p.name for p in gt_root.iterdir())[0]
    seg_path = gt_root / case / f"{case}_seg.nii.gz"
    gt = np.asarray(nib.load(seg_path).dataobj)
    affine = np.diag([2.0, 1.0, 3.0, 1.0])
    nib.save(nib.Nifti1Image(gt, affine), str(seg_path))
    pred = np.roll(gt, 1, axis=2)
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    nib.save(nib.Nifti1Image(pred, affine), str(pred_dir / f"{case}.nii.gz"))

    summary = evaluate_folder(pred_dir, gt_root, tmp_path / "s.json", console=_quiet())
    got = {n: summary["per_case"][0][n] for n in NAMES}
    internal = BRATS2021.to_internal
    assert got == case_metrics(internal(pred), internal(gt), spacing=(2.0, 1.0, 3.0))
    assert got != case_metrics(internal(pred), internal(gt), spacing=(1.0, 1.0, 1.0))


def test_missing_prediction_names_case_and_file(tmp_path):
    gt_root = write_dataset(tmp_path / "gt", "brats2021", n=2)
    pred_dir = tmp_path / "pred"
    cases = _copy_segs_as_predictions(gt_root, pred_dir)
    (pred_dir / f"{cases[1]}.nii.gz").unlink()
    with pytest.raises(BadInputError) as error:
        evaluate_folder(pred_dir, gt_root, tmp_path / "s.json", console=_quiet())
    assert cases[1] in str(error.value) and str(pred_dir / f"{cases[1]}.nii.gz") in str(error.value)
    assert not (tmp_path / "s.json").exists()


def test_shape_mismatch_names_both_files(tmp_path):
    gt_root = write_dataset(tmp_path / "gt", "brats2021", n=1)
    pred_dir = tmp_path / "pred"
    case = _copy_segs_as_predictions(gt_root, pred_dir)[0]
    nib.save(nib.Nifti1Image(np.zeros((24, 28, 19), np.uint8), np.eye(4)), str(pred_dir / f"{case}.nii.gz"))
    with pytest.raises(BadInputError) as error:
        evaluate_folder(pred_dir, gt_root, tmp_path / "s.json", console=_quiet())
    message = str(error.value)
    assert case in message and str(pred_dir / f"{case}.nii.gz") in message
    assert str(gt_root / case / f"{case}_seg.nii.gz") in message


def test_prediction_outside_convention_names_file(tmp_path):
    gt_root = write_dataset(tmp_path / "gt", "brats2021", n=1)
    pred_dir = tmp_path / "pred"
    case = _copy_segs_as_predictions(gt_root, pred_dir)[0]
    internal = np.zeros((24, 28, 20), np.uint8)
    internal[5, 5, 5] = 3  # ET written as 3: not a value of the BraTS 2021 convention
    nib.save(nib.Nifti1Image(internal, np.eye(4)), str(pred_dir / f"{case}.nii.gz"))
    with pytest.raises(BadInputError, match=r"labels \[3\]") as error:
        evaluate_folder(pred_dir, gt_root, tmp_path / "s.json", console=_quiet())
    assert str(pred_dir / f"{case}.nii.gz") in str(error.value)


def test_prediction_without_reference_is_reported_and_ignored(tmp_path):
    gt_root = write_dataset(tmp_path / "gt", "brats2021", n=2, unlabeled=1)
    pred_dir = tmp_path / "pred"
    cases = _copy_segs_as_predictions(gt_root, pred_dir)  # the unlabeled case has no seg
    assert len(cases) == 2
    shutil.copy(pred_dir / f"{cases[0]}.nii.gz", pred_dir / "stranger.nii.gz")
    stream = io.StringIO()
    summary = evaluate_folder(pred_dir, gt_root, tmp_path / "s.json", console=Console(file=stream, width=200))
    assert [e["case"] for e in summary["per_case"]] == cases
    assert summary["unmatched_predictions"] == ["stranger.nii.gz"]
    assert "stranger.nii.gz" in stream.getvalue() and "ignored" in stream.getvalue()


def test_cli_evaluate(tmp_path, capsys):
    from brats_ssl.cli import main

    gt_root = write_dataset(tmp_path / "gt", "brats2021", n=2)
    pred_dir = tmp_path / "pred"
    _copy_segs_as_predictions(gt_root, pred_dir)
    out = tmp_path / "summary.json"
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", str(pred_dir), str(gt_root), "-o", str(out)])
    assert stop.value.code == 0
    assert json.loads(out.read_text())["mean"]["WT"] == {"dice": 1.0, "hd95": 0.0}
    assert "WT" in capsys.readouterr().out

    (pred_dir / next(pred_dir.iterdir()).name).unlink()
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", str(pred_dir), str(gt_root), "-o", str(out)])
    assert stop.value.code == 2


@pytest.mark.realdata
def test_real_case_against_itself(tmp_path):
    root = real_data_or_skip()
    case = "BraTS2021_00006"
    gt_root = tmp_path / "gt"
    gt_root.mkdir()
    (gt_root / case).symlink_to(root / case)
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    (pred_dir / f"{case}.nii.gz").symlink_to(root / case / f"{case}_seg.nii.gz")
    summary = evaluate_folder(pred_dir, gt_root, tmp_path / "s.json", console=_quiet())
    assert all(summary["per_case"][0][n] == {"dice": 1.0, "hd95": 0.0} for n in NAMES)
