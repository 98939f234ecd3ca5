"""Strong views, copy-paste mixing and hierarchical targets on constructed tensors."""

import pytest
import torch

from brats_ssl.data.strong_views import strong_view
from brats_ssl.ssl.copy_paste import bidirectional, box_mask
from brats_ssl.ssl.hierarchical import hierarchical_loss, offline_probabilities


def _images(seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn((2, 4, 16, 16, 12), generator=g)
    images[:, :, :4] = 0  # outside the brain
    return images


def test_strong_view_is_seeded_changes_only_the_brain_and_moves_nothing():
    images = _images()
    a = strong_view(images, torch.Generator().manual_seed(3))
    assert torch.equal(a, strong_view(images, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, strong_view(images, torch.Generator().manual_seed(4)))
    assert bool((a[:, :, :4] == 0).all())  # the background stays 0
    assert float((a - images)[:, :, 4:].abs().mean()) > 0.01
    # photometric only: where a voxel is kept, it stays correlated with its own weak value
    kept = (a != 0) & (images != 0)
    assert torch.corrcoef(torch.stack([a[kept], images[kept]]))[0, 1] > 0.5


def test_box_mask_has_the_asked_size_and_copy_paste_mixes_every_map_alike():
    g = torch.Generator().manual_seed(0)
    mask = box_mask((12, 12, 9), 2 / 3, g)
    assert int(mask.sum()) == 8 * 8 * 6
    labeled = {"image": torch.ones(4, 12, 12, 9), "label": torch.full((12, 12, 9), 2), "origin": torch.ones(12, 12, 9)}
    unlabeled = {
        "image": torch.zeros(4, 12, 12, 9),
        "label": torch.full((12, 12, 9), 3),
        "origin": torch.zeros(12, 12, 9),
    }
    into_labeled, into_unlabeled = bidirectional(
        labeled, unlabeled, ratio=2 / 3, generator=torch.Generator().manual_seed(1)
    )
    inside = box_mask((12, 12, 9), 2 / 3, torch.Generator().manual_seed(1))
    # a labeled patch with an unlabeled box, and the reverse; image, label and origin agree everywhere
    assert bool((into_labeled["label"][inside] == 3).all()) and bool((into_labeled["label"][~inside] == 2).all())
    assert torch.equal(into_labeled["origin"], (~inside).float())
    assert torch.equal(into_unlabeled["image"][0], inside.float())
    assert torch.equal(into_unlabeled["origin"] + into_labeled["origin"], torch.ones(12, 12, 9))


def test_hierarchical_loss_learns_where_before_which():
    # 4 voxels: confident background; confident tumour with a sure subclass (ET); confident tumour
    # but unsure subclass (NCR vs ED); unsure tumour
    target = torch.tensor(
        [[0.97, 0.01, 0.01, 0.01], [0.01, 0.02, 0.02, 0.95], [0.02, 0.49, 0.48, 0.01], [0.5, 0.2, 0.2, 0.1]]
    ).T.reshape(1, 4, 4)
    valid = torch.ones(1, 4, dtype=torch.bool)
    logits = torch.zeros(1, 4, 4, requires_grad=True)
    loss, shares = hierarchical_loss(torch.log_softmax(logits, 1), target, valid, tau=0.9, tau_subclass=0.8)
    assert shares == {"learn_where": pytest.approx(3 / 4), "learn_which": pytest.approx(1 / 4)}
    loss.backward()
    grad = logits.grad[0]
    assert float(grad[:, 3].abs().sum()) == 0  # the unsure voxel teaches nothing
    assert float(grad[1, 2]) == pytest.approx(float(grad[2, 2]))  # NCR vs ED left open on voxel 2
    assert float(grad[3, 1]) < 0  # ET pushed up on voxel 1
    soft = offline_probabilities(torch.tensor([[2, 0]]), torch.tensor([[0.9, 0.5]]), 4)
    assert torch.allclose(soft[0, :, 0], torch.tensor([0.025, 0.025, 0.925, 0.025]))
    assert torch.allclose(soft.sum(1), torch.ones(1, 2))
