"""A corpus of malformed inputs driven through the command line.

Each kind gets exit code 2, one message naming the item (case, file or setting) and the problem,
no traceback unless ``--debug``, and no partial output: the output folder is not created. Kinds a
user may legitimately have (extreme anisotropy, a volume smaller than the patch, float label
files) are handled, and the last tests show they train, predict and evaluate.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pytest

from brats_ssl import config as config_lib
from brats_ssl.cli import main
from brats_ssl.engine.checkpoint import save_checkpoint
from brats_ssl.run.model import build_model

from conftest import AFFINE, make_untrained_run, patch_header, synthetic_case, write_dataset
from conftest import save_nifti as save

SHAPE = (16, 18, 12)
CASE = "BraTS2021_00001"  # the case each kind damages (the second of three)


@dataclass
class Scenario:
    args: list
    words: tuple[str, ...]  # all must appear in the output; the first names the item
    output: Path | None  # must not exist afterwards (or be an empty folder)


# --- building blocks -------------------------------------------------------------------------


def dataset(tmp: Path, **kwargs) -> Path:
    return write_dataset(tmp / "data", "brats2021", n=kwargs.pop("n", 3), shape=kwargs.pop("shape", SHAPE), **kwargs)


def case_file(data: Path, suffix: str, case: str = CASE) -> Path:
    return data / case / f"{case}_{suffix}.nii.gz"


def labels_of(case_seed: int = 1, shape=SHAPE) -> np.ndarray:
    return np.array([0, 1, 2, 4], np.uint8)[synthetic_case(shape, case_seed)[1]]


def train(data: Path, tmp: Path, *extra, words: tuple[str, ...]) -> Scenario:
    out = tmp / "run"
    args = ["train", data, "-o", out, "--method", "supervised", "--preset", "tiny", "--steps", "1", *extra]
    return Scenario(args, words, out)


def check(data: Path, *, words: tuple[str, ...]) -> Scenario:
    return Scenario(["check", data], words, None)


def predict(run: Path, data: Path, tmp: Path, *, words: tuple[str, ...]) -> Scenario:
    return Scenario(["predict", run, data, "-o", tmp / "pred"], words, tmp / "pred")


def evaluate(pred: Path, data: Path, tmp: Path, *, words: tuple[str, ...]) -> Scenario:
    return Scenario(["evaluate", pred, data, "-o", tmp / "eval" / "summary.json"], words, tmp / "eval")


def split(data: Path, tmp: Path, *extra, words: tuple[str, ...]) -> Scenario:
    return Scenario(["split", data, "-o", tmp / "out" / "split.json", *extra], words, tmp / "out")


def predictions(data: Path, tmp: Path) -> Path:
    """A prediction folder holding each labeled case's ground truth: a perfect prediction."""
    pred = tmp / "pred_in"
    pred.mkdir()
    for seg in data.glob("*/*_seg.nii.gz"):
        shutil.copy(seg, pred / f"{seg.parent.name}.nii.gz")
    return pred


def run_copy(run: Path, tmp: Path) -> Path:
    copy = tmp / "trained"
    shutil.copytree(run, copy)
    return copy


# --- the corpus --------------------------------------------------------------------------------

KINDS: dict[str, Callable[[Path, Path], Scenario]] = {}


def kind(name: str):
    def register(build):
        KINDS[name] = build
        return build

    return register


# Files: missing, unreadable, corrupt, truncated, not a file --------------------------------------


@kind("missing modality")
def _(tmp, run):
    data = dataset(tmp)
    case_file(data, "t2").unlink()
    return train(data, tmp, words=(str(data / CASE), "missing modality t2"))


@kind("corrupt file (random bytes)")
def _(tmp, run):
    data = dataset(tmp)
    path = case_file(data, "t1")
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    return check(data, words=(str(path), "not a gzip file"))


@kind("truncated file")
def _(tmp, run):
    data = dataset(tmp)
    path = case_file(data, "t1ce")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return train(data, tmp, words=(str(path), "truncated"))


@kind("truncated gzip (only the trailer missing)")
def _(tmp, run):
    data = dataset(tmp)
    path = case_file(data, "flair")
    path.write_bytes(path.read_bytes()[:-4])
    return train(data, tmp, words=(str(path), "truncated gzip stream"))


@kind("corrupt gzip data")
def _(tmp, run):
    data = dataset(tmp)
    path = case_file(data, "t1")
    raw = bytearray(path.read_bytes())
    raw[40:60] = b"\xff" * 20
    path.write_bytes(bytes(raw))
    return train(data, tmp, words=(str(path), "corrupt"))


