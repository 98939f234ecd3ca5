"""`brats-ssl review` without a browser: the routes of a running server, decision validation and
review.json, the volumes in each case's geometry, the static pages and the report's links."""

import base64
import gzip
import json
import re

import nibabel as nib
import numpy as np
import pytest

from brats_ssl.cli import main
from brats_ssl.review.volumes import VOLUMES_DIR
from brats_ssl.ssl.review_decisions import REVIEW_FILE

from review_helpers import ReviewServer, ranked_pool


@pytest.fixture(scope="module")
def server(review_run):
    running = ReviewServer(review_run)
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def no_decisions_yet(review_run):
    (review_run / REVIEW_FILE).unlink(missing_ok=True)
    yield
    (review_run / REVIEW_FILE).unlink(missing_ok=True)


def _split(run):
    return json.loads((run / "split.json").read_text())


def test_server_listens_on_localhost_and_lists_every_case(server, review_run):
    assert server.url.startswith("http://127.0.0.1:")
    status, body = server.get("/api/cases")
    rows = json.loads(body)
    split = _split(review_run)
    pool = [r for r in rows if r["set"] == "unlabeled"]
    assert [r["case"] for r in pool] == ranked_pool(review_run, "round_1")  # the latest round's order
    assert [r["rank"] for r in pool] == [1, 2, 3] and {r["stage"] for r in pool} == {1, 2}
    assert all(0 <= r["confidence"] <= 1 and 0 <= r["agreement"] <= 1 for r in pool)
    assert all(set(r["volumes_ml"]) == {"NCR", "ED", "ET"} and r["decision"] == "undecided" for r in pool)
    others = {r["case"]: r for r in rows if r["set"] != "unlabeled"}
    assert set(others) == set(split["val"]) | set(split["labeled"])
    summary = json.loads((review_run / "summary.json").read_text())
    for entry in summary["per_case"]:  # val cases carry the final model's Dice
        assert others[entry["case"]]["dice"]["WT"] == pytest.approx(entry["WT"]["dice"])
    assert all(others[c]["dice"] is None for c in split["labeled"])

    status, page = server.get("/")
    assert status == 200
    for case in split["unlabeled"] + split["val"] + split["labeled"]:
        assert f'href="/case/{case}"' in page.decode()


def test_case_pages_and_unknown_cases(server, review_run):
    case = ranked_pool(review_run)[0]
    status, page = server.get(f"/case/{case}")
    assert status == 200
    config = json.loads(re.search(r'id="review-config">(.*?)</script>', page.decode(), re.S).group(1))
    assert config["niivue"] == "/assets/niivue.js" and config["decide_url"] == f"/api/cases/{case}/decision"
    assert set(config["volumes"]["modalities"]) == {"t1", "t1ce", "t2", "flair"}
    assert [s["key"] for s in config["volumes"]["sources"]] == ["round_1", "round_0", "student_stage_1"]
    assert config["volumes"]["ground_truth"] is None  # an unlabeled case's labels stay hidden
    assert {c["value"] for c in config["label_colours"]} == {1, 2, 4}  # BraTS 2021 files: ET is 4
    assert server.get("/case/no_such_case")[0] == 404
    status, body = server.get("/assets/niivue.js")
    assert status == 200 and b"Niivue" in body and not body.lstrip().startswith(b"export const esm")


