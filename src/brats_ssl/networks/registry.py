"""Network names -> constructors from a :class:`ModelConfig` (TransASPP-UNet and MONAI baselines).

Every network returned takes (B, in_channels, *spatial) of any size and gives logits of the same
spatial size: MONAI networks that need sizes divisible by their downsampling are wrapped in
:class:`PaddedNetwork`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence

import torch
from monai.networks.nets import SegResNet, SwinUNETR, UNet
from torch import nn

from brats_ssl.config import ModelConfig
from brats_ssl.errors import BadInputError
from brats_ssl.networks.transaspp_unet import (
    TransASPPUNet,
    check_input,
    crop_spatial,
    pad_spatial,
    padding_to_multiple,
)


class PaddedNetwork(nn.Module):
    """Zero-pads the input to a multiple of ``multiple`` per axis and crops the logits back."""

    def __init__(self, net: nn.Module, *, multiple: int, spatial_dims: int, in_channels: int) -> None:
        super().__init__()
        self.net = net
        self.multiple = multiple
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, spatial_dims=self.spatial_dims, in_channels=self.in_channels)
        padding = padding_to_multiple(x.shape[2:], self.multiple)
        return crop_spatial(self.net(pad_spatial(x, padding)), padding)


PatchSize = Sequence[int] | None
Builder = Callable[[ModelConfig, int, int, PatchSize], nn.Module]


def _transaspp_unet(config: ModelConfig, in_channels: int, out_channels: int, patch_size: PatchSize) -> nn.Module:
    return TransASPPUNet(
        spatial_dims=config.spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        features=config.features,
        dropout=config.dropout,
        aspp_dilations=config.aspp_dilations,
        transformer_layers=config.transformer_layers,
        transformer_heads=config.transformer_heads,
        mc_scope=config.mc_scope,
    )


def _unet(config: ModelConfig, in_channels: int, out_channels: int, patch_size: PatchSize) -> nn.Module:
    net = UNet(
        spatial_dims=config.spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        channels=config.features,
        strides=[2] * (len(config.features) - 1),
        num_res_units=2,
        norm="instance",
        dropout=config.dropout,
    )
    return PaddedNetwork(
        net, multiple=2 ** (len(config.features) - 1), spatial_dims=config.spatial_dims, in_channels=in_channels
    )


def _segresnet(config: ModelConfig, in_channels: int, out_channels: int, patch_size: PatchSize) -> nn.Module:
    # MONAI's default four levels (blocks_down=(1, 2, 2, 4)); only the width follows the config.
    net = SegResNet(
        spatial_dims=config.spatial_dims,
        init_filters=config.features[0],
        in_channels=in_channels,
        out_channels=out_channels,
        dropout_prob=config.dropout or None,
    )
    return PaddedNetwork(net, multiple=8, spatial_dims=config.spatial_dims, in_channels=in_channels)


def _swinunetr(config: ModelConfig, in_channels: int, out_channels: int, patch_size: PatchSize) -> nn.Module:
    if patch_size is not None:
        # Slice mode trains on the first two (in-plane) sizes of a three-size patch.
        sizes = list(patch_size)[: config.spatial_dims]
        if any(size % 32 for size in sizes):
            raise BadInputError(
                f"model swinunetr needs patch sizes divisible by 32, got train.patch_size={list(patch_size)}; "
                "use e.g. 64 or 96, or another model (transaspp_unet works with any size)"
            )
    if importlib.util.find_spec("einops") is None:
        raise BadInputError("model swinunetr needs the einops package (pip install einops)")
    feature_size = max(12, round(config.features[0] / 12) * 12)  # its attention heads need a multiple of 12
    net = SwinUNETR(
        in_channels=in_channels,
        out_channels=out_channels,
        feature_size=feature_size,
        drop_rate=config.dropout,
        spatial_dims=config.spatial_dims,
    )
    return PaddedNetwork(net, multiple=32, spatial_dims=config.spatial_dims, in_channels=in_channels)


NETWORKS: dict[str, Builder] = {
    "transaspp_unet": _transaspp_unet,
    "unet": _unet,
    "segresnet": _segresnet,
    "swinunetr": _swinunetr,
}


def build_network(
    config: ModelConfig,
    *,
    in_channels: int = 4,
    out_channels: int = 4,
    patch_size: Sequence[int] | None = None,
) -> nn.Module:
    """The network ``config.name`` sized by ``config``; ``patch_size`` lets size-bound models check it."""
    builder = NETWORKS.get(config.name)
    if builder is None:
        raise BadInputError(f"unknown model.name {config.name!r}; valid names: {', '.join(NETWORKS)}")
    if config.spatial_dims not in (2, 3):
        raise BadInputError(f"model.spatial_dims: 2 or 3, got {config.spatial_dims}")
    return builder(config, in_channels, out_channels, patch_size)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
