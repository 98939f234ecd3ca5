"""Scale-out with torch.distributed (gloo, 2 CPU processes): identical weights on every rank after
DDP steps; sharded pseudo-labeling and prediction equal to one process's; one global batch for any N."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from brats_ssl.cli import main
from brats_ssl.config import preset
from brats_ssl.data.batches import LABELED, UNLABELED, BatchBuilder, Pool
from brats_ssl.data.sampling import TrainItem
from brats_ssl.engine.distributed import DistEnv, require_divisible
from brats_ssl.errors import BadInputError

from conftest import TINY_RUN, synthetic_case, write_dataset

TINY = TINY_RUN + ["--set", "train.log_every=1"]


def _items(n: int) -> list[TrainItem]:
    items = []
    for seed in range(n):
        image, labels = synthetic_case((32, 32, 32), seed)
        image = image.astype(np.float32)
        items.append(
            TrainItem(f"c{seed}", ((image - image.mean()) / image.std()).astype(np.float16), {"label": labels})
        )
    return items


def _builder(items, *, batch_size=4, rank=0, world=1) -> BatchBuilder:
    pools = [Pool(items[:2], batch_size // 2, LABELED), Pool(items[2:], batch_size - batch_size // 2, UNLABELED)]
    return BatchBuilder(
        pools,
        patch_size=(32, 32, 32),
        foreground_fraction=0.5,
        augment=True,
        seed=0,
        stream="dist",
        rank=rank,
        world=world,
    )


def test_global_batch_is_the_same_for_any_number_of_processes():
    items = _items(3)
    whole = _builder(items)(5)
    for rank in range(2):
        part = _builder(items, rank=rank, world=2)(5)
        for key, value in whole.items():
            assert torch.equal(part[key], value[rank::2]), key
        assert part["kind"].tolist() == [LABELED, UNLABELED]  # each rank gets the batch's mix of kinds
    assert not torch.equal(whole["image"][0], whole["image"][1])
    with pytest.raises(BadInputError, match="batch_size"):
        _builder(items, batch_size=3, rank=0, world=2)


def test_dist_env_reads_torchrun_variables():
    assert DistEnv.from_environ({}) == DistEnv(rank=0, world=1, local_rank=0, local_world=1)
    env = DistEnv.from_environ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert env == DistEnv(rank=3, world=4, local_rank=1, local_world=2)
    with pytest.raises(BadInputError, match="RANK"):
        DistEnv.from_environ({"RANK": "4", "WORLD_SIZE": "4"})


def test_global_batch_must_split_evenly_over_the_processes(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    require_divisible(4)
    with pytest.raises(BadInputError, match="train.batch_size: 3 is the global batch.*multiple of 2"):
        require_divisible(3)


# --- two processes ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_worker(rank: int, world: int, port: int, out: str) -> None:
    """One rank of a mean-teacher run on the engine; saves what this rank ends with."""
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    from brats_ssl.engine import distributed
    from brats_ssl.engine.trainer import Trainer
    from brats_ssl.run.model import build_model
    from brats_ssl.ssl.losses import ConsistencyLoss, EMATeacher

    with distributed.session(torch.device("cpu")):
        config = preset("tiny")
        config.train.log_every = 1
        torch.manual_seed(rank)  # different initial weights: DDP must start every rank from rank 0's
        model = build_model(config)
        teacher = EMATeacher(model, 0.9)
        loss = ConsistencyLoss(teacher=teacher, output="dice_ce", weight=1.0, rampup_steps=0, total_steps=3)
        builder = _builder(_items(3), rank=rank, world=world)
        seen = []

        def batches(start, stop):
            for step in range(start, stop):
                batch = builder(step)
                seen.append(batch["image"].sum().item())
                yield batch

        trainer = Trainer(
            model=model,
            loss_fn=loss,
            batches=batches,
            out_dir=Path(out) / "run",
            steps=3,
            config=config.train,
            device=torch.device("cpu"),
            seed=0,
            hooks=[teacher],
        )
        trainer.fit()
        torch.save(
            {"model": model.state_dict(), "ema": teacher.model.state_dict(), "seen": seen}, Path(out) / f"rank{rank}.pt"
        )


def test_ddp_steps_leave_identical_weights_on_every_rank(tmp_path):
    torch.multiprocessing.spawn(_train_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert ranks[0]["seen"] != ranks[1]["seen"]  # the ranks trained on different samples
    initial = _initial_weights()
    saved = torch.load(tmp_path / "run" / "checkpoint_last.pt")
    for key, value in ranks[0]["model"].items():
        assert torch.equal(value, ranks[1]["model"][key]), key
        assert torch.equal(value, saved["model"][key]), key
    for key, value in ranks[0]["ema"].items():
        assert torch.equal(value, ranks[1]["ema"][key]), key
    assert any(not torch.equal(v, initial[k]) for k, v in ranks[0]["model"].items())  # it did train
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]  # logged by rank 0 alone, averaged over ranks


def _initial_weights() -> dict:
    from brats_ssl.run.model import build_model

    torch.manual_seed(0)
    return build_model(preset("tiny")).state_dict()


def torchrun(*args, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(nproc),
        "-m",
        "brats_ssl",
        *map(str, args),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def run_cli(*args) -> int:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun process: bit-identical inference
    try:
        with pytest.raises(SystemExit) as stop:
            main([str(a) for a in args])
    finally:
        torch.set_num_threads(threads)
    return stop.value.code


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    data = write_dataset(root / "data", "brats2021", n=5, unlabeled=4, shape=(24, 28, 20))
    ids = sorted(p.name for p in data.iterdir() if p.is_dir())
    split = {"labeled": ids[:3], "val": ids[3:5], "unlabeled": ids[5:]}
    (root / "split.json").write_text(json.dumps(split))
    return root, data, root / "split.json"


@pytest.fixture(scope="module")
def one(cohort) -> Path:
    """The reference: the method trained by one process."""
    root, data, split = cohort
    run = root / "one"
    assert run_cli("train", data, "-o", run, "--split", split, "--method", "ours", *TINY) == 0
    return run


def _arrays(folder: Path, pattern: str = "*.npy") -> dict[str, np.ndarray]:
    load = np.load if pattern.endswith(".npy") else (lambda p: np.asarray(nib.load(str(p)).dataobj))
    return {p.name: load(p) for p in sorted(folder.glob(pattern))}


def test_two_processes_pseudo_label_like_one_and_resume_only_missing_cases(cohort, one):
    root, data, split = cohort
    two = root / "two"
    shutil.copytree(one, two)
    for name in ("stage_1", "stage_2", "pseudo/round_1", "summary.json", "stages.json"):
        shutil.rmtree(two / name) if (two / name).is_dir() else (two / name).unlink()
    round_0 = sorted(p.name for p in (one / "pseudo" / "round_0").iterdir() if p.is_dir())
    assert len(round_0) == 4
    kept = two / "pseudo" / "round_0" / round_0[0]
    kept_mtime = (kept / "label.npy").stat().st_mtime_ns
    for case in round_0[1:]:
        shutil.rmtree(two / "pseudo" / "round_0" / case)

    result = torchrun("train", data, "-o", two, "--split", split, "--method", "ours", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("summary: ") == 1  # one console: rank 0's

    assert sorted(p.name for p in (two / "pseudo" / "round_0").iterdir() if p.is_dir()) == round_0
    assert (kept / "label.npy").stat().st_mtime_ns == kept_mtime  # present cases are not redone
    for case in round_0:
        a, b = _arrays(one / "pseudo" / "round_0" / case), _arrays(two / "pseudo" / "round_0" / case)
        assert a.keys() == b.keys() and "probabilities.npy" in a
        for name in a:
            assert np.array_equal(a[name], b[name]), (case, name)
        info_a, info_b = (json.loads((r / "pseudo" / "round_0" / case / "info.json").read_text()) for r in (one, two))
        assert {**info_a, "seconds": 0} == {**info_b, "seconds": 0}
    for folder in (two / "pseudo" / "round_1", two / "stage_1" / "student_pseudo"):
        assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == round_0  # each case once, by some rank
    rows = [json.loads(line) for line in (two / "stage_1" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 3]  # losses at each step, then the val row: written once
    summary = json.loads((two / "summary.json").read_text())
    assert len(summary["stages"]) == 2
    assert [c["case"] for c in summary["student"]["per_case"]] == json.loads(split.read_text())["val"]


def test_two_processes_predict_like_one_and_resume_only_missing_cases(cohort, one, tmp_path):
    _, data, _ = cohort
    options = ["--mc", "2", "--save-uncertainty"]
    assert run_cli("predict", one, data, "-o", tmp_path / "one", *options) == 0
    reference = _arrays(tmp_path / "one", "*.nii.gz")
    assert len(reference) == 9 * 3
    two = tmp_path / "two"
    shutil.copytree(tmp_path / "one", two)
    cases = sorted(p.name for p in data.iterdir() if p.is_dir())
    for case in cases[:3]:  # one rank predicts two of them, the other one
        for path in two.glob(f"{case}*.nii.gz"):
            path.unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in two.glob("*.nii.gz")}
    result = torchrun("predict", one, data, "-o", two, *options)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "6 case(s) already predicted" in result.stdout and result.stdout.count("wrote 9 segmentations") == 1
    assert {p.name: p.stat().st_mtime_ns for p in two.glob("*.nii.gz") if p.name in kept} == kept
    written = _arrays(two, "*.nii.gz")
    assert written.keys() == reference.keys()
    for name, value in reference.items():
        assert np.array_equal(written[name], value), name
    # other settings: nothing stale is kept
    before = {p.name: p.stat().st_mtime_ns for p in two.glob("*.nii.gz")}
    assert run_cli("predict", one, data, "-o", two, "--mc", "3", "--save-uncertainty") == 0
    assert all(p.stat().st_mtime_ns > before[p.name] for p in two.glob("*.nii.gz"))
