"""The ``brats-ssl`` command line: one thin function per command; the work is in the library.

Exit codes: 0 success, 2 bad input (the message names the case, the file and the problem),
1 internal error. Tracebacks only with ``--debug``. Heavy imports (torch, MONAI) happen inside
the commands so ``--help`` stays instant.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import List, Optional

import typer
from typer.exceptions import Abort, Exit, TyperException
from rich.console import Console

from brats_ssl.errors import BadInputError, output_error
from brats_ssl.review import DEFAULT_HOST, DEFAULT_PORT

app = typer.Typer(
    name="brats-ssl",
    help="Semi-supervised brain-tumour segmentation: uncertainty-aware teacher, confidence "
    "curriculum, learn-and-unlearn student.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    """Global options (they go before the command)."""


# --- data ------------------------------------------------------------------------------------

@app.command()
def synth(
    out: Path = typer.Argument(..., help="Folder to write the cohort into (BraTS 2021 layout)."),
    cases: int = typer.Option(12, "--cases", "-n", min=1, help="Number of cases."),
    shape: tuple[int, int, int] = typer.Option((96, 96, 64), "--shape", help="Volume shape X Y Z (voxels)."),
    spacing: float = typer.Option(2.0, "--spacing", help="Voxel spacing in mm (all axes)."),
    sites: int = typer.Option(3, "--sites", min=1, help="Number of simulated scanners/sites."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same cohort."),
    unlabeled: int = typer.Option(0, "--unlabeled", min=0, help="Extra cases written without a seg file."),
    montage: Optional[Path] = typer.Option(None, "--montage", help="Also write a PNG montage of a few cases."),
) -> None:
    """Write a synthetic BraTS-2021-layout cohort (NIfTI) with per-site differences in sites.csv."""
    from brats_ssl.data.synthetic import write_cohort

    ids = write_cohort(out, cases=cases, shape=shape, spacing=spacing, sites=sites, seed=seed, unlabeled=unlabeled)
    console.print(f"wrote {len(ids)} cases to {out} (sites in {out / 'sites.csv'})")
    if montage is not None:
        from brats_ssl.viz import dataset_montage

        dataset_montage(out, montage)
        console.print(f"montage: {montage}")


@app.command()
def check(data: Path = typer.Argument(..., help="Dataset folder (BraTS 2017-21, 2023+, MSD Task01, nnU-Net raw).")) -> None:
    """Detect the dataset's convention, validate every case and print a table. Exit 2 if any case is unusable."""
    from brats_ssl.data.validate import check_dataset

    if not check_dataset(data, console=console):
        raise typer.Exit(2)


