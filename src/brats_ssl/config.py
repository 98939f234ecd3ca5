"""Every setting as a dataclass; presets; YAML load/save; ``section.field=value`` overrides.

A run folder's ``config.yaml`` is the whole truth about a run: ``train`` on an existing run
folder reloads it, so a resumed run cannot silently change its settings.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from brats_ssl import atomic
from brats_ssl.batch_mix import stage_counts
from brats_ssl.errors import BadInputError
from brats_ssl.paths import read_text_file
from brats_ssl.ssl.registry import METHODS


@dataclass
class DataConfig:
    target_spacing: list[float] | None = None  # mm; None keeps each case's own spacing
    crop_margin: int = 4  # voxels around the brain's bounding box
    cache_dir: str | None = None  # default: $BRATS_SSL_CACHE or ~/.cache/brats-ssl


@dataclass
class ModelConfig:
    name: str = "transaspp_unet"  # transaspp_unet | unet | segresnet | swinunetr
    spatial_dims: int = 3  # only 3 (the pipeline is 3-D); a field still: saved runs name it, fingerprints hold it
    features: list[int] = field(default_factory=lambda: [8, 16, 32, 64, 128])
    dropout: float = 0.1  # kept on for MC sampling
    mc_scope: str = "decoder"  # where the dropout is: "decoder" (bottleneck + decoder) or "head" (cheap MC)
    aspp_dilations: list[int] = field(default_factory=lambda: [1, 2, 3])
    transformer_layers: int = 1
    transformer_heads: int = 4


@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 2
    patch_size: list[int] = field(default_factory=lambda: [64, 64, 64])
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 2e-3
    weight_decay: float = 1e-4
    sgd_momentum: float = 0.99  # Nesterov momentum of optimizer sgd (nnU-Net's)
    schedule: str = "poly"  # poly | cosine
    poly_exponent: float = 0.9  # schedule poly: lr factor (1 - progress) ** poly_exponent after the warm-up
    warmup_steps: int = 50
    grad_clip: float = 1.0
    loss: str = "dice_ce"  # dice_ce | region (sigmoid Dice + BCE on WT/TC/ET)
    foreground_fraction: float = 0.33  # share of patches centred on tumour
    augment: bool = True
    # The probability that a labeled patch is shown as its strong view (data/strong_views.py:
    # contrast, gamma, blur, noise, cut-out, a modality blanked) in every phase - the teacher, ours'
    # stages and its controls, the baselines; 0: the training augmentation alone (runs made before).
    strong_views: float = 0.0
    val_every: int = 250
    checkpoint_every: int = 100  # steps between last checkpoints (besides every validation and the end)
    val_cases: int | None = None  # cap on val cases per validation (None = all)
    precision: str = "auto"  # auto | bf16 | fp16 | fp32
    channels_last: bool = True
    num_workers: int = 1
    log_every: int = 10


@dataclass
class InferenceConfig:
    overlap: float = 0.25
    sw_batch_size: int = 2
    mc_samples: int = 8
    tta: bool = False


@dataclass
class SSLConfig:
    stages: int = 4
    stage_steps: int = 1000
    curriculum: bool = True  # False: every unlabeled case from stage 1
    # The share of the ranked pool (most confident first) the stages ever train on; the rest are
    # pseudo-labeled and ranked but left out (the least confident cases have the worst labels).
    pool_fraction: float = 1.0
    tau_start: float = 0.90
    tau_end: float = 0.70
    unlearn: str = "absent"  # argmax | absent | none
    beta: float = 0.5
    tau_neg: float = 0.05
    uncertainty_weighting: bool = True
    lambda_max: float = 1.0
    rampup_fraction: float = 0.4  # of a stage's steps (of all steps for mean-teacher / ua-mt)
    # Pseudo-labeled (or unlabeled) patches per labeled patch, added on top of the full labeled batch
    # (FixMatch's μ): ours and ours-control train on the same labeled patches at every step.
    unlabeled_ratio: float = 1.0
    # Legacy (runs made before unlabeled_ratio): the share of one batch_size batch given to
    # pseudo-labeled patches, taken out of the labeled ones. None for every new run.
    pseudo_fraction: float | None = None
    # The share of ours' extra patches taken from the labeled cases with their true labels, as
    # ours-student-control takes all of them; the rest are pseudo-labeled. 0: all pseudo-labeled (the
    # default before stop 29). 0.5 scored above 0 on the dev folds (+0.031, not resolved; BENCHMARKS 9).
    labeled_extra_share: float = 0.5
    # continuous: the student goes on from stage to stage on one LR schedule; restart: every stage
    # starts from the current teacher with a fresh optimizer and schedule (runs made before).
    student_schedule: str = "continuous"
    # How the student learns from the pseudo-labeled patches (ssl/student_loss.py); all off = the
    # dual loss of runs made before these existed.
    online_weight: float = 0.5  # targets: (1 - w) offline curriculum pseudo-label + w online EMA teacher
    strong_views: bool = True  # the student sees a strong view of pseudo-labeled patches, the teachers the weak one
    copy_paste: bool = True  # labeled and pseudo-labeled patches swap a box both ways (BCP)
    copy_paste_ratio: float = 0.6667  # of the patch along each axis (BCP's 3-D code: 2/3)
    hierarchical: bool = True  # tumour vs background where sure, the subclass only where sure of it too
    tau_subclass: float = 0.8  # P(subclass | tumour) needed to learn a voxel's subclass
    # false: pseudo-labels teach only tumour vs background (hierarchical level 1), the subclass is
    # learned from labeled voxels alone (~30 % of the subclass voxels learned at any tau_subclass were
    # wrong on the real folds, BENCHMARKS 9). Ruled-out classes are still unlearned.
    subclass_from_pseudo: bool = True
    # The offline target of a pseudo-labeled voxel: "confidence" - its label with its MC confidence c,
    # 1 - c spread evenly; "probabilities" - the teacher's stored MC-mean class probabilities where
    # they still give the voxel's label (refinement can change it), else as "confidence".
    offline_targets: str = "confidence"
    # ours' final model: "selected" - the best of the teacher and the stages on the selection cases;
    # "last" - the last stage, whatever 2 selection cases say of it (their noise picks too often).
    final_model: str = "selected"
    refinement: bool = True
    tau_agree: float = 0.80
    agree_confidence: str = "mean"  # refinement, where teacher and student agree: mean | max of their confidences
    confidence_margin_mm: float = 8.0
    empty_penalty: float = 0.5
    ema_decay: float = 0.99  # the online teacher of ours, mean-teacher, ua-mt, bcp
    consistency_weight: float = 0.1  # mean-teacher / ua-mt
    consistency_noise: float = 0.1  # mean-teacher / ua-mt: std of the EMA teacher's input noise (clipped at ±2 std)
    uamt_shared_encoder: bool = True  # ua-mt: the T teacher passes share one noisy input and one encoder run


@dataclass
class Config:
    preset: str = "cpu"
    method: str = "supervised"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    ssl: SSLConfig = field(default_factory=SSLConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS = ("tiny", "cpu", "gpu", "auto")


def preset(name: str) -> Config:
    """A complete configuration for ``tiny`` (tests), ``cpu``, ``gpu`` or ``auto`` (by device)."""
    if name == "auto":
        import torch

        name = "gpu" if torch.cuda.is_available() else "cpu"
    if name == "tiny":
        return Config(
            preset="tiny",
            data=DataConfig(target_spacing=None, crop_margin=2),
            model=ModelConfig(features=[8, 16, 32], dropout=0.1, transformer_heads=2),
            train=TrainConfig(
                steps=20,
                batch_size=2,
                patch_size=[32, 32, 32],
                lr=3e-3,
                warmup_steps=2,
                val_every=10,
                log_every=5,
                num_workers=0,
            ),
            inference=InferenceConfig(overlap=0.25, sw_batch_size=2, mc_samples=4),
            ssl=SSLConfig(stages=2, stage_steps=10),
        )
    if name == "cpu":
        return Config(
            preset="cpu",
            data=DataConfig(target_spacing=[2.0, 2.0, 2.0]),
            # Five levels starting at 8 channels: 0.6 s per step here, 3x faster than [16, 32, 64, 128]
            # at the same 2 M parameters (full-resolution convs dominate on CPU; bench/bench_network.py).
            model=ModelConfig(features=[8, 16, 32, 64, 128], dropout=0.1),
            # Teacher 600 steps, student 4 × 250: where the real-data curves plateau (BENCHMARKS §6, §8).
            # Batches built in the training process: on 2 cores a loader worker competes with the two
            # torch threads (+38 % per step against +8 % in-process, bench/bench_train_step.py).
            train=TrainConfig(steps=600, batch_size=2, patch_size=[64, 64, 64], val_every=100, num_workers=0),
            inference=InferenceConfig(overlap=0.25, sw_batch_size=2, mc_samples=8),
            ssl=SSLConfig(stages=4, stage_steps=250),
        )
    if name == "gpu":
        return Config(
            preset="gpu",
            data=DataConfig(target_spacing=[1.0, 1.0, 1.0]),
            model=ModelConfig(features=[32, 64, 128, 256, 320], dropout=0.1, transformer_layers=2, transformer_heads=8),
            train=TrainConfig(
                steps=50000, batch_size=2, patch_size=[128, 128, 128], lr=1e-3, val_every=1000, num_workers=4
            ),
            inference=InferenceConfig(overlap=0.5, sw_batch_size=4, mc_samples=8),
            ssl=SSLConfig(stages=4, stage_steps=10000),
        )
    raise BadInputError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")


def _convert(value: Any, annotation: Any, where: str) -> Any:
    """Check and convert a YAML / command-line value to a field's annotated type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except BadInputError as error:
                errors.append(str(error))
        raise BadInputError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise BadInputError(f"{where}: expected a list, got {value!r}")
        return [_convert(v, args[0], where) for v in value]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise BadInputError(f"{where}: expected true/false, got {value!r}")
    if annotation in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise BadInputError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except ValueError as error:
            raise BadInputError(f"{where}: expected a number, got {value!r}") from error
        if not math.isfinite(number):
            raise BadInputError(f"{where}: expected a finite number, got {value!r}")
        if annotation is int:
            if not number.is_integer():
                raise BadInputError(f"{where}: expected a whole number, got {value!r}")
            return int(value) if isinstance(value, int) else int(number)
        return number
    if annotation is str:
        if not isinstance(value, str):
            raise BadInputError(f"{where}: expected text, got {value!r}")
        return value
    return value


