"""End to end through the command line on a tiny cohort whose unlabeled cases have no seg file."""

import json
import math
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch

from brats_ssl import atomic
from brats_ssl.cli import main
from brats_ssl.config import preset
from brats_ssl.engine.checkpoint import load_checkpoint
from brats_ssl.run.model import build_model
from brats_ssl.run_folder import RunFolder
from brats_ssl.ssl.registry import METHODS

from conftest import TINY_RUN, write_dataset

TINY = TINY_RUN


def previous_phase(phases: list[str], phase: str) -> str:
    return phases[phases.index(phase) - 1]


def run_cli(*args) -> int:
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    return stop.value.code


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    data = write_dataset(root / "data", "brats2021", n=5, unlabeled=3, shape=(24, 28, 20))
    return root, data


@pytest.fixture(scope="module")
def ours_run(cohort):
    root, data = cohort
    run = root / "ours"
    assert run_cli("train", data, "-o", run, "--method", "ours", "--audit-labels", *TINY) == 0
    return run


def test_ours_runs_end_to_end_without_seg_files_for_unlabeled(cohort, ours_run):
    _, data = cohort
    split = json.loads((ours_run / "split.json").read_text())
    assert len(split["unlabeled"]) == 3 and not any((data / c / f"{c}_seg.nii.gz").exists() for c in split["unlabeled"])
    summary = json.loads((ours_run / "summary.json").read_text())
    assert set(summary["mean"]) == {"WT", "TC", "ET", "NCR", "ED"}
    assert summary["model"] in ("teacher", "stage_1", "stage_2")
    assert "teacher" in summary and "student" in summary and len(summary["stages"]) == 2
    for phase in ("teacher", "stage_1", "stage_2"):
        assert (ours_run / phase / "checkpoint_last.pt").exists() and (ours_run / phase / "summary.json").exists()
    ranking = (ours_run / "pseudo" / "round_0" / "ranking.csv").read_text().splitlines()
    assert len(ranking) == 1 + 3
    refined = (ours_run / "pseudo" / "round_1" / "ranking.csv").read_text()
    assert "agreement" in refined.splitlines()[0]
    stats = json.loads((ours_run / "stage_1" / "pseudo_stats.json").read_text())
    assert 1 <= len(stats["members"]) <= 3 and stats["tau"] == pytest.approx(0.9)
    infos = [json.loads(p.read_text()) for p in (ours_run / "pseudo" / "round_0").glob("*/info.json")]
    assert len(infos) == 3 and all(i["mc_samples"] == 2 for i in infos)
    # --audit-labels finds no hidden labels here: these cases have no seg file at all
    assert not any("audit_dice" in i for i in infos)


def test_rerun_of_a_finished_run_changes_nothing(cohort, ours_run):
    _, data = cohort
    before = (ours_run / "summary.json").read_text()
    mtimes = {p: p.stat().st_mtime_ns for p in ours_run.rglob("*") if p.is_file()}
    assert run_cli("train", data, "-o", ours_run, "--method", "ours", "--audit-labels", *TINY) == 0
    assert (ours_run / "summary.json").read_text() == before
    assert {p: p.stat().st_mtime_ns for p in ours_run.rglob("*") if p.is_file()} == mtimes
    # asking the same folder for other settings is refused, naming the difference
    assert (
        run_cli("train", data, "-o", ours_run, "--method", "ours", *TINY[:-2], "--set", "inference.mc_samples=3") == 2
    )


def test_resume_after_losing_the_last_stage_reproduces_it(cohort, ours_run, tmp_path):
    _, data = cohort
    copy = tmp_path / "copy"
    shutil.copytree(ours_run, copy)
    shutil.rmtree(copy / "stage_2")
    (copy / "summary.json").unlink()
    assert run_cli("train", data, "-o", copy, "--method", "ours", "--audit-labels", *TINY) == 0
    a = json.loads((ours_run / "summary.json").read_text())
    b = json.loads((copy / "summary.json").read_text())
    assert a["student"]["mean"] == b["student"]["mean"]


