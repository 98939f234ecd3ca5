"""One process per output folder: a real second process is refused with exit 2 naming the holder,
a holder killed with SIGKILL (or gone with a reboot) is taken over, locks nest, torchrun ranks
agree, and two real `brats-ssl train` launches on one folder leave one clean run."""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from brats_ssl import folder_lock
from brats_ssl.errors import BadInputError
from brats_ssl.folder_lock import LOCK_NAME, FolderBusyError, FolderLock, Holder

# A process that takes the lock, says so, and waits to be killed.
HOLD = (
    "import sys, time; from brats_ssl.folder_lock import FolderLock; FolderLock(sys.argv[1]).acquire(); "
    "print('held', flush=True); time.sleep(600)"
)
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


class Console:
    """Collects what the lock prints."""

    def __init__(self):
        self.lines: list[str] = []

    def print(self, text, **_):
        self.lines.append(str(text))


@pytest.fixture
def holder(tmp_path):
    """Start a real process holding ``tmp_path / 'run'``; yields (process, folder)."""
    processes = []

    def start(folder: Path) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True, env=ENV
        )
        processes.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def cli(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "brats_ssl", *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout
    )


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_second_process_is_refused_then_a_killed_holder_is_taken_over(tmp_path, tiny_dataset, holder):
    run = tmp_path / "run"
    first = holder(run)
    record = json.loads((run / LOCK_NAME).read_text())
    assert record["pid"] == first.pid and record["host"] == socket.gethostname()

    refused = cli("train", tiny_dataset, "-o", run, "--preset", "tiny", "--method", "supervised")
    message = one_line(refused.stderr)
    assert refused.returncode == 2, refused.stderr
    assert f"folder {run}" in message and "in use by another brats-ssl process" in message
    assert f"pid {first.pid} on host {socket.gethostname()}, since {record['started']}" in message
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # the refused process wrote nothing

    first.kill()  # SIGKILL: no chance to release anything
    first.wait()
    console = Console()
    with FolderLock(run, console=console) as lock:
        assert lock.taken_over is not None and lock.taken_over.pid == first.pid
        assert json.loads((run / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert len(console.lines) == 1
    assert f"taking over the lock of pid {first.pid}" in console.lines[0]
    assert "ended without releasing it" in console.lines[0]
    assert not (run / LOCK_NAME).exists()  # released: the file goes with it


def test_predict_and_pseudolabel_outputs_and_experiments_are_locked_too(tmp_path, tiny_dataset, holder):
    from conftest import make_untrained_run

    run = make_untrained_run(tmp_path / "run")
    out = tmp_path / "out"
    first = holder(out)
    for args in (
        ["predict", run, tiny_dataset, "-o", out],
        ["pseudolabel", run, tiny_dataset, "-o", out],
        ["experiment", tiny_dataset, "-o", out, "--preset", "tiny"],
    ):
        result = cli(*args)
        assert result.returncode == 2, result.stderr
        assert f"pid {first.pid}" in one_line(result.stderr), args
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]


def test_a_lock_left_by_a_previous_boot_is_taken_over(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    stale = Holder(
        pid=1,
        host=socket.gethostname(),
        boot_id="another-boot",
        started="2026-01-01 00:00:00 +0000",
        process_start=1,
        command="brats-ssl train",
    )
    (run / LOCK_NAME).write_text(json.dumps(stale.__dict__))
    console = Console()
    with FolderLock(run, console=console) as lock:
        assert lock.taken_over == stale
    assert "pid 1" in console.lines[0] and "the machine restarted since" in console.lines[0]


def test_without_working_flock_the_record_decides(tmp_path, holder, monkeypatch):
    live = holder(tmp_path / "live")  # a live holder on this host
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    (tmp_path / "dead").mkdir()
    dead_record = Holder.this_process().__dict__ | {"pid": int(dead), "process_start": 1}
    (tmp_path / "dead" / LOCK_NAME).write_text(json.dumps(dead_record))
    (tmp_path / "elsewhere").mkdir()
    elsewhere = Holder.this_process().__dict__ | {"host": "node-17", "pid": 4242}
    (tmp_path / "elsewhere" / LOCK_NAME).write_text(json.dumps(elsewhere))

    def ignored(fd, operation):  # a file system on which flock "succeeds" without locking anything
        return None

    def unsupported(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    for fake in (ignored, unsupported):
        monkeypatch.setattr(folder_lock.fcntl, "flock", fake)
        with pytest.raises(FolderBusyError, match=f"pid {live.pid} on host"):
            FolderLock(tmp_path / "live").acquire()
    with FolderLock(tmp_path / "dead", console=Console()) as lock:  # flock unsupported, holder dead: taken
        assert lock.taken_over.pid == int(dead)
    with pytest.raises(FolderBusyError, match="pid 4242 on host node-17"):  # cannot be checked: assumed alive
        FolderLock(tmp_path / "elsewhere").acquire()
    monkeypatch.setattr(folder_lock.fcntl, "flock", ignored)
    with FolderLock(tmp_path / "elsewhere", console=Console()) as lock:  # flock works: its word counts
        assert lock.taken_over.host == "node-17"


def test_locks_nest_and_a_folder_made_for_nothing_is_removed(tmp_path):
    experiment, run = tmp_path / "exp", tmp_path / "exp" / "runs" / "ours"
    with FolderLock(experiment):
        with FolderLock(run):  # another folder: its own lock
            assert (run / LOCK_NAME).exists() and (experiment / LOCK_NAME).exists()
            with FolderLock(run):  # the same folder again in this process: counted, not refused
                pass
            assert (run / LOCK_NAME).exists()
        assert not (run / LOCK_NAME).exists()
        assert not (experiment / "runs").exists()  # made for the lock only, nothing written: removed
        (experiment / "results.csv").write_text("x")
    assert sorted(p.name for p in experiment.iterdir()) == ["results.csv"]
    with pytest.raises(BadInputError):
        with folder_lock.hold(tmp_path / "bad"):
            raise BadInputError("bad input found after the lock was taken")
    assert not (tmp_path / "bad").exists()


def test_under_torchrun_every_rank_is_refused_when_rank_0_cannot_lock(tmp_path, holder):
    from conftest import make_untrained_run, write_dataset

    data = write_dataset(tmp_path / "data", n=2, shape=(12, 14, 10))
    run = make_untrained_run(tmp_path / "run")
    first = holder(tmp_path / "out")
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "brats_ssl",
            "predict",
            str(run),
            str(data),
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    output = one_line(result.stdout + result.stderr)
    assert result.returncode != 0 and time.perf_counter() - started < 120  # nobody waits for a barrier
    assert output.count(f"pid {first.pid}") == 2, output[-3000:]  # both ranks fail with rank 0's message


@pytest.mark.slow
def test_two_train_launches_on_one_folder_leave_one_clean_run(tmp_path, tiny_dataset):
    """The issue's scenario: the same `brats-ssl train` started twice. The second exits 2 at once;
    the first trains alone, so every step is logged once. Its files are 0644 under umask 022.
    60 steps: the first still trains when the second, started once the first holds the lock, has
    imported torch (about 5 s here) and asks for it."""
    run = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "brats_ssl",
        "train",
        str(tiny_dataset),
        "-o",
        str(run),
        "--preset",
        "tiny",
        "--method",
        "supervised",
        "--steps",
        "60",
        "--set",
        "train.log_every=1",
        "--set",
        "train.val_every=30",
    ]
    umask_022 = lambda: os.umask(0o022)  # noqa: E731
    first = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, preexec_fn=umask_022
    )
    try:
        deadline = time.monotonic() + 120

        def holder_pid():
            return json.loads((run / LOCK_NAME).read_text() or "{}").get("pid") if (run / LOCK_NAME).exists() else None

        while holder_pid() != first.pid:
            assert time.monotonic() < deadline and first.poll() is None, first.stdout.read() if first.poll() else ""
            time.sleep(0.05)
        second = subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=300, preexec_fn=umask_022)
        output = first.communicate(timeout=300)[0]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert second.returncode == 2 and f"pid {first.pid}" in one_line(second.stderr), second.stderr
    assert first.returncode == 0, output[-3000:]
    steps = [
        row["step"]
        for row in map(json.loads, (run / "teacher" / "metrics.jsonl").read_text().splitlines())
        if "loss" in row
    ]
    assert steps == list(range(1, 61))
    assert not (run / LOCK_NAME).exists()
    modes = {str(p.relative_to(run)): oct(stat.S_IMODE(p.stat().st_mode)) for p in [run, *run.rglob("*")]}
    expected = {name: oct(0o755 if (run / name).is_dir() else 0o644) for name in modes}
    assert modes == expected
