"""Segmentation networks: TransASPP-UNet, MONAI baselines, and Monte-Carlo dropout helpers."""

from brats_ssl.networks.mc import enable_mc_dropout, supports_split_mc
from brats_ssl.networks.registry import NETWORKS, PaddedNetwork, build_network, count_parameters
from brats_ssl.networks.transaspp_unet import EncoderState, TransASPPUNet

__all__ = [
    "NETWORKS",
    "EncoderState",
    "PaddedNetwork",
    "TransASPPUNet",
    "build_network",
    "count_parameters",
    "enable_mc_dropout",
    "supports_split_mc",
]
