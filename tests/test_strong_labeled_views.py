"""train.strong_views: labeled patches shown as their strong views, in every training phase."""

import pytest
import torch
import yaml
from torch import nn

from brats_ssl import config as config_lib
from brats_ssl.data.batches import LABELED, PSEUDO
from brats_ssl.data.strong_views import strong_view_some, with_strong_labeled_views
from brats_ssl.errors import BadInputError
from brats_ssl.run.phase import supervised_loss_fn


def _batch(kinds=(LABELED, PSEUDO, LABELED, LABELED, PSEUDO, LABELED), seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn((len(kinds), 4, 12, 12, 10), generator=g)
    image[:, :, :3] = 0  # outside the brain
    label = torch.randint(0, 4, (len(kinds), 12, 12, 10), generator=g)
    return {"image": image, "label": label, "kind": torch.tensor(kinds)}


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
    images = _batch(kinds=(LABELED,) * 8)["image"]
    out = strong_view_some(images, 0.5, torch.Generator().manual_seed(1))
    changed = _changed(out, images)
    assert 0 < sum(changed) < len(changed)  # seed 1 draws both kinds
    assert torch.equal(out, strong_view_some(images, 0.5, torch.Generator().manual_seed(1)))
    assert bool((out[:, :, :3] == 0).all())  # the background stays 0, nothing moves
    assert strong_view_some(images, 0.0, torch.Generator().manual_seed(1)) is images
    assert all(_changed(strong_view_some(images, 1.0, torch.Generator().manual_seed(1)), images))


def test_labeled_patches_are_seen_as_strong_views_drawn_per_phase_and_step():
    batch, model = _batch(), Recorder()
    inner = supervised_loss_fn("dice_ce")
    assert with_strong_labeled_views(inner, 0.0, seed=3, stream="teacher") is inner
    loss_fn = with_strong_labeled_views(inner, 1.0, seed=3, stream="teacher")
    loss, _ = loss_fn(model, batch, 5)
    first = model.seen
    labeled = (batch["kind"] == LABELED).tolist()
    assert _changed(first, batch["image"]) == labeled  # every labeled patch, no pseudo-labeled one
    assert torch.isfinite(loss)
    loss_fn(model, batch, 5)  # a resumed phase redraws the same views at the same step
    assert torch.equal(model.seen, first)
    loss_fn(model, batch, 6)
    assert not torch.equal(model.seen, first)
    with_strong_labeled_views(inner, 1.0, seed=3, stream="stage_1")(model, batch, 5)
    assert not torch.equal(model.seen, first)  # another phase, other draws
    assert torch.equal(batch["image"], _batch()["image"])  # the batch itself is not changed
    # the loss is that of the strong views against the unchanged labels
    expected = inner(_FixedInput(model, first), batch, 5)[0]
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)


class _FixedInput(nn.Module):
    def __init__(self, model, image):
        super().__init__()
        self.model, self.image = model, image

    def forward(self, x):
        return self.model(self.image)


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
