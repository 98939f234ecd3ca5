import math

import pytest
import torch

from brats_ssl.data import confidence_codec
from brats_ssl.data.batches import LABELED, PSEUDO
from brats_ssl.ssl.losses import DualLoss, learn_loss, sigmoid_rampup, unlearn_loss


def _log_p(probs):
    return torch.log(torch.tensor(probs, dtype=torch.float32))


def test_only_confident_voxels_reach_learn_loss():
    # 1 sample, 4 classes, 3 voxels (1-D spatial). Voxel 0 confident (0.9), 1 not (0.5), 2 confident (1.0).
    probs = torch.tensor([[[0.7, 0.1, 0.25], [0.1, 0.6, 0.25], [0.1, 0.2, 0.25], [0.1, 0.1, 0.25]]])
    log_p = torch.log(probs)
    label = torch.tensor([[0, 1, 3]])
    conf = torch.tensor([[0.9, 0.5, 1.0]])
    valid = torch.ones_like(conf, dtype=torch.bool)
    loss = learn_loss(log_p, label, conf, valid, tau=0.8, weighted=True)
    ce = (0.9 * -math.log(0.7) + 1.0 * -math.log(0.25)) / 1.9
    # weighted soft Dice over classes present in the confident target (0 and 3)
    d0 = 1 - 2 * (0.9 * 0.7) / (0.9 * (0.7 + 1) + 1.0 * (0.25 + 0))
    d3 = 1 - 2 * (1.0 * 0.25) / (0.9 * (0.1 + 0) + 1.0 * (0.25 + 1))
    assert float(loss) == pytest.approx(ce + (d0 + d3) / 2, rel=1e-4)
    # Changing the unconfident voxel's prediction does not change the loss.
    probs2 = probs.clone()
    probs2[0, :, 1] = torch.tensor([0.97, 0.01, 0.01, 0.01])
    assert float(learn_loss(torch.log(probs2), label, conf, valid, tau=0.8)) == pytest.approx(float(loss), rel=1e-6)


def test_unlearn_argmax_and_absent_values():
    probs = torch.tensor([[[0.7, 0.1], [0.1, 0.6], [0.1, 0.2], [0.1, 0.1]]])
    log_p = torch.log(probs)
    label = torch.tensor([[0, 1]])
    conf = torch.tensor([[0.9, 0.5]])  # only voxel 1 is below tau=0.8
    valid = torch.ones_like(conf, dtype=torch.bool)
    absent = torch.tensor([[0b0000, 0b1001]], dtype=torch.uint8)  # voxel 1 rules out classes 0 and 3
    argmax = unlearn_loss(log_p, label, absent, conf, valid, 0.8, variant="argmax")
    assert float(argmax) == pytest.approx(-math.log(1 - 0.6), rel=1e-5)
    negative = unlearn_loss(log_p, label, absent, conf, valid, 0.8, variant="absent")
    assert float(negative) == pytest.approx(-math.log(1 - 0.1) - math.log(1 - 0.1), rel=1e-5)
    none = unlearn_loss(log_p, label, absent, conf, valid, 0.8, variant="none")
    assert float(none) == 0.0


@pytest.mark.parametrize("variant", ["argmax", "absent"])
def test_a_gradient_step_on_unlearn_lowers_the_unreliable_probabilities(variant):
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 6, requires_grad=True)
    label = torch.tensor([[1, 1, 2, 2, 3, 0]])
    absent = torch.full((1, 6), 0b0101, dtype=torch.uint8)  # classes 0 and 2 ruled out
    conf = torch.full((1, 6), 0.3)
    valid = torch.ones_like(conf, dtype=torch.bool)

    def tracked(logits):
        p = torch.softmax(logits, 1)
        if variant == "argmax":
            return p.gather(1, label.unsqueeze(1)).sum()
        return (p[:, 0] + p[:, 2]).sum()

    before = float(tracked(logits.detach()))
    loss = unlearn_loss(torch.log_softmax(logits, 1), label, absent, conf, valid, 0.8, variant=variant)
    loss.backward()
    with torch.no_grad():
        stepped = logits - 0.5 * logits.grad
    assert float(tracked(stepped)) < before


def test_dual_loss_mixes_supervised_learn_and_unlearn_terms():
    torch.manual_seed(0)
    model = torch.nn.Conv3d(4, 4, 1)
    batch = {
        "image": torch.randn(2, 4, 4, 4, 4),
        "label": torch.randint(0, 4, (2, 4, 4, 4)),
        "confidence": torch.from_numpy(confidence_codec.encode(torch.rand(2, 4, 4, 4).numpy())),
        "absent": torch.full((2, 4, 4, 4), 0b0110, dtype=torch.uint8),  # NCR and ED ruled out everywhere
        "kind": torch.tensor([LABELED, PSEUDO]),
    }
    loss_fn = DualLoss(
        output="dice_ce", tau=0.5, beta=0.5, unlearn="absent", weighted=True, lambda_max=1.0, rampup_steps=10
    )
    early, logs0 = loss_fn(model, batch, 0)
    late, logs9 = loss_fn(model, batch, 10)
    assert logs0["lambda"] == pytest.approx(math.exp(-5)) and logs9["lambda"] == pytest.approx(1.0)
    assert logs9["unlearn"] > 0.1 and logs9["learn"] > 0.1 and logs9["sup"] > 0.1  # every term is at work
    assert float(late.detach()) == pytest.approx(logs9["sup"] + logs9["learn"] + 0.5 * logs9["unlearn"], rel=1e-5)
    assert float(early.detach()) == pytest.approx(
        logs0["sup"] + math.exp(-5) * (logs0["learn"] + 0.5 * logs0["unlearn"]), rel=1e-5
    )
    assert 0 < logs9["confident"] < 1
    # the unlearn term is the negative learning of the ruled-out classes on the unconfident voxels
    with torch.no_grad():
        log_p = torch.log_softmax(model(batch["image"][1:]), 1)
    confidence, valid = confidence_codec.decode_tensor(batch["confidence"][1:])
    expected = unlearn_loss(log_p, batch["label"][1:], batch["absent"][1:], confidence, valid, 0.5, variant="absent")
    assert logs9["unlearn"] == pytest.approx(float(expected), rel=1e-5)


def test_rampup_and_dequantise():
    assert sigmoid_rampup(0, 10) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(5, 10) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(20, 10) == 1.0
    conf, valid = confidence_codec.decode_tensor(torch.tensor([0, 1, 128, 255], dtype=torch.uint8))
    assert valid.tolist() == [False, True, True, True]
    assert conf.tolist() == pytest.approx([0.0, 0.0, 127 / 254, 1.0])