@kind("empty file")
def _(tmp, run):
    data = dataset(tmp)
    path = case_file(data, "seg")
    path.write_bytes(b"")
    return check(data, words=(str(path), "empty file"))


@kind("unreadable: a folder where a file is expected")
def _(tmp, run):
    data = dataset(tmp)
    path = case_file(data, "t1")
    path.unlink()
    path.mkdir()
    return train(data, tmp, words=(str(path), "is a folder, not a file"))


@kind("unreadable: a FIFO where a file is expected (reading it would block forever)")
def _(tmp, run):
    data = dataset(tmp)
    path = case_file(data, "t2")
    path.unlink()
    os.mkfifo(path)
    return train(data, tmp, words=(str(path), "FIFO", "not a regular file"))


@kind("unreadable: no read permission")
def _(tmp, run):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode; covered by the folder and FIFO kinds")
    data = dataset(tmp)
    path = case_file(data, "t1")
    path.chmod(0)
    return train(data, tmp, words=(str(path), "permission denied"))


@kind("symbolic link loop")
def _(tmp, run):
    data = dataset(tmp)
    path = case_file(data, "t1")
    path.unlink()
    path.symlink_to(path)
    return train(data, tmp, words=(str(path), "symbolic link loop"))


@kind("broken symbolic link")
def _(tmp, run):
    data = dataset(tmp)
    path = case_file(data, "t2")
    path.unlink()
    path.symlink_to(tmp / "nowhere.nii.gz")
    return check(data, words=(str(path), "broken symbolic link"))


@kind("folder symlink loop (data/loop -> data)")
def _(tmp, run):
    data = dataset(tmp)
    (data / "loop").symlink_to(data)  # every case is found twice: once through the loop
    return train(
        data, tmp, words=(f"({data / 'BraTS2021_00000'} and {data / 'loop' / 'BraTS2021_00000'})", "duplicate case id")
    )


@kind("non-UTF-8 file names")
def _(tmp, run):
    data = dataset(tmp)
    folder = os.fsencode(data / CASE)
    bad = os.fsencode(data) + b"/BraTS2021_\xe9"  # Latin-1 e-acute
    os.rename(folder, bad)
    return train(data, tmp, words=("BraTS2021_\\xe9", "not valid UTF-8"))


# Dimensions and geometry ---------------------------------------------------------------------------


@kind("image not 3-D (2-D)")
def _(tmp, run):
    data = dataset(tmp)
    path = save(np.ones(SHAPE[:2], np.int16), case_file(data, "t1"))
    return train(data, tmp, words=(str(path), "expected a 3-D image", "2-D"))


@kind("4-D image where 3-D is expected")
def _(tmp, run):
    data = dataset(tmp)
    image, _ = synthetic_case(SHAPE, 1)
    path = save(np.stack([image[2], image[2]], -1), case_file(data, "t2"))
    return train(data, tmp, words=(str(path), "expected a 3-D image", "4-D shape (16, 18, 12, 2)"))


@kind("shapes disagree between modalities")
def _(tmp, run):
    data = dataset(tmp)
    path = save(np.ones((16, 18, 11), np.int16), case_file(data, "t2"))
    return train(data, tmp, words=(str(path), "shape 16x18x11 differs from t1 16x18x12"))


@kind("affines disagree between modalities")
def _(tmp, run):
    data = dataset(tmp)
    shifted = AFFINE.copy()
    shifted[0, 3] += 2.0
    path = save(synthetic_case(SHAPE, 1)[0][2], case_file(data, "t2"), shifted)
    return train(data, tmp, words=(str(path), "affine differs from t1", "not co-registered"))


@kind("seg shape disagrees with the images")
def _(tmp, run):
    data = dataset(tmp)
    path = save(np.zeros((16, 18, 13), np.uint8), case_file(data, "seg"))
    return train(data, tmp, words=(str(path), "seg shape 16x18x13 differs from t1"))


@kind("seg affine disagrees with the images")
def _(tmp, run):
    data = dataset(tmp)
    shifted = AFFINE.copy()
    shifted[2, 3] = 5.0
    path = save(labels_of(), case_file(data, "seg"), shifted)
    return train(data, tmp, words=(str(path), "seg affine differs from t1"))


