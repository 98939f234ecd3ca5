"""TransASPP-UNet: a residual U-Net whose bottleneck is ASPP followed by a small Transformer.

The network is split for cheap Monte-Carlo dropout: :meth:`TransASPPUNet.encode` is deterministic
(encoder, ASPP, Transformer) and runs once per window; :meth:`TransASPPUNet.decode` holds every
dropout layer and runs T times. The decoder is deliberately lean (additive skips, one residual
conv per level) so T decodes cost far less than T full passes.

Any input size works: the input is zero-padded to a multiple of ``2 ** (depth - 1)`` and the
logits are cropped back. The Transformer's positional encoding is a depthwise convolution on
the token grid (CPVT / PVTv2 style), so no table is tied to a patch size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution, UnetOutBlock, UnetResBlock
from monai.networks.blocks.dynunet_block import get_conv_layer
from torch import nn

from brats_ssl.errors import BadInputError

NORM = ("instance", {"affine": True})
ACT = ("leakyrelu", {"negative_slope": 0.01, "inplace": True})


def padding_to_multiple(spatial_shape: Sequence[int], multiple: int) -> list[tuple[int, int]]:
    """(before, after) zero padding per axis that makes every size a multiple of ``multiple``."""
    padding = []
    for size in spatial_shape:
        total = -size % multiple
        padding.append((total // 2, total - total // 2))
    return padding


def pad_spatial(x: torch.Tensor, padding: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Zero-pad the spatial axes of a (B, C, *spatial) tensor; a no-op when nothing is needed."""
    if not any(before or after for before, after in padding):
        return x
    flat = [amount for pair in reversed(padding) for amount in pair]  # F.pad wants last axis first
    return F.pad(x, flat)


