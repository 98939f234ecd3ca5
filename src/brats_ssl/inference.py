"""Sliding-window inference with MC dropout and flip TTA, and the uncertainty it yields.

For each window the deterministic encoder runs once and only the stochastic decoder runs T times
(networks that expose ``encode``/``decode``); others run T full passes. Each window returns the
mean class probabilities and the mean per-sample entropy; both blend linearly across windows
(gaussian weights), which gives the predictive entropy H(p̄) and the mutual information
H(p̄) − E[H(p_t)] of the whole volume. Windows that hold no brain are not run.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from torch import nn

from brats_ssl.data.conventions import NUM_CLASSES
from brats_ssl.engine.device import autocast, to_memory_format
from brats_ssl.losses import probabilities
from brats_ssl.networks.mc import enable_mc_dropout, supports_split_mc

FLIPS_TTA = ((), (2,), (3,), (4,))


@dataclass
class InferenceOptions:
    patch_size: tuple[int, ...]
    overlap: float = 0.25
    sw_batch_size: int = 2
    precision: str = "auto"
    channels_last: bool = True
    output: str = "dice_ce"  # the training loss decides how logits become probabilities
    mc_samples: int = 1
    tta: bool = False

    @classmethod
    def from_config(cls, config, *, mc_samples: int | None = None, tta: bool | None = None) -> "InferenceOptions":
        return cls(
            patch_size=tuple(config.train.patch_size),
            overlap=config.inference.overlap,
            sw_batch_size=config.inference.sw_batch_size,
            precision=config.train.precision,
            channels_last=config.train.channels_last,
            output=config.train.loss,
            mc_samples=config.inference.mc_samples if mc_samples is None else mc_samples,
            tta=config.inference.tta if tta is None else tta,
        )


@dataclass
class VolumePrediction:
    probabilities: torch.Tensor  # (C, *S) mean class probabilities: the probabilistic mask
    expected_entropy: torch.Tensor | None  # (*S) mean per-sample entropy / log C (MC or TTA only)

    @property
    def labels(self) -> torch.Tensor:
        return self.probabilities.argmax(0).to(torch.uint8)

    @property
    def entropy(self) -> torch.Tensor:
        """Predictive entropy H(p̄) normalised by log C to [0, 1]."""
        return normalised_entropy(self.probabilities, dim=0)

    @property
    def confidence(self) -> torch.Tensor:
        return 1.0 - self.entropy

    @property
    def mutual_information(self) -> torch.Tensor:
        """Epistemic part H(p̄) − E[H(p_t)], normalised by log C; zero for a single pass."""
        if self.expected_entropy is None:
            return torch.zeros_like(self.entropy)
        return (self.entropy - self.expected_entropy).clamp_min(0)


def ensemble(predictions: list[VolumePrediction]) -> VolumePrediction:
    """Several models' predictions of one preprocessed volume as one: p̄ is the mean of their class
    probabilities and the expected entropy the mean over every model's samples (a deterministic
    pass's one sample has its predictive entropy), so the mutual information measures how much the
    models and their MC samples disagree. One prediction comes back as it is."""
    if len(predictions) == 1:
        return predictions[0]
    probabilities = torch.stack([p.probabilities for p in predictions]).mean(0)
    expected = torch.stack(
        [p.expected_entropy if p.expected_entropy is not None else p.entropy for p in predictions]
    ).mean(0)
    return VolumePrediction(probabilities, expected)


def case_seed(seed: int, case_id: str) -> int:
    """Seed for a case's MC-dropout samples: the same whichever process labels it, in whatever order."""
    return (seed * 1_000_003 + zlib.crc32(case_id.encode())) % (2**63)


def normalised_entropy(p: torch.Tensor, dim: int) -> torch.Tensor:
    return -(p * torch.log(p.clamp_min(1e-8))).sum(dim) / math.log(p.shape[dim])