def test_pseudolabel_export_and_suggest(cohort, ours_run, tmp_path):
    _, data = cohort
    out = tmp_path / "export"
    assert run_cli("pseudolabel", ours_run, data, "-o", out) == 0
    cases = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(cases) == 3
    reference = nib.load(str(data / cases[0] / f"{cases[0]}_t1.nii.gz"))
    for name in ("pseudo_label", "confidence", "mutual_information", "teacher_probabilities"):
        image = nib.load(str(out / cases[0] / f"{name}.nii.gz"))
        assert image.shape[:3] == reference.shape and np.allclose(image.affine, reference.affine)
    labels = np.unique(np.asarray(nib.load(str(out / cases[0] / "pseudo_label.nii.gz")).dataobj))
    assert set(labels.tolist()) <= {0, 1, 2, 4}
    probs = np.asarray(nib.load(str(out / cases[0] / "teacher_probabilities.nii.gz")).dataobj)
    assert probs.shape[-1] == 4 and np.allclose(probs.sum(-1), 1, atol=0.02)
    csv_out = tmp_path / "suggest.csv"
    assert run_cli("suggest", ours_run, data, "--top", "2", "-o", csv_out) == 0
    rows = csv_out.read_text().splitlines()
    assert len(rows) == 3 and "uncertain tumour" in rows[1]


def test_predict_writes_input_geometry_and_convention(cohort, ours_run, tmp_path):
    _, data = cohort
    out = tmp_path / "pred"
    assert run_cli("predict", ours_run, data, "-o", out, "--mc", "2", "--save-probabilities", "--save-uncertainty") == 0
    case = "BraTS2021_00000"
    reference = nib.load(str(data / case / f"{case}_seg.nii.gz"))
    prediction = nib.load(str(out / f"{case}.nii.gz"))
    assert prediction.shape == reference.shape and np.array_equal(prediction.affine, reference.affine)
    assert set(np.unique(np.asarray(prediction.dataobj)).tolist()) <= {0, 1, 2, 4}
    for suffix in ("probabilities", "entropy", "mutual_information"):
        assert (out / f"{case}_{suffix}.nii.gz").exists()


def test_ours_control_is_ours_without_the_pseudo_labeled_patches(cohort, ours_run, tmp_path):
    """The control trains ours' stages on the labeled cases alone: the same as ours with no batch
    share for pseudo-labels, minus the labelling work it does not need."""
    _, data = cohort
    runs = {}
    for name, extra in (
        ("control", ["--method", "ours-control"]),
        ("no_share", ["--method", "ours", "--set", "ssl.pseudo_fraction=0", "--set", "ssl.labeled_extra_share=0"]),
    ):
        run = tmp_path / name
        shutil.copytree(ours_run / "teacher", run / "teacher")  # as `experiment` reuses it
        assert run_cli("train", data, "-o", run, "--split", ours_run / "split.json", *extra, *TINY) == 0
        runs[name] = run
    control, no_share = (json.loads((runs[n] / "summary.json").read_text()) for n in ("control", "no_share"))
    assert [s["student_val"] for s in control["stages"]] == [s["student_val"] for s in no_share["stages"]]
    assert control["mean"] == no_share["mean"] and control["model"] == no_share["model"]
    assert all(s["members"] == 0 and "mean_agreement" not in s for s in control["stages"])
    assert not (runs["control"] / "pseudo").exists() and (runs["no_share"] / "pseudo").exists()
    # and the pseudo-labels are at work in ours: its stages learn from them (and unlearn), with
    # weight, on top of the same supervised term - which is what makes it differ from the control
    rows = [r for k in (1, 2) for r in atomic.read_jsonl(ours_run / f"stage_{k}" / "metrics.jsonl") if "loss" in r]
    assert rows and all(r["learn"] > 0 and r["unlearn"] > 0 and r["lambda"] > 0 for r in rows)
    ours = json.loads((ours_run / "summary.json").read_text())
    assert ours["stages"][0]["student_val"] != control["stages"][0]["student_val"]


def test_student_control_is_ours_student_fed_with_the_labeled_cases(cohort, ours_run, tmp_path):
    """ours-student-control trains ours' student - the extra patches and their learn term - with the
    labeled cases as its extra patches, and never labels or reads an unlabeled case."""
    _, data = cohort
    run = tmp_path / "student_control"
    shutil.copytree(ours_run / "teacher", run / "teacher")
    assert (
        run_cli("train", data, "-o", run, "--split", ours_run / "split.json", "--method", "ours-student-control", *TINY)
        == 0
    )
    summary = json.loads((run / "summary.json").read_text())
    labeled = json.loads((run / "split.json").read_text())["labeled"]
    assert [s["members"] for s in summary["stages"]] == [len(labeled)] * 2
    assert not (run / "pseudo").exists()
    rows = [r for k in (1, 2) for r in atomic.read_jsonl(run / f"stage_{k}" / "metrics.jsonl") if "loss" in r]
    # the extra patches are learned from (the branch ours-control does not have), with weight
    assert rows and all(r["learn"] > 0 and r["lambda"] > 0 for r in rows)


