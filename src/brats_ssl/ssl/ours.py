"""The method (METHOD steps 2-7): teacher → MC pseudo-labels → ranked curriculum of student
stages with the dual loss → agreement refinement and teacher ← student after each stage.

Every step leaves its result on disk before the next starts, so a re-run resumes at the step
boundary (inside a training phase: at its last checkpoint; inside labelling: at the next case).
Under ``torchrun`` every rank runs this function; labelling and refinement share the cases, and
rank 0 alone writes the files every rank would write alike (rankings, statistics, stages.json).
"""

from __future__ import annotations

import json

from brats_ssl import atomic
from brats_ssl.data.batches import LABELED, Pool
from brats_ssl.engine import distributed
from brats_ssl.engine.context import RunContext
from brats_ssl.engine.phase import final_weights, train_phase
from brats_ssl.engine.trainer import score_of
from brats_ssl.progress import track
from brats_ssl.ssl.curriculum import stage_members, threshold
from brats_ssl.ssl.labelling import (
    audit_info,
    case_folder,
    label_pool,
    missing_share,
    pseudo_pool,
    pseudo_statistics,
    rank_pool,
    write_ranking,
)
from brats_ssl.ssl.losses import DualLoss
from brats_ssl.ssl.pseudolabels import PseudoLabel
from brats_ssl.ssl.refinement import refine
from brats_ssl.ssl.review_decisions import stage_members_after_review


def val_score(summary: dict) -> float:
    mean = summary.get("mean", {})
    if not mean:
        return float("-inf")
    return score_of({r: mean[r]["dice"] for r in ("WT", "TC", "ET")})


def refine_round(ctx: RunContext, current: dict[str, PseudoLabel], student: dict[str, PseudoLabel],
                 round_dir) -> tuple[dict[str, PseudoLabel], dict[str, float]]:
    """Refined pseudo-labels of every unlabeled case and the teacher-student agreement (Dice) of each."""
    todo = missing_share(ctx.unlabeled, round_dir)
    for case in track(ctx.progress, todo, description="refine", total=len(todo)):
        refined, dice = refine(current[case.case_id], student[case.case_id], tau_agree=ctx.config.ssl.tau_agree)
        refined.save(case_folder(round_dir, case),
                     {"case": case.case_id, "agreement": dice, **audit_info(ctx, case, refined.label)})
    distributed.barrier()  # every rank's cases are on disk before any rank reads them all
    folders = {c.case_id: case_folder(round_dir, c) for c in ctx.unlabeled}
    return ({case_id: PseudoLabel.load(f) for case_id, f in folders.items()},
            {case_id: PseudoLabel.info(f)["agreement"] for case_id, f in folders.items()})


def run_ours(ctx: RunContext, *, unlabeled: bool = True) -> dict:
    """The method. With ``unlabeled=False`` (``--method ours-control``) the same teacher and stage
    schedule run on the labeled cases alone, with no pseudo-labelling: the control that tells what
    ours gains from its extra training steps rather than from the unlabeled scans."""
    from brats_ssl.ssl.methods import trained_teacher

    cfg, s = ctx.config, ctx.config.ssl
    teacher_model, teacher_summary = trained_teacher(ctx)
    mc = cfg.inference.mc_samples
    pseudo_dir = ctx.run_dir / "pseudo"
    if unlabeled:
        current = label_pool(ctx, teacher_model, ctx.unlabeled, pseudo_dir / "round_0", mc=mc,
                             tta=cfg.inference.tta, description="pseudo-label", keep_probabilities=True)
        ranking = rank_pool(ctx, current)
        write_ranking(ranking, pseudo_dir / "round_0" / "ranking.csv")

    teacher_name, teacher_val = "teacher", val_score(teacher_summary)
    stages, summary = [], teacher_summary
    for k in range(1, s.stages + 1):
        name = f"stage_{k}"
        tau = threshold(k, s.stages, s.tau_start, s.tau_end)
        loss = DualLoss(output=cfg.train.loss, tau=tau, beta=s.beta, unlearn=s.unlearn,
                        weighted=s.uncertainty_weighting, lambda_max=s.lambda_max,
                        rampup_steps=int(s.rampup_fraction * s.stage_steps), step_offset=(k - 1) * s.stage_steps)
        pools = [Pool(ctx.labeled_items(), 1 - s.pseudo_fraction, LABELED)]
        members: list[str] = []
        review = None
        if unlabeled:
            ranked = [r.case for r in ranking]
            members, review = stage_members_after_review(
                ctx.run_dir, ctx.run_dir / name, ranked, stage_members(ranked, k, s.stages, curriculum=s.curriculum))
            pools.append(pseudo_pool(ctx, current, members, s.pseudo_fraction))
        student, _, summary = train_phase(ctx, name, pools=pools, loss_fn=loss, steps=s.stage_steps,
                                          init_from=final_weights(ctx, teacher_name))
        if unlabeled and distributed.is_main():
            atomic.write_json(ctx.run_dir / name / "pseudo_stats.json", pseudo_statistics(current, members, tau))
        row = {"stage": k, "tau": tau, "members": len(members), "student_val": val_score(summary),
               "teacher": teacher_name, "teacher_val": teacher_val}
        if review is not None:  # a person's decisions changed who is in this stage (review.json)
            row["review"] = {"accepted": review["accepted"], "rejected": review["rejected"]}
        if unlabeled and s.refinement and k < s.stages:
            student_labels = label_pool(ctx, student, ctx.unlabeled, ctx.run_dir / name / "student_pseudo",
                                        mc=mc, tta=cfg.inference.tta, description="student MC")
            current, agreement = refine_round(ctx, current, student_labels, pseudo_dir / f"round_{k}")
            ranking = rank_pool(ctx, current, agreement)
            write_ranking(ranking, pseudo_dir / f"round_{k}" / "ranking.csv")
            row["mean_agreement"] = sum(agreement.values()) / max(len(agreement), 1)
        if row["student_val"] > teacher_val:
            teacher_name, teacher_val = name, row["student_val"]
        row["promoted"] = teacher_name == name
        stages.append(row)
        if distributed.is_main():
            atomic.write_json(ctx.run_dir / "stages.json", stages)

    final = json.loads((ctx.run_dir / teacher_name / "summary.json").read_text()) if ctx.val else {}
    return {**final, "model": teacher_name, "teacher": teacher_summary, "student": summary, "stages": stages}
