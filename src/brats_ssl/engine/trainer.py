"""The one training loop. Methods plug in a loss function and hooks; nothing is subclassed.

The loop owns what every method shares: optimizer and schedule, mixed precision (fp16 through a
gradient scaler, whose state is checkpointed) and memory format, gradient clipping, periodic
validation, best/last checkpoints (resumable at the exact step, with the same result as an
uninterrupted run), ``metrics.jsonl``, ``progress.png`` and a progress bar. A method supplies
``loss_fn(model, batch, step) -> (loss, logs)`` and optional hooks (e.g. an EMA teacher update)
whose state is checkpointed with the model.

Under ``torchrun`` every rank runs this loop on its slice of each global batch, through
DistributedDataParallel: gradients are averaged, so weights (and the state of hooks that follow
them, like an EMA teacher) stay identical on every rank. Validation is sharded inside the
validator; rank 0 alone writes checkpoints, logs and plots, and shows progress.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from brats_ssl import atomic
from brats_ssl.config import TrainConfig
from brats_ssl.engine import distributed
from brats_ssl.engine.checkpoint import BEST_CHECKPOINT, LAST_CHECKPOINT, load_checkpoint, save_checkpoint
from brats_ssl.engine.device import autocast, grad_scaler, ran_on, to_memory_format
from brats_ssl.engine.progress_plot import ValidationView, draw_progress

LossFn = Callable[[nn.Module, dict[str, torch.Tensor], int], tuple[torch.Tensor, dict[str, float]]]
Validator = Callable[[nn.Module], dict[str, float]]
DONE_FILE = "done.json"


@dataclass
class TrainResult:
    steps: int
    best_score: float
    best_step: int
    last_val: dict[str, float]
    seconds: float
    out_dir: Path


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.sgd_momentum, nesterov=True, weight_decay=config.weight_decay
        )
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps: int, *, window: tuple[int, int] | None = None
):
    """Warm-up then poly / cosine decay over ``steps``. ``window=(offset, total)``: this phase is
    steps ``offset .. offset + steps`` of one schedule of ``total`` steps (the student's stages
    share one schedule: one warm-up, one decay, no warm restart per stage)."""
    offset, total = window if window is not None else (0, steps)
    warmup = min(config.warmup_steps, max(total - 1, 0))

    def factor(local_step: int) -> float:
        step = offset + local_step
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        if config.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        return (1 - progress) ** config.poly_exponent

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """Per-step (and per-rank) seed for dropout etc., so a resumed run reproduces an uninterrupted one
    and ranks draw independent dropout masks for their different samples."""
    return (seed * 1_000_003 + step * 7919 + 17 + rank * 104_729) % (2**63)


class Trainer:
    def __init__(
        self,
        *,
        model: nn.Module,
        loss_fn: LossFn,
        batches: Callable[[int, int], Iterable[dict[str, torch.Tensor]]],
        out_dir: str | Path,
        steps: int,
        config: TrainConfig,
        device: torch.device,
        seed: int,
        validator: Validator | None = None,
        score: Callable[[dict[str, float]], float] | None = None,
        hooks: Iterable[Any] = (),
        fingerprint: str | None = None,
        description: str = "train",
        progress: Any = None,
        checkpoint_every: int | None = None,
        view: ValidationView | None = None,
        schedule_window: tuple[int, int] | None = None,
        optimizer_state: dict[str, Any] | None = None,
    ):
        """``score(validation metrics)`` picks checkpoint_best (higher is better; required with a
        validator); ``view`` says which metrics progress.png and the progress bar show.
        ``checkpoint_every`` (default ``config.checkpoint_every``): steps between last checkpoints
        besides those at each validation and at the end. ``optimizer_state`` continues an earlier
        phase's optimizer (its moments) when this phase starts fresh; ``schedule_window`` see
        :func:`build_scheduler`."""
        self.model = model
        self.loss_fn = loss_fn
        self.batches = batches
        self.out_dir = Path(out_dir)
        self.steps = steps
        self.config = config
        self.device = device
        self.seed = seed
        self.validator = validator
        if validator is not None and score is None:
            raise ValueError("a validator needs a score function to pick the best checkpoint")
        self.score = score
        self.hooks = list(hooks)
        self.fingerprint = fingerprint
        self.description = description
        self.progress = progress
        self.checkpoint_every = checkpoint_every if checkpoint_every is not None else config.checkpoint_every
        self.view = view if view is not None else ValidationView()
        self.optimizer = build_optimizer(model, config)
        if optimizer_state is not None:  # before the scheduler, which takes its base rate from the groups
            self.optimizer.load_state_dict(optimizer_state)
            for group in self.optimizer.param_groups:
                group["lr"] = group["initial_lr"] = config.lr
        self.scheduler = build_scheduler(self.optimizer, config, steps, window=schedule_window)
        self.scaler = grad_scaler(device, config.precision)  # fp16 only
        if self.scaler is not None:  # the schedule follows steps, also the few the scaler skips
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
        self.step = 0
        self.best_score = -math.inf
        self.best_step = -1
        self.last_val: dict[str, float] = {}
        # Every logged value since the last log row (checkpointed): a row holds their means.
        self.running_logs: dict[str, list[float]] = {}
        self.seconds_before = 0.0  # training time of earlier processes of this phase (checkpointed)
        self.segment_start: float | None = None
        self.ran_on: list[dict] = []  # what each process that trained this phase ran on (checkpointed)

    # --- state ---------------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.out_dir / LAST_CHECKPOINT

    @property
    def best_path(self) -> Path:
        return self.out_dir / BEST_CHECKPOINT

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.jsonl"

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            **({"scaler": self.scaler.state_dict()} if self.scaler is not None else {}),
            "step": self.step,
            "best_score": self.best_score,
            "best_step": self.best_step,
            "last_val": self.last_val,
            "running_logs": {k: list(v) for k, v in self.running_logs.items()},
            "seconds": self._seconds(),
            "rng_torch": torch.get_rng_state(),
            "hooks": {h.name: h.state_dict() for h in self.hooks if hasattr(h, "state_dict")},
            "fingerprint": self.fingerprint,
            "ran_on": self.ran_on,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.best_score = float(state["best_score"])
        self.best_step = int(state["best_step"])
        self.last_val = dict(state.get("last_val", {}))
        # Checkpoints made before every value was averaged kept the losses only.
        saved = state.get("running_logs", {"loss": state.get("running_loss", [])})
        self.running_logs = {k: [float(x) for x in v] for k, v in saved.items() if v}
        self.seconds_before = float(state.get("seconds", 0.0))
        self.ran_on = list(state.get("ran_on", []))
        torch.set_rng_state(state["rng_torch"])
        for hook in self.hooks:
            if hasattr(hook, "load_state_dict") and hook.name in state.get("hooks", {}):
                hook.load_state_dict(state["hooks"][hook.name])

    def _seconds(self) -> float:
        """Training time of the phase so far, summed over the processes that resumed it."""
        running = time.perf_counter() - self.segment_start if self.segment_start is not None else 0.0
        return self.seconds_before + running

    def _save(self, path: Path) -> None:
        if distributed.is_main():  # weights are identical on every rank
            save_checkpoint(path, self.state_dict())

    def _resume(self) -> None:
        if self.last_path.exists():
            self.load_state_dict(load_checkpoint(self.last_path, fingerprint=self.fingerprint))
        # Drop log rows written after the checkpoint (or before any) by an interrupted run; they are redone.
        if distributed.is_main() and self.metrics_path.exists():
            rows = [r for r in atomic.read_jsonl(self.metrics_path) if r.get("step", 0) <= self.step]
            atomic.write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))

    # --- the loop ------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        done = self.out_dir / DONE_FILE
        if done.exists():
            recorded = json.loads(done.read_text())
            kept = {f.name for f in fields(TrainResult)} - {"out_dir"}  # done.json holds more (ran_on)
            return TrainResult(**{k: v for k, v in recorded.items() if k in kept}, out_dir=self.out_dir)
        main = distributed.is_main()
        if main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic.clean_orphans(self.out_dir)
        self.model.to(self.device)
        to_memory_format(self.model, self.config.channels_last)
        self._resume()
        here = ran_on(self.device, self.config.precision, distributed.world_size())
        self.ran_on.append({"from_step": self.step, **here})
        train_model = distributed.wrap(self.model, self.device)  # after resuming: DDP starts from these weights
        self.segment_start = time.perf_counter()
        task = (
            self.progress.add_task(
                self.description, total=self.steps, completed=self.step, info=f"val {self._val_text()}"
            )
            if self.progress and main
            else None
        )
        running = self.running_logs
        for batch in self.batches(self.step, self.steps):
            step = self.step
            torch.manual_seed(step_seed(self.seed, step, distributed.rank()))
            logs = self._train_step(train_model, batch, step)
            for key, value in logs.items():
                running.setdefault(key, []).append(value)
            self.step = step + 1
            for hook in self.hooks:
                if hasattr(hook, "on_step_end"):
                    hook.on_step_end(self, step, logs)
            if self.step % self.config.log_every == 0 or self.step == self.steps:
                means = distributed.mean_over_ranks({k: sum(v) / len(v) for k, v in running.items()})
                if main:
                    row = {"step": self.step, "lr": self.scheduler.get_last_lr()[0], **means}
                    atomic.append_line(self.metrics_path, json.dumps(row))
                running.clear()
            due = self.step % self.config.val_every == 0 or self.step == self.steps
            validate = self.validator is not None and due
            if validate:
                self._validate()
            if validate or self.step % self.checkpoint_every == 0 or self.step == self.steps:
                self._save(self.last_path)
            if task is not None:
                self.progress.update(
                    task, completed=self.step, info=f"loss {logs['loss']:.3f} | val {self._val_text()}"
                )
        result = TrainResult(
            steps=self.step,
            best_score=self.best_score,
            best_step=self.best_step,
            last_val=self.last_val,
            seconds=self._seconds(),
            out_dir=self.out_dir,
        )
        if main:
            atomic.write_json(
                done,
                {
                    "steps": result.steps,
                    "best_score": result.best_score,
                    "best_step": result.best_step,
                    "last_val": result.last_val,
                    "seconds": result.seconds,
                    "ran_on": self.ran_on,  # one entry per process that trained the phase
                },
            )
        distributed.barrier()  # the checkpoints are on disk before any rank reads them
        return result

    def _train_step(self, train_model: nn.Module, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """One optimizer step; ``train_model`` is the model or its DistributedDataParallel wrapper."""
        train_model.train()
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        batch["image"] = to_memory_format(batch["image"], self.config.channels_last)
        with autocast(self.device, self.config.precision):
            loss, logs = self.loss_fn(train_model, batch, step)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self._clip()
            self.optimizer.step()
        else:  # fp16: scaled loss; clip the true gradients; a step with inf/NaN is skipped, the scale lowered
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            self._clip()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.scheduler.step()
        return {"loss": float(loss.detach()), **{k: float(v) for k, v in logs.items()}}

    def _clip(self) -> None:
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)

    def _validate(self) -> None:
        assert self.validator is not None and self.score is not None  # fit() validates only with a validator
        self.model.eval()
        with torch.no_grad():
            metrics = self.validator(self.model)
        self.last_val = metrics  # gathered from every rank's share of the val cases: the same everywhere
        score = self.score(metrics)
        if score > self.best_score:
            self.best_score, self.best_step = score, self.step
            self._save(self.best_path)
        if not distributed.is_main():
            return
        atomic.append_line(self.metrics_path, json.dumps({"step": self.step, "val": metrics, "score": score}))
        draw_progress(
            atomic.read_jsonl(self.metrics_path), self.out_dir / "progress.png", title=self.description, view=self.view
        )

    def _val_text(self) -> str:
        return self.view.bar_text(self.last_val) if self.last_val else "-"