def test_ours_learns_from_the_teachers_stored_probabilities_when_asked(cohort, ours_run, tmp_path):
    """ssl.offline_targets=probabilities: the same run (teacher, batches, start) with the teacher's
    class probabilities as offline targets: the same supervised term, more pseudo-labeled voxels learned."""
    _, data = cohort
    run = tmp_path / "probabilities"
    shutil.copytree(ours_run / "teacher", run / "teacher")
    args = ["--split", ours_run / "split.json", "--method", "ours", "--set", "ssl.offline_targets=probabilities"]
    assert run_cli("train", data, "-o", run, *args, *TINY) == 0
    first, baseline = (
        next(r for r in atomic.read_jsonl(folder / "stage_1" / "metrics.jsonl") if "loss" in r)
        for folder in (run, ours_run)
    )
    # (logged values average the first steps, after which the two models differ a little)
    assert first["sup"] == pytest.approx(baseline["sup"], rel=1e-2)
    # the stored probabilities make more voxels sure of tumour vs background than the confidence spread
    assert first["learn_where"] > 1.5 * baseline["learn_where"]


def test_pool_fraction_trains_on_the_most_confident_cases_only(cohort, ours_run, tmp_path):
    """ssl.pool_fraction=0.3 of 3 unlabeled cases: every stage trains on the top-ranked case of the
    ranking it follows; the other two are labelled and ranked but marked as never used."""
    from brats_ssl.report import REPORT_MD, write_report
    from brats_ssl.ssl.labelling import read_ranking

    _, data = cohort
    run = tmp_path / "pool"
    shutil.copytree(ours_run / "teacher", run / "teacher")
    args = ["--split", ours_run / "split.json", "--method", "ours", "--set", "ssl.pool_fraction=0.3"]
    assert run_cli("train", data, "-o", run, *args, *TINY) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert [s["members"] for s in summary["stages"]] == [1, 1]
    for k in (1, 2):
        ranking = read_ranking(run / "pseudo" / f"round_{k - 1}" / "ranking.csv")
        assert [r["stage"] for r in ranking] == ["1", "", ""]
        stats = json.loads((run / f"stage_{k}" / "pseudo_stats.json").read_text())
        assert list(stats["members"]) == [ranking[0]["case"]]
    write_report(run)
    pool_table = (run / REPORT_MD).read_text().split("## Unlabeled pool")[1]
    assert pool_table.count("| never |") == 2 * 2  # round 0's table and the last round's
    assert (run / "report_pool.png").is_file()


def test_train_strong_views_reach_every_phase_of_a_run(cohort, ours_run, tmp_path, monkeypatch):
    """train.strong_views=1: the teacher and each stage of ours-control train on strong views of
    every labeled patch (the control continues the teacher's training as it was)."""
    from brats_ssl.data import strong_views
    from brats_ssl.run import phase

    wrapped, views = [], []

    def recording_wrapper(loss_fn, probability, *, seed, stream):
        wrapped.append((stream, probability))
        return strong_views.with_strong_labeled_views(loss_fn, probability, seed=seed, stream=stream)

    def counting(images, probability, generator):
        views.append(images.shape[0])
        return strong_view_some(images, probability, generator)

    strong_view_some = strong_views.strong_view_some
    monkeypatch.setattr(phase, "with_strong_labeled_views", recording_wrapper)
    monkeypatch.setattr(strong_views, "strong_view_some", counting)
    _, data = cohort
    args = ["--split", ours_run / "split.json", "--method", "ours-control", "--set", "train.strong_views=1"]
    assert run_cli("train", data, "-o", tmp_path / "control", *args, *TINY) == 0
    assert wrapped == [("teacher", 1.0), ("stage_1", 1.0), ("stage_2", 1.0)]
    assert len(views) == 3 * 3 and set(views) == {2}  # 3 steps per phase, both labeled patches of each


