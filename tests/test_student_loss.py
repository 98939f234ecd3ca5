"""The student loss that learns from the unlabeled scans: the same supervised term as the dual
loss, and each switch (online targets, strong views, copy-paste, hierarchical) doing its part."""

import dataclasses

import pytest
import torch

from brats_ssl import config as config_lib
from brats_ssl.data.batches import LABELED, PSEUDO
from brats_ssl.data.confidence_codec import encode
from brats_ssl.errors import BadInputError
from brats_ssl.ssl.losses import DualLoss, EMATeacher
from brats_ssl.ssl.student_loss import StudentLoss, StudentSettings

SETTINGS = StudentSettings(
    tau=0.7,
    beta=0.5,
    unlearn="absent",
    weighted=True,
    lambda_max=1.0,
    rampup_steps=0,
    online_weight=0.5,
    strong_views=True,
    copy_paste=True,
    copy_paste_ratio=0.5,
    hierarchical=True,
    tau_subclass=0.8,
    tau_neg=0.05,
)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(4, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(8, 4, 1))


def _batch(kinds):
    g = torch.Generator().manual_seed(1)
    n = len(kinds)
    label = torch.randint(0, 4, (n, 8, 8, 8), generator=g)
    return {
        "image": torch.randn((n, 4, 8, 8, 8), generator=g),
        "label": label,
        "confidence": torch.from_numpy(encode(torch.rand((n, 8, 8, 8), generator=g).numpy())),
        "absent": torch.full((n, 8, 8, 8), 0b0010, dtype=torch.uint8),
        "kind": torch.tensor(kinds),
    }


def _grads(loss_fn, model, batch):
    model.zero_grad()
    loss, logs = loss_fn(model, batch, 5)
    loss.backward()
    return float(loss.detach()), [p.grad.clone() for p in model.parameters()], logs


def test_with_labeled_patches_only_it_is_the_dual_loss():
    batch = _batch([LABELED, LABELED])
    model = _model()
    dual = DualLoss(
        output="dice_ce", tau=0.7, beta=0.5, unlearn="absent", weighted=True, lambda_max=1.0, rampup_steps=0
    )
    student = StudentLoss(SETTINGS, teacher=EMATeacher(model, 0.99), seed=0)
    a, b = _grads(dual, model, batch), _grads(student, model, batch)
    assert a[0] == pytest.approx(b[0], rel=1e-6)
    assert all(torch.allclose(x, y, atol=1e-7) for x, y in zip(a[1], b[1]))


def test_each_switch_changes_what_the_student_learns():
    batch = _batch([LABELED, PSEUDO, LABELED, PSEUDO])
    model = _model()
    teacher = EMATeacher(model, 0.99)
    with torch.no_grad():  # an online teacher that differs from the student
        for p in teacher.model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    full = _grads(StudentLoss(SETTINGS, teacher=teacher, seed=0), model, batch)
    assert full[2]["learn"] > 0 and full[2]["unlearn"] > 0 and full[2]["sup"] > 0
    assert 0 < full[2]["learn_which"] <= full[2]["learn_where"] <= 1
    for switch, off in (
        ("online_weight", 0.0),
        ("strong_views", False),
        ("copy_paste", False),
        ("hierarchical", False),
    ):
        settings = dataclasses.replace(SETTINGS, **{switch: off})
        other = _grads(StudentLoss(settings, teacher=teacher if settings.online_weight else None, seed=0), model, batch)
        assert other[0] != pytest.approx(full[0], rel=1e-4), switch
    # the same step draws the same views and boxes: a resumed run repeats it exactly
    again = _grads(StudentLoss(SETTINGS, teacher=teacher, seed=0), model, batch)
    assert again[0] == full[0]


def test_subclass_from_pseudo_off_learns_only_tumour_vs_background_from_pseudo_labels():
    batch = _batch([LABELED, PSEUDO, LABELED, PSEUDO])
    model = _model()
    both = _grads(StudentLoss(dataclasses.replace(SETTINGS, online_weight=0.0), teacher=None, seed=0), model, batch)
    where = dataclasses.replace(SETTINGS, online_weight=0.0, subclass_from_pseudo=False)
    only = _grads(StudentLoss(where, teacher=None, seed=0), model, batch)
    assert both[2]["learn_which"] > 0 and only[2]["learn_which"] == 0
    assert only[2]["learn_where"] == both[2]["learn_where"] and only[2]["sup"] == both[2]["sup"]
    assert 0 < only[2]["learn"] < both[2]["learn"]  # the subclass term is gone, tumour vs background stays
    with pytest.raises(BadInputError, match="ssl.subclass_from_pseudo: false needs ssl.hierarchical"):
        config_lib.from_dict({"preset": "tiny", "ssl": {"hierarchical": False, "subclass_from_pseudo": False}})


