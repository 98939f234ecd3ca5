"""Crash safety: atomic files, orphan cleanup, and a training run SIGKILLed at several moments that
resumes to the same result as an uninterrupted one, with no file lost, torn or left behind.

The kill test runs this file as a driver process (``python test_crash_safety.py drive ...``): it
imports the package once, then forks ``brats-ssl train`` processes (``cli.main``), so each of
the many restarts costs no interpreter start-up. The killed processes are real processes killed
with SIGKILL while they write; the test then inspects what they left on disk.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from brats_ssl import atomic

HERE = Path(__file__).resolve().parent
TRAIN = [
    "--method",
    "ours",
    "--preset",
    "tiny",
    "--steps",
    "6",
    "--set",
    "ssl.stages=2",
    "--set",
    "inference.mc_samples=2",
    "--set",
    "train.val_every=3",
    "--seed",
    "3",
]
# The moments to kill at, in pipeline order: the first file each step writes (polled every 2 ms).
KILL_MOMENTS = [
    ("teacher training (after its first validation)", "teacher/metrics.jsonl"),
    ("teacher pseudo-labelling (one of two cases done)", "pseudo/round_0/*/info.json"),
    ("stage 1 training (after its first checkpoint)", "stage_1/checkpoint_last.pt"),
    ("refinement of round 1 (after the student's MC labels)", "pseudo/round_1/*/info.json"),
    ("stage 2 training (after its first validation)", "stage_2/metrics.jsonl"),
]


# --- atomic writes ---------------------------------------------------------------------------


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    atomic.write_json(target, {"version": 1})

    def half_then_crash(tmp: Path) -> None:
        tmp.write_text('{"version": 2, "trunc')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic.write_with(target, half_then_crash)
    assert json.loads(target.read_text()) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_folder_written_atomically_replaces_or_keeps_the_first(tmp_path):
    target = tmp_path / "case"
    with atomic.atomic_folder(target) as tmp:
        np.save(tmp / "a.npy", np.arange(3))
    with pytest.raises(ValueError):
        with atomic.atomic_folder(target) as tmp:
            np.save(tmp / "a.npy", np.arange(5))
            raise ValueError("crash before the rename")
    assert np.load(target / "a.npy").tolist() == [0, 1, 2]  # the interrupted version never appears
    with atomic.atomic_folder(target) as tmp:
        np.save(tmp / "b.npy", np.ones(2))
    assert sorted(p.name for p in target.iterdir()) == ["b.npy"]  # replaced as a whole
    with pytest.raises(OSError):  # first writer wins: a cache entry another process finished is kept
        with atomic.atomic_folder(target, replace=False) as tmp:
            np.save(tmp / "c.npy", np.ones(2))
    assert sorted(p.name for p in target.iterdir()) == ["b.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]


def test_clean_orphans_removes_temporary_files_and_folders_only(tmp_path):
    keep = [tmp_path / "a.json", tmp_path / ".hidden_config", tmp_path / "sub" / "b.npy"]
    for path in keep:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    orphans = [tmp_path / ".a.json.k3j2.tmp", tmp_path / "sub" / ".checkpoint_last.pt.x1.tmp.pt"]
    for path in orphans:
        path.write_text("half")
    orphan_folder = tmp_path / "sub" / ".BraTS_1.abcd.tmp"
    orphan_folder.mkdir()
    (orphan_folder / "label.npy").write_text("half")
    assert atomic.clean_orphans(tmp_path) == 3
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(keep)
    assert atomic.clean_orphans(tmp_path / "missing") == 0


def test_torn_log_line_is_skipped(tmp_path):
    log = tmp_path / "metrics.jsonl"
    atomic.append_line(log, json.dumps({"step": 1}))
    with open(log, "a") as handle:
        handle.write('{"step": 2, "lo')  # the process died inside this write
    assert atomic.read_jsonl(log) == [{"step": 1}]


def test_damaged_cache_entry_is_rebuilt(tmp_path):
    from brats_ssl.data.cache import PreprocessCache
    from brats_ssl.data.dataset import open_dataset
    from brats_ssl.data.preprocess import PreprocessParams

    from conftest import write_dataset

    case = open_dataset(write_dataset(tmp_path / "data", n=1, shape=(12, 14, 10))).cases[0]
    cache = PreprocessCache(PreprocessParams(), tmp_path / "cache")
    first = np.array(cache.get(case).image)
    entry = cache.entry_dir(case)
    (entry / "image.npy").write_bytes((entry / "image.npy").read_bytes()[:100])  # torn by a crash
    again = PreprocessCache(PreprocessParams(), tmp_path / "cache")
    assert np.array_equal(np.array(again.get(case).image), first)
    assert (again.hits, again.misses) == (0, 1)
    assert not [p for p in (tmp_path / "cache").rglob("*") if atomic.is_temporary(p)]


def test_resumed_metrics_log_equals_an_uninterrupted_one(tmp_path):
    import torch

    from brats_ssl.config import preset
    from brats_ssl.data.batches import LABELED, BatchBuilder, Pool, batch_loader
    from brats_ssl.data.sampling import TrainItem
    from brats_ssl.engine.trainer import Trainer
    from brats_ssl.run.model import build_model
    from brats_ssl.run.phase import supervised_loss_fn

    from conftest import synthetic_case

    image, labels = synthetic_case((16, 16, 16), 0)
    item = TrainItem("c0", image.astype(np.float16), {"label": labels})
    config = preset("tiny").train
    config.log_every, config.augment = 2, False
    builder = BatchBuilder(
        [Pool([item], 1, LABELED)], patch_size=(32, 32, 32), foreground_fraction=0.5, augment=False, seed=0, stream="t"
    )

    def fit(out: Path, kill_at: int | None = None) -> None:
        def batches(start, stop):
            for step, batch in zip(range(start, stop), batch_loader(builder, start, stop, 0)):
                if step == kill_at:
                    raise KeyboardInterrupt
                yield batch

        torch.manual_seed(0)
        Trainer(
            model=build_model(preset("tiny")),
            loss_fn=supervised_loss_fn("dice_ce"),
            batches=batches,
            out_dir=out,
            steps=6,
            config=config,
            device=torch.device("cpu"),
            seed=0,
            checkpoint_every=3,
        ).fit()

    fit(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "killed", kill_at=2)  # row of step 2 logged, no checkpoint yet
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "killed", kill_at=4)  # checkpoint at 3, row of step 4 logged
    fit(tmp_path / "killed")
    assert atomic.read_jsonl(tmp_path / "killed" / "metrics.jsonl") == atomic.read_jsonl(
        tmp_path / "whole" / "metrics.jsonl"
    )


# --- SIGKILL during `brats-ssl train --method ours` ----------------------------------------------


def _drive(data: Path, base: Path, killed: Path, report: Path) -> None:
    """Driver process: an uninterrupted run beside a run killed at each moment, then resumed."""
    import brats_ssl.pipeline  # noqa: F401 - the heavy imports, done once before forking
    import brats_ssl.ssl.ours  # noqa: F401
    import brats_ssl.ssl.teacher  # noqa: F401
    from brats_ssl import cli

    def start(run: Path, log: Path) -> int:
        pid = os.fork()
        if pid == 0:  # the child is `brats-ssl train ...`
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            try:
                cli.main(["train", str(data), "-o", str(run), *TRAIN])
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return pid

    def exit_status(status: int) -> str:
        return f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"

    began = time.perf_counter()
    baseline = start(base, base.parent / "base.log")
    kills = []
    for moment, pattern in KILL_MOMENTS:
        pid = start(killed, killed.parent / "killed.log")
        status = None
        while status is None and not any(killed.glob(pattern)):
            done, raw = os.waitpid(pid, os.WNOHANG)
            status = raw if done else None
            time.sleep(0.002)
        if status is None:
            os.kill(pid, signal.SIGKILL)
            status = os.waitpid(pid, 0)[1]
        kills.append(
            {
                "moment": moment,
                "file": pattern,
                "status": exit_status(status),
                "seconds": round(time.perf_counter() - began, 1),
            }
        )
    final = exit_status(os.waitpid(start(killed, killed.parent / "killed.log"), 0)[1])
    base_status = exit_status(os.waitpid(baseline, 0)[1])
    report.write_text(
        json.dumps(
            {"kills": kills, "final": final, "baseline": base_status, "seconds": round(time.perf_counter() - began, 1)}
        )
    )


def _check_loads(path: Path) -> None:
    """Read the whole file the way the project reads it; raises on a torn or corrupt file."""
    name = path.name
    if name.endswith(".npy"):
        np.load(path).sum()
    elif name.endswith(".pt"):
        from brats_ssl.engine.checkpoint import load_checkpoint

        load_checkpoint(path)
    elif name.endswith(".jsonl"):
        for line in path.read_text().splitlines():
            json.loads(line)
    elif name.endswith(".json"):
        json.loads(path.read_text())
    elif name.endswith(".nii.gz"):
        import nibabel as nib

        np.asarray(nib.load(str(path)).dataobj)
    elif name.endswith(".png"):
        import matplotlib.image

        assert matplotlib.image.imread(path).size > 0
    elif name.endswith(".csv"):
        assert list(csv.reader(path.open()))
    elif name.endswith(".yaml"):
        import yaml

        assert yaml.safe_load(path.read_text())
    else:
        raise AssertionError(f"unexpected file {path}")


def _same_content(a: Path, b: Path) -> bool:
    """Deterministic content equal (timings and the record of the processes that ran, one more
    after a kill, in done.json / info.json aside)."""
    name = a.name
    if name.endswith(".npy"):
        return np.array_equal(np.load(a), np.load(b))
    if name.endswith(".pt"):
        import torch

        from brats_ssl.engine.checkpoint import load_checkpoint

        x, y = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
        return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    if name.endswith(".nii.gz"):
        import nibabel as nib

        return np.array_equal(np.asarray(nib.load(str(a)).dataobj), np.asarray(nib.load(str(b)).dataobj))
    if name in ("done.json", "info.json"):
        strip = lambda p: {k: v for k, v in json.loads(p.read_text()).items() if k not in ("seconds", "ran_on")}  # noqa: E731
        return strip(a) == strip(b)
    if name == "metrics.jsonl":
        return [json.loads(line) for line in a.read_text().splitlines()] == [
            json.loads(line) for line in b.read_text().splitlines()
        ]
    if name.endswith(".png"):
        return True  # drawn from metrics.jsonl, compared above
    return a.read_bytes() == b.read_bytes()


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory):
    from conftest import write_dataset

    root = tmp_path_factory.mktemp("crash")
    data = write_dataset(root / "data", "brats2021", n=4, unlabeled=2, shape=(24, 28, 20))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "BRATS_SSL_CACHE": str(root / "cache"),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    report = root / "report.json"
    subprocess.run(
        [sys.executable, __file__, "drive", str(data), str(root / "base"), str(root / "killed"), str(report)],
        env=env,
        check=True,
        timeout=600,
    )
    return root, json.loads(report.read_text())


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result_with_nothing_lost(killed_runs):
    root, report = killed_runs
    base, killed = root / "base", root / "killed"
    logs = (root / "killed.log").read_text(errors="replace")
    killed_moments = [k for k in report["kills"] if k["status"] == f"signal {int(signal.SIGKILL)}"]
    assert len(killed_moments) >= 5, (report, logs[-3000:])
    assert report["final"] == "exit 0" and report["baseline"] == "exit 0", (report, logs[-3000:])

    base_summary = json.loads((base / "summary.json").read_text())
    killed_summary = json.loads((killed / "summary.json").read_text())
    assert killed_summary == base_summary  # every number, per case and per stage
    assert killed_summary["mean"]["WT"]["dice"] is not None and len(killed_summary["stages"]) == 2

    files = {p.relative_to(killed) for p in killed.rglob("*") if p.is_file()}
    base_files = {p.relative_to(base) for p in base.rglob("*") if p.is_file()}
    assert not [p for p in killed.rglob("*") if atomic.is_temporary(p)]  # no orphaned temporary
    assert files == base_files  # nothing lost, nothing extra
    for relative in sorted(files):
        _check_loads(killed / relative)
        assert _same_content(base / relative, killed / relative), relative


if __name__ == "__main__" and sys.argv[1:2] == ["drive"]:
    _drive(*(Path(arg) for arg in sys.argv[2:6]))