class WindowPredictor:
    """Callable for ``sliding_window_inference``: window batch → (mean probs, mean entropy)."""

    def __init__(self, model: nn.Module, options: InferenceOptions, device: torch.device):
        self.model, self.options, self.device = model, options, device
        self.split_model = model if supports_split_mc(model) else None
        self.windows_run = 0

    def _sample_sums(self, x: torch.Tensor, with_entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sums over the stochastic samples of one (flipped) window batch: class probabilities
        (B, C, *S) and, when asked, normalised per-sample entropy (B, 1, *S).

        The T samples stay one (T·B, ...) batch from the decoder to the sums: one softmax, no
        per-sample copies — at full resolution these passes over memory cost as much as decoding.
        """
        t, batch = self.options.mc_samples, x.shape[0]
        x = to_memory_format(x, self.options.channels_last)
        with autocast(self.device, self.options.precision):
            if t > 1 and self.split_model is not None:
                state = self.split_model.encode(x)
                logits = self.split_model.decode(state.tile(t))  # sample-major: reshapes to (T, B, ...)
            else:
                logits = torch.cat([self.model(x) for _ in range(t)])
        logits = logits.float()
        if self.options.output == "region":
            probs = probabilities(logits, "region")
            entropy = normalised_entropy(probs, dim=1) if with_entropy else None
        else:
            log_probs = torch.log_softmax(logits, 1)
            probs = log_probs.exp()
            entropy = -(probs * log_probs).sum(1) / math.log(probs.shape[1]) if with_entropy else None
        probs_sum = probs.view(t, batch, *probs.shape[1:]).sum(0)
        if entropy is None:
            return probs_sum, None
        return probs_sum, entropy.view(t, batch, 1, *entropy.shape[1:]).sum(0)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        brain = x.abs().flatten(1).amax(1) > 0
        mean = torch.zeros((x.shape[0], NUM_CLASSES) + tuple(x.shape[2:]), device=x.device)
        mean[:, 0] = 1.0  # empty windows: background, no uncertainty
        mean_entropy = torch.zeros((x.shape[0], 1) + tuple(x.shape[2:]), device=x.device)
        if not brain.any():
            return mean, mean_entropy
        xb = x[brain] if not brain.all() else x
        self.windows_run += int(brain.sum())
        flips = FLIPS_TTA if self.options.tta else ((),)
        with_entropy = self.options.mc_samples > 1 or self.options.tta
        probs_sum, entropy_sum = None, None
        for axes in flips:
            probs, entropy = self._sample_sums(torch.flip(xb, axes) if axes else xb, with_entropy)
            if axes:
                probs = torch.flip(probs, axes)
                entropy = torch.flip(entropy, axes) if entropy is not None else None
            probs_sum = probs if probs_sum is None else probs_sum.add_(probs)
            if entropy is not None:
                entropy_sum = entropy if entropy_sum is None else entropy_sum.add_(entropy)
        assert probs_sum is not None  # flips holds at least the identity
        n = len(flips) * self.options.mc_samples
        mean[brain] = probs_sum / n
        if entropy_sum is not None:
            mean_entropy[brain] = entropy_sum / n
        return mean, mean_entropy


@torch.no_grad()
def predict_volume(
    model: nn.Module, image: np.ndarray | torch.Tensor, options: InferenceOptions, device: torch.device
) -> VolumePrediction:
    """Probabilities (and MC/TTA uncertainty) for one preprocessed (C, *S) volume."""
    tensor = torch.as_tensor(np.asarray(image, dtype=np.float32) if isinstance(image, np.ndarray) else image)
    tensor = tensor.float().unsqueeze(0).to(device)
    stochastic = options.mc_samples > 1
    was_training = model.training
    enable_mc_dropout(model, stochastic)
    predictor = WindowPredictor(model, options, device)
    try:
        probs, expected_entropy = sliding_window_inference(
            tensor,
            roi_size=options.patch_size,
            sw_batch_size=options.sw_batch_size,
            predictor=predictor,
            overlap=options.overlap,
            mode="gaussian",
        )
    finally:
        enable_mc_dropout(model, False)
        model.train(was_training)
    probs = probs[0].float()
    probs = probs / probs.sum(0, keepdim=True).clamp_min(1e-6)
    use_entropy = stochastic or options.tta
    return VolumePrediction(probs.cpu(), expected_entropy[0, 0].float().cpu() if use_entropy else None)
