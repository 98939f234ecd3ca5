"""The student loss that learns from the unlabeled scans: the same supervised term as the dual
loss, and each switch (online targets, strong views, copy-paste, hierarchical) doing its part."""

import dataclasses

import pytest
import torch

from brats_ssl.data.batches import LABELED, PSEUDO
from brats_ssl.data.confidence_codec import encode
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


def test_online_teacher_needed_for_online_targets():
    with pytest.raises(ValueError, match="online"):
        StudentLoss(SETTINGS, teacher=None, seed=0)
