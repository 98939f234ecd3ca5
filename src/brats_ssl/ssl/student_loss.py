"""The student's loss when it learns *from* the unlabeled scans rather than re-learning its
teacher's answers (issue: make the unlabeled scans count). Four switchable changes over the dual
loss of :mod:`brats_ssl.ssl.losses`, each a setting:

- ``ssl.online_weight`` w: targets are ``(1 − w) · offline + w · online``, the offline curriculum
  pseudo-label (its label with its MC confidence c: c on the label, 1 − c spread) blended with an
  online EMA teacher's prediction on the weak view, which improves as the student does;
- ``ssl.strong_views``: the student sees a strong view of each pseudo-labeled patch
  (:mod:`brats_ssl.data.strong_views`), the teacher the weak one (FixMatch / UniMatch);
- ``ssl.copy_paste``: each labeled patch and a pseudo-labeled one swap a box both ways (BCP);
  labeled voxels keep their ground truth wherever they land;
- ``ssl.hierarchical``: tumour vs background is learned wherever the target is sure of it, the
  subclass only where it is sure of that too, each class-balanced (:mod:`brats_ssl.ssl.hierarchical`);
  ``ssl.subclass_from_pseudo: false`` learns the subclass from labeled voxels alone.

The paper's parts stay: the confidence curriculum decides which scans are in the pool, τ_k which
voxels are learned (confidence of the blended target ≥ τ_k, weighted by it), the rest is unlearned
(negative learning of the classes both the MC teacher and the online teacher rule out), and
refinement updates the offline pseudo-labels between stages.

L = L_sup(labeled voxels) + λ(t) · [L_learn + β · L_unlearn](pseudo-labeled voxels)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from brats_ssl.data import confidence_codec
from brats_ssl.data.batches import LABELED, PROBABILITIES, PSEUDO
from brats_ssl.data.conventions import NUM_CLASSES
from brats_ssl.data.strong_views import strong_view
from brats_ssl.engine.trainer import step_seed
from brats_ssl.losses import SupervisedLoss, probabilities
from brats_ssl.ssl import copy_paste
from brats_ssl.ssl.hierarchical import hierarchical_loss, offline_probabilities, stored_where_they_agree
from brats_ssl.ssl.losses import EMATeacher, class_log_probs, learn_loss, sigmoid_rampup, unlearn_loss


@dataclass(frozen=True)
class StudentSettings:
    tau: float  # this stage's voxel confidence threshold
    beta: float
    unlearn: str  # argmax | absent | none
    weighted: bool  # uncertainty weighting of the learned voxels
    lambda_max: float
    rampup_steps: int
    online_weight: float
    strong_views: bool
    copy_paste: bool
    copy_paste_ratio: float
    hierarchical: bool
    tau_subclass: float
    tau_neg: float
    output: str = "dice_ce"  # train.loss: how logits become class probabilities
    subclass_from_pseudo: bool = True  # false: pseudo-labels teach tumour vs background only


class StudentLoss:
    """``loss_fn(model, batch, step)`` of a student stage (see the module docstring).
    ``step_offset``: steps of the earlier stages (the λ ramp and the random draws run on)."""

    def __init__(self, settings: StudentSettings, *, teacher: EMATeacher | None, seed: int, step_offset: int = 0):
        if settings.online_weight > 0 and teacher is None:
            raise ValueError("ssl.online_weight > 0 needs an online (EMA) teacher")
        self.s, self.teacher, self.seed, self.step_offset = settings, teacher, seed, step_offset
        self.supervised = SupervisedLoss(settings.output)

    def weight(self, step: int) -> float:
        return self.s.lambda_max * sigmoid_rampup(step + self.step_offset, self.s.rampup_steps)

    @torch.no_grad()
    def targets(
        self,
        weak: torch.Tensor,
        label: torch.Tensor,
        confidence: torch.Tensor,
        absent: torch.Tensor,
        stored: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(soft targets (B, C, *S), ruled-out class bits (B, *S)) of pseudo-labeled patches.
        ``stored``: the teacher's class probabilities (uint8 fractions, (B, C, *S)), used where they
        still give the pseudo-label's class."""
        target = offline_probabilities(label, confidence, NUM_CLASSES)
        if stored is not None:
            target = stored_where_they_agree(target, stored, label)
        if self.teacher is not None and self.s.online_weight > 0:
            self.teacher.model.eval()
            online = probabilities(self.teacher.model(weak), self.s.output)
            target = (1 - self.s.online_weight) * target + self.s.online_weight * online
            classes_axis = torch.arange(online.shape[1], device=online.device).view(1, -1, *([1] * (online.dim() - 2)))
            online_out = ((online < self.s.tau_neg).to(torch.uint8) << classes_axis).sum(1).to(torch.uint8)
            absent = absent & online_out  # ruled out only where both teachers rule the class out
        return target, absent

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], step: int):
        generator = torch.Generator().manual_seed(step_seed(self.seed, step + self.step_offset, 7))
        kind = batch["kind"]
        labeled, pseudo = kind == LABELED, kind == PSEUDO
        image, label = batch["image"], batch["label"]
        confidence, valid = confidence_codec.decode_tensor(batch["confidence"])
        inputs, hard = image.clone(), label.clone()
        target = F.one_hot(label, NUM_CLASSES).movedim(-1, 1).float()
        origin = labeled.view(-1, *([1] * (label.dim() - 1))).expand_as(label).clone()  # True: ground truth
        absent = batch["absent"].clone()
        whole = labeled.clone()  # labeled patches left whole (not copy-pasted)
        logs: dict[str, float] = {}
        if bool(pseudo.any()):
            stored = batch[PROBABILITIES][pseudo] if PROBABILITIES in batch else None
            soft, absent[pseudo] = self.targets(
                image[pseudo], label[pseudo], confidence[pseudo], absent[pseudo], stored
            )
            target[pseudo] = soft
            if self.s.strong_views:
                inputs[pseudo] = strong_view(image[pseudo], generator)
            if self.s.copy_paste and bool(labeled.any()):
                whole &= ~self._mix(inputs, target, hard, origin, valid, absent, labeled, pseudo, generator)
        logits = model(inputs)
        log_p = class_log_probs(logits, self.s.output)
        # Whole labeled patches: the teacher's own supervised loss (so ours-control, with no
        # pseudo-labeled patch, trains exactly as with the dual loss); pasted labeled voxels: the
        # same Dice + CE restricted to them.
        sup = self.supervised(logits[whole], label[whole]) if bool(whole.any()) else log_p.sum() * 0.0
        pasted = origin & valid & ~whole.view(-1, *([1] * (label.dim() - 1)))
        if bool(pasted.any()):
            sup = sup + learn_loss(log_p, hard, pasted.float(), pasted, 0.5, weighted=False)
        learn = unlearn = log_p.sum() * 0.0
        from_pseudo = ~origin & valid
        if bool(from_pseudo.any()):
            sure = target.max(1).values
            if self.s.hierarchical:
                learn, shares = hierarchical_loss(
                    log_p,
                    target,
                    from_pseudo,
                    tau=self.s.tau,
                    tau_subclass=self.s.tau_subclass if self.s.subclass_from_pseudo else math.inf,
                    weighted=self.s.weighted,
                )
                logs.update(shares)
            else:
                learn = learn_loss(log_p, target.argmax(1), sure, from_pseudo, self.s.tau, weighted=self.s.weighted)
            unlearn = unlearn_loss(
                log_p, target.argmax(1), absent, sure, from_pseudo, self.s.tau, variant=self.s.unlearn
            )
            logs["confident"] = float(
                ((sure >= self.s.tau) & from_pseudo).float().sum() / from_pseudo.float().sum().clamp_min(1)
            )
        lam = self.weight(step)
        loss = sup + lam * (learn + self.s.beta * unlearn)
        logs.update(
            sup=float(sup.detach()), learn=float(learn.detach()), unlearn=float(unlearn.detach()), **{"lambda": lam}
        )
        return loss, logs

    def _mix(self, inputs, target, hard, origin, valid, absent, labeled, pseudo, generator) -> torch.Tensor:
        """Copy-paste each labeled patch with a pseudo-labeled one, both ways, in place; returns
        which samples were mixed."""
        mixed = torch.zeros_like(labeled)
        ii, jj = labeled.nonzero().flatten(), pseudo.nonzero().flatten()
        if len(jj) > len(ii):  # more extras than labeled patches: which ones mix is drawn, not their batch order
            jj = jj[torch.randperm(len(jj), generator=generator)[: len(ii)]].sort().values
        for i, j in zip(ii.tolist(), jj.tolist()):
            mixed[i] = mixed[j] = True
            maps = {"image": inputs, "target": target, "hard": hard, "origin": origin, "valid": valid, "absent": absent}
            a = {key: value[i] for key, value in maps.items()}
            b = {key: value[j] for key, value in maps.items()}
            into_a, into_b = copy_paste.bidirectional(a, b, ratio=self.s.copy_paste_ratio, generator=generator)
            for key, value in maps.items():
                value[i], value[j] = into_a[key], into_b[key]
        return mixed