@kind("zero voxel spacing")
def _(tmp, run):
    data = dataset(tmp)
    path = patch_header(case_file(data, "t1"), pixdim=[1, 1, 0, 1, 1, 1, 1, 1])
    return train(data, tmp, words=(str(path), "voxel spacing (1.0, 0.0, 1.0) must be positive"))


@kind("negative voxel spacing")
def _(tmp, run):
    data = dataset(tmp)
    path = patch_header(case_file(data, "flair"), pixdim=[1, 1, 1, -2, 1, 1, 1, 1])
    return train(data, tmp, words=(str(path), "voxel spacing (1.0, 1.0, -2.0) must be positive"))


@kind("non-orthogonal (sheared) affine")
def _(tmp, run):
    data = dataset(tmp)
    sheared = AFFINE.copy()
    sheared[0, 1] = 0.2  # the same shear in every file, so nothing else disagrees
    image, _ = synthetic_case(SHAPE, 1)
    for c, modality in enumerate(("t1", "t1ce", "t2", "flair")):
        save(image[c], case_file(data, modality), sheared)
    save(labels_of(), case_file(data, "seg"), sheared)
    return train(data, tmp, words=(str(case_file(data, "t1")), "affine is not orthogonal", "11.31 degrees"))


@kind("non-invertible affine")
def _(tmp, run):
    data = dataset(tmp)
    path = patch_header(case_file(data, "seg"), srow_z=[0, 0, 0, 0], sform_code=1, qform_code=0)
    return check(data, words=(str(path), "affine is not invertible"))


# Voxel values ---------------------------------------------------------------------------------------


@kind("NaN voxels")
def _(tmp, run):
    data = dataset(tmp)
    values = synthetic_case(SHAPE, 1)[0][3].astype(np.float32)
    values[3, 4, 5] = np.nan
    path = save(values, case_file(data, "flair"))
    return train(data, tmp, words=(str(path), "flair: 1 NaN/Inf voxels"))


@kind("Inf voxels")
def _(tmp, run):
    data = dataset(tmp)
    values = synthetic_case(SHAPE, 1)[0][0].astype(np.float32)
    values[1, 2, 3] = np.inf
    values[2, 2, 3] = -np.inf
    path = save(values, case_file(data, "t1"))
    return check(data, words=(str(path), "t1: 2 NaN/Inf voxels"))


@kind("integer overflow: scaled int16 beyond float32")
def _(tmp, run):
    data = dataset(tmp)
    image = nib.Nifti1Image(synthetic_case(SHAPE, 1)[0][1], AFFINE)
    image.header.set_slope_inter(1e36, 0)  # 30000 x 1e36 is finite in float64, inf in float32
    nib.save(image, str(case_file(data, "t1ce")))
    return train(data, tmp, words=(str(case_file(data, "t1ce")), "too large for float32"))


@kind("all-zero modality")
def _(tmp, run):
    data = dataset(tmp)
    path = save(np.zeros(SHAPE, np.int16), case_file(data, "t1ce"))
    return train(data, tmp, words=(str(path), "t1ce is all zero"))


@kind("seg labels outside the convention")
def _(tmp, run):
    data = dataset(tmp)
    path = save(synthetic_case(SHAPE, 1)[1], case_file(data, "seg"))  # internal 0-3: 3 is no BraTS 2021 label
    return train(data, tmp, words=(str(path), "labels [3]", "brats2021 convention", "[0, 1, 2, 4]"))


@kind("seg label that a uint8 cast would wrap to a valid one (260 -> 4)")
def _(tmp, run):
    data = dataset(tmp)
    labels = labels_of().astype(np.int16)
    labels[labels == 4] = 260
    path = save(labels, case_file(data, "seg"))
    return train(data, tmp, words=(str(path), "labels [260]"))


@kind("negative seg label")
def _(tmp, run):
    data = dataset(tmp)
    labels = labels_of().astype(np.int16)
    labels[0, 0, 0] = -1
    path = save(labels, case_file(data, "seg"))
    return check(data, words=(str(path), "labels [-1]"))


@kind("non-integer seg values (float labels 1.5)")
def _(tmp, run):
    data = dataset(tmp)
    values = labels_of().astype(np.float32)
    values[values == 2] = 1.5
    path = save(values, case_file(data, "seg"))
    return train(data, tmp, words=(str(path), "non-integer"))


# Dataset level ---------------------------------------------------------------------------------------


