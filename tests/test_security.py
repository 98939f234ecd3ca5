"""Safe loading and contained outputs: pickled code in a checkpoint is refused, YAML is plain data,
and case ids or symlinks cannot make an output land outside its output folder."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nibabel as nib
import pytest
import torch

from brats_ssl import config as config_lib
from brats_ssl.errors import BadInputError
from brats_ssl.paths import inside, safe_name
from brats_ssl.run.model import build_model

from conftest import make_untrained_run, run_cli_output, write_dataset

SHAPE = (16, 18, 12)
SOURCE = Path(__file__).resolve().parents[1] / "src" / "brats_ssl"


class CreatesAFile:
    """Unpickling this calls ``open(sentinel, "w")``: proof that code ran."""

    def __init__(self, sentinel: Path):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (open, (self.sentinel, "w"))


@pytest.fixture
def trained_run(tmp_path) -> Path:
    """A run folder as `brats-ssl train` leaves it (untrained weights: predict only needs a model)."""
    return make_untrained_run(tmp_path / "run")


# --- checkpoints -------------------------------------------------------------------------------


def test_predict_refuses_a_checkpoint_holding_code(tmp_path, trained_run, capsys):
    sentinel = tmp_path / "code_ran"
    path = trained_run / "teacher" / "checkpoint_last.pt"
    state = {"model": build_model(config_lib.preset("tiny")).state_dict(), "extra": CreatesAFile(sentinel)}
    torch.save(state, path)  # what an attacker would ship: real weights plus a payload
    data = write_dataset(tmp_path / "data", n=1, shape=SHAPE)
    code, output = run_cli_output(["predict", trained_run, data, "-o", tmp_path / "pred"], capsys)
    assert code == 2 and f"file {path}: refused to load" in output and "run io.open" in output, output
    assert "never executed" in output and "Traceback" not in output
    assert not sentinel.exists() and not (tmp_path / "pred").exists()


def test_resuming_a_run_refuses_a_checkpoint_holding_code(tmp_path, capsys):
    data = write_dataset(tmp_path / "data", n=3, shape=SHAPE)
    run = tmp_path / "run"
    args = ["train", data, "-o", run, "--method", "supervised", "--preset", "tiny", "--steps", "2"]
    assert run_cli_output(args, capsys)[0] == 0
    (run / "summary.json").unlink()
    (run / "teacher" / "done.json").unlink()  # as if killed during the teacher: it resumes from here
    sentinel = tmp_path / "code_ran"
    torch.save({"model": {}, "step": 1, "payload": CreatesAFile(sentinel)}, run / "teacher" / "checkpoint_last.pt")
    code, output = run_cli_output(args, capsys)
    assert code == 2 and "checkpoint_last.pt: refused to load" in output, output
    assert not sentinel.exists()


def test_every_torch_load_in_the_package_is_weights_only():
    calls = []
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
            ):
                keywords = {k.arg: k.value for k in node.keywords}
                safe = isinstance(keywords.get("weights_only"), ast.Constant) and keywords["weights_only"].value is True
                calls.append((f"{path.name}:{node.lineno}", safe))
    assert calls and all(safe for _, safe in calls), calls


# --- YAML --------------------------------------------------------------------------------------


def test_config_with_a_python_tag_is_refused_and_never_run(tmp_path, trained_run, capsys):
    sentinel = tmp_path / "code_ran"
    evil = f"!!python/object/apply:builtins.open ['{sentinel}', 'w']"
    config_file = tmp_path / "config.yaml"
    config_file.write_text(f"seed: {evil}\n")
    data = write_dataset(tmp_path / "data", n=3, shape=SHAPE)
    code, output = run_cli_output(
        ["train", data, "-o", tmp_path / "new_run", "--config", config_file, "--preset", "tiny"], capsys
    )
    assert code == 2 and "refused: the tag !!python/object/apply:builtins.open is not allowed" in output, output
    # the same inside a run folder's own config.yaml, read by predict
    run_config = trained_run / "config.yaml"
    run_config.write_text(run_config.read_text().replace("seed: 0", f"seed: {evil}"))
    code, output = run_cli_output(["predict", trained_run, data, "-o", tmp_path / "pred"], capsys)
    assert code == 2 and f"file {trained_run / 'config.yaml'}: refused" in output, output
    assert not sentinel.exists() and not (tmp_path / "new_run").exists() and not (tmp_path / "pred").exists()


def test_yaml_is_only_read_with_the_safe_loader():
    for path in SOURCE.rglob("*.py"):
        text = path.read_text()
        for unsafe in ("yaml.load(", "yaml.unsafe_load", "yaml.full_load", "yaml.Loader", "yaml.UnsafeLoader"):
            assert unsafe not in text, f"{path.name} uses {unsafe}"


# --- case ids and paths ------------------------------------------------------------------------

HOSTILE_IDS = [
    "../../etc/passwd",
    "/etc/passwd",
    "..",
    ".",
    "",
    "a/b",
    "a\\b",
    "a\x00b",
    "..evil",
    ".hidden",
    "a b",
    "a_b",
    "a?b",
    "$(touch pwned)",
    "name\nwith newline",
    "café",
    "BraTS_\udce9",
    "x" * 300,
    "x" * 299 + "y",
    "CON",
    "BraTS2021_00001",
]


def test_safe_names_are_single_components_inside_the_folder_and_distinct(tmp_path):
    names = [safe_name(case_id) for case_id in HOSTILE_IDS]
    for name in names:
        assert name and "/" not in name and "\\" not in name and "\x00" not in name and not name.startswith("."), name
        assert len(name) <= 120 and name.isascii() and name.isprintable()
        assert inside(tmp_path, f"{name}.nii.gz").parent == tmp_path
    assert len(set(names)) == len(names)  # "a b" and "a_b" do not overwrite each other
    assert safe_name("BraTS2021_00001") == "BraTS2021_00001"  # ordinary ids are kept as they are


def test_inside_refuses_escapes_and_symlinks_out(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    for name in ("../x.nii.gz", "/etc/x.nii.gz", "a/../../x.nii.gz"):
        with pytest.raises(BadInputError, match="would be written outside"):
            inside(out, name)
    (out / "case.nii.gz").symlink_to(elsewhere / "victim.nii.gz")
    with pytest.raises(BadInputError, match="would be written outside"):
        inside(out, "case.nii.gz")
    linked = tmp_path / "linked_out"
    linked.symlink_to(elsewhere, target_is_directory=True)  # an output folder that is a symlink is fine
    assert inside(linked, "case.nii.gz") == linked / "case.nii.gz"


def _msd_with_ids(root: Path, case_ids: list[str]) -> Path:
    """An MSD-layout dataset whose case ids (file names) are ``case_ids``."""
    write_dataset(root, "msd", n=len(case_ids), shape=SHAPE)
    originals = sorted((root / "imagesTr").iterdir())
    for original, case_id in zip(originals, case_ids):
        original.rename(root / "imagesTr" / f"{case_id}.nii.gz")
        (root / "labelsTr" / original.name).rename(root / "labelsTr" / f"{case_id}.nii.gz")
    return root


def test_unusual_case_ids_stay_inside_the_output_folder(tmp_path, trained_run, capsys):
    ids = ["a b", "a_b", "up..%2F..%2Fescaped", "$(touch pwned)", "café"]
    data = _msd_with_ids(tmp_path / "data", ids)
    (data / "imagesTr" / "..evil.nii.gz").write_bytes(b"hidden files are not cases")
    before = {p for p in tmp_path.rglob("*")}
    out = tmp_path / "pred"
    code, output = run_cli_output(["predict", trained_run, data, "-o", out], capsys)
    assert code == 0, output
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(out == p or out in p.parents for p in created), created - {out}
    labels = sorted(p for p in out.iterdir() if p.name.endswith(".nii.gz"))
    assert len(labels) == len(ids)  # one per case: none overwrote another
    assert all(p.parent == out and safe_name(p.name[: -len(".nii.gz")]) == p.name[: -len(".nii.gz")] for p in labels)
    reference = nib.load(str(data / "labelsTr" / "a b.nii.gz"))
    assert nib.load(str(out / f"{safe_name('a b')}.nii.gz")).shape == reference.shape
    code, output = run_cli_output(["evaluate", out, data, "-o", tmp_path / "eval.json"], capsys)  # finds the safe names
    assert code == 0, output
    assert sorted(c["case"] for c in json.loads((tmp_path / "eval.json").read_text())["per_case"]) == sorted(ids)


def test_prediction_into_a_symlink_pointing_outside_is_refused(tmp_path, trained_run, capsys):
    data = write_dataset(tmp_path / "data", n=1, shape=SHAPE)
    out, victim = tmp_path / "pred", tmp_path / "elsewhere" / "victim.nii.gz"
    victim.parent.mkdir()
    victim.write_bytes(b"precious")
    out.mkdir()
    (out / "BraTS2021_00000.nii.gz").symlink_to(victim)
    code, output = run_cli_output(["predict", trained_run, data, "-o", out], capsys)
    assert code == 2 and "would be written outside" in output, output
    assert victim.read_bytes() == b"precious"


def test_output_folder_that_is_a_symlink_is_followed(tmp_path, trained_run, capsys):
    data = write_dataset(tmp_path / "data", n=1, shape=SHAPE)
    target = tmp_path / "big_disk"
    target.mkdir()
    (tmp_path / "pred").symlink_to(target, target_is_directory=True)
    code, output = run_cli_output(["predict", trained_run, data, "-o", tmp_path / "pred"], capsys)
    assert code == 0, output
    assert (target / "BraTS2021_00000.nii.gz").is_file()


def test_split_naming_paths_is_refused(tmp_path, capsys):
    data = write_dataset(tmp_path / "data", n=3, shape=SHAPE)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"labeled": ["../../etc", "BraTS2021_00000"], "unlabeled": [], "val": []}))
    code, output = run_cli_output(
        ["train", data, "-o", tmp_path / "run", "--split", split, "--method", "supervised", "--preset", "tiny"], capsys
    )
    assert code == 2 and "../../etc" in output and "not found" in output and not (tmp_path / "run").exists()
