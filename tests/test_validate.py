"""Validation of cases and datasets: each kind of bad input gives a problem naming case and file."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brats_ssl.data import file_summary
from brats_ssl.data.conventions import CLASS_NAMES
from brats_ssl.data.dataset import open_dataset
from brats_ssl.data.validate import CaseReport, require_valid, validate_case, validate_dataset
from brats_ssl.errors import BadInputError

from conftest import AFFINE, patch_header, real_data_or_skip, synthetic_case, write_dataset
from conftest import save_nifti as save

SHAPE = (24, 28, 20)
CASE = "BraTS2021_00001"  # the case each test damages (the second of three)


def case_file(root: Path, suffix: str, case: str = CASE) -> Path:
    return root / case / f"{case}_{suffix}.nii.gz"


def report_for(root: Path, case_id: str = CASE) -> CaseReport:
    dataset = open_dataset(root)
    reports = {r.case_id: r for r in validate_dataset(dataset, progress=False)}
    return reports[case_id]


@pytest.fixture
def data(tmp_path) -> Path:
    return write_dataset(tmp_path / "data", "brats2021", n=3, shape=SHAPE)


@pytest.mark.parametrize("convention", ["brats2021", "brats2023", "msd", "nnunet"])
def test_clean_datasets_are_usable_in_every_convention(tmp_path, convention):
    root = write_dataset(tmp_path / convention, convention, n=2, shape=SHAPE, unlabeled=1)
    reports = validate_dataset(open_dataset(root), progress=False)
    assert [r.problems for r in reports] == [[], [], []]
    assert all(r.usable and r.shape == SHAPE and r.spacing == (1.0, 1.0, 1.0) for r in reports)
    assert [r.labeled for r in reports] == [True, True, False]
    for i, report in enumerate(reports[:2]):
        _, labels = synthetic_case(SHAPE, seed=i)
        expected = tuple(CLASS_NAMES[v] for v in np.unique(labels) if v)
        assert report.labels_present == expected
    assert reports[2].labels_present == ()


def test_unlabeled_cases_without_seg_are_usable(data):
    for case in ("BraTS2021_00000", CASE):
        case_file(data, "seg", case).unlink()
    reports = validate_dataset(open_dataset(data), progress=False)
    assert all(r.usable for r in reports)
    assert [r.labeled for r in reports] == [False, False, True]


def assert_one_problem(report: CaseReport, path: Path, *words: str) -> str:
    assert not report.usable
    assert len(report.problems) == 1, report.problems
    problem = report.problems[0]
    assert problem.startswith(f"case {report.case_id}: file {path}"), problem
    for word in words:
        assert word in problem, problem
    return problem


def test_missing_modality(data):
    case_file(data, "t2").unlink()
    problem = report_for(data).problems
    assert problem == [f"case {CASE}: file {data / CASE}: missing modality t2"]


def test_truncated_gzip(data):
    path = case_file(data, "t1ce")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_one_problem(report_for(data), path, "truncated")


def test_gzip_missing_only_its_trailer_is_caught(data):
    # nibabel reads every voxel of this file without complaint; only the CRC/length trailer is gone.
    path = case_file(data, "flair")
    path.write_bytes(path.read_bytes()[:-4])
    assert nib.load(str(path)).get_fdata().shape == SHAPE
    assert_one_problem(report_for(data), path, "truncated")


@pytest.mark.parametrize(
    "content, words",
    [
        (b"this is not an image" * 50, ("not a gzip file",)),
        # mtime=0: a timestamp in the parameter would differ between xdist workers' collections
        (gzip.compress(b"\x00garbage" * 100, mtime=0), ("not a readable NIfTI image",)),
        (b"", ("empty file",)),
    ],
    ids=["not-gzip", "gzip-not-nifti", "empty"],
)
def test_garbage_file(data, content, words):
    path = case_file(data, "flair")
    path.write_bytes(content)
    assert_one_problem(report_for(data), path, *words)


def test_truncated_uncompressed_nii(data):
    gz = case_file(data, "t1")
    path = gz.with_name(gz.name[:-3])
    path.write_bytes(gzip.decompress(gz.read_bytes())[:1000])
    gz.unlink()
    assert_one_problem(report_for(data), path, "truncated or corrupt file")


def test_corrupt_gzip_data(data):
    path = case_file(data, "t1")
    raw = bytearray(path.read_bytes())
    raw[40:60] = b"\xff" * 20  # inside the deflate stream
    path.write_bytes(bytes(raw))
    assert_one_problem(report_for(data), path, "corrupt")


def test_four_d_image_where_three_d_expected(data):
    image, _ = synthetic_case(SHAPE, seed=1)
    path = case_file(data, "t1")
    save(np.stack([image[0], image[0]], axis=-1), path)
    assert_one_problem(report_for(data), path, "expected a 3-D image", "(24, 28, 20, 2)")


def test_shape_mismatch_between_modalities(data):
    path = case_file(data, "t2")
    save(np.ones((24, 28, 19), np.int16), path)
    # the seg disagrees with t2 only through t1, the reference: one problem, on t2
    assert_one_problem(report_for(data), path, "shape 24x28x19 differs from t1 24x28x20")


def test_affine_mismatch_beyond_tolerance(data):
    image, _ = synthetic_case(SHAPE, seed=1)
    shifted = AFFINE.copy()
    shifted[0, 3] += 2.0
    path = case_file(data, "t2")
    save(image[2], path, shifted)
    assert_one_problem(report_for(data), path, "affine differs from t1")


def test_affine_difference_within_tolerance_is_accepted(data):
    image, _ = synthetic_case(SHAPE, seed=1)
    nudged = AFFINE.copy()
    nudged[0, 3] += 1e-4
    save(image[2], case_file(data, "t2"), nudged)
    assert report_for(data).usable


def test_seg_shape_and_affine_mismatch(data):
    _, labels = synthetic_case(SHAPE, seed=1)
    path = case_file(data, "seg")
    save(np.zeros((24, 28, 21), np.uint8), path)
    assert_one_problem(report_for(data), path, "seg shape 24x28x21 differs from t1")
    shifted = AFFINE.copy()
    shifted[2, 3] = 5.0
    save(np.array([0, 1, 2, 4], np.uint8)[labels], path, shifted)
    assert_one_problem(report_for(data), path, "seg affine differs from t1")


def test_nan_voxels(data):
    image, _ = synthetic_case(SHAPE, seed=1)
    values = image[3].astype(np.float32)
    values[3, 4, 5] = np.nan
    values[6, 7, 8] = np.inf
    path = case_file(data, "flair")
    save(values, path)
    assert_one_problem(report_for(data), path, "flair: 2 NaN/Inf voxels")


def test_all_zero_modality(data):
    path = case_file(data, "t1ce")
    save(np.zeros(SHAPE, np.int16), path)
    assert_one_problem(report_for(data), path, "t1ce is all zero")


def test_label_outside_brats2021_convention(data):
    _, labels = synthetic_case(SHAPE, seed=1)
    path = case_file(data, "seg")
    save(labels, path)  # internal values 0-3: 3 is not a BraTS 2021 label
    report = report_for(data)
    assert_one_problem(report, path, "labels [3]", "brats2021 convention", "[0, 1, 2, 4]")
    assert report.labels_present == ("0", "1", "2", "3")


def test_float_seg_with_non_integer_values(data):
    _, labels = synthetic_case(SHAPE, seed=1)
    values = np.array([0, 1, 2, 4], np.float32)[labels]
    path = case_file(data, "seg")
    save(values, path)
    assert report_for(data).usable  # whole numbers stored as float are fine
    values[labels == 2] = 1.5
    save(values, path)
    assert_one_problem(report_for(data), path, "non-integer")


def test_zero_or_negative_spacing(data):
    path = case_file(data, "t1")
    patch_header(path, pixdim=[1, 1, 0, 1, 1, 1, 1, 1])
    assert_one_problem(report_for(data), path, "spacing (1.0, 0.0, 1.0) must be positive")
    patch_header(path, pixdim=[1, 1, -2, 1, 1, 1, 1, 1])
    assert_one_problem(report_for(data), path, "must be positive")


def test_non_invertible_affine(data):
    path = case_file(data, "seg")
    patch_header(path, srow_z=[0, 0, 0, 0], sform_code=1, qform_code=0)
    problems = report_for(data).problems
    assert any(p.startswith(f"case {CASE}: file {path}: affine is not invertible") for p in problems), problems


def test_msd_file_with_wrong_volume_count(tmp_path):
    root = write_dataset(tmp_path / "msd", "msd", n=2, shape=SHAPE)
    path = root / "imagesTr" / "BRATS_001.nii.gz"
    image, _ = synthetic_case(SHAPE, seed=1)
    save(np.stack([image[3], image[0], image[1]], axis=-1), path)
    report = report_for(root, "BRATS_001")
    assert_one_problem(report, path, "expected a 4-D image with 4 volumes", "(24, 28, 20, 3)")


def test_msd_nan_names_the_volume(tmp_path):
    root = write_dataset(tmp_path / "msd", "msd", n=2, shape=SHAPE)
    path = root / "imagesTr" / "BRATS_001.nii.gz"
    image, _ = synthetic_case(SHAPE, seed=1)
    stacked = np.stack([image[3], image[0], image[1], image[2]], axis=-1).astype(np.float32)
    stacked[..., 2][0, 0, 0] = np.nan  # volume 2 is T1gd
    save(stacked, path)
    report = report_for(root, "BRATS_001")
    assert report.problems == [f"case BRATS_001: file {path}[volume 2]: t1ce: 1 NaN/Inf voxels"]


def test_duplicate_case_ids_in_hgg_and_lgg(tmp_path):
    root = tmp_path / "brats18"
    write_dataset(root / "HGG", "brats2021", n=2, shape=SHAPE)
    write_dataset(root / "LGG", "brats2021", n=1, shape=SHAPE, seed=5)  # BraTS2021_00000 again
    reports = validate_dataset(open_dataset(root), progress=False)
    bad = [r for r in reports if not r.usable]
    assert [r.case_id for r in bad] == ["BraTS2021_00000", "BraTS2021_00000"]
    problem = bad[0].problems[0]
    assert "duplicate case id" in problem
    assert str(root / "HGG" / "BraTS2021_00000") in problem and str(root / "LGG" / "BraTS2021_00000") in problem


def test_both_nii_and_nii_gz_of_one_file(data):
    path = case_file(data, "t1")
    (path.parent / path.name[:-3]).write_bytes(gzip.decompress(path.read_bytes()))
    problems = report_for(data).problems
    assert any("both" in p and "keep one" in p and p.startswith(f"case {CASE}: file ") for p in problems), problems


def test_broken_symlink(data):
    path = case_file(data, "t2")
    path.unlink()
    path.symlink_to(data / "nowhere.nii.gz")
    assert_one_problem(report_for(data), path, "broken symbolic link")


def test_each_problem_of_a_case_is_reported(data):
    case_file(data, "t2").unlink()
    save(np.zeros(SHAPE, np.int16), case_file(data, "t1ce"))
    _, labels = synthetic_case(SHAPE, seed=1)
    save(labels, case_file(data, "seg"))
    problems = report_for(data).problems
    assert len(problems) == 3
    assert all(p.startswith(f"case {CASE}: ") for p in problems)


# --- require_valid ------------------------------------------------------------------------------


def test_require_valid_passes_clean_cases(data):
    require_valid(open_dataset(data).cases)


def test_require_valid_lists_every_problem(data):
    path = case_file(data, "t1ce")
    path.write_bytes(path.read_bytes()[:300])
    case_file(data, "flair", "BraTS2021_00002").unlink()
    with pytest.raises(BadInputError) as caught:
        require_valid(open_dataset(data).cases)
    message = str(caught.value)
    assert message.startswith("2 of 3 case(s) unusable")
    assert f"case {CASE}: file {path}: truncated" in message
    assert "case BraTS2021_00002:" in message and "missing modality flair" in message


def test_require_valid_lists_the_first_ten_problems(tmp_path):
    root = write_dataset(tmp_path / "many", "brats2021", n=12, shape=(8, 8, 8))
    for path in root.glob("*/*_t2.nii.gz"):
        path.unlink()
    with pytest.raises(BadInputError) as caught:
        require_valid(open_dataset(root).cases)
    message = str(caught.value)
    assert message.count("missing modality t2") == 10
    assert message.endswith("... and 2 more")


def test_require_valid_ignores_hidden_labels(data):
    _, labels = synthetic_case(SHAPE, seed=1)
    save(labels, case_file(data, "seg"))  # label 3: invalid, but an unlabeled case's seg is never read
    cases = open_dataset(data).cases
    with pytest.raises(BadInputError):
        require_valid(cases)
    require_valid([c.without_seg() if c.case_id == CASE else c for c in cases])


def test_require_valid_rejects_duplicate_ids(data):
    case = open_dataset(data).cases[0]
    with pytest.raises(BadInputError, match="duplicate case id"):
        require_valid([case, case])


# --- the summary cache --------------------------------------------------------------------------


def test_cache_skips_unchanged_files_and_rereads_changed_ones(data, tmp_path, monkeypatch):
    monkeypatch.setenv("BRATS_SSL_CACHE", str(tmp_path / "cache"))
    reads: list[Path] = []
    original = file_summary._summarise
    monkeypatch.setattr(file_summary, "_summarise", lambda path, role: reads.append(path) or original(path, role))
    case = open_dataset(data).case(CASE)
    first = validate_case(case)
    assert first.usable and len(reads) == 5
    assert validate_case(case) == first
    assert len(reads) == 5  # all five summaries came from the cache
    assert len(list((tmp_path / "cache" / "validate").glob("*.json"))) == 5

    path = case_file(data, "t1ce")
    path.write_bytes(path.read_bytes()[:-8])  # size and mtime change
    report = validate_case(case)
    assert reads[5:] == [path]
    assert_one_problem(report, path, "truncated")
    validate_case(case)
    assert len(reads) == 6  # the bad file's summary is cached too

    assert validate_case(case, cache=False).problems == report.problems
    assert len(reads) == 11


def test_damaged_cache_entry_is_recomputed(data, tmp_path, monkeypatch):
    monkeypatch.setenv("BRATS_SSL_CACHE", str(tmp_path / "cache"))
    case = open_dataset(data).case(CASE)
    validate_case(case)
    for entry in (tmp_path / "cache" / "validate").glob("*.json"):
        entry.write_text("{not json")
    assert validate_case(case).usable


# --- real data ----------------------------------------------------------------------------------


def test_real_cases_are_usable(tmp_path):
    root = real_data_or_skip()
    dataset = open_dataset(root)
    assert dataset.convention.name == "brats2021" and len(dataset) == 21
    for case_id in ("Brats18_2013_3_1", "BraTS2021_00006"):  # int16 and uint8 seg files
        report = validate_case(dataset.case(case_id))
        assert report.problems == []
        assert report.shape == (240, 240, 155) and report.spacing == (1.0, 1.0, 1.0)
        assert set(report.labels_present) <= {"NCR", "ED", "ET"} and "ED" in report.labels_present


def test_real_truncated_copy_is_caught(tmp_path):
    root = real_data_or_skip()
    case_id = "Brats18_2013_3_1"
    copy = tmp_path / "real" / case_id
    copy.mkdir(parents=True)
    for source in (root / case_id).iterdir():
        (copy / source.name).symlink_to(source)
    t1ce = copy / f"{case_id}_t1ce.nii.gz"
    t1ce.unlink()
    t1ce.write_bytes((root / case_id / t1ce.name).read_bytes()[:1_000_000])
    report = validate_case(open_dataset(tmp_path / "real").case(case_id))
    assert_one_problem(report, t1ce, "truncated")
    shutil.rmtree(tmp_path / "real")
