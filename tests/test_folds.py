"""Cross-validation folds: every case validated once, stratified, and no case in two roles."""

import pytest

from brats_ssl.data.dataset import open_dataset
from brats_ssl.data.folds import assign_folds, fold_splits
from brats_ssl.data.split import make_split
from brats_ssl.errors import BadInputError

from conftest import write_dataset

ROLES = ("labeled", "unlabeled", "val", "selection")


@pytest.fixture
def dataset(tmp_path):
    root = write_dataset(tmp_path / "d", "brats2021", n=21, unlabeled=3, shape=(12, 12, 10))
    (root / "sites.csv").write_text("case,site\n" + "".join(f"BraTS2021_{i:05d},{'ABC'[i % 3]}\n" for i in range(24)))
    return open_dataset(root)


def test_every_labeled_case_is_validated_exactly_once_and_folds_are_stratified(dataset):
    folds = assign_folds(dataset, 5)
    with_seg = {c.case_id for c in dataset.cases if c.labeled}
    assert set(folds) == with_seg  # cases without a seg are never validated
    validated = []
    for fold in range(5):
        val = fold_splits(dataset, fold=fold, folds=5, fractions=[0.25], seed=0, selection=2)[0.25]["val"]
        validated += val
        assert len(val) in (4, 5)  # 21 / 5
        assert len({dataset.case(c).site for c in val}) == 3  # every site in every fold
    assert sorted(validated) == sorted(with_seg)
    assert assign_folds(dataset, 5) == folds  # fixed: does not depend on the seed or the call


def test_roles_never_overlap_and_labeled_sets_are_nested(dataset):
    no_seg = {c.case_id for c in dataset.cases if not c.labeled}
    for seed in (0, 1):
        for fold in range(5):
            splits = fold_splits(dataset, fold=fold, folds=5, fractions=[0.1, 0.25, 1.0], seed=seed, selection=2)
            for split in splits.values():
                sets = [set(split[k]) for k in ROLES]
                assert sum(map(len, sets)) == len(dataset)  # every case has exactly one role
                assert set().union(*sets) == {c.case_id for c in dataset.cases}
                assert len(split["selection"]) == 2 and no_seg <= set(split["unlabeled"])
                assert not (set(split["selection"]) | set(split["val"])) & no_seg
            assert set(splits[0.1]["labeled"]) <= set(splits[0.25]["labeled"]) <= set(splits[1.0]["labeled"])
            assert splits[0.1]["selection"] == splits[1.0]["selection"]  # one selection set per fold and seed
            assert splits[1.0]["unlabeled"] == sorted(no_seg)


def test_single_fold_keeps_the_fixed_val_set_and_the_old_labeled_sets(dataset):
    split = fold_splits(dataset, fold=0, folds=1, fractions=[0.25], seed=3, val=0.2)[0.25]
    assert split["val"] == make_split(dataset, labeled=1.0, val=0.2, seed=0)["val"]
    with_selection = fold_splits(dataset, fold=0, folds=1, fractions=[0.25], seed=3, val=0.2, selection=2)[0.25]
    # the selection cases come from the end of the draw: the labeled sets stay prefixes of the same draw
    assert set(with_selection["labeled"]) <= set(split["labeled"]) and len(with_selection["selection"]) == 2
    assert not set(with_selection["selection"]) & set(split["labeled"])


def test_too_many_folds_is_bad_input(dataset):
    with pytest.raises(BadInputError, match="--folds 20"):
        assign_folds(dataset, 20)
