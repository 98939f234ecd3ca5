"""The method (METHOD steps 2-7): teacher → MC pseudo-labels → ranked curriculum of student
stages with the dual loss → agreement refinement and teacher ← student after each stage.

Every step leaves its result on disk before the next starts, so a re-run resumes at the step
boundary (inside a training phase: at its last checkpoint; inside labelling: at the next case).
Under ``torchrun`` every rank runs this function; labelling and refinement share the cases, and
rank 0 alone writes the files every rank would write alike (rankings, statistics, stages.json).
"""

from __future__ import annotations

from brats_ssl import atomic
from brats_ssl.batch_mix import stage_counts
from brats_ssl.config import learns_from_targets
from brats_ssl.data.batches import LABELED, Pool
from brats_ssl.engine import distributed
from brats_ssl.engine.checkpoint import load_model_weights
from brats_ssl.engine.device import to_memory_format
from brats_ssl.engine.trainer import LossFn
from brats_ssl.metrics import summary_score
from brats_ssl.progress import track
from brats_ssl.run.context import RunContext
from brats_ssl.run.method_result import MethodResult
from brats_ssl.run.phase import PhaseResult, final_weights, train_phase
from brats_ssl.ssl.curriculum import stage_members, threshold
from brats_ssl.ssl.labelling import (
    audit_info,
    case_folder,
    label_pool,
    labeled_as_pseudo,
    missing_share,
    pseudo_pool,
    pseudo_statistics,
    rank_pool,
    write_ranking,
)
from brats_ssl.ssl.losses import DualLoss, EMATeacher
from brats_ssl.ssl.pseudolabels import PseudoLabel
from brats_ssl.ssl.refinement import refine
from brats_ssl.ssl.review_decisions import stage_members_after_review
from brats_ssl.ssl.student_loss import StudentLoss, StudentSettings
from brats_ssl.ssl.teacher import TEACHER_PHASE, train_teacher


def refine_round(
    ctx: RunContext, current: dict[str, PseudoLabel], student: dict[str, PseudoLabel], round_dir
) -> tuple[dict[str, PseudoLabel], dict[str, float]]:
    """Refined pseudo-labels of every unlabeled case and the teacher-student agreement (Dice) of each."""
    todo = missing_share(ctx.unlabeled, round_dir)
    for case in track(ctx.progress, todo, description="refine", total=len(todo)):
        refined, dice = refine(
            current[case.case_id],
            student[case.case_id],
            tau_agree=ctx.config.ssl.tau_agree,
            agree=ctx.config.ssl.agree_confidence,
        )
        refined.save(
            case_folder(round_dir, case),
            {"case": case.case_id, "agreement": dice, **audit_info(ctx, case, refined.label)},
        )
    distributed.barrier()  # every rank's cases are on disk before any rank reads them all
    folders = {c.case_id: case_folder(round_dir, c) for c in ctx.unlabeled}
    return (
        {case_id: PseudoLabel.load(f) for case_id, f in folders.items()},
        {case_id: PseudoLabel.info(f)["agreement"] for case_id, f in folders.items()},
    )


def stage_start(ctx: RunContext, k: int, teacher: str) -> dict:
    """Where stage k's student starts. ``continuous`` (default): stage 1 from the teacher, stage k
    from stage k-1 with its optimizer, all stages on one LR schedule (one warm-up, one decay).
    ``restart`` (runs made before): every stage from the current teacher with a schedule of its own."""
    s = ctx.config.ssl
    if s.student_schedule == "restart":
        return {"init_from": final_weights(ctx, teacher)}
    return {
        "init_from": final_weights(ctx, TEACHER_PHASE if k == 1 else f"stage_{k - 1}"),
        "init_optimizer": k > 1,
        "schedule_window": ((k - 1) * s.stage_steps, s.stages * s.stage_steps),
    }


