import json

import pytest

from brats_ssl.cli import main
from brats_ssl.data.dataset import open_dataset
from brats_ssl.data.split import load_split, make_split, save_split
from brats_ssl.errors import BadInputError

from conftest import write_dataset


@pytest.fixture
def dataset(tmp_path):
    root = write_dataset(tmp_path / "d", "brats2021", n=18, unlabeled=4, shape=(12, 12, 10))
    (root / "sites.csv").write_text(
        "case,site\n" + "".join(f"BraTS2021_{i:05d},{'AB'[i % 2] if i < 12 else 'C'}\n" for i in range(22))
    )
    return open_dataset(root)


def test_split_is_seeded_disjoint_and_respects_labels(dataset):
    a = make_split(dataset, labeled=0.25, val=0.2, seed=3)
    b = make_split(dataset, labeled=0.25, val=0.2, seed=3)
    c = make_split(dataset, labeled=0.25, val=0.2, seed=4)
    assert a == b and a != c
    sets = [set(a[k]) for k in ("labeled", "unlabeled", "val")]
    assert sum(map(len, sets)) == len(dataset) and not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert len(a["val"]) == round(0.2 * 22)
    assert len(a["labeled"]) == round(0.25 * (22 - len(a["val"])))
    no_seg = {c.case_id for c in dataset.cases if not c.labeled}
    assert no_seg <= set(a["unlabeled"])


def test_split_is_stratified_by_site(dataset):
    split = make_split(dataset, labeled=0.5, val=0.3, seed=0)
    sites = [dataset.case(c).site for c in split["val"]]
    # 7 val cases from sites of sizes 6, 6, 6 (+4 unlabeled C): every site is represented.
    assert set(sites) == {"A", "B", "C"}


def test_unlabeled_sites_stay_unlabeled(dataset):
    split = make_split(dataset, labeled=1.0, val=0.2, seed=0, unlabeled_sites=["C"])
    assert all(dataset.case(c).site != "C" for c in split["labeled"])


def test_cli_split_and_load_checks(dataset, tmp_path):
    out = tmp_path / "split.json"
    with pytest.raises(SystemExit) as stop:
        main(["split", str(dataset.root), "-o", str(out), "--labeled", "0.25", "--val", "0.2", "--seed", "1"])
    assert stop.value.code == 0
    split = load_split(out, dataset)
    split["val"].append(split["labeled"][0])
    save_split(split, out)
    with pytest.raises(BadInputError, match="in both"):
        load_split(out)
    bad = json.loads(out.read_text())
    bad["val"] = ["nope"]
    out.write_text(json.dumps(bad))
    with pytest.raises(BadInputError, match="not found"):
        load_split(out, dataset)
