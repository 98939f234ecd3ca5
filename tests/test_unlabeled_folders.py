"""Unlabeled scans from other folders (``--unlabeled``), in their own layouts, join the pool."""

import json
from pathlib import Path

import pytest

from brats_ssl.data.dataset import add_unlabeled, open_dataset
from brats_ssl.data.folds import fold_splits
from brats_ssl.data.split import make_split
from brats_ssl.errors import BadInputError

from conftest import real_data_or_skip, write_dataset

UNLABELED_2023 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "brats2023-unlabeled"


@pytest.fixture
def folders(tmp_path):
    main = write_dataset(tmp_path / "public", "brats2021", n=6, shape=(16, 16, 12))
    hospital = write_dataset(tmp_path / "hospital", "brats2023", n=2, unlabeled=1, shape=(16, 16, 12), seed=50)
    return main, hospital


def test_extra_folders_are_unlabeled_in_their_own_convention(folders):
    main, hospital = folders
    dataset = add_unlabeled(open_dataset(main), [hospital])
    extra = [c for c in dataset.cases if c.case_id.startswith("BraTS-GLI")]
    assert len(dataset) == 9 and len(extra) == 3
    assert all(c.seg is None and c.convention.name != dataset.convention.name for c in extra)  # seg never read
    assert all(c.site == "hospital" for c in extra) and dataset.unlabeled_roots == [hospital.resolve()]
    split = make_split(dataset, labeled=0.5, val=0.2, seed=0, selection=1)
    assert set(c.case_id for c in extra) <= set(split["unlabeled"])
    assert split["unlabeled_roots"] == [str(hospital.resolve())]
    for fold in range(2):
        cv = fold_splits(dataset, fold=fold, folds=2, fractions=[0.5], seed=0, selection=1)[0.5]
        assert not set(c.case_id for c in extra) & set(cv["val"] + cv["selection"] + cv["labeled"])
        assert cv["unlabeled_roots"] == [str(hospital.resolve())]


def test_clashing_ids_are_refused(folders, tmp_path):
    main, _ = folders
    clash = write_dataset(tmp_path / "clash", "brats2021", n=1, shape=(16, 16, 12))
    with pytest.raises(BadInputError, match="BraTS2021_00000: in both"):
        add_unlabeled(open_dataset(main), [clash])


def test_train_with_an_unlabeled_folder_and_resume(folders, tmp_path):
    from brats_ssl.cli import main as cli

    main, hospital = folders
    split = tmp_path / "split.json"
    split.write_text(json.dumps(make_split(open_dataset(main), labeled=0.5, val=0.2, seed=0)))
    run = tmp_path / "run"
    args = [
        "train",
        str(main),
        "-o",
        str(run),
        "--split",
        str(split),
        "--method",
        "self-training",
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--set",
        "ssl.stages=1",
        "--unlabeled",
        str(hospital),
    ]
    for _ in range(2):  # the second is a resume of the finished run
        with pytest.raises(SystemExit) as stop:
            cli(args)
        assert stop.value.code == 0
    saved = json.loads((run / "split.json").read_text())
    assert sum(c.startswith("BraTS-GLI") for c in saved["unlabeled"]) == 3
    assert saved["unlabeled_roots"] == [str(hospital.resolve())]
    assert sum(1 for _ in (run / "pseudo" / "round_0").glob("BraTS-GLI*")) == 3


@pytest.mark.realdata
def test_real_brats_2023_scans_join_the_real_dev_set():
    real_data = real_data_or_skip()
    if not (UNLABELED_2023 / "BraTS-GLI-00001-000").is_dir():
        pytest.skip("../shared/data/brats2023-unlabeled is absent")
    from brats_ssl.data.io import load_case

    dataset = add_unlabeled(open_dataset(real_data), [UNLABELED_2023])
    extra = [c for c in dataset.cases if c.case_id.startswith("BraTS-GLI")]
    assert len(dataset) == 24 and len(extra) == 3
    loaded = load_case(extra[0], with_seg=False)
    assert loaded.image.shape[0] == 4 and loaded.image.shape[1:] == (240, 240, 155)
    cv = fold_splits(dataset, fold=0, folds=5, fractions=[0.25], seed=0, selection=2)[0.25]
    assert {c.case_id for c in extra} <= set(cv["unlabeled"]) and len(cv["unlabeled"]) == 13
