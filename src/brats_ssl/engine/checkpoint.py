"""Checkpoints: model, optimizer, scheduler, step and RNG state, written atomically and loaded
with ``torch.load(weights_only=True)`` so a checkpoint holding pickled code is refused."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from brats_ssl import atomic
from brats_ssl.errors import BadInputError


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    return atomic.write_with(path, lambda tmp: torch.save(state, tmp), suffix=".pt")


def load_checkpoint(path: str | Path, *, fingerprint: str | None = None) -> dict[str, Any]:
    """Load safely; ``fingerprint`` (model/config identity) must match the one saved."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise BadInputError(f"file {path}: checkpoint does not exist") from error
    except pickle.UnpicklingError as error:
        raise BadInputError(
            f"file {path}: refused to load - the checkpoint holds objects other than weights "
            f"(possibly code); only weights-only checkpoints are accepted ({str(error).splitlines()[0]})"
        ) from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise BadInputError(f"file {path}: not a readable checkpoint ({str(error).splitlines()[0]})") from error
    if not isinstance(state, dict) or "model" not in state:
        raise BadInputError(f"file {path}: not a brats-ssl checkpoint (no model weights)")
    if fingerprint is not None and state.get("fingerprint") not in (None, fingerprint):
        raise BadInputError(
            f"file {path}: checkpoint was made for another model or configuration "
            f"({state.get('fingerprint')} != {fingerprint}); use a new run folder"
        )
    return state


def load_model_weights(model: torch.nn.Module, path: str | Path, *, fingerprint: str | None = None) -> dict:
    state = load_checkpoint(path, fingerprint=fingerprint)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise BadInputError(
            f"file {path}: weights do not fit this model ({str(error).splitlines()[0]}); "
            "the checkpoint comes from another model or configuration"
        ) from error
    return state
