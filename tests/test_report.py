"""Run and experiment reports on a tiny real sweep: sections, numbers, pictures, skipped inputs."""

from __future__ import annotations

import base64
import json
import re
import shutil
import statistics
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch

from brats_ssl import cli
from brats_ssl.data.io import load_case
from brats_ssl.data.synthetic import write_cohort
from brats_ssl.errors import BadInputError
from brats_ssl.experiment import run_experiment
from brats_ssl.experiment_folder import REUSED_MARKER, read_csv, read_results
from brats_ssl.metrics import EVALUATED
from brats_ssl.report import REPORT_HTML, REPORT_MD, write_report
from brats_ssl.report.overlays import pick_cases, predictive_entropy
from brats_ssl.viz import CELL_PX, DPI, LEGEND_PX, ROW_CAPTION_PX, TITLE_PX

SHAPE = (40, 40, 32)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, _isolated_cache) -> Path:
    """A real tiny sweep: supervised, ours and its control at 50 % and 100 % labels, two seeds (its
    reports included)."""
    root = tmp_path_factory.mktemp("report")
    write_cohort(root / "data", cases=8, shape=SHAPE, seed=0)
    run_experiment(
        root / "data",
        root / "exp",
        fractions=[0.5, 1.0],
        methods=["supervised", "ours", "ours-control"],
        seeds=[0, 1],
        val=0.25,
        preset="tiny",
        steps=4,
        overrides=[],
    )
    write_report(root / "exp")  # as `brats-ssl experiment` does after the sweep
    return root / "exp"


@pytest.fixture(scope="module")
def ours_run(experiment) -> Path:
    return experiment / "runs" / "ours_f0.5_s0"


@pytest.fixture(scope="module")
def supervised_run(experiment) -> Path:
    return experiment / "runs" / "supervised_f0.5_s0"


def _png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return matplotlib.image.imread(str(path))


def _md_images(md: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)


def _copy_run(run: Path, target: Path) -> Path:
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("report*"))
    return target


def test_ours_report_has_every_section_and_the_numbers_of_summary_json(ours_run):
    md = (ours_run / REPORT_MD).read_text()
    for heading in (
        "## Run",
        "## Results on the validation cases",
        "## Training curves",
        "## Curriculum stages (ours)",
        "## Unlabeled pool",
        "## Validation cases: overlays and uncertainty",
    ):
        assert heading in md
    # the stages' batch, from the run's settings (ours' default: half the extra patches true-labeled)
    assert (
        "Each step of a stage: 2 labeled patches + 2 extra: 1 from the labeled cases with their true labels, "
        "1 pseudo-labeled (ssl.unlabeled_ratio 1, ssl.labeled_extra_share 0.5)."
    ) in md
    summary = json.loads((ours_run / "summary.json").read_text())
    assert f"| final model (phase) | {summary['model']} |" in md
    for region in EVALUATED:
        for source in (summary, summary["teacher"]):
            assert f"{source['mean'][region]['dice']:.4f}" in md
            assert f"{source['mean'][region]['hd95']:.2f}" in md

    def reviewed(case: str) -> str:  # a case cell links to its page in `brats-ssl review`
        return f"[{case}](http://127.0.0.1:8765/case/{case})"

    for entry in summary["per_case"]:  # per-case table
        assert re.search(rf"\| {re.escape(reviewed(entry['case']))} \|[^\n]*\| {entry['WT']['dice']:.4f} \|", md)
    for stage in json.loads((ours_run / "stages.json").read_text()):
        row = re.search(rf"^\| {stage['stage']} \| {stage['tau']:.2f} \| {stage['members']} \|.*$", md, re.M)
        assert row and row.group(0).rstrip(" |").endswith("yes" if stage["promoted"] else "no")
    for round_name in ("round_0", "round_1"):
        for line in (ours_run / "pseudo" / round_name / "ranking.csv").read_text().splitlines()[1:]:
            rank, case, score, agreement = line.split(",")[:4]
            case = reviewed(case)
            cells = f"| {rank} | {case} | {agreement} | {score} |" if agreement else f"| {rank} | {case} | {score} |"
            assert cells in md


