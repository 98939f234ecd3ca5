"""The network of a run and its identity: built from the settings, fingerprinted so that a
checkpoint is only ever loaded into the network it was trained as."""

from __future__ import annotations

import hashlib
import json

from torch import nn

from brats_ssl.config import Config
from brats_ssl.data.conventions import MODALITIES
from brats_ssl.losses import output_channels

# Model fields added after runs already existed, with the value that reproduces the older network.
# At that value they stay out of the fingerprint, so checkpoints of older runs keep loading.
FIELDS_ADDED_LATER = {"mc_scope": "decoder"}


def model_fingerprint(config: Config) -> str:
    """Identity of the network a checkpoint belongs to: architecture, width and output form."""
    model = {
        key: value for key, value in config.model.__dict__.items() if FIELDS_ADDED_LATER.get(key, object()) != value
    }
    blob = json.dumps([model, config.train.loss], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_model(config: Config) -> nn.Module:
    from brats_ssl.networks.registry import build_network

    return build_network(
        config.model,
        in_channels=len(MODALITIES),
        out_channels=output_channels(config.train.loss),
        patch_size=config.train.patch_size,
    )
