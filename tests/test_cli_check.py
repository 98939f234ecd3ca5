"""`brats-ssl check DATA`: a table and exit 0 for good data; exit 2 naming case and file otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brats_ssl.cli import main

from conftest import AFFINE, synthetic_case, write_dataset

SHAPE = (16, 18, 12)
CASE = "BraTS2021_00001"


def run_check(root: Path, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop:
        main(["check", str(root)])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    return stop.value.code, output


def case_file(root: Path, suffix: str) -> Path:
    return root / CASE / f"{CASE}_{suffix}.nii.gz"


@pytest.fixture
def data(tmp_path) -> Path:
    return write_dataset(tmp_path / "data", "brats2021", n=3, shape=SHAPE, unlabeled=1)


def test_check_good_dataset(data, capsys):
    code, output = run_check(data, capsys)
    assert code == 0
    assert "brats2021" in output and "ET = 4" in output  # the detected convention, described
    assert "4 cases, 4 usable, 0 with problems; 3 labeled, 1 unlabeled" in output
    for i in range(4):
        assert f"BraTS2021_{i:05d}" in output
    assert "16x18x12" in output


@pytest.mark.parametrize("convention", ["brats2023", "msd", "nnunet"])
def test_check_other_conventions(tmp_path, capsys, convention):
    root = write_dataset(tmp_path / convention, convention, n=2, shape=SHAPE)
    code, output = run_check(root, capsys)
    assert code == 0
    assert f"convention: {convention}" in output
    assert "2 cases, 2 usable, 0 with problems; 2 labeled, 0 unlabeled" in output


def _truncate(root: Path) -> Path:
    path = case_file(root, "t1ce")
    path.write_bytes(path.read_bytes()[:200])
    return path


def _garbage(root: Path) -> Path:
    path = case_file(root, "t1")
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    return path


def _missing(root: Path) -> Path:
    case_file(root, "flair").unlink()
    return root / CASE


def _four_d(root: Path) -> Path:
    path = case_file(root, "t2")
    nib.save(nib.Nifti1Image(np.ones(SHAPE + (3,), np.int16), AFFINE), str(path))
    return path


def _label_three(root: Path) -> Path:
    path = case_file(root, "seg")
    nib.save(nib.Nifti1Image(synthetic_case(SHAPE, seed=1)[1], AFFINE), str(path))
    return path


def _nan(root: Path) -> Path:
    path = case_file(root, "flair")
    values = np.full(SHAPE, 10.0, np.float32)
    values[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(values, AFFINE), str(path))
    return path


@pytest.mark.parametrize(
    "damage, words",
    [
        (_truncate, "truncated"),
        (_garbage, "not a gzip file"),
        (_missing, "missing modality flair"),
        (_four_d, "expected a 3-D image"),
        (_label_three, "labels [3] are not part of the brats2021 convention"),
        (_nan, "1 NaN/Inf voxels"),
    ],
)
def test_check_bad_case_exits_2_naming_case_and_file(data, capsys, damage, words):
    path = damage(data)
    code, output = run_check(data, capsys)
    assert code == 2
    assert f"case {CASE}: file {path}: " in output  # the full message, on one line
    assert words in output
    assert "4 cases, 3 usable, 1 with problems; 3 labeled, 1 unlabeled" in output


def test_check_duplicate_ids(tmp_path, capsys):
    root = tmp_path / "brats18"
    write_dataset(root / "HGG", "brats2021", n=1, shape=SHAPE)
    write_dataset(root / "LGG", "brats2021", n=1, shape=SHAPE, seed=3)
    code, output = run_check(root, capsys)
    assert code == 2
    assert "case BraTS2021_00000: duplicate case id" in output
    assert "2 cases, 0 usable, 2 with problems" in output


def test_check_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, output = run_check(tmp_path / "empty", capsys)
    assert code == 2
    assert f"folder {tmp_path / 'empty'}: no cases found" in output


def test_check_missing_folder_in_a_subprocess(tmp_path):
    missing = tmp_path / "does-not-exist"
    result = subprocess.run(
        [sys.executable, "-m", "brats_ssl", "check", str(missing)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert f"folder {missing}: does not exist" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_check_truncated_file_in_a_subprocess(data):
    path = _truncate(data)
    result = subprocess.run(
        [sys.executable, "-m", "brats_ssl", "check", str(data)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert f"case {CASE}: file {path}: truncated" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
