"""Files and folders written through brats_ssl.atomic honour the umask like any other tool:
0644 / 0755 under umask 022, 0600 / 0700 under 077 (mkstemp / mkdtemp alone would give 0600 / 0700
whatever the umask)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from brats_ssl import atomic


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_honour_the_umask(tmp_path, umask):
    import torch

    from brats_ssl.engine.checkpoint import save_checkpoint

    files = [
        atomic.write_json(tmp_path / "run" / "summary.json", {"a": 1}),
        atomic.write_text(tmp_path / "run" / "report.html", "<html></html>"),
        save_checkpoint(tmp_path / "run" / "teacher" / "checkpoint_last.pt", {"model": {"w": torch.ones(2)}}),
        atomic.write_with(tmp_path / "run" / "pred.npy", lambda tmp: np.save(tmp, np.ones(3)), suffix=".npy"),
    ]
    atomic.append_line(tmp_path / "run" / "teacher" / "metrics.jsonl", json.dumps({"step": 1}))
    files.append(tmp_path / "run" / "teacher" / "metrics.jsonl")
    with atomic.atomic_folder(tmp_path / "run" / "pseudo" / "case_1") as tmp:
        np.save(tmp / "label.npy", np.zeros(2, np.uint8))
    files.append(tmp_path / "run" / "pseudo" / "case_1" / "label.npy")
    folders = [tmp_path / "run", tmp_path / "run" / "teacher", tmp_path / "run" / "pseudo" / "case_1"]

    expected_file, expected_folder = 0o666 & ~umask, 0o777 & ~umask
    assert {str(f): oct(mode(f)) for f in files} == {str(f): oct(expected_file) for f in files}
    assert {str(f): oct(mode(f)) for f in folders} == {str(f): oct(expected_folder) for f in folders}
    assert atomic.current_umask() == umask


def test_nifti_output_is_readable_by_the_group_under_umask_022(tmp_path, umask):
    from brats_ssl.data.dataset import open_dataset
    from brats_ssl.data.io import write_label_map

    from conftest import write_dataset

    case = open_dataset(write_dataset(tmp_path / "data", n=1, shape=(8, 9, 7))).cases[0]
    out = write_label_map(case, np.zeros((8, 9, 7), np.uint8), tmp_path / "pred" / "case.nii.gz")
    assert mode(out) == 0o666 & ~umask
    assert mode(out) == (0o644 if umask == 0o022 else 0o600)


def test_umask_is_read_in_a_fresh_process_without_changing_it(tmp_path):
    """A process started under umask 027 writes 0640 files (the umask is read, not assumed)."""
    script = (
        "import os, stat; from brats_ssl import atomic; "
        f"p = atomic.write_text({str(tmp_path / 'x.txt')!r}, 'x'); "
        "print(oct(stat.S_IMODE(p.stat().st_mode)), oct(os.umask(0)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, preexec_fn=lambda: os.umask(0o027)
    ).stdout.split()
    assert out == ["0o640", "0o27"]