def test_a_decision_round_trips_and_is_stored_atomically(server, review_run):
    case = ranked_pool(review_run)[1]
    status, answer = server.post(f"/api/cases/{case}/decision", b'{"decision": "reject", "note": "misses the core"}')
    assert status == 200 and answer["decision"] == "reject"
    stored = json.loads((review_run / REVIEW_FILE).read_text())
    assert stored[case]["decision"] == "reject" and stored[case]["note"] == "misses the core" and stored[case]["time"]
    row = next(r for r in json.loads(server.get("/api/cases")[1]) if r["case"] == case)
    assert row["decision"] == "reject" and row["note"] == "misses the core"
    assert server.post(f"/api/cases/{case}/decision", b'{"decision": "accept"}')[0] == 200
    assert json.loads((review_run / REVIEW_FILE).read_text())[case]["decision"] == "accept"
    assert not [p.name for p in review_run.iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.mark.parametrize(
    "case_kind, body, expected",
    [
        ("unknown", b'{"decision": "accept"}', 404),
        ("pool", b'{"decision": "maybe"}', 400),
        ("pool", b'{"note": "no decision"}', 400),
        ("pool", b"accept", 400),
        ("pool", b'{"decision": "accept", "note": 3}', 400),
        ("val", b'{"decision": "accept"}', 400),
    ],
)
def test_a_bad_decision_is_a_json_error_and_writes_nothing(server, review_run, case_kind, body, expected):
    cases = {"unknown": "no_such_case", "pool": ranked_pool(review_run)[0], "val": _split(review_run)["val"][0]}
    case = cases[case_kind]
    status, answer = server.post(f"/api/cases/{case}/decision", body)
    assert status == expected and answer["error"]
    assert not (review_run / REVIEW_FILE).exists()


def test_volumes_are_niftis_in_the_case_geometry_built_once(server, review_run):
    case = ranked_pool(review_run)[2]
    data = _split(review_run)["dataset"]
    reference = nib.load(f"{data}/{case}/{case}_t1.nii.gz")
    status, body = server.get(f"/case/{case}/volume/round_1/pseudo_label.nii.gz")
    assert status == 200
    label = nib.Nifti1Image.from_bytes(gzip.decompress(body))
    assert label.shape == reference.shape and np.allclose(label.affine, reference.affine)
    assert set(np.unique(np.asarray(label.dataobj)).tolist()) <= {0, 1, 2, 4}
    cached = review_run / VOLUMES_DIR / case / "round_1"
    assert {p.name for p in cached.iterdir()} == {
        "pseudo_label.nii.gz",
        "confidence.nii.gz",
        "mutual_information.nii.gz",
    }
    built = cached.joinpath("confidence.nii.gz").stat().st_mtime_ns
    status, body = server.get(f"/case/{case}/volume/round_1/confidence.nii.gz")
    confidence = np.asarray(nib.Nifti1Image.from_bytes(gzip.decompress(body)).dataobj)
    assert status == 200 and confidence.shape == reference.shape and 0 <= confidence.min() <= confidence.max() <= 1
    assert cached.joinpath("confidence.nii.gz").stat().st_mtime_ns == built  # served from the cache
    status, body = server.get(f"/case/{case}/volume/flair.nii.gz")
    assert status == 200 and body == open(f"{data}/{case}/{case}_flair.nii.gz", "rb").read()
    assert server.get(f"/case/{case}/volume/ground_truth.nii.gz")[0] == 404  # hidden labels stay hidden
    assert server.get(f"/case/{case}/volume/round_1/../../config.yaml")[0] == 404


def _run_cli(*args) -> int:
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    return stop.value.code


def test_static_pages_inline_the_viewer_and_volumes(review_run, tmp_path):
    out = tmp_path / "static"
    assert _run_cli("review", review_run, "--static", out) == 0
    split = _split(review_run)
    cases = split["unlabeled"] + split["val"] + split["labeled"]
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{c}.html" for c in cases] + ["index.html"])
    index = (out / "index.html").read_text()
    assert all(f'href="{c}.html"' in index for c in cases) and "http" not in index
    page = (out / f"{split['unlabeled'][0]}.html").read_text()
    config = json.loads(re.search(r'id="review-config">(.*?)</script>', page, re.S).group(1))
    module = gzip.decompress(base64.b64decode(config["niivue"]["gzip_base64"])).decode()
    assert "Niivue" in module and config["decide_url"] is None
    flair = base64.b64decode(config["volumes"]["modalities"]["flair"]["data"])
    case = split["unlabeled"][0]
    assert flair == open(f"{split['dataset']}/{case}/{case}_flair.nii.gz", "rb").read()
    confidence = config["volumes"]["sources"][0]["confidence"]
    inlined = nib.Nifti1Image.from_bytes(gzip.decompress(base64.b64decode(confidence["data"])))
    served = nib.load(str(review_run / VOLUMES_DIR / split["unlabeled"][0] / confidence["name"]))
    assert np.allclose(inlined.affine, served.affine)  # rounded to the run's own precision, 1/255
    assert np.abs(np.asarray(inlined.dataobj) - np.asarray(served.dataobj)).max() <= 0.5 / 255 + 1e-6
    assert not re.search(r'(src|href)="(/|https?:)', page)  # nothing from a server or the internet
    assert (out / f"{split['unlabeled'][0]}.html").stat().st_size < 20 * 2**20


def test_report_links_each_case_to_its_review_page(review_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(review_run, run)
    assert _run_cli("report", run) == 0
    page = (run / "report.html").read_text()
    for case in _split(run)["unlabeled"] + _split(run)["val"]:
        assert f'<a href="http://127.0.0.1:8765/case/{case}">{case}</a>' in page


def test_a_case_the_stages_never_train_on_is_listed_as_never(review_run, tmp_path):
    """ssl.pool_fraction leaves the least confident cases ranked without a stage: the list says so."""
    import shutil

    from brats_ssl.review.cases import ReviewCatalogue

    run = tmp_path / "run"
    shutil.copytree(review_run, run)
    ranking = run / "pseudo" / "round_1" / "ranking.csv"
    lines = ranking.read_text().splitlines()
    lines[-1] = lines[-1].rsplit(",", 1)[0] + ","  # the last-ranked case: no stage
    ranking.write_text("\n".join(lines) + "\n")
    last = lines[-1].split(",")[1]
    rows = {r["case"]: r for r in ReviewCatalogue(run).rows() if r["set"] == "unlabeled"}
    assert rows[last]["stage"] == 0 and all(r["stage"] >= 1 for c, r in rows.items() if c != last)
    assert _run_cli("review", run, "--static", tmp_path / "static") == 0
    index = (tmp_path / "static" / "index.html").read_text()
    assert re.search(rf'href="{last}.html">{last}</a></td><td>3</td><td>never</td>', index)


def test_review_of_a_run_without_pseudo_labels_is_bad_input(tmp_path, capsys):
    from conftest import make_untrained_run, run_cli_output

    run = make_untrained_run(tmp_path / "run")
    code, output = run_cli_output(["review", run, "--no-browser"], capsys)
    assert code == 2 and "no pseudo-labels" in output


def test_a_missing_or_wrong_niivue_file_is_bad_input_naming_it(review_run, tmp_path, capsys, monkeypatch):
    from conftest import run_cli_output

    monkeypatch.setenv("BRATS_SSL_NIIVUE", str(tmp_path / "absent.min.js"))
    code, output = run_cli_output(["review", review_run, "--no-browser", "--port", "0"], capsys)
    assert code == 2 and "absent.min.js" in output and "does not exist" in output
    wrong = tmp_path / "index.js"
    wrong.write_text("export class Niivue {}")
    monkeypatch.setenv("BRATS_SSL_NIIVUE", str(wrong))
    code, output = run_cli_output(["review", review_run, "--static", tmp_path / "out"], capsys)
    assert code == 2 and "index.js" in output and "index.min.js" in output
    assert not (tmp_path / "out").exists()


def test_selection_cases_are_listed_with_their_dice_and_predictions(review_run, tmp_path):
    import shutil

    from brats_ssl.review.cases import SELECTION, ReviewCatalogue

    run = tmp_path / "run"
    shutil.copytree(review_run, run)
    split = json.loads((run / "split.json").read_text())
    chosen = split["labeled"][0]  # as if this labeled case had chosen the model
    split["labeled"].remove(chosen)
    split["selection"] = [chosen]
    (run / "split.json").write_text(json.dumps(split))
    phase = json.loads((run / "summary.json").read_text())["model"]
    (run / phase / "selection_summary.json").write_text(
        json.dumps(
            {
                "mean": {},
                "n_cases": 1,
                "per_case": [{"case": chosen, "WT": {"dice": 0.5}, "TC": {"dice": 0.25}, "ET": {"dice": 0.125}}],
            }
        )
    )
    catalogue = ReviewCatalogue(run)
    assert catalogue.sets[chosen] == SELECTION
    row = next(r for r in catalogue.rows() if r["case"] == chosen)
    assert row["set"] == SELECTION and row["dice"] == {"WT": 0.5, "TC": 0.25, "ET": 0.125}