@kind("duplicate case ids (HGG/ and LGG/)")
def _(tmp, run):
    data = tmp / "data"
    write_dataset(data / "HGG", n=2, shape=SHAPE)
    write_dataset(data / "LGG", n=1, shape=SHAPE, seed=5)  # BraTS2021_00000 again
    return train(
        data,
        tmp,
        words=(
            "case BraTS2021_00000: duplicate case id",
            f"({data / 'HGG' / 'BraTS2021_00000'} and {data / 'LGG' / 'BraTS2021_00000'})",
        ),
    )


@kind("no cases at all")
def _(tmp, run):
    (tmp / "data").mkdir()
    (tmp / "data" / "notes.txt").write_text("nothing here")
    return train(tmp / "data", tmp, words=(str(tmp / "data"), "no cases found"))


@kind("dataset folder does not exist")
def _(tmp, run):
    return check(tmp / "nowhere", words=(str(tmp / "nowhere"), "does not exist"))


@kind("split with no labeled case possible")
def _(tmp, run):
    data = dataset(tmp)
    for seg in data.glob("*/*_seg.nii.gz"):
        seg.unlink()
    return split(data, tmp, words=(str(data), "no case has a seg file"))


@kind("split fraction out of range")
def _(tmp, run):
    return split(dataset(tmp), tmp, "--labeled", "0", words=("--labeled 0.0", "must be in (0, 1]"))


# split.json and config.yaml ------------------------------------------------------------------------


@kind("split.json naming missing cases")
def _(tmp, run):
    data = dataset(tmp)
    path = tmp / "split.json"
    path.write_text(json.dumps({"labeled": ["BraTS2021_00000", "BraTS2021_00099"], "unlabeled": [], "val": []}))
    return train(data, tmp, "--split", path, words=(str(path), "BraTS2021_00099", "not found"))


@kind("split.json with a case in two lists")
def _(tmp, run):
    data = dataset(tmp)
    path = tmp / "split.json"
    path.write_text(json.dumps({"labeled": [CASE], "unlabeled": [], "val": [CASE]}))
    return train(data, tmp, "--split", path, words=(str(path), f"case {CASE} is in both labeled and val"))


@kind("split.json that is not JSON")
def _(tmp, run):
    data = dataset(tmp)
    path = tmp / "split.json"
    path.write_text("labeled: [a]")
    return train(data, tmp, "--split", path, words=(str(path), "not a readable split JSON"))


@kind("split.json that is a FIFO (reading it would block forever)")
def _(tmp, run):
    data = dataset(tmp)
    path = tmp / "split.json"
    os.mkfifo(path)
    return train(data, tmp, "--split", path, words=(str(path), "split file: is a FIFO"))


@kind("config.yaml that is a folder")
def _(tmp, run):
    path = tmp / "config.yaml"
    path.mkdir()
    return train(dataset(tmp), tmp, "--config", path, words=(str(path), "is a folder, not a file"))


@kind("config.yaml with an unknown field")
def _(tmp, run):
    path = tmp / "config.yaml"
    path.write_text("train:\n  lrr: 0.001\n")
    return train(dataset(tmp), tmp, "--config", path, words=(str(path), "unknown setting 'lrr'"))


@kind("config.yaml with an invalid value")
def _(tmp, run):
    path = tmp / "config.yaml"
    path.write_text("train:\n  lr: -0.001\n")
    return train(dataset(tmp), tmp, "--config", path, words=("train.lr", "must be positive"))


@kind("config.yaml with a value of the wrong type")
def _(tmp, run):
    path = tmp / "config.yaml"
    path.write_text("train:\n  steps: 2.5\n")
    return train(dataset(tmp), tmp, "--config", path, words=(str(path), "train.steps", "whole number"))


@kind("config.yaml that is not a mapping")
def _(tmp, run):
    path = tmp / "config.yaml"
    path.write_text("- train\n- lr\n")
    return train(dataset(tmp), tmp, "--config", path, words=(str(path), "expected a mapping"))


@kind("config.yaml with a !!python/object tag")
def _(tmp, run):
    path = tmp / "config.yaml"
    path.write_text(f"train: !!python/object/apply:os.system ['touch {tmp / 'pwned'}']\n")
    return train(dataset(tmp), tmp, "--config", path, words=(str(path), "refused", "!!python/object/apply:os.system"))


@kind("--set of an unknown setting")
def _(tmp, run):
    return train(dataset(tmp), tmp, "--set", "model.width=3", words=("--set model.width=3", "unknown setting 'width'"))


