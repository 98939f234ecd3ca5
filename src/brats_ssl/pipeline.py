"""``brats-ssl train``: resolve settings, split and cases, validate them, then run a method.

Nothing is written before the input is known to be good. Re-running the same command on the
same run folder resumes where it stopped; a finished run is reported and left alone.

Under ``torchrun`` every rank runs this with the same request: every rank checks the input (so
all fail alike on bad input), rank 0 alone creates the run folder, and only rank 0 prints.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brats_ssl import atomic, folder_lock
from brats_ssl import config as config_lib
from brats_ssl.data.dataset import Dataset, add_unlabeled, open_dataset
from brats_ssl.data.split import load_split, make_split, recorded_unlabeled_roots, save_split, with_extra_unlabeled
from brats_ssl.engine import distributed
from brats_ssl.engine.device import resolve_device
from brats_ssl.errors import BadInputError
from brats_ssl.records import Split, Summary
from brats_ssl.run.context import RunContext
from brats_ssl.run.method_result import MethodResult
from brats_ssl.ssl.registry import DEFAULT_METHOD, get_method


@dataclass
class TrainRequest:
    """What a ``train`` command asks for. ``None`` / defaults mean "not given": a new run takes the
    preset's value, a resumed run its own saved one."""

    data: Path
    run_dir: Path
    split_file: Path | None = None
    method: str | None = None
    preset: str = "auto"  # "auto" is no choice: a resumed run keeps the preset it was made with
    model: str | None = None
    steps: int | None = None
    seed: int | None = None
    config_file: Path | None = None
    overrides: list[str] = field(default_factory=list)
    unlearn: str | None = None
    curriculum: bool = True
    refinement: bool = True
    uncertainty_weighting: bool = True
    audit_labels: bool = False
    device: str = "auto"
    unlabeled: list[Path] = field(default_factory=list)  # folders of extra unlabeled scans (--unlabeled)


def apply_explicit(config: config_lib.Config, request: TrainRequest) -> config_lib.Config:
    """``config`` with the settings the request names explicitly: a --config file's values, then
    the options given on the command line, then each --set."""
    if request.config_file is not None:
        config = config_lib.load(request.config_file, base=config)
    if request.method is not None:
        config.method = request.method
    if request.model:
        config.model.name = request.model
    if request.steps is not None:
        config.train.steps = request.steps
        config.ssl.stage_steps = request.steps
    if request.seed is not None:
        config.seed = request.seed
    if request.unlearn is not None:
        config.ssl.unlearn = request.unlearn
    # --no-curriculum / --no-refinement / --no-uncertainty-weighting switch off; their absence keeps
    config.ssl.curriculum = config.ssl.curriculum and request.curriculum
    config.ssl.refinement = config.ssl.refinement and request.refinement
    config.ssl.uncertainty_weighting = config.ssl.uncertainty_weighting and request.uncertainty_weighting
    config_lib.apply_overrides(config, request.overrides)
    config_lib.validate(config)
    return config


def requested_config(request: TrainRequest, base: config_lib.Config | None = None) -> config_lib.Config:
    """The configuration of a new run: the preset (or ``base``) with what the request names."""
    config = base if base is not None else config_lib.preset(request.preset)
    config.method = DEFAULT_METHOD if base is None else config.method
    return apply_explicit(config, request)


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(x):
            out += _differences(x, y, f"{prefix}{f.name}.")
        elif x != y:
            out.append(f"{prefix}{f.name}: run has {x!r}, command asks {y!r}")
    return out


def resolve_config(request: TrainRequest) -> config_lib.Config:
    """A new run's configuration, or a resumed run's own ``config.yaml``.

    A resumed run keeps its saved settings, so a preset default changed by a newer version does not
    stop old runs from resuming. Only a setting the command names explicitly (an option, a --set, a
    --config file value, a preset other than ``auto``) that differs from the saved one is refused.
    """
    saved_path = request.run_dir / "config.yaml"
    if not saved_path.exists():
        return requested_config(request)
    saved = config_lib.load(saved_path, saved_run=True)
    asked = apply_explicit(copy.deepcopy(saved), request)
    differences = _differences(saved, asked)
    if request.preset not in ("auto", saved.preset):
        differences.insert(0, f"preset: run has {saved.preset!r}, command asks {request.preset!r}")
    if differences:
        raise BadInputError(
            f"folder {request.run_dir}: an existing run with other settings; resume it without them (a resumed "
            "run keeps its config.yaml) or choose a new --out. Differences: " + "; ".join(differences[:8])
        )
    return saved