def _apply(obj: Any, values: dict[str, Any], where: str) -> None:
    if not isinstance(values, dict):
        raise BadInputError(f"{where or 'config'}: expected a mapping of settings, got {values!r}")
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in values.items():
        if key not in names:
            section = f"{where}: " if where else ""
            raise BadInputError(f"{section}unknown setting {key!r}; valid: {', '.join(sorted(names))}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _apply(current, value, f"{where}.{key}" if where else key)
        else:
            setattr(obj, key, _convert(value, hints[key], f"{where}.{key}" if where else key))


def from_dict(values: dict[str, Any], base: Config | None = None) -> Config:
    """A config from a (possibly partial) mapping, on top of ``base`` or the mapping's preset."""
    values = dict(values)
    if base is None:
        base = preset(values.get("preset", "cpu"))
    _apply(base, values, "")
    validate(base)
    return base


# Settings added after run folders already existed, with the value that reproduces those runs:
# a run's saved config.yaml that does not name one gets this value, not today's default.
LEGACY_VALUES: dict[tuple[str, str], Any] = {
    ("ssl", "student_schedule"): "restart",
    ("ssl", "uamt_shared_encoder"): False,
    ("ssl", "agree_confidence"): "max",
    ("ssl", "online_weight"): 0.0,
    ("ssl", "strong_views"): False,
    ("ssl", "copy_paste"): False,
    ("ssl", "hierarchical"): False,
    ("ssl", "labeled_extra_share"): 0.0,
    ("train", "strong_views"): 0.0,
}


def load(path: str | Path, base: Config | None = None, *, saved_run: bool = False) -> Config:
    """A config file on top of ``base`` (or its preset). ``saved_run``: the file is a run folder's
    own config.yaml, so settings it predates take their :data:`LEGACY_VALUES`."""
    path = Path(path)
    text = read_text_file(path)
    try:
        values = yaml.safe_load(text) or {}
    except yaml.constructor.ConstructorError as error:
        # safe_load builds plain data only: a !!python/... tag (code) is refused, never run
        tag = re.search(r"tag '([^']+)'", str(error))
        what = f"the tag {tag.group(1).replace('tag:yaml.org,2002:', '!!')}" if tag else "a tag"
        raise BadInputError(
            f"file {path}: refused: {what} is not allowed; a config holds plain settings only (numbers, text, lists)"
        ) from error
    except yaml.YAMLError as error:
        raise BadInputError(f"file {path}: not valid YAML ({' '.join(str(error).split())})") from error
    if not isinstance(values, dict):
        raise BadInputError(
            f"file {path}: expected a mapping of settings (section: {{field: value}}), got {type(values).__name__}"
        )
    if saved_run:
        for (section, key), value in LEGACY_VALUES.items():
            if isinstance(values.get(section), dict) and key not in values[section]:
                values[section][key] = value
    try:
        return from_dict(values, base)
    except BadInputError as error:
        raise BadInputError(f"file {path}: {error}") from error


def save(config: Config, path: str | Path) -> Path:
    return atomic.write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Apply ``section.field=value`` strings (values parsed as YAML: ``[2,2,2]``, ``true``, ``1e-3``)."""
    for item in overrides:
        if "=" not in item:
            raise BadInputError(f"override {item!r}: expected section.field=value, e.g. train.lr=1e-3")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        nested: Any = value
        for part in reversed(key.strip().split(".")):
            nested = {part: nested}
        try:
            _apply(config, nested, "")
        except BadInputError as error:
            raise BadInputError(f"--set {item}: {error}") from error
    validate(config)
    return config


def learns_from_targets(ssl: SSLConfig) -> bool:
    """Whether ours' student uses any of the target / view / mixing changes (ssl/student_loss.py)
    rather than the dual loss alone."""
    return ssl.online_weight > 0 or ssl.strong_views or ssl.copy_paste or ssl.hierarchical


def validate(config: Config) -> None:
    """Reject settings that cannot work, with the field named."""
    checks = [
        (config.method in METHODS, f"method: {config.method!r} is not one of {', '.join(METHODS)}"),
        (config.train.steps >= 1, "train.steps: must be at least 1"),
        (config.train.batch_size >= 1, "train.batch_size: must be at least 1"),
        (
            len(config.train.patch_size) == 3 and all(p >= 8 for p in config.train.patch_size),
            "train.patch_size: three sizes of at least 8 voxels",
        ),
        (config.train.lr > 0, "train.lr: must be positive"),
        (config.train.optimizer in ("adamw", "sgd"), "train.optimizer: adamw or sgd"),
        (config.train.schedule in ("poly", "cosine"), "train.schedule: poly or cosine"),
        (config.train.loss in ("dice_ce", "region"), "train.loss: dice_ce or region"),
        (config.train.precision in ("auto", "bf16", "fp16", "fp32"), "train.precision: auto, bf16, fp16 or fp32"),
        (0 <= config.train.foreground_fraction <= 1, "train.foreground_fraction: between 0 and 1"),
        (0 <= config.train.strong_views <= 1, "train.strong_views: a probability in [0, 1]"),
        (config.train.val_every >= 1, "train.val_every: must be at least 1"),
        (config.train.checkpoint_every >= 1, "train.checkpoint_every: must be at least 1"),
        (0 <= config.train.sgd_momentum < 1, "train.sgd_momentum: in [0, 1)"),
        (config.train.poly_exponent > 0, "train.poly_exponent: must be positive"),
        (
            config.model.spatial_dims == 3,
            "model.spatial_dims: only 3 is supported (training, inference and the "
            "data pipeline work on 3-D volumes; there is no 2-D slice mode)",
        ),
        (
            len(config.model.features) >= 2 and all(f > 0 for f in config.model.features),
            "model.features: at least two positive widths",
        ),
        (0 <= config.model.dropout < 1, "model.dropout: in [0, 1)"),
        (config.model.mc_scope in ("decoder", "head"), "model.mc_scope: decoder or head"),
        (
            config.data.target_spacing is None
            or (len(config.data.target_spacing) == 3 and all(s > 0 for s in config.data.target_spacing)),
            "data.target_spacing: three positive spacings in mm, or null",
        ),
        (0 <= config.inference.overlap < 1, "inference.overlap: in [0, 1)"),
        (config.inference.mc_samples >= 1, "inference.mc_samples: at least 1"),
        (config.ssl.stages >= 1, "ssl.stages: at least 1"),
        (config.ssl.stage_steps >= 1, "ssl.stage_steps: at least 1"),
        (0 < config.ssl.pool_fraction <= 1, "ssl.pool_fraction: in (0, 1]"),
        (config.ssl.unlearn in ("argmax", "absent", "none"), "ssl.unlearn: argmax, absent or none"),
        (0 < config.ssl.tau_end <= 1 and 0 < config.ssl.tau_start <= 1, "ssl.tau_start/tau_end: in (0, 1]"),
        (config.ssl.unlabeled_ratio >= 0, "ssl.unlabeled_ratio: at least 0"),
        (0 <= config.ssl.labeled_extra_share < 1, "ssl.labeled_extra_share: in [0, 1)"),
        (config.ssl.student_schedule in ("continuous", "restart"), "ssl.student_schedule: continuous or restart"),
        (config.ssl.agree_confidence in ("mean", "max"), "ssl.agree_confidence: mean or max"),
        (0 <= config.ssl.online_weight <= 1, "ssl.online_weight: in [0, 1]"),
        (0 < config.ssl.copy_paste_ratio < 1, "ssl.copy_paste_ratio: in (0, 1)"),
        (0 < config.ssl.tau_subclass <= 1, "ssl.tau_subclass: in (0, 1]"),
        (
            config.ssl.subclass_from_pseudo or config.ssl.hierarchical,
            "ssl.subclass_from_pseudo: false needs ssl.hierarchical: true (the flat learn loss has one level)",
        ),
        (config.ssl.final_model in ("selected", "last"), "ssl.final_model: selected or last"),
        (
            config.ssl.offline_targets in ("confidence", "probabilities"),
            "ssl.offline_targets: confidence or probabilities",
        ),
        (
            config.ssl.pseudo_fraction is None or 0 <= config.ssl.pseudo_fraction < 1,
            "ssl.pseudo_fraction: in [0, 1), or null",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise BadInputError(f"invalid setting {message}")
    if config.method == "ours":  # a share its batch cannot give is refused before any run starts
        ssl = config.ssl
        stage_counts("ours", config.train.batch_size, ssl.unlabeled_ratio, ssl.pseudo_fraction, ssl.labeled_extra_share)