@kind("--set model.spatial_dims=2 (the pipeline is 3-D only)")
def _(tmp, run):
    return train(
        dataset(tmp),
        tmp,
        "--set",
        "model.spatial_dims=2",
        words=("model.spatial_dims", "only 3 is supported", "no 2-D slice mode"),
    )


# Run folders and checkpoints (predict) ---------------------------------------------------------------


@kind("checkpoint from another model (weights do not fit)")
def _(tmp, run):
    run = run_copy(run, tmp)
    other = config_lib.preset("tiny")
    other.model.features = [4, 8, 16]
    path = run / "teacher" / "checkpoint_last.pt"
    save_checkpoint(path, {"model": build_model(other).state_dict()})
    return predict(run, dataset(tmp), tmp, words=(str(path), "weights do not fit this model", "Missing key(s)"))


@kind("checkpoint from another configuration (fingerprint)")
def _(tmp, run):
    run = run_copy(run, tmp)
    config = config_lib.load(run / "config.yaml")
    config.train.loss = "region"  # other output form, same layers
    config_lib.save(config, run / "config.yaml")
    path = run / "teacher" / "checkpoint_last.pt"
    return predict(run, dataset(tmp), tmp, words=(str(path), "another model or configuration"))


@kind("truncated checkpoint")
def _(tmp, run):
    run = run_copy(run, tmp)
    path = run / "teacher" / "checkpoint_last.pt"
    path.write_bytes(path.read_bytes()[:1000])
    return predict(run, dataset(tmp), tmp, words=(str(path), "not a readable checkpoint"))


@kind("empty checkpoint")
def _(tmp, run):
    run = run_copy(run, tmp)
    path = run / "teacher" / "checkpoint_last.pt"
    path.write_bytes(b"")
    return predict(run, dataset(tmp), tmp, words=(str(path), "not a readable checkpoint"))


@kind("run folder with an invalid config.yaml")
def _(tmp, run):
    run = run_copy(run, tmp)
    (run / "config.yaml").write_text((run / "config.yaml").read_text() + "colour: blue\n")
    return predict(run, dataset(tmp), tmp, words=(str(run / "config.yaml"), "unknown setting 'colour'"))


@kind("not a run folder")
def _(tmp, run):
    (tmp / "empty").mkdir()
    return predict(tmp / "empty", dataset(tmp), tmp, words=(str(tmp / "empty"), "not a brats-ssl run folder"))


@kind("predict on a dataset with a truncated case")
def _(tmp, run):
    data = dataset(tmp)
    path = case_file(data, "t2")
    path.write_bytes(path.read_bytes()[:300])
    return predict(run, data, tmp, words=(str(path), "truncated"))


# Predictions (evaluate) -----------------------------------------------------------------------------


@kind("prediction missing for a case")
def _(tmp, run):
    data = dataset(tmp)
    pred = predictions(data, tmp)
    (pred / f"{CASE}.nii.gz").unlink()
    return evaluate(pred, data, tmp, words=(str(pred / f"{CASE}.nii.gz"), "prediction is missing"))


@kind("prediction of the wrong shape")
def _(tmp, run):
    data = dataset(tmp)
    pred = predictions(data, tmp)
    path = save(np.zeros((16, 18, 10), np.uint8), pred / f"{CASE}.nii.gz")
    return evaluate(pred, data, tmp, words=(str(path), "prediction shape (16, 18, 10) differs"))


@kind("prediction with labels outside the convention")
def _(tmp, run):
    data = dataset(tmp)
    pred = predictions(data, tmp)
    labels = labels_of()
    labels[labels == 4] = 7
    path = save(labels, pred / f"{CASE}.nii.gz")
    return evaluate(pred, data, tmp, words=(str(path), "labels [7]"))


@kind("prediction that is a FIFO")
def _(tmp, run):
    data = dataset(tmp)
    pred = predictions(data, tmp)
    path = pred / f"{CASE}.nii.gz"
    path.unlink()
    os.mkfifo(path)
    return evaluate(pred, data, tmp, words=(str(path), "FIFO"))


# --- the tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A run folder as `brats-ssl train` leaves it (untrained weights: predict only needs a model)."""
    return make_untrained_run(tmp_path_factory.mktemp("bad_inputs") / "run")