def resolve_split(request: TrainRequest, dataset, config) -> Split:
    saved = request.run_dir / "split.json"
    if saved.exists():
        split = with_extra_unlabeled(load_split(saved, dataset), dataset)
        if request.split_file is not None and with_extra_unlabeled(load_split(request.split_file), dataset) != split:
            raise BadInputError(f"file {request.split_file}: differs from the run's own {saved}; use a new --out")
        return split
    if request.split_file is not None:
        return with_extra_unlabeled(load_split(request.split_file, dataset), dataset)
    # No split given: every case with a seg is labeled (20 % held out for validation), the rest unlabeled.
    return make_split(dataset, labeled=1.0, val=0.2, seed=config.seed)


def open_run_dataset(request: TrainRequest) -> Dataset:
    """The dataset folder with the ``--unlabeled`` folders the request, the run's saved split and
    the split file name."""
    roots: list[str | Path] = list(request.unlabeled)
    for path in (request.run_dir / "split.json", request.split_file):
        if path is not None and Path(path).is_file():
            roots += recorded_unlabeled_roots(path)
    return add_unlabeled(open_dataset(request.data), roots)


def prepare_run(request: TrainRequest, *, console=None, progress=None) -> RunContext:
    from brats_ssl.data.validate import require_valid

    config = resolve_config(request)
    dataset = open_run_dataset(request)
    split = resolve_split(request, dataset, config)
    labeled = dataset.subset(split["labeled"])
    val = dataset.subset(split["val"])
    selection = dataset.subset(split.get("selection", []))
    unlabeled = dataset.subset(split["unlabeled"], hide_labels=True)
    if get_method(config.method).uses_unlabeled and not unlabeled:
        raise BadInputError(f"--method {config.method} needs unlabeled cases, and the split has none")
    require_valid(labeled + val + selection + unlabeled)
    distributed.require_divisible(config.train.batch_size)
    device = distributed.local_device(resolve_device(request.device), distributed.DistEnv.from_environ())
    # Input is good: from here on the run folder is written, by rank 0 once every rank has read it.
    distributed.barrier()
    if distributed.is_main():
        request.run_dir.mkdir(parents=True, exist_ok=True)
        if not (request.run_dir / "config.yaml").exists():
            config_lib.save(config, request.run_dir / "config.yaml")
        if not (request.run_dir / "split.json").exists():
            save_split(split, request.run_dir / "split.json")
        atomic.clean_orphans(request.run_dir)
    distributed.barrier()
    if distributed.active():
        distributed.require_visible(request.run_dir / "split.json")
    return RunContext(
        run_dir=request.run_dir,
        config=config,
        dataset=dataset,
        split=split,
        labeled=labeled,
        unlabeled=unlabeled,
        val=val,
        selection=selection,
        device=device,
        console=console,
        progress=progress,
        audit_labels=request.audit_labels,
    )


def warm_cache(ctx: RunContext) -> None:
    """Preprocess every case; the ranks of a node share the work (the cache may be node-local)."""
    from brats_ssl.progress import track

    cases = distributed.shard(ctx.labeled + ctx.val + ctx.selection + ctx.unlabeled, per_node=True)
    for case in track(ctx.progress, cases, description="preprocess", total=len(cases)):
        ctx.preprocessed(case)
    distributed.barrier()


def run_method(ctx: RunContext) -> MethodResult:
    """Run the configured method: its registry entry names the code (imported only now)."""
    method = get_method(ctx.config.method)
    result = method.load_runner()(ctx)
    if not isinstance(result, MethodResult):
        raise TypeError(
            f"method {method.name}: its runner {method.runner} returned {type(result).__name__}, not a MethodResult"
        )
    return result


def run_training(request: TrainRequest, *, console=None) -> Summary:
    from brats_ssl.finalize import finalize
    from brats_ssl.progress import make_progress

    summary_path = request.run_dir / "summary.json"
    with distributed.session(resolve_device(request.device)), folder_lock.hold(request.run_dir, console=console):
        console = distributed.quiet_unless_main(console)
        if summary_path.exists() and (request.run_dir / "config.yaml").exists():
            resolve_config(request)  # still refuse a command that asks for other settings
            if console is not None:
                console.print(
                    f"{request.run_dir} is finished; nothing to do (delete summary.json to re-run the last step)"
                )
            return json.loads(summary_path.read_text())
        progress = make_progress(console) if distributed.is_main() else None
        with progress if progress is not None else contextlib.nullcontext():
            ctx = prepare_run(request, console=console, progress=progress)
            processes = f", {distributed.world_size()} processes" if distributed.active() else ""
            ctx.log(
                f"{ctx.config.method}: {len(ctx.labeled)} labeled, {len(ctx.unlabeled)} unlabeled, {len(ctx.val)} "
                f"val, {len(ctx.selection)} selection cases; preset {ctx.config.preset}, "
                f"model {ctx.config.model.name}, device {ctx.device}"
                f"{processes}"
            )
            warm_cache(ctx)
            summary = finalize(ctx, run_method(ctx))
        if distributed.is_main():
            atomic.write_json(summary_path, summary)
    return summary