def test_report_pictures_are_real_and_embedded_in_the_html(ours_run):
    md = (ours_run / REPORT_MD).read_text()
    page = (ours_run / REPORT_HTML).read_text()
    links = _md_images(md)
    assert {"report_stages.png", "report_pool.png", "teacher/progress.png", "stage_2/progress.png"} <= set(links)
    assert len([link for link in links if link.startswith("report_case_")]) == 2  # both val cases (≤ 3)
    assert page.count('<img src="data:image/png;base64,') == len(links)
    assert not re.search(r'src="(?!data:image/png;base64,)', page)  # nothing outside the file
    for link in links:
        path = ours_run / link
        assert base64.b64encode(path.read_bytes()).decode() in page
        pixels = _png(path)
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 700, (link, pixels.shape)
        assert pixels[..., :3].std() > 0.05  # not a blank canvas
    assert sorted(p.name for p in ours_run.glob("report_*.png")) == sorted(link for link in links if "/" not in link)


def test_overlay_panel_shows_each_model_and_the_uncertainty(ours_run):
    summary = json.loads((ours_run / "summary.json").read_text())
    panel = next(ours_run.glob("report_case_1_*.png"))
    columns = (
        ["FLAIR", "ground truth"]
        + (["teacher"] if summary["model"] != "teacher" else [])
        + [f"final ({summary['model']})", "uncertainty"]
    )
    pixels = _png(panel)[..., :3]
    assert pixels.shape[:2] == (TITLE_PX + 3 * (CELL_PX + ROW_CAPTION_PX) + LEGEND_PX, len(columns) * CELL_PX)
    coloured = pixels.max(-1) - pixels.min(-1) > 0.15  # grey anatomy and white text are not coloured
    top = TITLE_PX + ROW_CAPTION_PX  # the axial row's pictures
    cell = lambda c: coloured[top : top + CELL_PX, c * CELL_PX : (c + 1) * CELL_PX].mean()  # noqa: E731
    assert cell(0) < 0.001  # plain FLAIR
    assert cell(1) > 0.005  # ground-truth labels through the tumour
    assert cell(len(columns) - 1) > 0.005  # the entropy heat map


def test_uncertainty_is_normalised_entropy_in_the_original_geometry(ours_run):
    from brats_ssl.data.cache import PreprocessCache
    from brats_ssl.data.preprocess import PreprocessParams
    from brats_ssl.predict import load_run_model
    from brats_ssl.run_folder import RunFolder

    run = RunFolder(ours_run)
    config, model = load_run_model(ours_run, "final", torch.device("cpu"))
    case = run.val_cases(run.dataset())[0]
    loaded = load_case(case)
    cache = PreprocessCache(PreprocessParams.from_config(config.data))
    entropy = predictive_entropy(model, config, case, cache=cache, device=torch.device("cpu"))
    assert entropy.shape == loaded.shape == SHAPE
    assert entropy.min() >= 0 and entropy.max() <= 1
    brain = np.any(loaded.image != 0, axis=0)
    assert entropy[brain].mean() > 0.01
    meta = cache.get(case).meta
    outside = np.ones(SHAPE, bool)
    outside[tuple(slice(a, b) for a, b in zip(meta.bbox_start, meta.bbox_stop))] = False
    assert outside.any() and np.all(entropy[outside] == 0)  # outside the preprocessing crop: no value


def test_supervised_report_leaves_out_stages_and_pool(supervised_run):
    md = (supervised_run / REPORT_MD).read_text()
    assert "## Results on the validation cases" in md and "teacher (final model) Dice" in md
    assert "Curriculum stages" not in md and "Unlabeled pool" not in md
    assert not (supervised_run / "report_stages.png").exists() and not (supervised_run / "report_pool.png").exists()
    summary = json.loads((supervised_run / "summary.json").read_text())
    assert f"{summary['mean']['ET']['hd95']:.2f}" in md
    panel = _png(next(supervised_run.glob("report_case_1_*.png")))
    assert panel.shape[1] == 4 * CELL_PX  # FLAIR, ground truth, final (= teacher), uncertainty


