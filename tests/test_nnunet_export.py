"""`brats-ssl pseudolabel --format nnunet`: an nnU-Net v2 raw dataset with the ground truth and the
confident (or accepted) pseudo-labels, read back by `brats-ssl check` and verified by nnU-Net's own
integrity check when nnunetv2 is installed (`make test` installs it)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brats_ssl.data.dataset import open_dataset
from brats_ssl.data.io import read_image, read_seg

from conftest import run_cli_output, write_dataset

TINY = [
    "--preset",
    "tiny",
    "--steps",
    "2",
    "--set",
    "ssl.stages=2",
    "--set",
    "train.val_every=2",
    "--set",
    "inference.mc_samples=2",
]
NNUNET_INSTALLED = importlib.util.find_spec("nnunetv2") is not None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("nnunet")
    data = write_dataset(root / "data", "brats2021", n=3, unlabeled=4, shape=(20, 22, 16))
    ids = sorted(p.name for p in data.iterdir() if p.is_dir())
    (root / "split.json").write_text(json.dumps({"labeled": ids[:2], "val": ids[2:3], "unlabeled": ids[3:]}))
    from brats_ssl.cli import main

    with pytest.raises(SystemExit) as stop:  # a module fixture: no capsys; the output goes to the test log
        main(
            [
                str(a)
                for a in ["train", data, "-o", root / "run", "--split", root / "split.json", "--method", "ours", *TINY]
            ]
        )
    assert stop.value.code == 0
    return root, data, root / "run"


def ranking(run: Path) -> list[dict]:
    import csv

    latest = sorted((run / "pseudo").glob("round_*"), key=lambda p: int(p.name.split("_")[1]))[-1]
    with (latest / "ranking.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_export_layout_confidence_threshold_and_read_back(tiny_run, tmp_path, capsys):
    root, data, run = tiny_run
    rows = ranking(run)
    scores = sorted(float(r["score"]) for r in rows)
    threshold = (scores[1] + scores[2]) / 2  # the two most confident of four pass
    assert scores[1] < scores[2]
    out = tmp_path / "out"
    code, output = run_cli_output(
        [
            "pseudolabel",
            run,
            data,
            "-o",
            out,
            "--format",
            "nnunet",
            "--dataset-id",
            "7",
            "--name",
            "Tiny",
            "--min-confidence",
            threshold,
        ],
        capsys,
    )
    assert code == 0, output
    target = out / "Dataset007_Tiny"
    assert "3 case(s) with ground truth, 2 pseudo-labeled, 2 left out" in output

    meta = json.loads((target / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}
    assert meta["labels"] == {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]}
    assert meta["regions_class_order"] == [1, 2, 3] and meta["file_ending"] == ".nii.gz"
    sidecar = json.loads((target / "pseudolabels.json").read_text())
    confident = sorted(r["case"] for r in rows if float(r["score"]) >= threshold)
    assert sorted(e["case"] for e in sidecar["pseudo_labeled"]) == confident
    assert all(e["confidence"] >= round(threshold, 4) for e in sidecar["pseudo_labeled"])
    assert all(e["confidence"] < threshold and "confidence <" in e["reason"] for e in sidecar["left_out"])
    split = json.loads((run / "split.json").read_text())
    assert sidecar["ground_truth"] == [{"case": c, "split": "labeled"} for c in split["labeled"]] + [
        {"case": c, "split": "val"} for c in split["val"]
    ]
    cases = split["labeled"] + split["val"] + confident
    assert meta["numTraining"] == len(cases) == 5
    assert sorted(p.name for p in (target / "labelsTr").iterdir()) == sorted(f"{c}.nii.gz" for c in cases)
    assert sorted(p.name for p in (target / "imagesTr").iterdir()) == sorted(
        f"{c}_{k:04d}.nii.gz" for c in cases for k in range(4)
    )
    for k, modality in enumerate(("t1", "t1ce", "t2", "flair")):  # channel k is that modality's file, unchanged
        assert (target / "imagesTr" / f"{cases[0]}_{k:04d}.nii.gz").read_bytes() == (
            data / cases[0] / f"{cases[0]}_{modality}.nii.gz"
        ).read_bytes()
    labels = np.asarray(nib.load(str(target / "labelsTr" / f"{cases[0]}.nii.gz")).dataobj)
    brats = np.asarray(nib.load(str(data / cases[0] / f"{cases[0]}_seg.nii.gz")).dataobj)
    assert np.array_equal(labels, np.array([0, 2, 1, 0, 3], np.uint8)[brats])  # nnU-Net's 1 ED, 2 NCR, 3 ET

    # Read back by the data layer as nnU-Net raw: the same cases and classes as the source.
    exported, source = open_dataset(target), open_dataset(data)
    assert exported.convention.name == "nnunet" and sorted(c.case_id for c in exported.cases) == sorted(cases)
    by_id = {c.case_id: c for c in source.cases}
    for case in exported.cases:
        assert np.array_equal(read_image(case.images["flair"])[0], read_image(by_id[case.case_id].images["flair"])[0])
        if by_id[case.case_id].seg is not None:
            assert np.array_equal(read_seg(case), read_seg(by_id[case.case_id]))
    pseudo = next(c for c in exported.cases if c.case_id == confident[0])
    nifti_out = tmp_path / "nifti"
    assert run_cli_output(["pseudolabel", run, data, "-o", nifti_out], capsys)[0] == 0
    reference = np.asarray(nib.load(str(nifti_out / confident[0] / "pseudo_label.nii.gz")).dataobj)
    assert np.array_equal(read_seg(pseudo), np.array([0, 1, 2, 0, 3], np.uint8)[reference])  # same pseudo-label
    code, output = run_cli_output(["check", target], capsys)
    assert code == 0 and "convention: nnunet" in output, output
    assert "5 cases, 5 usable, 0 with problems; 5 labeled, 0 unlabeled" in output, output


def test_review_decisions_come_before_the_threshold(tiny_run, tmp_path, capsys):
    root, data, run = tiny_run
    rows = ranking(run)
    top, bottom = rows[0]["case"], rows[-1]["case"]
    review = {
        top: {"decision": "reject", "note": "", "time": "x"},
        bottom: {"decision": "accept", "note": "", "time": "x"},
    }
    (run / "review.json").write_text(json.dumps(review))
    try:
        code, output = run_cli_output(
            [
                "pseudolabel",
                run,
                data,
                "-o",
                tmp_path,
                "--format",
                "nnunet",
                "--dataset-id",
                "8",
                "--min-confidence",
                "0.999",
                "--no-val",
            ],
            capsys,
        )
    finally:
        (run / "review.json").unlink()
    assert code == 0, output
    sidecar = json.loads((tmp_path / "Dataset008_BraTSSSL" / "pseudolabels.json").read_text())
    assert [(e["case"], e["review"]) for e in sidecar["pseudo_labeled"]] == [(bottom, "accept")]
    assert {e["case"]: e["reason"] for e in sidecar["left_out"]}[top] == "rejected in review"
    assert [e["split"] for e in sidecar["ground_truth"]] == ["labeled", "labeled"]  # --no-val


def test_bad_export_requests_exit_2(tiny_run, tmp_path, capsys):
    root, data, run = tiny_run
    base = ["pseudolabel", run, data, "-o", tmp_path / "out"]
    for extra, message in (
        (["--format", "nnunet"], "needs --dataset-id"),
        (["--format", "nnunet", "--dataset-id", "1000"], "1 to 999"),
        (["--format", "nnunet", "--dataset-id", "3", "--name", "a/b"], "--name 'a/b'"),
        (["--format", "nnunet", "--dataset-id", "3", "--min-confidence", "2"], "between 0 and 1"),
        (["--format", "nifty"], "expected nifti or nnunet"),
    ):
        code, output = run_cli_output(base + extra, capsys)
        assert code == 2 and message in output, (extra, output)
    assert not (tmp_path / "out").exists()


def test_channel_of_a_4d_msd_file_is_written_as_its_own_volume(tmp_path):
    from brats_ssl.data.io import write_channel

    case = open_dataset(write_dataset(tmp_path / "msd", "msd", n=1, shape=(10, 12, 8))).cases[0]
    out = write_channel(case.images["t1ce"], tmp_path / "x_0001.nii.gz", case.case_id)
    image = nib.load(str(out))
    assert image.shape == (10, 12, 8) and np.allclose(image.affine, nib.load(str(case.images["t1ce"].path)).affine)
    assert np.array_equal(np.asarray(image.dataobj), read_image(case.images["t1ce"])[0])


def _verify(folder: Path) -> subprocess.CompletedProcess:
    """nnU-Net's own dataset check (what `nnUNetv2_extract_fingerprint --verify_dataset_integrity`
    runs first), without the fingerprint: that samples 10^8 foreground voxels and took 2.5 s a tiny
    case, 50 s a call here."""
    check = (
        "import sys; from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity; "
        "verify_dataset_integrity(sys.argv[1], 1)"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "nnUNet_raw": str(folder.parent)}
    return subprocess.run(
        [sys.executable, "-c", check, str(folder)], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.skipif(
    not NNUNET_INSTALLED, reason="nnunetv2 is not installed (pip install -e .[nnunet], as `make test` does)"
)
def test_nnunet_verifies_the_export(tiny_run, tmp_path, capsys):
    root, data, run = tiny_run
    raw = tmp_path / "raw"
    code, output = run_cli_output(
        ["pseudolabel", run, data, "-o", raw, "--format", "nnunet", "--dataset-id", "9"], capsys
    )
    assert code == 0, output
    folder = raw / "Dataset009_BraTSSSL"
    # 3 with ground truth + 4 pseudo-labeled
    assert json.loads((folder / "dataset.json").read_text())["numTraining"] == 7
    result = _verify(folder)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "verify_dataset_integrity Done" in result.stdout

    # The check is real: a label value nnU-Net was not told about fails it.
    label = next((folder / "labelsTr").iterdir())
    image = nib.load(str(label))
    broken = np.asarray(image.dataobj).copy()
    broken[0, 0, 0] = 4
    nib.save(nib.Nifti1Image(broken, image.affine, image.header), str(label))
    failed = _verify(folder)
    assert failed.returncode != 0 and "unexpected labels" in failed.stderr, failed.stderr[-2000:]
