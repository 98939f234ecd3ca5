"""Training batches mixing labeled, pseudo-labeled and unlabeled patches at fixed shares.

A batch is a pure function of (seed, stream, step): resuming draws the same batches, and a
``torch.utils.data.DataLoader`` worker can build them ahead of the training step. Sample j of
the global batch has its own generator ``rng([seed, stream, step, j])``, so with N processes
rank r builds only samples j ≡ r (mod N), and the global batch is the same for every N.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

from brats_ssl.data import confidence_codec
from brats_ssl.data.augment import Augmenter
from brats_ssl.data.sampling import TrainItem, sample_patch
from brats_ssl.errors import BadInputError

LABELED, PSEUDO, UNLABELED = 0, 1, 2
PROBABILITIES = "probabilities"  # optional map of pseudo-labeled items: the teacher's class probabilities


@dataclass
class Pool:
    """Cases of one kind (LABELED, PSEUDO or UNLABELED) and how many samples of every global batch
    come from them."""

    items: list[TrainItem]
    samples: int
    kind: int


def _stream_id(stream: str) -> int:
    return zlib.crc32(stream.encode())


class BatchBuilder:
    """``builder(step)``: this rank's slice (samples ``rank``, ``rank + world``, ...) of the global
    batch of ``batch_size`` samples of that step."""

    def __init__(
        self,
        pools: list[Pool],
        *,
        patch_size: tuple[int, ...],
        foreground_fraction: float,
        augment: bool,
        seed: int,
        stream: str,
        rank: int = 0,
        world: int = 1,
    ):
        self.pools = [p for p in pools if p.items and p.samples > 0]
        if not self.pools:
            raise ValueError("no training cases")
        self.counts = [p.samples for p in self.pools]
        batch_size = sum(self.counts)
        if batch_size % world:
            raise BadInputError(
                f"invalid setting train.batch_size: a batch of {batch_size} samples cannot be "
                f"split evenly over {world} processes"
            )
        # Round-robin over the global batch: every rank gets the batch's mix of kinds where it can.
        pool_of_sample = [i for i, count in enumerate(self.counts) for _ in range(count)]
        self.samples = [(j, pool_of_sample[j]) for j in range(rank, batch_size, world)]
        self.patch_size = tuple(patch_size)
        self.foreground_fraction = foreground_fraction
        self.seed = seed
        self.stream = _stream_id(stream)
        # A pool may carry its teacher's class probabilities (C, *S) per pseudo-labeled voxel; then
        # every sample gets the map (zeros: none), so the batch stacks.
        self.classes = next(
            (i.maps[PROBABILITIES].shape[0] for p in self.pools for i in p.items if PROBABILITIES in i.maps), 0
        )
        label_keys = ("label", "confidence", "absent") + ((PROBABILITIES,) if self.classes else ())
        self.augmenter = Augmenter(label_keys) if augment else None

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        samples = []
        for j, p in self.samples:
            pool = self.pools[p]
            rng = np.random.default_rng([self.seed, self.stream, step, j])
            item = pool.items[int(rng.integers(len(pool.items)))]
            patch = sample_patch(item, self.patch_size, rng, self.foreground_fraction)
            patch = self._complete(patch, pool.kind)
            if self.classes and PROBABILITIES not in patch:
                patch[PROBABILITIES] = np.zeros((self.classes,) + patch["label"].shape, np.uint8)
            if self.augmenter is not None:
                patch = self.augmenter(patch, int(rng.integers(2**31)))
            patch["kind"] = np.int64(pool.kind)
            samples.append(patch)
        batch = {
            "image": torch.from_numpy(np.stack([s["image"] for s in samples])),
            "label": torch.from_numpy(np.stack([s["label"] for s in samples]).astype(np.int64)),
            # encoded uint8 (data/confidence_codec.py), decoded by the loss
            "confidence": torch.from_numpy(np.stack([s["confidence"] for s in samples])),
            "absent": torch.from_numpy(np.stack([s["absent"] for s in samples])),
            "kind": torch.tensor([int(s["kind"]) for s in samples]),
        }
        if self.classes:  # uint8 fractions of 255 (data/confidence_codec.py)
            batch[PROBABILITIES] = torch.from_numpy(np.stack([s[PROBABILITIES] for s in samples]))
        return batch

    @staticmethod
    def _complete(patch: dict[str, np.ndarray], kind: int) -> dict[str, np.ndarray]:
        """Give every sample the same maps: true labels are fully confident, nothing ruled out."""
        shape = patch["image"].shape[1:]
        if "label" not in patch:
            patch["label"] = np.zeros(shape, np.uint8)
        if "confidence" not in patch:
            known = confidence_codec.CERTAIN if kind == LABELED else confidence_codec.NO_INFORMATION
            patch["confidence"] = np.full(shape, known, np.uint8)
        if "absent" not in patch:
            patch["absent"] = np.zeros(shape, np.uint8)
        return patch


class StepBatches(torch.utils.data.Dataset):
    """Index = step number → the batch of that step (lets a DataLoader prefetch in a worker)."""

    def __init__(self, builder: BatchBuilder, start: int, stop: int):
        self.builder, self.start, self.stop = builder, start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.builder(self.start + index)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def batch_loader(builder: BatchBuilder, start: int, stop: int, num_workers: int):
    dataset = StepBatches(builder, start, stop)
    if num_workers <= 0:
        return (dataset[i] for i in range(len(dataset)))
    return iter(
        torch.utils.data.DataLoader(
            dataset,
            batch_size=None,
            shuffle=False,
            num_workers=num_workers,
            prefetch_factor=2,
            worker_init_fn=_worker_init,
            persistent_workers=False,
        )
    )