def test_missing_dataset_or_summary_skips_sections_cleanly(supervised_run, tmp_path):
    moved = _copy_run(supervised_run, tmp_path / "moved")
    split = json.loads((moved / "split.json").read_text())
    (moved / "split.json").write_text(json.dumps({**split, "dataset": str(tmp_path / "gone")}))
    md = write_report(moved).read_text()
    assert "Overlays skipped" in md and not list(moved.glob("report_case_*.png"))
    assert "## Training curves" in md
    unfinished = _copy_run(supervised_run, tmp_path / "unfinished")
    (unfinished / "summary.json").unlink()
    md = write_report(unfinished).read_text()
    assert "training unfinished" in md and "overlays" not in md.lower()
    assert (unfinished / REPORT_HTML).is_file()


def test_experiment_report_shows_mean_and_std_over_seeds(experiment):
    md = (experiment / REPORT_MD).read_text()
    for heading in ("## Experiment", "## What the sweep says", "## Results", "## Curves", "## Runs"):
        assert heading in md
    assert "| Does ours beat supervised training on the labeled cases alone? | ours − supervised | 50% |" in md
    rows = [r for r in read_results(experiment) if r["method"] == "ours" and float(r["fraction"]) == 0.5]
    assert len(rows) == 2
    # the table's WT cell is the mean over val cases of each case's WT Dice averaged over both seeds
    per_case = [json.loads((Path(r["run"]) / "summary.json").read_text())["per_case"] for r in rows]
    cases = {e["case"] for e in per_case[0]}
    wt = [statistics.fmean(e["WT"]["dice"] for run in per_case for e in run if e["case"] == case) for case in cases]
    line = next(row for row in md.splitlines() if row.startswith("| ours | 50% (2) | 2 × 1 | 2 |"))
    assert line.split(" | ")[4].startswith(f"{statistics.fmean(wt):.3f} [")
    seconds = {r["run"]: float(r["seconds"]) for r in read_results(experiment)}  # shared runs once
    reused = [
        json.loads((Path(run) / "teacher" / "done.json").read_text())["seconds"]
        for run in seconds
        if (Path(run) / "teacher" / REUSED_MARKER).is_file()
    ]
    assert len(reused) == 4  # ours and ours-control at 50 %, two seeds: the supervised teacher, counted once
    total = round(sum(seconds.values()) - sum(reused))
    assert f"| total training time | {total // 60} min {total % 60:02d} s" in md
    threads = json.loads((experiment / "experiment.json").read_text())["torch_threads"]
    assert threads == [torch.get_num_threads()] and f"| CPU threads (torch) | {threads[0]} |" in md
    for name in ("report_efficiency.png", "report_stages.png"):
        pixels = _png(experiment / name)
        assert pixels.shape[0] >= 350 and pixels.shape[1] >= 700 and pixels[..., :3].std() > 0.05
    compared = [r for r in read_csv(experiment / "comparisons.csv") if r["metric"] == "mean"]
    pixels = _png(experiment / "report_comparisons.png")  # a row for each paired comparison of the table
    assert len(compared) >= 2 and pixels.shape[0] == round((1.2 + 0.42 * len(compared)) * DPI)
    assert "](report_comparisons.png)" in md and pixels[..., :3].std() > 0.05
    links = re.findall(r"\]\((runs/[^)]+/report\.md)\)", md)
    assert len(set(links)) == 8  # every run's own report, linked and written
    assert all((experiment / link).is_file() and (experiment / link).with_suffix(".html").is_file() for link in links)


def test_experiment_runs_the_control_from_the_supervised_teacher(experiment):
    rows = {(r["method"], float(r["fraction"]), r["seed"]): r for r in read_results(experiment)}
    for seed in ("0", "1"):
        control, supervised = rows[("ours-control", 0.5, seed)], rows[("supervised", 0.5, seed)]
        assert (Path(control["run"]) / "teacher" / REUSED_MARKER).is_file()  # copied, not retrained
        assert control["teacher_WT_dice"] == supervised["teacher_WT_dice"]  # the same teacher, raw
        assert not (Path(control["run"]) / "pseudo").exists()
        control_md = (Path(control["run"]) / REPORT_MD).read_text()
        assert "## Stages (ours-control: ours' schedule on the labeled cases only)" in control_md
        assert "Each step of a stage: 2 labeled patches, no extra ones." in control_md
        assert rows[("ours-control", 1.0, seed)]["run"] == supervised["run"].replace("f0.5", "f1")
    md = (experiment / REPORT_MD).read_text()
    assert any(row.startswith("| ours-control | 50% (2) | 2 × 1 |") for row in md.splitlines())