def test_online_teacher_needed_for_online_targets():
    with pytest.raises(ValueError, match="online"):
        StudentLoss(SETTINGS, teacher=None, seed=0)


def test_stored_probabilities_replace_the_spread_only_where_they_still_give_the_label():
    from brats_ssl.ssl.hierarchical import offline_probabilities, stored_where_they_agree

    label = torch.tensor([[2, 2, 0]])  # (B=1, S=3); the third voxel is padding (nothing stored)
    confidence = torch.tensor([[0.5, 0.6, 0.0]])
    stored = torch.tensor([[[0, 0, 0], [102, 102, 0], [153, 51, 0], [0, 102, 0]]], dtype=torch.uint8)  # (B, C, S)
    spread = offline_probabilities(label, confidence, 4)
    target = stored_where_they_agree(spread, stored, label)
    # voxel 0: stored argmax is class 2 = its label: the stored probabilities (0, 0.4, 0.6, 0)
    assert target[0, :, 0].tolist() == pytest.approx([0.0, 0.4, 0.6, 0.0])
    # voxel 1: refinement relabelled it (stored argmax 1 or 3 ≠ 2): the confidence spread stays
    assert target[0, :, 1].tolist() == pytest.approx(spread[0, :, 1].tolist())
    assert target[0, :, 2].tolist() == pytest.approx(spread[0, :, 2].tolist())
    # what it changes for hierarchical learning: voxel 0 is sure tumour (1.0) from the stored
    # probabilities, 0.875 from the spread of c = 0.5 (0.5 + 3 × 0.125)
    assert float(target[0, 1:, 0].sum()) == pytest.approx(1.0) and float(spread[0, 1:, 0].sum()) == pytest.approx(0.875)


def test_student_learns_from_stored_probabilities_when_the_batch_has_them():
    batch = _batch([LABELED, PSEUDO])
    model = _model()
    settings = dataclasses.replace(SETTINGS, online_weight=0.0, strong_views=False, copy_paste=False)
    without = _grads(StudentLoss(settings, teacher=None, seed=0), model, batch)
    # probabilities that put 0.95 on each voxel's label: more voxels pass τ than with its confidence
    stored = torch.nn.functional.one_hot(batch["label"], 4).movedim(-1, 1).float() * 0.9 + 0.025
    batch["probabilities"] = (stored * 255).round().to(torch.uint8)
    with_stored = _grads(StudentLoss(settings, teacher=None, seed=0), model, batch)
    assert with_stored[2]["learn_where"] > without[2]["learn_where"]
    assert with_stored[0] != pytest.approx(without[0], rel=1e-4)


def _mixed(loss, kinds, seed):
    """Which samples ``StudentLoss._mix`` copy-pastes in a batch of these kinds."""
    batch = _batch(kinds)
    labeled, pseudo = batch["kind"] == LABELED, batch["kind"] == PSEUDO
    maps = [
        batch["image"].clone(),
        torch.nn.functional.one_hot(batch["label"], 4).movedim(-1, 1).float(),
        batch["label"].clone(),
        labeled.view(-1, 1, 1, 1).expand_as(batch["label"]).clone(),  # origin: ground truth
        torch.ones_like(batch["label"], dtype=torch.bool),  # valid
        batch["absent"].clone(),
    ]
    return loss._mix(*maps, labeled, pseudo, torch.Generator().manual_seed(seed))


def test_copy_paste_draws_which_extras_mix_when_they_outnumber_the_labeled_patches():
    # L L then four extras: with labeled_extra_share the first extras are labeled cases with their
    # true labels, so pairing in batch order would never mix a pseudo-labeled patch.
    loss = StudentLoss(SETTINGS, teacher=EMATeacher(_model(), 0.99), seed=0)
    partners = set()
    for seed in range(12):
        mixed = _mixed(loss, [LABELED, LABELED, PSEUDO, PSEUDO, PSEUDO, PSEUDO], seed)
        assert mixed[:2].all() and int(mixed[2:].sum()) == 2  # every labeled patch mixes, with one extra each
        partners.add(tuple(mixed[2:].nonzero().flatten().tolist()))
    assert len(partners) > 2  # not always the first two extras
    # as many extras as labeled patches (the default): every one of them mixes
    assert _mixed(loss, [LABELED, PSEUDO, LABELED, PSEUDO], 0).all()
