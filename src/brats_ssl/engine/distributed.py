"""Scale-out with ``torchrun``: which process this is, the process group, and the few collectives
the pipeline needs.

``torchrun --nproc_per_node N -m brats_ssl train ...`` starts the command line on every rank with
RANK / WORLD_SIZE / LOCAL_RANK set; :func:`session` joins the process group (NCCL on GPUs, gloo on
CPUs). In one process (no WORLD_SIZE, or WORLD_SIZE=1) no group is started and every function here
is a plain no-op, so single-process runs keep their behaviour and cost.

Example::

    with distributed.session(torch.device("cpu")) as device:
        mine = distributed.shard(cases)                  # case i goes to rank i % N
        results = distributed.gather_sharded([f(c) for c in mine], len(cases))  # all, in order
        if distributed.is_main():
            write(results)
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence, TypeVar

import torch
from torch import distributed as dist
from torch import nn

from brats_ssl.errors import BadInputError

T = TypeVar("T")
# A rank that never reaches a collective (it crashed outside torchrun, say) fails the others after this.
TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class DistEnv:
    """This process as the launcher describes it (torchrun's environment variables)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> "DistEnv":
        def number(name: str, default: int) -> int:
            raw = environ.get(name, "")
            if raw == "":
                return default
            try:
                return int(raw)
            except ValueError as error:
                raise BadInputError(
                    f"environment variable {name}={raw!r}: expected an integer (torchrun sets it)"
                ) from error

        world = number("WORLD_SIZE", 1)
        rank = number("RANK", 0)
        local_world = number("LOCAL_WORLD_SIZE", world)
        local_rank = number("LOCAL_RANK", rank if local_world == world else 0)
        if world < 1 or not 0 <= rank < world or not 0 <= local_rank < max(local_world, 1):
            raise BadInputError(
                f"RANK={rank}, LOCAL_RANK={local_rank}, WORLD_SIZE={world}: inconsistent; "
                "start the command with torchrun"
            )
        return cls(rank=rank, world=world, local_rank=local_rank, local_world=local_world)


def active() -> bool:
    """Whether this process is one of several in a process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0: the one process that writes shared files and prints."""
    return rank() == 0


def local_device(device: torch.device, env: DistEnv) -> torch.device:
    """One GPU per process: ``cuda:LOCAL_RANK``; CPUs are shared as they are."""
    if device.type != "cuda" or env.world == 1:
        return device
    count = torch.cuda.device_count()
    if env.local_rank >= count:
        raise BadInputError(
            f"LOCAL_RANK {env.local_rank}: this node has {count} GPU(s); start at most {count} "
            "processes per node (torchrun --nproc_per_node)"
        )
    device = torch.device("cuda", env.local_rank)
    torch.cuda.set_device(device)
    return device


@contextlib.contextmanager
def session(device: torch.device) -> Iterator[torch.device]:
    """Join torchrun's process group for one command and yield this rank's device.

    The group is left when the command succeeds. After an exception it is left alone: the process
    exits, which ends the other ranks' collectives (torchrun also stops them).
    """
    env = DistEnv.from_environ()
    device = local_device(device, env)
    if env.world == 1 or (dist.is_available() and dist.is_initialized()):  # one process, or already joined
        yield device
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        dist.init_process_group(backend=backend, timeout=TIMEOUT)
    except ValueError as error:  # env:// without MASTER_ADDR / MASTER_PORT
        raise BadInputError(
            f"WORLD_SIZE={env.world} but no rendezvous ({error}); start the command with torchrun"
        ) from error
    yield device
    dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank gets here (e.g. until rank 0 has written a file the others read)."""
    if not active():
        return
    if dist.get_backend() == "nccl":  # name this rank's GPU rather than let NCCL guess it
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def all_gather_object(obj: T) -> list[T]:
    """Every rank's ``obj`` (picklable), indexed by rank, on every rank."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: T) -> T:
    """Rank 0's ``obj`` on every rank: one view of state that other ranks might see change."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard(items: Sequence[T], *, per_node: bool = False) -> list[T]:
    """This rank's share of ``items``, round-robin by index (item i goes to rank i % N).

    ``per_node``: share among the ranks of this node only (work whose result stays on the node,
    such as a node-local preprocessing cache).
    """
    if not active():
        return list(items)
    if per_node:
        env = DistEnv.from_environ()
        return list(items[env.local_rank :: env.local_world])
    return list(items[rank() :: world_size()])


def gather_sharded(results: list[T], total: int) -> list[T]:
    """The results of every rank's :func:`shard` of ``total`` items, in the items' order, on every rank."""
    if not active():
        return list(results)
    parts = all_gather_object(results)
    return [parts[i % len(parts)][i // len(parts)] for i in range(total)]


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Each value averaged over the ranks that logged it (ranks see different kinds of samples)."""
    if not active():
        return values
    sums: dict[str, list[float]] = {}
    for part in all_gather_object(values):
        for key, value in part.items():
            sums.setdefault(key, []).append(value)
    return {key: sum(v) / len(v) for key, v in sums.items()}


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The model for training steps: DistributedDataParallel across ranks, the model itself alone."""
    if not active():
        return model
    # channels_last_3d gives 1×1×1 conv weights other (equivalent) strides than their gradients; DDP's
    # layout check warns about it on every run although the memory layout is the same.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def require_divisible(batch_size: int) -> None:
    """The global batch is split evenly: ``batch_size`` must be a multiple of the number of processes."""
    world = DistEnv.from_environ().world
    if batch_size % world:
        raise BadInputError(
            f"invalid setting train.batch_size: {batch_size} is the global batch, shared by {world} processes; "
            f"it must be a multiple of {world} "
            f"(e.g. --set train.batch_size={world * max(1, round(batch_size / world))})"
        )


def require_visible(path: Path) -> None:
    """Fail on every rank when a file rank 0 wrote is not seen by some rank (a folder not shared by the nodes)."""
    seen = all_gather_object((Path(path).exists(), socket.gethostname()))
    blind = [f"rank {r} on {host}" for r, (ok, host) in enumerate(seen) if not ok]
    if blind:
        raise BadInputError(
            f"file {path}: written by rank 0 but not visible to {', '.join(blind)}; with several "
            "nodes the run folder must be on a file system that every node shares"
        )


def quiet_unless_main(console: Any) -> Any:
    """Silence a rich console on ranks other than 0, so a message is printed once, not N times."""
    if console is not None and not is_main():
        console.quiet = True
    return console