@pytest.mark.parametrize("share", [None, "0"])
def test_labeled_extra_share_mixes_true_labeled_and_pseudo_labeled_extra_patches(
    cohort, ours_run, tmp_path, monkeypatch, share
):
    """ours' default, ssl.labeled_extra_share=0.5: each step's 2 extra patches are 1 labeled case with
    its true labels (as the student control's) and 1 pseudo-labeled case of the stage's members;
    with 0 (runs made before) both are pseudo-labeled."""
    from brats_ssl.data.batches import LABELED, PSEUDO
    from brats_ssl.ssl import ours

    def recording(ctx, name, **kwargs):
        pools[name] = kwargs["pools"]
        return train_phase(ctx, name, **kwargs)

    pools: dict = {}
    train_phase = ours.train_phase
    monkeypatch.setattr(ours, "train_phase", recording)
    _, data = cohort
    run = tmp_path / "mixed"
    shutil.copytree(ours_run / "teacher", run / "teacher")
    setting = [] if share is None else ["--set", f"ssl.labeled_extra_share={share}"]
    args = ["--split", ours_run / "split.json", "--method", "ours", *setting]
    assert run_cli("train", data, "-o", run, *args, *TINY) == 0
    labeled = json.loads((run / "split.json").read_text())["labeled"]
    for k in (1, 2):
        stats = json.loads((run / f"stage_{k}" / "pseudo_stats.json").read_text())
        found = [(p.kind, p.samples, sorted(i.case_id for i in p.items)) for p in pools[f"stage_{k}"]]
        members = (PSEUDO, 1 if share is None else 2, sorted(stats["members"]))
        true_labeled = [(PSEUDO, 1, sorted(labeled))] if share is None else []
        assert found == [(LABELED, 2, sorted(labeled)), *true_labeled, members]
    if share is None:
        true_labels, as_pseudo = ({i.case_id: i.maps["label"] for i in pool.items} for pool in pools["stage_2"][:2])
        assert all(np.array_equal(as_pseudo[case], true_labels[case]) for case in labeled)


def test_last_stage_is_the_final_model_when_asked(cohort, ours_run, tmp_path, monkeypatch):
    """ssl.final_model=last: the last stage is the final model even where the selection cases prefer
    the teacher; what is reported before post-processing is that stage's own evaluation."""
    import dataclasses

    from brats_ssl.ssl import ours

    def worse_on_selection(ctx, name, **kwargs):  # every stage scores below the teacher on the chooser cases
        result = train_phase(ctx, name, **kwargs)
        return dataclasses.replace(result, choice={"mean": {r: {"dice": 0.0} for r in ("WT", "TC", "ET")}})

    train_phase = ours.train_phase
    monkeypatch.setattr(ours, "train_phase", worse_on_selection)
    _, data = cohort
    for final_model, expected in (("selected", "teacher"), ("last", "stage_2")):
        run = tmp_path / final_model
        shutil.copytree(ours_run / "teacher", run / "teacher")
        args = ["--split", ours_run / "split.json", "--method", "ours", "--set", f"ssl.final_model={final_model}"]
        assert run_cli("train", data, "-o", run, *args, *TINY) == 0
        summary = json.loads((run / "summary.json").read_text())
        assert summary["model"] == expected and not any(s["promoted"] for s in summary["stages"])
        phase = json.loads((run / expected / "summary.json").read_text())
        assert summary["raw"]["mean"] == phase["mean"]