def crop_spatial(x: torch.Tensor, padding: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Undo :func:`pad_spatial`."""
    if not any(before or after for before, after in padding):
        return x
    slices = [slice(before, x.shape[2 + axis] - after) for axis, (before, after) in enumerate(padding)]
    index = (slice(None), slice(None), *slices)
    return x[index]


def check_input(x: torch.Tensor, *, spatial_dims: int, in_channels: int) -> None:
    """Reject a tensor that is not (batch, in_channels, *spatial) with a message naming both shapes."""
    if x.ndim != spatial_dims + 2 or x.shape[1] != in_channels:
        expected = "(batch, channels, " + ", ".join("XYZ"[:spatial_dims]) + ")"
        raise BadInputError(
            f"network input has shape {tuple(x.shape)}; expected {expected} with {in_channels} channels"
        )


MC_SCOPES = ("decoder", "head")


@dataclass
class EncoderState:
    """What :meth:`TransASPPUNet.encode` hands to :meth:`TransASPPUNet.decode`.

    ``skips`` run from full resolution down (one per decoder level); ``bottleneck`` is the
    Transformer output; ``padding`` is what was added to the input and is cropped off the logits.
    """

    skips: list[torch.Tensor]
    bottleneck: torch.Tensor
    padding: list[tuple[int, int]]

    def tile(self, times: int) -> EncoderState:
        """The state repeated ``times`` along the batch (sample-major), to decode T samples in one batch.

        Logits of the tiled state reshape to ``(times, batch, ...)``.
        """
        return EncoderState(
            skips=[torch.cat([skip] * times) for skip in self.skips],
            bottleneck=torch.cat([self.bottleneck] * times),
            padding=list(self.padding),
        )


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, dilated 3x3 convs and global pooling, concatenated, projected.

    The projection is added to the input (residual) so the block can start close to identity.
    """

    def __init__(self, spatial_dims: int, channels: int, dilations: Sequence[int]) -> None:
        super().__init__()
        branch = max(channels // 2, 8)
        self.branches = nn.ModuleList(
            Convolution(
                spatial_dims,
                channels,
                branch,
                kernel_size=1 if d == 0 else 3,
                dilation=max(d, 1),
                padding=d,
                norm=NORM,
                act=ACT,
                bias=False,
            )
            for d in [0, *dilations]  # 0 = the 1x1 branch
        )
        # Image-level context; no instance norm on a single voxel (it would zero it).
        self.pool = nn.Sequential(
            nn.AdaptiveAvgPool3d(1) if spatial_dims == 3 else nn.AdaptiveAvgPool2d(1),
            Convolution(spatial_dims, channels, branch, kernel_size=1, bias=True, conv_only=True),
            nn.LeakyReLU(0.01),
        )
        self.project = Convolution(
            spatial_dims, branch * (len(self.branches) + 1), channels, kernel_size=1, norm=NORM, act=None, bias=False
        )
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x).expand(-1, -1, *x.shape[2:])
        features = torch.cat([branch(x) for branch in self.branches] + [pooled], dim=1)
        return self.act(x + self.project(features))


class BottleneckTransformer(nn.Module):
    """Pre-norm Transformer encoder over the bottleneck voxels as tokens.

    Position comes from a depthwise conv added to the feature map before flattening (conditional
    positional encoding), which works on any grid size. Attention dropout is 0 so the encoder stays
    deterministic; stochasticity lives in the decoder.
    """

    def __init__(self, spatial_dims: int, channels: int, *, layers: int, heads: int) -> None:
        super().__init__()
        conv = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
        self.position = conv(channels, channels, kernel_size=3, padding=1, groups=channels)
        layer = nn.TransformerEncoderLayer(
            d_model=channels,
            nhead=heads,
            dim_feedforward=2 * channels,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.position(x)
        batch, channels, *grid = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, N, C)
        tokens = self.encoder(tokens)
        return tokens.transpose(1, 2).reshape(batch, channels, *grid)


class UpBlock(nn.Module):
    """Lean decoder level: transposed-conv upsampling, additive skip, one residual conv with dropout."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        self.up = get_conv_layer(
            spatial_dims, in_channels, out_channels, kernel_size=2, stride=2, conv_only=True, is_transposed=True
        )
        self.conv = Convolution(
            spatial_dims,
            out_channels,
            out_channels,
            kernel_size=3,
            norm=NORM,
            act=ACT,
            dropout=dropout if dropout > 0 else None,
            adn_ordering="NDA",
            bias=False,
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        merged = self.up(x) + skip
        return merged + self.conv(merged)


class TransASPPUNet(nn.Module):
    """Residual U-Net with an ASPP + Transformer bottleneck; see the module docstring."""

    split_mc = True  # encode()/decode() split with all dropout in decode(); see networks.mc

    def __init__(
        self,
        *,
        spatial_dims: int = 3,
        in_channels: int = 4,
        out_channels: int = 4,
        features: Sequence[int] = (16, 32, 64, 128),
        dropout: float = 0.1,
        aspp_dilations: Sequence[int] = (1, 2, 3),
        transformer_layers: int = 1,
        transformer_heads: int = 4,
        mc_scope: str = "decoder",
    ) -> None:
        super().__init__()
        features = list(features)
        if mc_scope not in MC_SCOPES:
            raise BadInputError(f"model.mc_scope: one of {', '.join(MC_SCOPES)}, got {mc_scope!r}")
        if spatial_dims not in (2, 3):
            raise BadInputError(f"model.spatial_dims: 2 or 3, got {spatial_dims}")
        if len(features) < 2 or any(f <= 0 for f in features):
            raise BadInputError(f"model.features: at least two positive widths, got {features}")
        if not 0 <= dropout < 1:
            raise BadInputError(f"model.dropout: in [0, 1), got {dropout}")
        if any(d < 1 for d in aspp_dilations):
            raise BadInputError(f"model.aspp_dilations: positive dilations, got {list(aspp_dilations)}")
        if transformer_layers < 0 or transformer_heads < 1:
            raise BadInputError("model.transformer_layers must be >= 0 and model.transformer_heads >= 1")
        if transformer_layers and features[-1] % transformer_heads:
            raise BadInputError(
                f"model.transformer_heads: {transformer_heads} does not divide the bottleneck width {features[-1]}"
            )
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.multiple = 2 ** (len(features) - 1)

        self.down = nn.ModuleList(
            UnetResBlock(spatial_dims, c_in, c_out, kernel_size=3, stride=1 if level == 0 else 2, norm_name=NORM)
            for level, (c_in, c_out) in enumerate(zip([in_channels, *features[:-1]], features))
        )
        self.aspp = ASPP(spatial_dims, features[-1], aspp_dilations)
        self.transformer = (
            BottleneckTransformer(spatial_dims, features[-1], layers=transformer_layers, heads=transformer_heads)
            if transformer_layers
            else nn.Identity()
        )
        # mc_scope "decoder": dropout in the bottleneck and decoder, so decode() re-runs the decoder
        # for every MC sample. "head": dropout only on the last features before the 1x1 head, so the
        # whole decoder is deterministic and a sample costs one 1x1 conv (cheap, weaker epistemic signal).
        self.mc_scope = mc_scope
        decoder_dropout = dropout if mc_scope == "decoder" else 0.0
        self.bottleneck_dropout = nn.Dropout(decoder_dropout)
        # No dropout at full resolution: its mask generation was ~30% of a decode on CPU, and the
        # levels below already make every sample differ (the full-resolution conv is re-run anyway).
        self.up = nn.ModuleList(
            UpBlock(spatial_dims, features[level + 1], features[level], decoder_dropout if level > 0 else 0.0)
            for level in reversed(range(len(features) - 1))
        )
        self.head_dropout = nn.Dropout(dropout if mc_scope == "head" else 0.0)
        self.head = UnetOutBlock(spatial_dims, features[0], out_channels)

    def encode(self, x: torch.Tensor) -> EncoderState:
        """Deterministic part: pad, encoder, ASPP, Transformer (and the decoder, for mc_scope "head")."""
        check_input(x, spatial_dims=self.spatial_dims, in_channels=self.in_channels)
        padding = padding_to_multiple(x.shape[2:], self.multiple)
        x = pad_spatial(x, padding)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        bottleneck = self.transformer(self.aspp(skips.pop()))
        if self.mc_scope == "head":
            features = self._decoder(bottleneck, skips)
            return EncoderState(skips=[], bottleneck=features, padding=padding)
        return EncoderState(skips=skips, bottleneck=bottleneck, padding=padding)

    def _decoder(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        x = self.bottleneck_dropout(x)
        for block, skip in zip(self.up, reversed(skips)):
            x = block(x, skip)
        return x

    def decode(self, state: EncoderState) -> torch.Tensor:
        """Stochastic part (all dropout lives here): decoder (for mc_scope "decoder") and head;
        logits cropped to the input size."""
        x = self._decoder(state.bottleneck, state.skips)  # no levels left when mc_scope is "head"
        return crop_spatial(self.head(self.head_dropout(x)), state.padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