def online_teacher(ctx: RunContext, k: int) -> EMATeacher:
    """Stage k's online EMA teacher: the supervised teacher's weights at stage 1, then the EMA that
    stage k - 1 ended with (it follows the student across the stages, as the LR schedule does)."""
    s = ctx.config.ssl
    model = ctx.new_model()
    previous = final_weights(ctx, TEACHER_PHASE if k == 1 else f"stage_{k - 1}")
    state = load_model_weights(model, previous, fingerprint=ctx.fingerprint)
    if k > 1 and EMATeacher.name in state.get("hooks", {}):
        model.load_state_dict(state["hooks"][EMATeacher.name])
    to_memory_format(model.to(ctx.device), ctx.config.train.channels_last)
    return EMATeacher(model, s.ema_decay, step_offset=(k - 1) * s.stage_steps)


def stage_loss(ctx: RunContext, k: int, tau: float, *, unlabeled: bool) -> tuple[LossFn, list[EMATeacher]]:
    """(loss_fn, hooks) of stage k: the dual loss, or with any of the target / view / mixing
    settings on, the student loss and its online teacher. ours-control, with no pseudo-labeled
    patch, trains alike under both (the same supervised loss on the same labeled patches)."""
    cfg, s = ctx.config, ctx.config.ssl
    rampup = int(s.rampup_fraction * s.stage_steps)
    if not unlabeled or not learns_from_targets(s):
        return DualLoss(
            output=cfg.train.loss,
            tau=tau,
            beta=s.beta,
            unlearn=s.unlearn,
            weighted=s.uncertainty_weighting,
            lambda_max=s.lambda_max,
            rampup_steps=rampup,
            step_offset=(k - 1) * s.stage_steps,
        ), []
    teacher = online_teacher(ctx, k) if s.online_weight > 0 else None
    settings = StudentSettings(
        tau=tau,
        beta=s.beta,
        unlearn=s.unlearn,
        weighted=s.uncertainty_weighting,
        lambda_max=s.lambda_max,
        rampup_steps=rampup,
        online_weight=s.online_weight,
        strong_views=s.strong_views,
        copy_paste=s.copy_paste,
        copy_paste_ratio=s.copy_paste_ratio,
        hierarchical=s.hierarchical,
        tau_subclass=s.tau_subclass,
        subclass_from_pseudo=s.subclass_from_pseudo,
        tau_neg=s.tau_neg,
        output=cfg.train.loss,
    )
    loss = StudentLoss(settings, teacher=teacher, seed=cfg.seed, step_offset=(k - 1) * s.stage_steps)
    return loss, [teacher] if teacher is not None else []


