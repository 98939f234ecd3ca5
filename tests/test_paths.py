"""NIfTI file names and the one way settings files are read (config.yaml, split.json, dataset.json)."""

from __future__ import annotations

import os

import pytest

from brats_ssl.errors import BadInputError
from brats_ssl.paths import find_nifti, nifti_stem, read_text_file


@pytest.mark.parametrize(
    "name, stem",
    [
        ("BraTS2021_00000_t1.nii.gz", "BraTS2021_00000_t1"),
        ("case_0000.nii", "case_0000"),
        ("x.nii.nii.gz", "x.nii"),
        ("notes.txt", None),
        ("archive.gz", None),
    ],
)
def test_nifti_stem(name, stem):
    assert nifti_stem(name) == stem


def test_find_nifti_prefers_gz_and_finds_broken_links(tmp_path):
    assert find_nifti(tmp_path, "a") is None
    (tmp_path / "a.nii").write_bytes(b"")
    assert find_nifti(tmp_path, "a") == tmp_path / "a.nii"
    (tmp_path / "a.nii.gz").symlink_to(tmp_path / "gone")
    assert find_nifti(tmp_path, "a") == tmp_path / "a.nii.gz"


def test_read_text_file(tmp_path):
    path = tmp_path / "split.json"
    path.write_text("{}", encoding="utf-8")
    assert read_text_file(path) == "{}"

    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(BadInputError, match=r"split.json: not UTF-8 text \(invalid start byte at byte 0\)"):
        read_text_file(path)

    with pytest.raises(BadInputError, match=f"file {tmp_path}: split file: is a folder, not a file"):
        read_text_file(tmp_path, what="split file")
    with pytest.raises(BadInputError, match="missing.yaml: file does not exist"):
        read_text_file(tmp_path / "missing.yaml")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_read_text_file_without_permission(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("a: 1")
    path.chmod(0)
    with pytest.raises(BadInputError, match=r"config.yaml: cannot be read \(Permission denied\)"):
        read_text_file(path)