def test_true_labels_as_pseudo_label_maps_are_certain_and_rule_out_every_other_class():
    from brats_ssl.data import confidence_codec
    from brats_ssl.ssl.labelling import true_label_maps

    label = np.array([[0, 1], [2, 3]], np.uint8)
    maps = true_label_maps(label)
    assert (confidence_codec.decode(maps["confidence"]) == 1).all() and maps["confidence"].shape == label.shape
    assert maps["absent"].tolist() == [[0b1110, 0b1101], [0b1011, 0b0111]]


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_runs(cohort, tmp_path, method):
    """Every registered method, by its registry entry: it runs, writes the phases the entry names, in
    that order, and its final model is one of them."""
    _, data = cohort
    run = tmp_path / method
    assert (
        run_cli(
            "train",
            data,
            "-o",
            run,
            "--method",
            method,
            "--preset",
            "tiny",
            "--steps",
            "2",
            "--set",
            "ssl.stages=1",
            "--set",
            "inference.mc_samples=2",
        )
        == 0
    )
    summary = json.loads((run / "summary.json").read_text())
    val = json.loads((run / "split.json").read_text())["val"]
    assert [e["case"] for e in summary["per_case"]] == val  # scored on every val case, in [0, 1]
    assert all(0 <= e[k]["dice"] <= 1 for e in summary["per_case"] for k in ("WT", "TC", "ET", "NCR", "ED"))
    phases = METHODS[method].phase_names(stages=1)
    # every phase trained: finite losses logged, and its weights moved away from where they started
    torch.manual_seed(0)  # as the run builds its first model (seed 0)
    start = build_model(preset("tiny"))
    for phase in phases:
        losses = [r["loss"] for r in atomic.read_jsonl(run / phase / "metrics.jsonl") if "loss" in r]
        assert losses and all(math.isfinite(v) for v in losses)
        before = (
            load_checkpoint(run / previous_phase(phases, phase) / "checkpoint_last.pt")["model"]
            if phase != phases[0] and METHODS[method].starts_from_teacher
            else start.state_dict()
        )
        after = load_checkpoint(run / phase / "checkpoint_last.pt")["model"]
        assert any(not torch.equal(before[k], after[k]) for k in after if after[k].is_floating_point()), phase
    assert RunFolder(run).phases == phases and summary["model"] in phases
    assert ("teacher" in summary) == ("teacher" in phases)
    assert (run / "stages.json").is_file() == METHODS[method].staged


@pytest.mark.parametrize("method", list(METHODS))
def test_methods_that_use_unlabeled_scans_refuse_a_split_without_them(cohort, tmp_path, method):
    from brats_ssl.errors import BadInputError
    from brats_ssl.pipeline import TrainRequest, prepare_run

    _, data = cohort
    split = {"labeled": ["BraTS2021_00000", "BraTS2021_00001"], "val": ["BraTS2021_00002"], "unlabeled": []}
    (tmp_path / "split.json").write_text(json.dumps(split))
    request = TrainRequest(
        data=data,
        run_dir=tmp_path / "run",
        split_file=tmp_path / "split.json",
        method=method,
        preset="tiny",
        device="cpu",
    )
    if METHODS[method].uses_unlabeled:
        with pytest.raises(BadInputError, match=f"--method {method} needs unlabeled cases"):
            prepare_run(request)
        assert not request.run_dir.exists()
    else:
        assert prepare_run(request).unlabeled == []


def test_bad_input_writes_nothing(cohort, tmp_path):
    root, data = cohort
    broken = tmp_path / "broken"
    shutil.copytree(data, broken)
    victim = next(broken.glob("*/*_t1ce.nii.gz"))
    victim.write_bytes(victim.read_bytes()[:200])
    run = tmp_path / "run"
    assert run_cli("train", broken, "-o", run, "--method", "supervised", "--preset", "tiny") == 2
    assert not run.exists()


def test_hidden_labels_are_never_read_unless_audited(tmp_path):
    data = write_dataset(tmp_path / "data", "brats2021", n=6, shape=(24, 28, 20))
    split = {
        "labeled": ["BraTS2021_00000", "BraTS2021_00001"],
        "val": ["BraTS2021_00002"],
        "unlabeled": ["BraTS2021_00003", "BraTS2021_00004", "BraTS2021_00005"],
    }
    (tmp_path / "split.json").write_text(json.dumps(split))
    hidden = data / "BraTS2021_00005" / "BraTS2021_00005_seg.nii.gz"
    intact = hidden.read_bytes()
    hidden.write_bytes(intact[:100])  # a read of this file would fail
    args = [
        "train",
        data,
        "--split",
        tmp_path / "split.json",
        "--method",
        "self-training",
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--set",
        "ssl.stages=1",
    ]
    assert run_cli(*args, "-o", tmp_path / "blind") == 0
    hidden.write_bytes(intact)
    assert run_cli(*args, "-o", tmp_path / "audited", "--audit-labels") == 0
    infos = [json.loads(p.read_text()) for p in (tmp_path / "audited" / "pseudo" / "round_0").glob("*/info.json")]
    assert len(infos) == 3 and all(0 <= i["audit_dice"]["WT"] <= 1 for i in infos)
