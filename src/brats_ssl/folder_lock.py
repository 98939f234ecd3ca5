"""One brats-ssl process per output folder: an exclusive lock on a run, experiment, predict or
export folder, taken before anything else is written into it.

A second process that asks for a held folder stops with exit code 2 and a message naming the folder
and the holder (pid, host, start time, command). A lock whose holder died (SIGKILL, out of memory,
power loss, reboot) is taken over, with a message that says whose it was.

Primitive: ``flock(2)`` (:func:`fcntl.flock`, exclusive, non-blocking) on ``FOLDER/.brats-ssl.lock``.
The kernel releases it when the holder's process ends in any way, so a dead holder never blocks a
folder, and the file records who holds it (pid, host, boot id, start time) for the messages. What
it guarantees where:

- one machine, local file system: exclusive among all processes; released at the holder's death.
- NFS (Linux client, NFSv3 with lockd or NFSv4): since Linux 2.6.12 ``flock`` on NFS is carried
  out as a whole-file POSIX lock by the server, so it is exclusive across clients too; the server
  releases a dead client's lock once the client reboots (NFSv3, statd) or its lease expires
  (NFSv4, about 90 s). Mounted with ``nolock`` (or ``local_lock=flock``) the lock is local to each
  client: two nodes could both take it. Within one node it still works, and a live holder that
  the record shows on this host and boot is refused even when the file system ignores the lock.
- file systems without locks (``flock`` fails with ENOLCK / EOPNOTSUPP, e.g. some FUSE mounts):
  the record alone decides, best effort: a holder on this host is alive if its pid runs with the
  same start time on the same boot; a holder on another host is taken to be alive (delete the lock
  file when you know it is not).

Why not an ``O_EXCL`` lock file: it survives its holder's death, so every SIGKILL would need a
liveness guess (and a holder on another node cannot be checked at all); ``flock`` needs none.
Why not ``lockf`` / ``fcntl(F_SETLK)``: POSIX locks are dropped when the process closes *any*
descriptor of the file, and a forked helper that inherits one cannot keep it alive on purpose.

Under ``torchrun``, rank 0 holds the lock and every rank gets its outcome (:func:`hold`). Locks on
different folders nest (``experiment`` holds its folder while each run holds its own); the same
folder locked twice by one process is counted, not refused.

The lock file is the one file not written through :mod:`brats_ssl.atomic`: a lock belongs to an
inode, so its file is written in place, never renamed over. It is removed when the lock is
released; a folder the lock itself created is removed too when nothing else was written into it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import inspect
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from brats_ssl.errors import BadInputError, output_error

LOCK_NAME = ".brats-ssl.lock"
# flock errors that mean "this file system has no locks", not "someone holds it".
UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL}

_held: dict[Path, "FolderLock"] = {}  # folders this process holds, for nested requests


class FolderBusyError(BadInputError):
    """Another live process holds the folder (exit code 2)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as recorded in the lock file."""

    pid: int
    host: str
    boot_id: str | None
    started: str  # local time with its UTC offset, for people
    process_start: int | None  # clock ticks after boot (/proc/<pid>/stat): tells a reused pid apart
    command: str

    @classmethod
    def this_process(cls) -> "Holder":
        pid = os.getpid()
        return cls(
            pid=pid,
            host=socket.gethostname(),
            boot_id=boot_id(),
            started=time.strftime("%Y-%m-%d %H:%M:%S %z"),
            process_start=process_start(pid),
            command=" ".join(["brats-ssl", *sys.argv[1:]])[:300],
        )

    @classmethod
    def parse(cls, raw: bytes) -> "Holder | None":
        try:
            values = json.loads(raw.decode("utf-8"))
            holder = cls(**{k: values.get(k) for k in cls.__dataclass_fields__})
        except (ValueError, TypeError, AttributeError):
            return None  # empty, or torn by a holder killed while writing it
        return holder if isinstance(holder.pid, int) and isinstance(holder.host, str) else None

    def describe(self) -> str:
        command = f", `{self.command}`" if self.command else ""
        return f"pid {self.pid} on host {self.host}, since {self.started}{command}"

    def alive(self) -> bool | None:
        """Whether the holder still runs: True / False on the host and boot that recorded it,
        False after a reboot of this host, None (unknown) for another host."""
        if self.host != socket.gethostname():
            return None
        if self.boot_id and boot_id() and self.boot_id != boot_id():
            return False
        try:
            os.kill(int(self.pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # someone else's process: it exists
        return self.process_start is None or process_start(int(self.pid)) in (None, self.process_start)

    def rebooted(self) -> bool:
        return self.host == socket.gethostname() and bool(self.boot_id and boot_id() and self.boot_id != boot_id())


def boot_id() -> str | None:
    """Linux's id of this boot: a lock recorded under another boot id on this host is dead."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def process_start(pid: int) -> int | None:
    """A process's start time in clock ticks after boot (field 22 of /proc/<pid>/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _print(console: Any, message: str) -> None:
    if console is not None:
        console.print(message, markup=False, highlight=False)
    else:
        print(message, file=sys.stderr)


class FolderLock:
    """Exclusive lock on ``folder`` (created when missing). Use :func:`hold` in commands."""

    def __init__(self, folder: str | Path, *, console: Any = None):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.console = console
        self.fd: int | None = None
        self.depth = 0
        self.outer: FolderLock | None = None  # the lock this process already held on the folder
        self.created: list[Path] = []  # folders made for the lock, removed on release if still empty
        self.taken_over: Holder | None = None  # the dead holder whose lock this one replaced

    # --- acquiring -------------------------------------------------------------------------
    def acquire(self) -> "FolderLock":
        key = self.folder.absolute()
        if key in _held:  # nested request for a folder this process holds: count it
            self.outer = _held[key]
            self.outer.depth += 1
            return self
        self._make_folder()  # an OSError names the folder; the command line maps it (read-only, full disk)
        try:
            self._lock()
        except OSError as error:
            self._remove_created()
            friendly = output_error(self.path, error, action="be locked")
            if friendly is None:
                raise
            raise friendly from error
        except BaseException:
            self._remove_created()
            raise
        self.depth = 1
        _held[key] = self
        return self

    def _make_folder(self) -> None:
        missing = []
        for folder in [self.folder, *self.folder.parents]:
            if folder.exists():
                break
            missing.append(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.created = missing  # deepest first

    def _lock(self) -> None:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                locked = self._flock(fd)
                if locked and not self._same_file(fd):
                    os.close(fd)  # the holder released and removed it meanwhile: lock the new one
                    continue
                previous = Holder.parse(os.pread(fd, 65536, 0))
                if previous is not None and previous.pid != os.getpid() and previous.alive() is not False:
                    # flock said free, or cannot lock here: the record decides. A live holder on this host
                    # (a file system that ignores flock), or any holder elsewhere when flock is unsupported.
                    if not locked or previous.alive():
                        raise self._busy(previous)
                self._write_record(fd)
            except BaseException:
                os.close(fd)
                raise
            self.fd = fd
            if previous is not None and previous.pid != os.getpid():
                self.taken_over = previous
                why = "the machine restarted since" if previous.rebooted() else "it ended without releasing it"
                _print(
                    self.console,
                    f"folder {self.folder}: taking over the lock of {previous.describe()}; "
                    f"{why}. Its files are checked and resumed as after any interruption.",
                )
            return

    def _flock(self, fd: int) -> bool:
        """True when this process now holds the flock; False when the file system has no locks."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            holder = Holder.parse(os.pread(fd, 65536, 0))
            raise self._busy(holder) from None
        except OSError as error:
            if error.errno in UNSUPPORTED:
                return False
            raise

    def _same_file(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def _write_record(self, fd: int) -> None:
        record = json.dumps(asdict(Holder.this_process()), indent=1).encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        os.fsync(fd)

    def _busy(self, holder: Holder | None) -> FolderBusyError:
        if holder is None:
            who = "another process (its record is unreadable)"
        else:
            who = holder.describe()
            if holder.alive() is False:  # the flock is held although the recorded pid is gone
                who += "; that process has ended, but a process it started still holds the lock"
        return FolderBusyError(
            f"folder {self.folder}: in use by another brats-ssl process ({who}); two processes writing one "
            f"folder would corrupt it. Wait for it to finish or stop it, or choose another output folder "
            f"(lock file {self.path})"
        )

    # --- releasing -------------------------------------------------------------------------
    def release(self) -> None:
        if self.outer is not None:
            self.outer.release()
            self.outer = None
            return
        if self.fd is None:
            return
        self.depth -= 1
        if self.depth > 0:
            return
        _held.pop(self.folder.absolute(), None)
        try:
            if self._same_file(self.fd):
                self.path.unlink()  # while still holding it: a waiter then finds no file or a new one
        except OSError:
            pass
        finally:
            os.close(self.fd)  # releases the flock
            self.fd = None
        self._remove_created()

    def _remove_created(self) -> None:
        """Remove the folders made for the lock if nothing was written into them (bad input)."""
        for folder in self.created:
            try:
                folder.rmdir()
            except OSError:
                break
        self.created = []

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def hold(folder: str | Path, *, console: Any = None) -> Iterator[None]:
    """Hold ``folder``'s lock for a command. Under ``torchrun`` rank 0 holds it and every rank
    fails alike when it cannot (so no rank waits at a barrier for one that stopped)."""
    from brats_ssl.engine import distributed

    if not distributed.active():
        with FolderLock(folder, console=console):
            yield
        return
    lock, failure, problem = None, None, None
    if distributed.is_main():
        try:
            lock = FolderLock(folder, console=console).acquire()
        except Exception as error:  # noqa: BLE001 - every rank must learn of it, or they wait at a barrier
            failure, problem = error, (type(error).__name__, str(error))
    problem = distributed.broadcast_object(problem)
    if failure is not None:
        raise failure
    if problem is not None:
        kind, message = problem
        kinds = {"FolderBusyError": FolderBusyError, "OutputError": BadInputError, "BadInputError": BadInputError}
        raise kinds.get(kind, RuntimeError)(f"{message} (rank 0 could not lock the folder)")
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def locks(parameter: str) -> Callable:
    """Decorator: hold the lock of the folder passed as ``parameter`` while the function runs
    (the function's ``console`` argument, if any, shows a takeover)."""

    def decorate(function: Callable) -> Callable:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def locked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            with hold(Path(bound.arguments[parameter]), console=bound.arguments.get("console")):
                return function(*args, **kwargs)

        return locked

    return decorate
