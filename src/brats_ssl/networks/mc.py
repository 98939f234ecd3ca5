"""Monte-Carlo dropout switches: dropout sampling on, everything else in inference mode."""

from __future__ import annotations

from typing import Any, TypeGuard

import torch
from torch import nn


def enable_mc_dropout(model: nn.Module, enabled: bool = True) -> int:
    """Put ``model`` in eval mode with its dropout layers in train mode (``enabled``) or eval mode.

    Normalisation layers stay in eval mode either way. Returns how many dropout layers with a
    non-zero rate were switched, so a caller can tell that MC sampling would be deterministic (0).
    """
    model.eval()
    active = 0
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.train(enabled)
            active += int(module.p > 0)
    return active


class SplitMCNetwork(nn.Module):
    """What :func:`supports_split_mc` checks for, for the type checker: networks offer these methods
    and ``split_mc = True`` without inheriting from this class."""

    split_mc = True

    def encode(self, x: torch.Tensor) -> Any:  # an encoder state with .tile(times)
        raise NotImplementedError

    def decode(self, state: Any) -> torch.Tensor:
        raise NotImplementedError


def supports_split_mc(model: nn.Module) -> TypeGuard[SplitMCNetwork]:
    """Whether ``model`` offers ``encode(x)`` (deterministic) and ``decode(state)`` (all the dropout).

    Such a model can encode a window once and decode it T times. Other models need T full passes,
    including MONAI's SegResNet: it has ``encode``/``decode`` methods but its dropout is in ``encode``.
    """
    return getattr(model, "split_mc", False) is True
