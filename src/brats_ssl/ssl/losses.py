"""The student's dual loss (METHOD step 6) and the consistency losses of the baselines.

L = L_sup(labeled) + λ(t)·[L_learn + β·L_unlearn](pseudo-labeled), with
- L_learn: cross-entropy + soft Dice against the pseudo-label on voxels with confidence c ≥ τ,
  weighted by c (or unweighted, the ``--no-uncertainty-weighting`` ablation);
- L_unlearn on voxels with c < τ: ``argmax`` −log(1 − p(ŷ)), ``absent`` −Σ_{ruled-out c} log(1 − p(c))
  (negative learning as in UPS), or ``none``.
Confidences arrive encoded as uint8 (:mod:`brats_ssl.data.confidence_codec`).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from brats_ssl.data import confidence_codec
from brats_ssl.data.batches import LABELED, PSEUDO, UNLABELED
from brats_ssl.losses import SupervisedLoss, probabilities
from brats_ssl.networks.mc import enable_mc_dropout, supports_split_mc

EPS = 1e-6


def sigmoid_rampup(step: float, length: float) -> float:
    """exp(−5(1−t)²), t = step/length clipped to [0, 1] (Laine & Aila; used by UA-MT)."""
    if length <= 0:
        return 1.0
    t = min(max(step / length, 0.0), 1.0)
    return float(math.exp(-5.0 * (1.0 - t) ** 2))


def class_log_probs(logits: torch.Tensor, output: str) -> torch.Tensor:
    if output == "region":
        return torch.log(probabilities(logits, output).clamp_min(EPS))
    return F.log_softmax(logits.float(), 1)


def learn_loss(
    log_p: torch.Tensor,
    label: torch.Tensor,
    confidence: torch.Tensor,
    valid: torch.Tensor,
    tau: float,
    *,
    weighted: bool = True,
) -> torch.Tensor:
    """Confidence-weighted CE + soft Dice on voxels with c ≥ τ; 0 when there are none."""
    mask = valid & (confidence >= tau)
    weight = confidence * mask if weighted else mask.float()
    if not bool(mask.any()):
        return log_p.sum() * 0.0
    ce = F.nll_loss(log_p, label, reduction="none")
    ce_term = (weight * ce).sum() / weight.sum().clamp_min(EPS)
    p = log_p.exp()
    one_hot = F.one_hot(label, p.shape[1]).movedim(-1, 1).float()
    w = weight.unsqueeze(1)
    dims = [0] + list(range(2, p.dim()))
    intersection = (w * p * one_hot).sum(dims)
    denominator = (w * (p + one_hot)).sum(dims)
    present = one_hot.mul(w).sum(dims) > 0
    dice = 1 - (2 * intersection + EPS) / (denominator + EPS)
    dice_term = dice[present].mean() if bool(present.any()) else dice.sum() * 0.0
    return ce_term + dice_term


def unlearn_loss(
    log_p: torch.Tensor,
    label: torch.Tensor,
    absent: torch.Tensor,
    confidence: torch.Tensor,
    valid: torch.Tensor,
    tau: float,
    *,
    variant: str,
) -> torch.Tensor:
    """Selective unlearning on voxels with c < τ (METHOD step 6); exactly 0 for ``none``."""
    if variant == "none":
        return torch.zeros((), device=log_p.device)
    mask = valid & (confidence < tau)
    if not bool(mask.any()):
        return log_p.sum() * 0.0
    p = log_p.exp()
    if variant == "argmax":
        p_hat = p.gather(1, label.unsqueeze(1)).squeeze(1)
        per_voxel = -torch.log1p(-p_hat.clamp(max=1 - EPS))
    elif variant == "absent":
        classes = torch.arange(p.shape[1], device=p.device).view(1, -1, *([1] * (p.dim() - 2)))
        ruled_out = ((absent.unsqueeze(1).long() >> classes) & 1).float()
        per_voxel = -(ruled_out * torch.log1p(-p.clamp(max=1 - EPS))).sum(1)
    else:
        raise ValueError(f"unknown unlearn variant {variant!r}")
    return per_voxel[mask].mean()


class DualLoss:
    """``loss_fn(model, batch, step)`` for the student of a stage."""

    def __init__(
        self,
        *,
        output: str,
        tau: float,
        beta: float,
        unlearn: str,
        weighted: bool,
        lambda_max: float,
        rampup_steps: int,
        step_offset: int = 0,
    ):
        self.supervised = SupervisedLoss(output)
        self.output, self.tau, self.beta, self.unlearn = output, tau, beta, unlearn
        self.weighted, self.lambda_max = weighted, lambda_max
        self.rampup_steps, self.step_offset = rampup_steps, step_offset

    def weight(self, step: int) -> float:
        return self.lambda_max * sigmoid_rampup(step + self.step_offset, self.rampup_steps)

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], step: int):
        logits = model(batch["image"])
        kind = batch["kind"]
        labeled, pseudo = kind == LABELED, kind == PSEUDO
        sup = self.supervised(logits[labeled], batch["label"][labeled]) if bool(labeled.any()) else logits.sum() * 0
        zero = logits.sum() * 0.0
        learn = unlearn = zero
        logs: dict[str, float] = {}
        if bool(pseudo.any()):
            log_p = class_log_probs(logits[pseudo], self.output)
            confidence, valid = confidence_codec.decode_tensor(batch["confidence"][pseudo])
            label = batch["label"][pseudo]
            learn = learn_loss(log_p, label, confidence, valid, self.tau, weighted=self.weighted)
            unlearn = unlearn_loss(
                log_p, label, batch["absent"][pseudo], confidence, valid, self.tau, variant=self.unlearn
            )
            confident = ((confidence >= self.tau) & valid).float().sum()
            logs["confident"] = float(confident / valid.float().sum().clamp_min(1))
        lam = self.weight(step)
        loss = sup + lam * (learn + self.beta * unlearn)
        logs.update(
            sup=float(sup.detach()), learn=float(learn.detach()), unlearn=float(unlearn.detach()), **{"lambda": lam}
        )
        return loss, logs


class EMATeacher:
    """Exponential moving average of the student (Mean Teacher); a trainer hook."""

    name = "ema_teacher"

    def __init__(self, student: nn.Module, decay: float, *, step_offset: int = 0):
        """A copy of ``student`` to follow it; ``step_offset``: steps it already followed (a student
        that goes on across phases keeps its teacher's warm-up behind it)."""
        self.model = copy.deepcopy(student)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay, self.step_offset = decay, step_offset

    @torch.no_grad()
    def on_step_end(self, trainer, step: int, logs: dict) -> None:
        step += self.step_offset
        alpha = min(1 - 1 / (step + 1), self.decay)
        for ema, live in zip(self.model.parameters(), trainer.model.parameters()):
            ema.mul_(alpha).add_(live.detach(), alpha=1 - alpha)
        for ema_buffer, live_buffer in zip(self.model.buffers(), trainer.model.buffers()):
            ema_buffer.copy_(live_buffer)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)


