"""Networks: shapes for any size, MC dropout split exactness, mixed precision, gradients, registry."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from brats_ssl.config import ModelConfig, preset
from brats_ssl.errors import BadInputError
from brats_ssl.networks import (
    NETWORKS,
    TransASPPUNet,
    build_network,
    count_parameters,
    enable_mc_dropout,
    supports_split_mc,
)


def tiny_model(name: str = "transaspp_unet", spatial_dims: int = 3, **changes) -> torch.nn.Module:
    config = preset("tiny").model
    config.name = name
    config.spatial_dims = spatial_dims
    for key, value in changes.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    return build_network(config)


@pytest.mark.parametrize(
    ("name", "spatial_shape"),
    [
        ("transaspp_unet", (32, 32, 32)),
        ("transaspp_unet", (33, 40, 27)),
        ("transaspp_unet", (33, 47)),
        ("transaspp_unet", (7, 5)),  # smaller than the downsampling factor
        ("unet", (33, 40, 27)),
        ("unet", (33, 47)),
        ("segresnet", (19, 12, 10)),
        ("segresnet", (33, 47)),
    ],
)
def test_logits_have_the_input_size(name, spatial_shape):
    model = tiny_model(name, spatial_dims=len(spatial_shape)).eval()
    x = torch.randn(2, 4, *spatial_shape)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (2, 4, *spatial_shape)
    assert torch.isfinite(logits).all()


def test_cropped_logits_line_up_with_the_input_voxels():
    """Odd sizes are padded and cropped back; a one-voxel misalignment drops the correlation to ~0.15."""
    model = tiny_model().eval()
    x = torch.randn(1, 4, 24, 24, 16)
    with torch.no_grad():
        whole = model(x)
        # 15 pads one voxel at the end only, so voxel (i, j, k) stays at (i, j, k).
        cropped = model(x[:, :, :, :, :15])
    assert cropped.shape[-1] == 15
    # Away from the changed border the passes differ only through global context (pooling, attention).
    inner = (slice(None), slice(None), slice(6, 18), slice(6, 18), slice(2, 10))
    assert torch.corrcoef(torch.stack([whole[inner].flatten(), cropped[inner].flatten()]))[0, 1] > 0.99


def test_transformer_runs_with_the_same_weights_on_two_patch_sizes():
    model = tiny_model().eval()
    token_counts = []
    hook = model.transformer.encoder.register_forward_hook(lambda m, args, out: token_counts.append(out.shape[1]))
    with torch.no_grad():
        small = model(torch.randn(1, 4, 16, 16, 16))
        large = model(torch.randn(1, 4, 24, 32, 16))
    hook.remove()
    assert token_counts == [4 * 4 * 4, 6 * 8 * 4]
    assert small.shape[2:] == (16, 16, 16) and large.shape[2:] == (24, 32, 16)


def test_mc_dropout_samples_differ_and_eval_is_deterministic():
    model = tiny_model()
    x = torch.randn(1, 4, 16, 16, 16)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(x), model(x))

        assert enable_mc_dropout(model) > 0
        for module in model.modules():
            is_dropout = isinstance(module, torch.nn.modules.dropout._DropoutNd)
            assert module.training == is_dropout, type(module).__name__
        state = model.encode(x)
        first, second = model.decode(state), model.decode(state)
        assert not torch.allclose(first, second)

        enable_mc_dropout(model, enabled=False)
        assert not any(module.training for module in model.modules())
        assert torch.equal(model.decode(state), model.decode(state))


@pytest.mark.parametrize("mc_scope", ["decoder", "head"])
def test_encode_once_decode_many_equals_full_forward_passes(mc_scope):
    model = tiny_model(dropout=0.3, mc_scope=mc_scope)
    assert enable_mc_dropout(model) == (1 if mc_scope == "head" else 2)  # head; bottleneck + level 1
    x = torch.randn(2, 4, 18, 16, 11)
    with torch.no_grad():
        state = model.encode(x)
        split, full = [], []
        for seed in range(3):
            torch.manual_seed(seed)
            split.append(model.decode(state))
            torch.manual_seed(seed)
            full.append(model(x))
    for a, b in zip(split, full):
        assert torch.equal(a, b)
    assert not torch.allclose(split[0], split[1])  # the samples really are stochastic


def test_tiled_state_decodes_samples_in_one_batch():
    model = tiny_model().eval()
    x = torch.randn(2, 4, 16, 16, 16)
    with torch.no_grad():
        state = model.encode(x)
        tiled = model.decode(state.tile(3)).reshape(3, 2, 4, 16, 16, 16)
        single = model.decode(state)
    for sample in tiled:
        torch.testing.assert_close(sample, single, rtol=1e-4, atol=1e-5)


def test_split_mc_support_is_reported_per_network():
    assert supports_split_mc(tiny_model("transaspp_unet"))
    assert not supports_split_mc(tiny_model("unet"))
    assert not supports_split_mc(tiny_model("segresnet"))  # has encode/decode, but dropout sits in encode


def test_cpu_preset_parameter_count_is_between_one_and_five_million():
    config = preset("cpu").model
    assert config.name == "transaspp_unet"
    assert 1_000_000 <= count_parameters(build_network(config)) <= 5_000_000


def test_unknown_network_name_lists_the_valid_names():
    with pytest.raises(BadInputError) as error:
        build_network(ModelConfig(name="vnet"))
    assert "vnet" in str(error.value)
    for name in NETWORKS:
        assert name in str(error.value)


def test_bad_shapes_and_settings_are_rejected_clearly():
    with pytest.raises(BadInputError, match="3 channels|4 channels"):
        tiny_model()(torch.randn(1, 3, 16, 16, 16))
    with pytest.raises(BadInputError, match="transformer_heads"):
        tiny_model(transformer_heads=5)


def test_swinunetr_needs_patches_divisible_by_32():
    config = ModelConfig(name="swinunetr", features=[16, 32])
    with pytest.raises(BadInputError, match="divisible by 32"):
        build_network(config, patch_size=[48, 48, 48])
    if importlib.util.find_spec("einops") is None:
        with pytest.raises(BadInputError, match="einops"):
            build_network(config, patch_size=[64, 64, 64])
    else:
        config.spatial_dims = 2
        # 64 in-plane: at 32 the deepest SwinUNETR stage is 1x1 and its instance norm fails.
        model = build_network(config, patch_size=[64, 64, 64]).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 4, 64, 64)).shape == (1, 4, 64, 64)


def test_bf16_autocast_with_channels_last_matches_fp32():
    model = tiny_model().eval()
    x = torch.randn(1, 4, 24, 24, 24)
    with torch.no_grad():
        reference = model(x)
        model.to(memory_format=torch.channels_last_3d)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(x.to(memory_format=torch.channels_last_3d))
    assert mixed.shape == reference.shape
    assert torch.isfinite(mixed).all()
    error = (mixed.float() - reference).abs()
    assert error.mean() < 0.05 * reference.abs().mean()
    agreement = (mixed.argmax(1) == reference.argmax(1)).float().mean()
    assert agreement > 0.9


def test_bf16_channels_last_training_step_runs():
    model = tiny_model().train().to(memory_format=torch.channels_last_3d)
    x = torch.randn(2, 4, 16, 16, 16).to(memory_format=torch.channels_last_3d)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(model(x), torch.randint(0, 4, (2, 16, 16, 16)))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_backward_reaches_every_parameter(spatial_dims):
    model = tiny_model(spatial_dims=spatial_dims).train()
    assert isinstance(model, TransASPPUNet)
    shape = (16,) * spatial_dims
    logits = model(torch.randn(2, 4, *shape))
    torch.nn.functional.cross_entropy(logits, torch.randint(0, 4, (2, *shape))).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