def run_ours(ctx: RunContext, *, unlabeled: bool = True, student_control: bool = False) -> MethodResult:
    """The method. With ``unlabeled=False`` (``--method ours-control``) the same teacher and stage
    schedule run on the labeled cases alone - the same labeled patches at every step - with no
    pseudo-labelling: the control that tells what ours gains from its extra training steps rather
    than from the unlabeled scans. With ``student_control`` (``--method ours-student-control``) the
    student is ours' in every respect - the extra patches, their strong views, copy-paste, online
    teacher, learn/unlearn loss - but the extra patches come from the labeled cases with their true
    labels: what ours gains from the unlabeled scans' content rather than from its student."""
    cfg, s = ctx.config, ctx.config.ssl
    if student_control and unlabeled:
        raise ValueError("the student control runs without unlabeled cases")
    # ours: some of the extra patches may be labeled ones with their true labels (the student
    # control's); the student control: all of them (config validation refused a share that rounds away)
    method = "ours" if unlabeled else "ours-student-control" if student_control else "ours-control"
    n_labeled, n_true, n_pseudo = stage_counts(
        method, cfg.train.batch_size, s.unlabeled_ratio, s.pseudo_fraction, s.labeled_extra_share
    )
    teacher = train_teacher(ctx)
    mc = cfg.inference.mc_samples
    pseudo_dir = ctx.run_dir / "pseudo"
    if unlabeled:
        current = label_pool(
            ctx,
            teacher.model,
            ctx.unlabeled,
            pseudo_dir / "round_0",
            mc=mc,
            tta=cfg.inference.tta,
            description="pseudo-label",
            keep_probabilities=True,
        )
        ranking = rank_pool(ctx, current)
        write_ranking(ranking, pseudo_dir / "round_0" / "ranking.csv")
    # the teacher's round keeps its class probabilities; refinement changes labels, not these
    teacher_round = current if unlabeled and s.offline_targets == "probabilities" else None

    best: PhaseResult = teacher  # the current teacher: labels the pool's refinements, final-model candidate
    stages, student = [], teacher
    for k in range(1, s.stages + 1):
        name = f"stage_{k}"
        tau = threshold(k, s.stages, s.tau_start, s.tau_end)
        loss, hooks = stage_loss(ctx, k, tau, unlabeled=unlabeled or student_control)
        pools = [Pool(ctx.labeled_items(), n_labeled, LABELED)]
        members: list[str] = []
        if student_control:
            members = [case.case_id for case in ctx.labeled]
        if (student_control or unlabeled) and n_true:
            pools.append(labeled_as_pseudo(ctx, n_true))
        review = None
        if unlabeled:
            ranked = [r.case for r in ranking]
            by_rank = stage_members(ranked, k, s.stages, curriculum=s.curriculum, pool_fraction=s.pool_fraction)
            members, review = stage_members_after_review(ctx.run_dir, ctx.run_dir / name, ranked, by_rank)
            if not members:
                why = "the review rejected every case of the stage" if review else "no case of the pool is in it"
                ctx.log(
                    f"[yellow]warning:[/] {name}: {why}; it trains on the labeled cases alone (fewer patches "
                    "per step than the other stages)"
                )
            pools.append(pseudo_pool(ctx, current, members, n_pseudo, probabilities=teacher_round))
        student = train_phase(
            ctx, name, pools=pools, loss_fn=loss, steps=s.stage_steps, hooks=hooks, **stage_start(ctx, k, best.name)
        )
        if unlabeled and distributed.is_main():
            atomic.write_json(ctx.run_dir / name / "pseudo_stats.json", pseudo_statistics(current, members, tau))
        # *_score: what promotion compares (chooser cases); *_val: the reported val Dice.
        row = {
            "stage": k,
            "tau": tau,
            "members": len(members),
            "student_score": student.score,
            "student_val": summary_score(student.summary),
            "teacher": best.name,
            "teacher_score": best.score,
            "teacher_val": summary_score(best.summary),
            "chosen_on": ctx.chooser_name,
        }
        if review is not None:  # a person's decisions changed who is in this stage (review.json)
            row["review"] = {"accepted": review["accepted"], "rejected": review["rejected"]}
        if unlabeled and s.refinement and k < s.stages:
            student_labels = label_pool(
                ctx,
                student.model,
                ctx.unlabeled,
                ctx.run_dir / name / "student_pseudo",
                mc=mc,
                tta=cfg.inference.tta,
                description="student MC",
            )
            current, agreement = refine_round(ctx, current, student_labels, pseudo_dir / f"round_{k}")
            ranking = rank_pool(ctx, current, agreement)
            write_ranking(ranking, pseudo_dir / f"round_{k}" / "ranking.csv")
            row["mean_agreement"] = sum(agreement.values()) / max(len(agreement), 1)
        if student.score > best.score:
            best = student
        row["promoted"] = best.name == name
        stages.append(row)
        if distributed.is_main():
            atomic.write_json(ctx.run_dir / "stages.json", stages)

    final = student if s.final_model == "last" else best
    return MethodResult(
        final_phase=final.name, val=final.summary, teacher=teacher.summary, student=student.summary, stages=stages
    )


def run_ours_control(ctx: RunContext) -> MethodResult:
    """``--method ours-control``: :func:`run_ours` on the labeled cases alone."""
    return run_ours(ctx, unlabeled=False)


def run_ours_student_control(ctx: RunContext) -> MethodResult:
    """``--method ours-student-control``: ours' student with labeled content in place of the unlabeled scans."""
    return run_ours(ctx, unlabeled=False, student_control=True)