def run_cli(args: list, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return stop.value.code, captured.out + captured.err


def test_the_corpus_is_large():
    assert len(KINDS) >= 25


@pytest.mark.parametrize("name", list(KINDS))
def test_bad_input_exits_2_naming_the_item_and_writes_nothing(name, tmp_path, trained_run, capsys):
    scenario = KINDS[name](tmp_path, trained_run)
    code, output = run_cli(scenario.args, capsys)
    assert code == 2, output
    flat = " ".join(output.split())  # messages may wrap in the terminal
    for word in scenario.words:
        assert " ".join(word.split()) in flat, (word, output)
    assert "Traceback" not in output
    if scenario.args[0] == "check" and "problems:" in output:  # the table, then the problems listed
        assert "with problems" in output and "error:" not in output
    else:  # one message, and nothing before it (no library warnings)
        assert output.lstrip().startswith("error:") and output.count("error:") == 1, output
    if scenario.output is not None:
        assert not scenario.output.exists() or not any(scenario.output.iterdir()), list(scenario.output.rglob("*"))
    assert not (tmp_path / "pwned").exists()


def test_debug_shows_the_traceback(tmp_path, trained_run, capsys):
    scenario = KINDS["truncated file"](tmp_path, trained_run)
    code, output = run_cli(["--debug", *scenario.args], capsys)
    assert code == 2 and "Traceback" in output and "BadInputError" in output and "truncated" in output


def test_error_text_with_brackets_is_printed_literally(tmp_path, capsys):
    # a path like ".../[/tmp]" must not be read as console markup (it used to crash the handler)
    data = write_dataset(tmp_path / "[/tmp] data", n=1, shape=SHAPE)
    path = case_file(data, "t1", "BraTS2021_00000")
    path.write_bytes(b"")
    code, output = run_cli(
        ["train", data, "-o", tmp_path / "run", "--method", "supervised", "--preset", "tiny"], capsys
    )
    assert code == 2 and str(path) in " ".join(output.split()) and "Traceback" not in output


def test_handled_kinds_train_predict_and_evaluate(tmp_path, capsys):
    """Extreme anisotropy (1 x 1 x 8 mm, resampled), volumes smaller than the 32^3 patch (padded) and
    float label files holding whole numbers are accepted and give outputs in each input's geometry."""
    data = write_dataset(tmp_path / "data", n=4, shape=SHAPE, unlabeled=0)
    anisotropic = np.diag([1.0, 1.0, 8.0, 1.0])
    image, labels = synthetic_case((16, 18, 3), 1)
    for c, modality in enumerate(("t1", "t1ce", "t2", "flair")):
        save(image[c], case_file(data, modality), anisotropic)
    save(np.array([0, 1, 2, 4], np.uint8)[labels], case_file(data, "seg"), anisotropic)
    small = "BraTS2021_00002"
    image, labels = synthetic_case((10, 12, 6), 2)
    for c, modality in enumerate(("t1", "t1ce", "t2", "flair")):
        save(image[c], case_file(data, modality, small))
    save(np.array([0, 1, 2, 4], np.float32)[labels], case_file(data, "seg", small))  # float labels

    code, output = run_cli(["check", data], capsys)
    assert code == 0 and "16x18x3" in output and "1x1x8" in output and "10x12x6" in output, output
    run = tmp_path / "run"
    split = {"labeled": [CASE, small, "BraTS2021_00000"], "unlabeled": [], "val": ["BraTS2021_00003"]}
    (tmp_path / "split.json").write_text(json.dumps(split))
    code, output = run_cli(
        [
            "train",
            data,
            "-o",
            run,
            "--split",
            tmp_path / "split.json",
            "--method",
            "supervised",
            "--preset",
            "tiny",
            "--steps",
            "2",
            "--set",
            "data.target_spacing=[1,1,2]",
        ],
        capsys,
    )
    assert code == 0, output
    code, output = run_cli(["predict", run, data, "-o", tmp_path / "pred"], capsys)
    assert code == 0, output
    for case in (CASE, small):
        reference = nib.load(str(case_file(data, "seg", case)))
        prediction = nib.load(str(tmp_path / "pred" / f"{case}.nii.gz"))
        assert prediction.shape == reference.shape and np.array_equal(prediction.affine, reference.affine)
        assert set(np.unique(np.asarray(prediction.dataobj)).tolist()) <= {0, 1, 2, 4}
    code, output = run_cli(["evaluate", tmp_path / "pred", data, "-o", tmp_path / "eval.json"], capsys)
    assert code == 0, output
    summary = json.loads((tmp_path / "eval.json").read_text())
    assert {c["case"] for c in summary["per_case"]} == {f"BraTS2021_{i:05d}" for i in range(4)}