@app.command()
def split(
    data: Path = typer.Argument(..., help="Dataset folder."),
    out: Path = typer.Option(..., "-o", "--out", help="split.json to write."),
    labeled: float = typer.Option(0.1, "--labeled", help="Fraction (0-1] of the non-validation cases that keep their labels."),
    val: float = typer.Option(0.2, "--val", help="Fraction of labeled cases held out for validation."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    min_labeled: int = typer.Option(1, "--min-labeled", help="At least this many labeled cases."),
    selection: int = typer.Option(0, "--selection", min=0, help=(
        "Labeled cases held out of training for model selection (best checkpoint, promotion, final model, "
        "post-processing). 0: those choices are made on the val cases, whose Dice is then optimistic.")),
) -> None:
    """Seeded, disjoint labeled / unlabeled / val / selection split, stratified by site where sites are known."""
    from brats_ssl.data.split import make_split, save_split
    from brats_ssl.data.dataset import open_dataset

    result = make_split(open_dataset(data), labeled=labeled, val=val, seed=seed, min_labeled=min_labeled,
                        selection=selection)
    save_split(result, out)
    console.print(
        f"{out}: {len(result['labeled'])} labeled, {len(result['unlabeled'])} unlabeled, {len(result['val'])} val, "
        f"{len(result['selection'])} selection"
    )


# --- training and inference ------------------------------------------------------------------

_PRESET_HELP = "tiny (seconds, tests), cpu (2 mm, 64^3, ~2 M params), gpu (1 mm, 128^3), auto (by device)."


@app.command()
def train(
    data: Path = typer.Argument(..., help="Dataset folder."),
    out: Path = typer.Option(..., "-o", "--out", help="Run folder (created; an existing one is resumed)."),
    split_file: Optional[Path] = typer.Option(None, "--split", help="split.json from `brats-ssl split`."),
    method: Optional[str] = typer.Option(None, "--method", show_default=False, help=(
        "ours (the default of a new run; a resumed run keeps its own) | supervised | self-training | mean-teacher | "
        "ua-mt | ours-control (ours' teacher and stages on the labeled cases alone: the control for what the "
        "unlabeled scans add).")),
    preset_name: str = typer.Option("auto", "--preset", help=_PRESET_HELP),
    model: Optional[str] = typer.Option(None, "--model", help="transaspp_unet | unet | segresnet | swinunetr."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (teacher, and per student stage)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for sampling, augmentation and initialisation."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="YAML file overriding any setting."),
    overrides: List[str] = typer.Option([], "--set", help="Override a setting: --set train.lr=1e-3 (repeatable)."),
    unlearn: Optional[str] = typer.Option(None, "--unlearn", help="Unlearning variant: argmax | absent | none."),
    no_curriculum: bool = typer.Option(False, "--no-curriculum", help="Ablation: all unlabeled cases from stage 1."),
    no_refinement: bool = typer.Option(False, "--no-refinement", help="Ablation: no teacher-student agreement refinement."),
    no_uncertainty_weighting: bool = typer.Option(False, "--no-uncertainty-weighting", help="Ablation: unweighted L_learn."),
    audit_labels: bool = typer.Option(False, "--audit-labels", help="Research only: read the hidden labels of unlabeled cases to measure pseudo-label Dice."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
) -> None:
    """Train: teacher → pseudo-labels → curriculum student (or a baseline). Re-running resumes."""
    from brats_ssl.pipeline import TrainRequest, run_training

    request = TrainRequest(
        data=data, run_dir=out, split_file=split_file, method=method, preset=preset_name, model=model,
        steps=steps, seed=seed, config_file=config_file, overrides=list(overrides), unlearn=unlearn,
        curriculum=not no_curriculum, refinement=not no_refinement,
        uncertainty_weighting=not no_uncertainty_weighting, audit_labels=audit_labels, device=device,
    )
    summary = run_training(request, console=console)
    console.print(f"summary: {out / 'summary.json'}")
    if summary is not None:
        from brats_ssl.metrics import print_summary_table
        from brats_ssl.summary_columns import table_columns

        print_summary_table(table_columns(summary), console=console)


@app.command()
def predict(
    run: Path = typer.Argument(..., help="Run folder from `brats-ssl train`."),
    data: Path = typer.Argument(..., help="Folder of cases to segment (any supported convention; seg files not needed)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder for <case>.nii.gz."),
    mc: int = typer.Option(1, "--mc", min=1, help="MC-dropout samples (1 = deterministic)."),
    tta: bool = typer.Option(False, "--tta", help="Flip test-time augmentation."),
    save_probabilities: bool = typer.Option(False, "--save-probabilities", help="Also write 4-D class probabilities."),
    save_uncertainty: bool = typer.Option(False, "--save-uncertainty", help="Also write normalised entropy and mutual information."),
    checkpoint: str = typer.Option("final", "--checkpoint", help="final (the run's final model) | teacher | best | last."),
    no_postprocess: bool = typer.Option(False, "--no-postprocess", help=(
        "Skip the run's post-processing rule (postprocessing.json; applied to the final model only).")),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
) -> None:
    """Segment scans; writes NIfTI in each input's geometry and label convention."""
    from brats_ssl.predict import predict_folder

    written = predict_folder(run, data, out, mc=mc, tta=tta, save_probabilities=save_probabilities,
                             save_uncertainty=save_uncertainty, checkpoint=checkpoint, device=device,
                             postprocess=not no_postprocess, console=console)
    console.print(f"wrote {len(written)} segmentations to {out}")


@app.command()
def pseudolabel(
    run: Path = typer.Argument(..., help="Run folder trained with --method ours."),
    data: Path = typer.Argument(..., help="The dataset folder the run was trained on."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder."),
    no_postprocess: bool = typer.Option(False, "--no-postprocess", help="Skip the run's post-processing rule."),
    format: str = typer.Option("nifti", "--format", help=(
        "nifti: per-case pseudo-label, confidence and uncertainty maps for review; nnunet: an nnU-Net v2 raw "
        "dataset OUT/DatasetNNN_NAME with the ground truth and the confident pseudo-labels.")),
    dataset_id: Optional[int] = typer.Option(None, "--dataset-id", help="nnunet: the dataset id N (1-999)."),
    name: str = typer.Option("BraTSSSL", "--name", help="nnunet: the dataset name (DatasetNNN_NAME)."),
    min_confidence: float = typer.Option(0.0, "--min-confidence", help=(
        "nnunet: keep unlabeled cases whose image-level confidence (the run's latest ranking.csv) is at least "
        "this; cases accepted in `brats-ssl review` are kept and rejected ones left out whatever it is.")),
    include_val: bool = typer.Option(True, "--include-val/--no-val", help=(
        "nnunet: also export the run's validation cases with their ground truth (--no-val keeps them out, "
        "to compare nnU-Net with the run on them).")),
) -> None:
    """Export pseudo-labels: NIfTI maps for review in 3D Slicer, or an nnU-Net v2 raw dataset."""
    if format == "nnunet":
        from brats_ssl.ssl.nnunet_export import SIDECAR, export_nnunet

        if dataset_id is None:
            raise BadInputError("--format nnunet needs --dataset-id N (the nnU-Net dataset id, 1-999)")
        target = export_nnunet(run, data, out, dataset_id=dataset_id, name=name, min_confidence=min_confidence,
                               include_val=include_val, postprocess=not no_postprocess, console=console)
        sidecar = json.loads((target / SIDECAR).read_text())
        console.print(f"wrote nnU-Net dataset {target}: {len(sidecar['ground_truth'])} case(s) with ground truth, "
                      f"{len(sidecar['pseudo_labeled'])} pseudo-labeled, {len(sidecar['left_out'])} left out "
                      f"(see {target / SIDECAR})")
        return
    if format != "nifti":
        raise BadInputError(f"--format {format!r}: expected nifti or nnunet")
    from brats_ssl.ssl.export import export_pseudolabels

    written = export_pseudolabels(run, data, out, postprocess=not no_postprocess, console=console)
    console.print(f"exported {len(written)} cases to {out}")


@app.command()
def suggest(
    run: Path = typer.Argument(..., help="Run folder trained with --method ours."),
    data: Path = typer.Argument(..., help="The dataset folder the run was trained on."),
    top: int = typer.Option(10, "--top", min=1, help="How many scans to suggest."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Also write the table as CSV."),
) -> None:
    """Which unlabeled scans to annotate next, and why (active learning)."""
    from brats_ssl.ssl.suggest import suggest_cases

    suggest_cases(run, data, top=top, out=out, console=console)


@app.command()
def review(
    run: Path = typer.Argument(..., help="Run folder trained with --method ours (or self-training)."),
    data: Optional[Path] = typer.Argument(None, help="The dataset folder (default: the one in the run's split.json)."),
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to listen on (default: this machine only)."),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=0, max=65535, help="Port (0: any free port)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser."),
    static: Optional[Path] = typer.Option(None, "--static", help="Write self-contained HTML pages here instead of serving."),
) -> None:
    """Review pseudo-labels and uncertainty in the browser (NiiVue); accept / reject decisions go to
    RUN/review.json, and a resumed `train` and `pseudolabel` honour them."""
    if static is not None:
        from brats_ssl.review.static_site import write_static

        written = write_static(run, static, data, console=console)
        console.print(f"wrote {len(written) - 1} case pages and {static / 'index.html'}")
        return
    from brats_ssl.review.app import serve

    serve(run, data, host=host, port=port, open_browser=not no_browser, console=console)


# --- evaluation and reports ------------------------------------------------------------------

@app.command()
def evaluate(
    pred: Path = typer.Argument(..., help="Folder of <case>.nii.gz label maps (same convention as GT)."),
    gt: Path = typer.Argument(..., help="Ground-truth dataset folder (any supported convention)."),
    out: Path = typer.Option(..., "-o", "--out", help="summary.json to write (a .csv is written beside it)."),
) -> None:
    """Dice and HD95 per label (NCR, ED, ET) and region (WT, TC, ET), per case and mean."""
    from brats_ssl.metrics import evaluate_folder, print_summary_table

    summary = evaluate_folder(pred, gt, out)
    print_summary_table(summary, console=console)
    console.print(f"wrote {out} and {out.with_suffix('.csv')}")


@app.command()
def experiment(
    data: Path = typer.Argument(..., help="Dataset folder."),
    out: Path = typer.Option(..., "-o", "--out", help="Experiment folder (resumable)."),
    fractions: List[float] = typer.Option([0.1, 0.25, 0.5, 1.0], "--fractions", help="Labeled fractions."),
    methods: List[str] = typer.Option(["supervised", "ours", "ua-mt"], "--methods", help="Methods to compare."),
    seeds: List[int] = typer.Option([0], "--seeds", help="Seeds (split and training)."),
    folds: int = typer.Option(1, "--folds", min=1, help=(
        "Cross-validation folds: every case with labels is validated once per method, fraction and seed. "
        "1: one fixed val set (--val).")),
    val: float = typer.Option(0.2, "--val", help="Validation fraction with --folds 1 (one fixed val set for all runs)."),
    selection: int = typer.Option(2, "--selection", min=0, help=(
        "Labeled cases per fold held out of training: checkpoints, promotion, final model and post-processing "
        "are chosen on them, never on the reported val cases. 0: chosen on the val cases (optimistic).")),
    references: Optional[List[str]] = typer.Option(None, "--references", help=(
        "Methods every other method is compared with, per case (default: supervised ours-control where run).")),
    preset_name: str = typer.Option("auto", "--preset", help=_PRESET_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps per run / per stage."),
    overrides: List[str] = typer.Option([], "--set", help="Override a setting for every run (repeatable)."),
) -> None:
    """Data-efficiency sweep: every fraction × method × seed (× fold) → per-case table, paired comparisons, curves."""
    from brats_ssl.experiment import run_experiment
    from brats_ssl.report import write_report

    run_experiment(data, out, fractions=fractions, methods=methods, seeds=seeds, val=val, folds=folds,
                   selection=selection, references=references, preset=preset_name, steps=steps,
                   overrides=list(overrides), console=console)
    write_report(out, console=console)


@app.command()
def report(target: Path = typer.Argument(..., help="A run folder or an experiment folder.")) -> None:
    """(Re)draw plots and write report.md and report.html."""
    from brats_ssl.report import write_report

    path = write_report(target, console=console)
    console.print(f"report: {path}")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_out"), "-o", "--out", help="Folder for the cohort, the run and the report."),
    cases: int = typer.Option(40, "--cases", help="Synthetic cases."),
    seed: int = typer.Option(0, "--seed", help="Seed."),
) -> None:
    """Synthetic cohort → 10 % labeled split → --method ours → report, in a few minutes on a laptop CPU."""
    from brats_ssl.demo import run_demo

    run_demo(out, cases=cases, seed=seed, console=console)


def _is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def expand_list_options(args: list[str]) -> list[str]:
    """Allow ``--fractions 0.1 0.25 --methods ours ua-mt --seeds 0 1`` (space-separated lists,
    as people write them) on top of the repeated-flag form the CLI library understands."""
    from brats_ssl.config import METHODS

    accepts = {"--fractions": _is_number, "--seeds": _is_number, "--methods": lambda t: t in METHODS,
               "--references": lambda t: t in METHODS}
    out: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        out.append(token)
        i += 1
        if token in accepts and i < len(args):
            out.append(args[i])
            i += 1
            while i < len(args) and accepts[token](args[i]):
                out += [token, args[i]]
                i += 1
    return out


def _printable(text: str) -> str:
    """Text that prints on any console: undecodable file-name bytes shown as ``\\xff``, and
    square brackets kept literal (a path like ``[/tmp]`` is not rich markup)."""
    from rich.markup import escape

    return escape(text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def _report_error(title: str, message: str) -> None:
    err_console.print(f"[bold red]{title}:[/] {_printable(message)}", markup=True, soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps errors to exit codes (2 bad input, also a full disk or read-only output;
    1 internal error)."""
    args = expand_list_options(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in args
    try:
        result = app(args=args, prog_name="brats-ssl", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except Exit as stop:
        code = stop.exit_code
    except Abort:
        err_console.print("aborted")
        code = 130
    except TyperException as error:  # usage errors are bad input too
        show = getattr(error, "show", None)
        show() if show else err_console.print(f"error: {error.format_message()}")
        code = 2
    except BadInputError as error:
        if debug:
            traceback.print_exc()
        _report_error("error", str(error))
        code = 2
    except KeyboardInterrupt:
        err_console.print("interrupted; re-run the same command to resume")
        code = 130
    except Exception as error:  # noqa: BLE001 - the last line of defence
        if debug:
            traceback.print_exc()
        # A full disk, a quota or a read-only / forbidden folder is the user's to fix: exit 2.
        friendly = output_error(error.filename, error, action="be used") if isinstance(error, OSError) else None
        if friendly is not None:
            _report_error("error", str(friendly))
            code = 2
        else:
            _report_error("internal error", f"{type(error).__name__}: {error}")
            err_console.print("re-run with --debug for the traceback and report it", highlight=False)
            code = 1
    sys.exit(code)
