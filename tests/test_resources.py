"""Resources: a full, read-only or forbidden output disk and a case too large for memory give exit 2
with a message naming the path or case, and leave no partial file."""

from __future__ import annotations

import errno
import os
import pathlib
from pathlib import Path

import nibabel as nib
import pytest
import torch

from brats_ssl import atomic, resources
from brats_ssl.data.dataset import open_dataset
from brats_ssl.data.io import load_case
from brats_ssl.errors import BadInputError, OutputError

from conftest import make_untrained_run, run_cli_output, write_dataset

SHAPE = (24, 28, 20)  # 13,440 voxels: about 538 KB by the memory estimate
REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
}


def failing(code: int, original, when=lambda *args: True):
    """``original``, except that it fails like a full / read-only disk when ``when(*args)`` holds
    (with no file name: the OS reports a full disk on write(), not on open())."""

    def write(*args, **kwargs):
        if when(*args):
            raise OSError(code, os.strerror(code))
        return original(*args, **kwargs)

    return write


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if atomic.is_temporary(p)] if folder.exists() else []


@pytest.fixture
def trained_run(tmp_path) -> Path:
    return make_untrained_run(tmp_path / "run")


# --- output disk ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", list(REASONS))
def test_split_on_a_full_or_read_only_disk(tmp_path, monkeypatch, capsys, code):
    data = write_dataset(tmp_path / "data", n=3, shape=(8, 8, 8))
    fail = failing(code, pathlib.Path.write_text, when=lambda path, *_: ".split.json." in path.name)
    monkeypatch.setattr(pathlib.Path, "write_text", fail)
    out = tmp_path / "out" / "split.json"
    status, output = run_cli_output(["split", data, "-o", out], capsys)
    assert status == 2, output
    assert f"error: file {out}: cannot be written: {REASONS[code]}" in output and "Traceback" not in output
    assert list((tmp_path / "out").iterdir()) == []  # neither split.json nor its temporary


def test_checkpoint_on_a_full_disk(tmp_path, monkeypatch, capsys):
    data = write_dataset(tmp_path / "data", n=3, shape=SHAPE)
    monkeypatch.setattr(torch, "save", failing(errno.ENOSPC, torch.save))
    run = tmp_path / "run"
    status, output = run_cli_output(
        ["train", data, "-o", run, "--method", "supervised", "--preset", "tiny", "--steps", "1"], capsys
    )
    assert status == 2, output
    assert f"file {run / 'teacher'}" in output and "checkpoint_" in output
    assert "cannot be written: no space left on device; free some space or choose another output folder" in output
    assert temporaries(run) == [] and not list(run.rglob("*.pt"))


def test_nifti_output_on_a_full_disk(tmp_path, trained_run, monkeypatch, capsys):
    data = write_dataset(tmp_path / "data", n=2, shape=SHAPE)
    monkeypatch.setattr(nib, "save", failing(errno.ENOSPC, nib.save))
    out = tmp_path / "pred"
    status, output = run_cli_output(["predict", trained_run, data, "-o", out], capsys)
    assert status == 2, output
    assert f"file {out / 'BraTS2021_00000.nii.gz'}: cannot be written: no space left on device" in output
    assert temporaries(out) == [] and not list(out.glob("*.nii.gz"))


def test_read_only_run_folder_outside_the_atomic_writer(tmp_path, monkeypatch, capsys):
    """An OSError raised elsewhere (here: creating the run folder) is mapped by the CLI itself."""
    data = write_dataset(tmp_path / "data", n=3, shape=(8, 8, 8))
    run = tmp_path / "run"
    original = pathlib.Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self == run:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    status, output = run_cli_output(["train", data, "-o", run, "--method", "supervised", "--preset", "tiny"], capsys)
    assert status == 2 and f"error: file {run}: cannot be used: read-only file system" in output, output


def test_log_append_on_a_full_disk_names_the_log(tmp_path, monkeypatch):
    log = tmp_path / "metrics.jsonl"
    monkeypatch.setattr(os, "fsync", failing(errno.ENOSPC, os.fsync))
    with pytest.raises(OutputError, match=f"file {log}: cannot be written: no space left on device"):
        atomic.append_line(log, "{}")


# --- memory ------------------------------------------------------------------------------------


def test_memory_estimate_and_limit_parsing(monkeypatch):
    assert resources.case_memory_bytes((240, 240, 155)) == 240 * 240 * 155 * resources.BYTES_PER_VOXEL
    assert [resources.parse_bytes(t) for t in ("1000", "512K", "2M", "1.5G", "3gb", "1 GiB")] == [
        1000,
        512 << 10,
        2 << 20,
        3 << 29,
        3 << 30,
        1 << 30,
    ]
    with pytest.raises(ValueError):
        resources.parse_bytes("lots")
    monkeypatch.delenv(resources.MEMORY_LIMIT_ENV, raising=False)
    available, source = resources.available_memory()
    total = (
        int(
            next(
                line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
            ).split()[1]
        )
        * 1024
    )
    assert 0 < available <= total, (available, source)
    monkeypatch.setenv(resources.MEMORY_LIMIT_ENV, "64M")
    assert resources.available_memory() == (min(available, 64 << 20), f"${resources.MEMORY_LIMIT_ENV}")
    monkeypatch.setenv(resources.MEMORY_LIMIT_ENV, "plenty")
    with pytest.raises(BadInputError, match="BRATS_SSL_MEMORY_LIMIT='plenty': expected a size"):
        resources.available_memory()


def test_load_case_refuses_a_case_larger_than_the_memory_budget(tmp_path, monkeypatch):
    case = open_dataset(write_dataset(tmp_path / "data", n=1, shape=SHAPE)).cases[0]
    monkeypatch.setenv(resources.MEMORY_LIMIT_ENV, "1M")
    assert load_case(case).image.shape == (4, *SHAPE)  # 538 KB fits in 1 MB
    monkeypatch.setenv(resources.MEMORY_LIMIT_ENV, "256K")
    with pytest.raises(BadInputError) as caught:
        load_case(case)
    assert str(caught.value).startswith(
        f"case {case.case_id}: file {case.images['t1'].path}: shape 24x28x20 needs "
        "about 538.1 KB of memory to load and segment, but only 256.0 KB is "
        "available ($BRATS_SSL_MEMORY_LIMIT)"
    )


@pytest.mark.parametrize("command", ["train", "predict"])
def test_case_too_large_for_memory_is_refused_before_any_output(tmp_path, trained_run, monkeypatch, capsys, command):
    data = write_dataset(tmp_path / "data", n=3, shape=SHAPE)
    monkeypatch.setenv(resources.MEMORY_LIMIT_ENV, "256K")
    out = tmp_path / "out"
    args = (
        ["train", data, "-o", out, "--method", "supervised", "--preset", "tiny", "--steps", "1"]
        if command == "train"
        else ["predict", trained_run, data, "-o", out]
    )
    status, output = run_cli_output(args, capsys)
    assert status == 2, output
    assert "case BraTS2021_00000: shape 24x28x20 needs about 538.1 KB" in output
    assert "only 256.0 KB is available ($BRATS_SSL_MEMORY_LIMIT)" in output
    assert not out.exists()