class ConsistencyLoss:
    """Mean Teacher (``uncertainty_passes == 0``) or UA-MT (Yu et al. 2019) for unlabeled samples.

    UA-MT: the EMA teacher makes T noisy passes; consistency (MSE of softmax) only where the
    teacher's predictive entropy is below a threshold ramping from 0.75·ln C to ln C.
    """

    def __init__(
        self,
        *,
        teacher: EMATeacher,
        output: str,
        weight: float,
        rampup_steps: int,
        total_steps: int,
        uncertainty_passes: int = 0,
        noise: float = 0.1,
        shared_encoder: bool = True,
    ):
        self.supervised = SupervisedLoss(output)
        self.teacher, self.output = teacher, output
        self.weight, self.rampup_steps, self.total_steps = weight, rampup_steps, total_steps
        self.passes, self.noise, self.shared_encoder = uncertainty_passes, noise, shared_encoder

    @torch.no_grad()
    def teacher_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """The EMA teacher's mean probabilities over its noisy passes (one pass for Mean Teacher).

        With ``shared_encoder`` and a network that splits at its dropout (TransASPP-UNet), the T
        UA-MT passes share one noisy input and one encoder run and differ in their dropout masks
        (the MC path of pseudo-labelling: ≈ 2 forward passes instead of T); otherwise each pass
        has its own input noise and runs the whole network (Yu et al.'s code)."""
        teacher = self.teacher.model.to(x.device)
        passes = max(self.passes, 1)

        def noisy(images: torch.Tensor) -> torch.Tensor:
            return images + torch.clamp(torch.randn_like(images) * self.noise, -2 * self.noise, 2 * self.noise)

        if self.passes > 1 and self.shared_encoder and supports_split_mc(teacher):
            enable_mc_dropout(teacher)  # dropout sampling on, the rest in inference mode
            logits = teacher.decode(teacher.encode(noisy(x)).tile(passes))  # sample-major (T·B, ...)
        else:
            teacher.train()  # dropout on: the teacher's passes are stochastic, as in UA-MT
            # The T noisy passes run as one batch (same result as T calls, better throughput).
            logits = teacher(noisy(x.repeat(passes, *([1] * (x.dim() - 1)))))
        samples = probabilities(logits, self.output)
        return samples.reshape(passes, x.shape[0], *samples.shape[1:]).mean(0)

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], step: int):
        logits = model(batch["image"])
        kind = batch["kind"]
        labeled, unlabeled = kind == LABELED, kind == UNLABELED
        sup = self.supervised(logits[labeled], batch["label"][labeled]) if bool(labeled.any()) else logits.sum() * 0
        consistency = logits.sum() * 0.0
        logs: dict[str, float] = {}
        if bool(unlabeled.any()):
            student_p = probabilities(logits[unlabeled], self.output)
            teacher_p = self.teacher_probabilities(batch["image"][unlabeled])
            squared = (student_p - teacher_p) ** 2
            if self.passes > 0:
                entropy = -(teacher_p * torch.log(teacher_p.clamp_min(EPS))).sum(1, keepdim=True)
                ln_c = math.log(teacher_p.shape[1])
                threshold = (0.75 + 0.25 * sigmoid_rampup(step, self.total_steps)) * ln_c
                mask = (entropy < threshold).float()
                consistency = (mask * squared).sum() / (2 * mask.sum() + EPS)  # as in Yu et al.'s code
                logs["certain"] = float(mask.mean())
            else:
                consistency = squared.mean()
        w = self.weight * sigmoid_rampup(step, self.rampup_steps)
        logs.update(sup=float(sup.detach()), consistency=float(consistency.detach()), weight=w)
        return sup + w * consistency, logs
