"""Every convention round-trips: read → internal form → written back identical to the input seg."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brats_ssl.data.conventions import BRATS2021, BRATS2023, MODALITIES, MSD, nnunet_convention
from brats_ssl.data.dataset import open_dataset
from brats_ssl.data.io import load_case, write_label_map

from conftest import AFFINE, real_data_or_skip, synthetic_case, write_dataset

SHAPE = (20, 22, 16)
CONVENTIONS = ["brats2021", "brats2023", "msd", "nnunet"]


def file_values(path: Path) -> np.ndarray:
    return np.asanyarray(nib.load(str(path)).dataobj)


def assert_round_trip(case, out: Path) -> None:
    """Read the case's seg, write it back, and compare with the file on disk."""
    original = nib.load(str(case.seg))
    loaded = load_case(case)
    write_label_map(case, loaded.seg, out)
    written = nib.load(str(out))
    assert written.shape == original.shape
    np.testing.assert_array_equal(written.affine, original.affine)
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), np.asanyarray(original.dataobj))


def assert_matches_synthetic(case, seed: int) -> None:
    """Channels in MODALITIES order and internal labels, as the fixture generated them."""
    image, labels = synthetic_case(SHAPE, seed)
    loaded = load_case(case)
    np.testing.assert_array_equal(loaded.image, image.astype(np.float32))
    if case.labeled:
        np.testing.assert_array_equal(loaded.seg, labels)
    np.testing.assert_array_equal(loaded.affine, AFFINE)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_round_trip_every_convention(tmp_path, convention):
    root = write_dataset(tmp_path / convention, convention, n=2, shape=SHAPE, unlabeled=1)
    dataset = open_dataset(root)
    assert dataset.convention.name == convention
    assert [c.labeled for c in dataset.cases] == [True, True, False]
    for seed, case in enumerate(dataset.cases):
        assert_matches_synthetic(case, seed)
        if case.labeled:
            assert_round_trip(case, tmp_path / "out" / f"{case.case_id}.nii.gz")


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_unlabeled_case_written_in_image_geometry(tmp_path, convention):
    root = write_dataset(tmp_path / convention, convention, n=0, shape=SHAPE, unlabeled=1)
    case = open_dataset(root).cases[0]
    _, labels = synthetic_case(SHAPE, seed=0)
    out = write_label_map(case, labels, tmp_path / "pred.nii.gz")
    written = nib.load(str(out))
    assert written.shape == SHAPE  # 3-D even when the reference is an MSD 4-D image
    np.testing.assert_array_equal(written.affine, AFFINE)
    np.testing.assert_array_equal(case.convention.to_internal(np.asanyarray(written.dataobj)), labels)


def test_msd_channel_order_and_labels(tmp_path):
    root = write_dataset(tmp_path / "msd", "msd", n=1, shape=SHAPE)
    case = open_dataset(root).cases[0]
    assert {m: ref.volume for m, ref in case.images.items()} == {"flair": 0, "t1": 1, "t1ce": 2, "t2": 3}
    # MSD: 1 edema, 2 non-enhancing tumour, 3 enhancing → internal 2 ED, 1 NCR, 3 ET
    np.testing.assert_array_equal(MSD.to_internal(np.array([0, 1, 2, 3])), [0, 2, 1, 3])
    raw = file_values(case.seg)
    loaded = load_case(case)
    for file_value, internal in ((1, 2), (2, 1), (3, 3)):
        assert np.array_equal(raw == file_value, loaded.seg == internal)


def test_msd_without_dataset_json_uses_the_standard_channel_order(tmp_path):
    root = write_dataset(tmp_path / "msd", "msd", n=1, shape=SHAPE)
    (root / "dataset.json").unlink()
    assert_matches_synthetic(open_dataset(root).cases[0], seed=0)


def test_msd_dataset_json_channel_order_is_followed(tmp_path):
    root = write_dataset(tmp_path / "msd", "msd", n=1, shape=SHAPE)
    image, _ = synthetic_case(SHAPE, seed=0)
    order = ("t2", "flair", "t1", "t1ce")
    path = root / "imagesTr" / "BRATS_000.nii.gz"
    stacked = np.stack([image[MODALITIES.index(m)] for m in order], axis=-1)
    nib.save(nib.Nifti1Image(stacked, AFFINE), str(path))
    meta = json.loads((root / "dataset.json").read_text())
    meta["modality"] = {"0": "T2w", "1": "FLAIR", "2": "T1w", "3": "T1gd"}
    (root / "dataset.json").write_text(json.dumps(meta))
    assert_matches_synthetic(open_dataset(root).cases[0], seed=0)


