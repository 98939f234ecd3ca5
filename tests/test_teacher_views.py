"""train.strong_views: the supervised (teacher) phase shown strong views of its labeled patches."""

from types import SimpleNamespace

import pytest
import torch
import yaml
from torch import nn

from brats_ssl import config as config_lib
from brats_ssl.data.strong_views import strong_view_some
from brats_ssl.errors import BadInputError
from brats_ssl.run.phase import supervised_loss_fn
from brats_ssl.ssl import teacher as teacher_lib


def _batch(patches=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn((patches, 4, 12, 12, 10), generator=g)
    image[:, :, :3] = 0  # outside the brain
    label = torch.randint(0, 4, (patches, 12, 12, 10), generator=g)
    return {"image": image, "label": label}


class Recorder(nn.Module):
    """A 1×1×1 convolution that keeps the last input it saw."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(4, 4, 1)
        self.seen: torch.Tensor | None = None

    def forward(self, x):
        self.seen = x.detach().clone()
        return self.conv(x)


def _changed(seen, image):
    return [not torch.equal(seen[b], image[b]) for b in range(image.shape[0])]


def test_strong_view_some_replaces_some_patches_by_their_strong_view_and_leaves_the_rest():
    images = _batch(patches=8)["image"]
    out = strong_view_some(images, 0.5, torch.Generator().manual_seed(1))
    changed = _changed(out, images)
    assert 0 < sum(changed) < len(changed)  # seed 1 draws both kinds
    assert torch.equal(out, strong_view_some(images, 0.5, torch.Generator().manual_seed(1)))
    assert bool((out[:, :, :3] == 0).all())  # the background stays 0, nothing moves
    assert strong_view_some(images, 0.0, torch.Generator().manual_seed(1)) is images
    assert all(_changed(strong_view_some(images, 1.0, torch.Generator().manual_seed(1)), images))


def test_the_supervised_loss_trains_on_strong_views_drawn_per_step():
    batch, model = _batch(), Recorder()
    plain = supervised_loss_fn("dice_ce")
    plain(model, batch, 5)
    assert torch.equal(model.seen, batch["image"])

    strong = supervised_loss_fn("dice_ce", strong_views=1.0, seed=3)
    loss, _ = strong(model, batch, 5)
    first = model.seen
    assert all(_changed(first, batch["image"])) and torch.isfinite(loss)
    strong(model, batch, 5)  # a resumed phase redraws the same views at the same step
    assert torch.equal(model.seen, first)
    strong(model, batch, 6)
    assert not torch.equal(model.seen, first)
    assert torch.equal(batch["image"], _batch()["image"])  # the batch itself is not changed
    # the loss is that of the strong view against the unchanged labels
    expected = supervised_loss_fn("dice_ce")(_FixedInput(model, first), batch, 5)[0]
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)


class _FixedInput(nn.Module):
    def __init__(self, model, image):
        super().__init__()
        self.model, self.image = model, image

    def forward(self, x):
        return self.model(self.image)


def test_the_teacher_phase_uses_the_setting(monkeypatch):
    captured = {}

    def fake_train_phase(ctx, name, *, pools, loss_fn, steps):
        captured["loss_fn"] = loss_fn
        return name

    monkeypatch.setattr(teacher_lib, "train_phase", fake_train_phase)
    config = config_lib.preset("tiny")
    config_lib.apply_overrides(config, ["train.strong_views=1"])
    ctx = SimpleNamespace(config=config, labeled_items=lambda: [])
    teacher_lib.train_teacher(ctx)
    batch, model = _batch(), Recorder()
    captured["loss_fn"](model, batch, 0)
    assert all(_changed(model.seen, batch["image"]))

    config_lib.apply_overrides(config, ["train.strong_views=0"])
    teacher_lib.train_teacher(ctx)
    captured["loss_fn"](model, batch, 0)
    assert torch.equal(model.seen, batch["image"])


def test_the_setting_is_a_probability_and_runs_made_before_it_keep_the_weak_views(tmp_path):
    with pytest.raises(BadInputError, match="train.strong_views: a probability"):
        config_lib.apply_overrides(config_lib.preset("tiny"), ["train.strong_views=1.5"])
    saved = config_lib.preset("tiny").to_dict()
    saved["train"]["strong_views"] = 0.5
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert config_lib.load(tmp_path / "config.yaml", saved_run=True).train.strong_views == 0.5
    del saved["train"]["strong_views"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert config_lib.load(tmp_path / "config.yaml", saved_run=True).train.strong_views == 0.0
