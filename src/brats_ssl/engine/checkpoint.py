"""Checkpoints: model, optimizer, scheduler, step and RNG state, written atomically and loaded
with ``torch.load(weights_only=True)`` so a checkpoint holding pickled code is refused."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from brats_ssl import atomic
from brats_ssl.errors import BadInputError

# A phase folder's checkpoints: the last step's (the phase's model) and the best by validation score.
LAST_CHECKPOINT = "checkpoint_last.pt"
BEST_CHECKPOINT = "checkpoint_best.pt"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    return atomic.write_with(path, lambda tmp: torch.save(state, tmp), suffix=".pt")


def _first_line(error: BaseException, limit: int = 200) -> str:
    """The first informative line of an error, cut at its first sentence (torch's are long)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    informative = [line for line in lines if not line.endswith(":")] or lines
    if not informative:
        return type(error).__name__
    text = informative[0].split(". ")[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _refusal(error: pickle.UnpicklingError) -> str:
    """What the weights-only unpickler stopped at, in one line (its own message is a page long)."""
    text = str(error)
    match = re.search(r"GLOBAL ([\w.]+)", text)
    if match:
        return (
            f"refused to load: it would import and run {match.group(1)}; a checkpoint holding code or "
            "pickled objects is never executed - only weights-only checkpoints are accepted"
        )
    detail = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    reason = detail.group(1).strip().splitlines()[0] if detail else _first_line(error)
    return (
        f"refused to load: not a weights-only checkpoint ({reason}); the file is corrupt or holds "
        "pickled objects, which are never executed"
    )


def load_checkpoint(path: str | Path, *, fingerprint: str | None = None) -> dict[str, Any]:
    """Load safely; ``fingerprint`` (model/config identity) must match the one saved."""
    path = Path(path)
    if path.is_dir():
        raise BadInputError(f"file {path}: is a folder, not a checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise BadInputError(f"file {path}: checkpoint does not exist") from error
    except pickle.UnpicklingError as error:
        raise BadInputError(f"file {path}: {_refusal(error)}") from error
    except EOFError as error:
        raise BadInputError(f"file {path}: not a readable checkpoint (empty or cut short)") from error
    except (RuntimeError, OSError, ValueError) as error:
        raise BadInputError(f"file {path}: not a readable checkpoint ({_first_line(error)})") from error
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
    except (RuntimeError, TypeError, AttributeError) as error:  # wrong keys/shapes, or not a state dict
        raise BadInputError(
            f"file {path}: weights do not fit this model ({_first_line(error)}); "
            "the checkpoint comes from another model or configuration"
        ) from error
    return state