def test_experiment_report_keeps_run_reports_that_are_up_to_date(experiment):
    report = experiment / "runs" / "ours_f0.5_s0" / REPORT_MD
    before = report.stat().st_mtime_ns
    assert write_report(experiment) == experiment / REPORT_MD
    assert report.stat().st_mtime_ns == before


def test_the_report_command_prints_what_the_sweep_says(experiment, capsys):
    from conftest import run_cli_output

    code, output = run_cli_output(["report", experiment], capsys)
    assert code == 0, output
    assert "What the sweep says" in output and "ours − supervised" in output and "ours − ours-control" in output
    assert "rest on one seed" not in output  # two seeds here


def test_pick_cases_spreads_over_the_final_wt_dice():
    per_case = [{"case": f"c{i}", "WT": {"dice": d}} for i, d in enumerate([0.5, 0.9, 0.1, 0.7, 0.3])]
    assert pick_cases(per_case) == [("c2", "lowest WT Dice"), ("c0", "median WT Dice"), ("c1", "highest WT Dice")]
    assert [c for c, _ in pick_cases(per_case[:2])] == ["c0", "c1"]


def test_bad_targets_are_bad_input(tmp_path, supervised_run):
    with pytest.raises(BadInputError, match="neither a run folder"):
        write_report(tmp_path)
    with pytest.raises(BadInputError, match="does not exist"):
        write_report(tmp_path / "nowhere")
    unfinished = _copy_run(supervised_run, tmp_path / "run")
    (unfinished / "summary.json").unlink()
    for args, code in ((["report", str(unfinished)], 0), (["report", str(tmp_path / "nowhere")], 2)):
        with pytest.raises(SystemExit) as stop:
            cli.main(args)
        assert stop.value.code == code
    assert (unfinished / REPORT_MD).is_file()


def test_experiment_without_finished_runs_gets_a_short_report(tmp_path):
    (tmp_path / "experiment.json").write_text(json.dumps({"methods": ["ours"], "fractions": [0.1]}))
    md = write_report(tmp_path).read_text()
    assert "No results yet: no run of the sweep has finished." in md and (tmp_path / REPORT_HTML).is_file()
    (tmp_path / "experiment.json").write_text(json.dumps({"methods": ["ours"], "planned_runs": 10}))
    assert "No results yet: no run of the sweep of 10 planned has finished." in write_report(tmp_path).read_text()


def test_the_stage_table_says_what_a_step_of_each_staged_method_holds():
    from brats_ssl import config as config_lib
    from brats_ssl.report.stages import _batch_text

    def text(method: str, *overrides: str) -> str:
        config = config_lib.preset("tiny")
        config.method = method
        return _batch_text(config_lib.apply_overrides(config, list(overrides)))

    assert text("ours", "ssl.labeled_extra_share=0") == (
        " Each step of a stage: 2 labeled patches + 2 extra: 2 pseudo-labeled "
        "(ssl.unlabeled_ratio 1, ssl.labeled_extra_share 0)."
    )
    assert text("ours", "ssl.unlabeled_ratio=2", "ssl.labeled_extra_share=0.75") == (
        " Each step of a stage: 2 labeled patches + 4 extra: 3 from the labeled cases with their true labels, "
        "1 pseudo-labeled (ssl.unlabeled_ratio 2, ssl.labeled_extra_share 0.75)."
    )
    assert text("ours-student-control") == (
        " Each step of a stage: 2 labeled patches + 2 extra: 2 from the labeled cases with their true labels "
        "(ssl.unlabeled_ratio 1)."
    )
    assert text("ours-control") == " Each step of a stage: 2 labeled patches, no extra ones."
    # runs made before unlabeled_ratio: the pseudo-labeled patch was taken out of the labeled batch
    assert text("ours", "ssl.pseudo_fraction=0.5", "ssl.labeled_extra_share=0").startswith(
        " Each step of a stage: 1 labeled patch + 1 extra: 1 pseudo-labeled"
    )
    assert text("supervised") == ""