def test_nnunet_channel_order_from_dataset_json(tmp_path):
    root = write_dataset(tmp_path / "nn", "nnunet", n=1, shape=SHAPE)
    # the fixture writes _0000 FLAIR, _0001 T1, _0002 T1ce, _0003 T2; renumber them as T2, T1ce, FLAIR, T1
    new_index = {0: 2, 1: 3, 2: 1, 3: 0}
    images = root / "imagesTr"
    for old, new in new_index.items():
        (images / f"BraTS2021_00000_{old:04d}.nii.gz").rename(images / f"tmp_{new:04d}.nii.gz")
    for new in range(4):
        (images / f"tmp_{new:04d}.nii.gz").rename(images / f"BraTS2021_00000_{new:04d}.nii.gz")
    meta = json.loads((root / "dataset.json").read_text())
    meta["channel_names"] = {"0": "T2", "1": "T1Gd", "2": "FLAIR", "3": "T1"}
    (root / "dataset.json").write_text(json.dumps(meta))
    case = open_dataset(root).cases[0]
    assert case.images["t1ce"].path.name == "BraTS2021_00000_0001.nii.gz"
    assert_matches_synthetic(case, seed=0)
    assert_round_trip(case, tmp_path / "out.nii.gz")


def test_nnunet_plain_labels(tmp_path):
    root = write_dataset(tmp_path / "nn", "nnunet", n=1, shape=SHAPE)
    _, labels = synthetic_case(SHAPE, seed=0)
    seg = root / "labelsTr" / "BraTS2021_00000.nii.gz"
    # file values: 1 edema, 2 enhancing, 3 necrosis
    nib.save(nib.Nifti1Image(np.array([0, 3, 1, 2], np.uint8)[labels], AFFINE), str(seg))
    meta = json.loads((root / "dataset.json").read_text())
    meta["labels"] = {"background": 0, "edema": 1, "enhancing tumor": 2, "necrosis": 3}
    (root / "dataset.json").write_text(json.dumps(meta))
    case = open_dataset(root).cases[0]
    assert dict(case.convention.file_to_internal) == {0: 0, 1: 2, 2: 3, 3: 1}
    assert_matches_synthetic(case, seed=0)
    assert_round_trip(case, tmp_path / "out.nii.gz")


@pytest.mark.parametrize(
    "convention",
    [
        BRATS2021,
        BRATS2023,
        MSD,
        nnunet_convention({"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing": 3}),
    ],
)
def test_label_mappings_are_inverse(convention):
    values = np.array(convention.valid_file_labels)
    internal = convention.to_internal(values)
    assert sorted(internal.tolist()) == [0, 1, 2, 3]
    np.testing.assert_array_equal(convention.to_file(internal), values)
    with pytest.raises(ValueError, match="not part of"):
        convention.to_internal(np.array([0, max(values) + 1]))


def test_int16_seg_round_trips_its_values(tmp_path):
    root = write_dataset(tmp_path / "b", "brats2021", n=1, shape=SHAPE)
    case = open_dataset(root).cases[0]
    _, labels = synthetic_case(SHAPE, seed=0)
    nib.save(nib.Nifti1Image(np.array([0, 1, 2, 4], np.int16)[labels], AFFINE), str(case.seg))
    assert_round_trip(case, tmp_path / "out.nii.gz")


@pytest.mark.parametrize("case_id", ["Brats18_2013_3_1", "BraTS2021_00006"])  # int16 and uint8 segs
def test_real_cases_round_trip(tmp_path, case_id):
    root = real_data_or_skip()
    case = open_dataset(root).case(case_id)
    loaded = load_case(case)
    assert loaded.image.shape == (4, 240, 240, 155) and loaded.shape == (240, 240, 155)
    assert set(np.unique(loaded.seg).tolist()) <= {0, 1, 2, 3}
    assert {1, 2} <= set(np.unique(loaded.seg).tolist())
    out = write_label_map(case, loaded.seg, tmp_path / f"{case_id}.nii.gz")
    original, written = nib.load(str(case.seg)), nib.load(str(out))
    assert written.shape == original.shape == (240, 240, 155)
    np.testing.assert_array_equal(written.affine, original.affine)
    values = np.asanyarray(written.dataobj)
    assert set(np.unique(values).tolist()) <= {0, 1, 2, 4}
    np.testing.assert_array_equal(values, np.asanyarray(original.dataobj))
