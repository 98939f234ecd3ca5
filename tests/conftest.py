"""Shared fixtures: tiny datasets written in every supported convention, the real dev folder."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

REAL_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "brats-dev"
AFFINE = np.array([[-1.0, 0, 0, 0], [0, -1.0, 0, 239.0], [0, 0, 1.0, 0], [0, 0, 0, 1]])
# Command-line options of a run that finishes in seconds: tiny preset, 3 steps, 2 stages, T = 2.
TINY_RUN = [
    *("--preset", "tiny", "--steps", "3"),
    *("--set", "ssl.stages=2", "--set", "train.val_every=3", "--set", "inference.mc_samples=2"),
]


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Keep the preprocessing cache out of the user's home during tests."""
    import os

    os.environ["BRATS_SSL_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


def real_data_or_skip() -> Path:
    if not (REAL_DATA / "BraTS2021_00006").is_dir():
        pytest.skip("../shared/data/brats-dev is absent")
    return REAL_DATA.resolve()


def synthetic_case(shape=(24, 28, 20), seed=0):
    """A blob brain with a three-part tumour: (image (4, *shape) int16, labels internal uint8)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    brain = (grid**2).sum(0) < 0.8
    centre = rng.uniform(-0.25, 0.25, size=3)[:, None, None, None]
    r = np.sqrt(((grid - centre) ** 2).sum(0))
    labels = np.zeros(shape, np.uint8)
    labels[(r < 0.45) & brain] = 2
    labels[(r < 0.3) & brain] = 3
    labels[(r < 0.18) & brain] = 1
    image = np.zeros((4,) + tuple(shape), np.float32)
    for c in range(4):
        base = 100 + 30 * c
        image[c] = np.where(brain, base + 40 * (labels == (c % 3) + 1) + rng.normal(0, 5, shape), 0)
    return np.clip(image, 0, None).astype(np.int16), labels


def _save(array, path: Path, affine=AFFINE, dtype=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(array if dtype is None else array.astype(dtype), affine)
    nib.save(image, str(path))


def write_dataset(
    root: Path, convention: str = "brats2021", n: int = 3, shape=(24, 28, 20), unlabeled: int = 0, seed: int = 0
) -> Path:
    """Write ``n`` labeled (+ ``unlabeled``) tiny cases in a convention; returns the root."""
    root.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n + unlabeled):
        image, labels = synthetic_case(shape, seed + i)
        labeled = i < n
        if convention == "brats2021":
            case = f"BraTS2021_{i:05d}"
            for c, m in enumerate(("t1", "t1ce", "t2", "flair")):
                _save(image[c], root / case / f"{case}_{m}.nii.gz")
            if labeled:
                _save(np.array([0, 1, 2, 4], np.uint8)[labels], root / case / f"{case}_seg.nii.gz")
        elif convention == "brats2023":
            case = f"BraTS-GLI-{i:05d}-000"
            for c, m in enumerate(("t1n", "t1c", "t2w", "t2f")):
                _save(image[c], root / case / f"{case}-{m}.nii.gz")
            if labeled:
                _save(labels, root / case / f"{case}-seg.nii.gz")
        elif convention == "msd":
            case = f"BRATS_{i:03d}"
            # channels FLAIR, T1w, T1gd, T2w; labels 1 edema, 2 non-enhancing, 3 enhancing
            stacked = np.stack([image[3], image[0], image[1], image[2]], axis=-1)
            _save(stacked, root / "imagesTr" / f"{case}.nii.gz")
            if labeled:
                _save(np.array([0, 2, 1, 3], np.uint8)[labels], root / "labelsTr" / f"{case}.nii.gz")
        elif convention == "nnunet":
            case = f"BraTS2021_{i:05d}"
            # deliberately not the internal order: FLAIR, T1, T1ce, T2
            for k, c in enumerate((3, 0, 1, 2)):
                _save(image[c], root / "imagesTr" / f"{case}_{k:04d}.nii.gz")
            if labeled:
                _save(np.array([0, 2, 1, 3], np.uint8)[labels], root / "labelsTr" / f"{case}.nii.gz")
        else:
            raise ValueError(convention)
        ids.append(case)
    if convention == "msd":
        (root / "dataset.json").write_text(
            json.dumps(
                {
                    "name": "BRATS",
                    "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
                    "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
                }
            )
        )
    if convention == "nnunet":
        (root / "dataset.json").write_text(
            json.dumps(
                {
                    "channel_names": {"0": "FLAIR", "1": "T1", "2": "T1ce", "3": "T2"},
                    "labels": {"background": 0, "whole_tumor": [1, 2, 3], "tumor_core": [2, 3], "enhancing_tumor": 3},
                    "numTraining": n,
                    "file_ending": ".nii.gz",
                }
            )
        )
    return root


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return write_dataset(tmp_path / "data", "brats2021", n=3)


def tiny_sweep(root: Path, *, cases: int, seed: int, folds: int, **options) -> Path:
    """A cross-validated sweep that runs in seconds (supervised and ours-control unless ``methods``
    says otherwise, tiny preset, 2 steps, 1 stage), reported as `brats-ssl experiment` does;
    ``options`` go to run_experiment."""
    from brats_ssl.data.synthetic import write_cohort
    from brats_ssl.experiment import run_experiment
    from brats_ssl.report import write_report

    write_cohort(root / "data", cases=cases, shape=(24, 24, 16), seed=seed)
    run_experiment(
        root / "data",
        root / "exp",
        fractions=[0.5],
        methods=options.pop("methods", ["supervised", "ours-control"]),
        seeds=[0],
        val=0.2,
        folds=folds,
        selection=1,
        preset="tiny",
        steps=2,
        overrides=["ssl.stages=1"],
        **options,
    )
    write_report(root / "exp")
    return root / "exp"


def run_cli_output(args: list, capsys) -> tuple[int, str]:
    """Run the CLI in-process: (exit code, stdout + stderr with whitespace collapsed)."""
    from brats_ssl.cli import main

    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return stop.value.code, " ".join((captured.out + captured.err).split())


def make_untrained_run(run: Path) -> Path:
    """A run folder as `brats-ssl train` leaves it (untrained weights: predict only needs a model)."""
    from brats_ssl import atomic
    from brats_ssl import config as config_lib
    from brats_ssl.engine.checkpoint import save_checkpoint
    from brats_ssl.run.model import build_model, model_fingerprint

    config = config_lib.preset("tiny")
    config.method = "supervised"
    config_lib.save(config, run / "config.yaml")
    save_checkpoint(
        run / "teacher" / "checkpoint_last.pt",
        {"model": build_model(config).state_dict(), "fingerprint": model_fingerprint(config)},
    )
    atomic.write_json(run / "summary.json", {"model": "teacher"})
    return run


def save_nifti(array: np.ndarray, path: Path, affine: np.ndarray = AFFINE) -> Path:
    nib.save(nib.Nifti1Image(array, affine), str(path))
    return path


def patch_header(path: Path, **fields) -> Path:
    """Rewrite raw header fields of a .nii.gz (nibabel would 'fix' them when saving)."""
    data = bytearray(gzip.decompress(path.read_bytes()))
    struct = nib.Nifti1Header().structarr.dtype
    for name, value in fields.items():
        dtype, offset = struct.fields[name][:2]
        data[offset : offset + dtype.itemsize] = np.asarray(value, dtype=dtype.base).tobytes()
    path.write_bytes(gzip.compress(bytes(data)))
    return path


@pytest.fixture(scope="session")
def review_run(tmp_path_factory) -> Path:
    """A tiny trained ``--method ours`` run (3 unlabeled cases, 2 stages) shared by the review tests;
    a test that changes it works on a copy."""
    from review_helpers import train_tiny_ours

    root = tmp_path_factory.mktemp("review")
    data = write_dataset(root / "data", "brats2021", n=5, unlabeled=3)
    return train_tiny_ours(data, root / "run")
