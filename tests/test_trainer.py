"""The one training engine: overfitting, checkpoints, exact resume."""

import json

import numpy as np
import pytest
import torch

from brats_ssl.config import preset
from brats_ssl.data.batches import LABELED, BatchBuilder, Pool, batch_loader
from brats_ssl.data.sampling import TrainItem
from brats_ssl.engine.checkpoint import load_checkpoint, load_model_weights, save_checkpoint
from brats_ssl.engine.device import cpu_has_fast_bf16
from brats_ssl.engine.trainer import Trainer
from brats_ssl.errors import BadInputError
from brats_ssl.inference import InferenceOptions, predict_volume
from brats_ssl.metrics import mean_region_dice, region_dice
from brats_ssl.run.model import build_model, model_fingerprint
from brats_ssl.run.phase import supervised_loss_fn

from conftest import synthetic_case


def _item(seed=0, shape=(32, 32, 32)):
    image, labels = synthetic_case(shape, seed)
    image = image.astype(np.float32)
    image = (image - image.mean()) / image.std()
    return TrainItem(f"c{seed}", image.astype(np.float16), {"label": labels})


def _trainer(out_dir, steps, *, item, val=None, seed=0, lr=3e-3):
    config = preset("tiny")
    config.train.lr = lr
    config.train.val_every = 5
    config.train.log_every = 1
    config.train.augment = False
    torch.manual_seed(seed)
    model = build_model(config)
    builder = BatchBuilder(
        [Pool([item], 2, LABELED)],
        patch_size=(32, 32, 32),
        foreground_fraction=0.5,
        augment=False,
        seed=seed,
        stream="t",
    )
    return Trainer(
        model=model,
        loss_fn=supervised_loss_fn("dice_ce"),
        batches=lambda a, b: batch_loader(builder, a, b, 0),
        out_dir=out_dir,
        steps=steps,
        config=config.train,
        device=torch.device("cpu"),
        seed=seed,
        validator=val,
        score=mean_region_dice,
        fingerprint=model_fingerprint(config),
        checkpoint_every=3,
    )


def _fit_until_killed(trainer, at_step):
    """Train until ``at_step``, then stop as if the process were killed."""
    batches = trainer.batches

    def killed(start, stop):
        for step, batch in zip(range(start, stop), batches(start, stop)):
            if step == at_step:
                raise KeyboardInterrupt
            yield batch

    trainer.batches = killed
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()


def test_tiny_model_overfits_one_case(tmp_path):
    item = _item()
    options = InferenceOptions(patch_size=(32, 32, 32))

    def validator(model):
        labels = predict_volume(model, item.image, options, torch.device("cpu")).labels.numpy()
        return region_dice(labels, item.maps["label"])

    trainer = _trainer(tmp_path / "run", 60, item=item, val=validator, lr=1e-2)
    trainer.fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    vals = [r["val"]["WT"] for r in rows if "val" in r]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert vals[-1] > 0.8 and vals[-1] > vals[0]
    assert (tmp_path / "run" / "progress.png").stat().st_size > 1000
    assert (tmp_path / "run" / "checkpoint_best.pt").exists()


def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path):
    item = _item(1)
    _trainer(tmp_path / "full", 8, item=item).fit()
    _fit_until_killed(_trainer(tmp_path / "part", 8, item=item), at_step=5)  # the last checkpoint is at step 3
    checkpoint = load_checkpoint(tmp_path / "part" / "checkpoint_last.pt")
    assert checkpoint["step"] == 3 and checkpoint["seconds"] > 0
    save_checkpoint(tmp_path / "part" / "checkpoint_last.pt", {**checkpoint, "seconds": 1000.0})
    resumed = _trainer(tmp_path / "part", 8, item=item)
    result = resumed.fit()
    assert result.steps == 8
    assert 1000 < result.seconds < 1000 + 600  # the first process's training time is kept, once
    a = load_checkpoint(tmp_path / "full" / "checkpoint_last.pt")["model"]
    b = load_checkpoint(tmp_path / "part" / "checkpoint_last.pt")["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = [json.loads(line)["step"] for line in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))  # rows logged after the checkpoint were dropped and redone


def test_checkpoint_roundtrip_gives_identical_outputs(tmp_path):
    config = preset("tiny")
    model = build_model(config).eval()
    x = torch.randn(1, 4, 32, 32, 32)
    save_checkpoint(tmp_path / "c.pt", {"model": model.state_dict(), "fingerprint": model_fingerprint(config)})
    other = build_model(config).eval()
    load_model_weights(other, tmp_path / "c.pt", fingerprint=model_fingerprint(config))
    with torch.no_grad():
        assert torch.equal(model(x), other(x))


def test_checkpoint_from_another_model_or_with_code_is_refused(tmp_path):
    config = preset("tiny")
    model = build_model(config)
    save_checkpoint(tmp_path / "c.pt", {"model": model.state_dict(), "fingerprint": "other"})
    with pytest.raises(BadInputError, match="another model"):
        load_checkpoint(tmp_path / "c.pt", fingerprint=model_fingerprint(config))
    config.model.features = [4, 8, 16]
    save_checkpoint(tmp_path / "d.pt", {"model": model.state_dict()})
    with pytest.raises(BadInputError, match="do not fit"):
        load_model_weights(build_model(config), tmp_path / "d.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model": {}, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(BadInputError, match="refused"):
        load_checkpoint(tmp_path / "evil.pt")


def test_fingerprints_of_existing_runs_stay_valid_when_model_fields_are_added():
    # Fingerprints of the presets as written by runs before model.mc_scope existed: a new field at
    # its backward-compatible default must not orphan those checkpoints.
    assert [model_fingerprint(preset(name)) for name in ("tiny", "cpu", "gpu")] == [
        "9ab4012c66ffe879",
        "ce9688baf5fc4fe9",
        "bb6fd0d47bd1379b",
    ]
    config = preset("cpu")
    config.model.mc_scope = "head"  # a different network: a different fingerprint
    assert model_fingerprint(config) != "ce9688baf5fc4fe9"


def test_optimizer_schedule_and_checkpoint_interval_come_from_the_settings(tmp_path):
    from brats_ssl.engine.trainer import build_optimizer, build_scheduler

    config = preset("tiny")
    defaults = config.train
    assert (defaults.sgd_momentum, defaults.poly_exponent, defaults.checkpoint_every) == (0.99, 0.9, 100)
    model = build_model(config)
    config.train.optimizer, config.train.sgd_momentum = "sgd", 0.9
    assert build_optimizer(model, config.train).param_groups[0]["momentum"] == 0.9
    config.train.warmup_steps, config.train.poly_exponent = 0, 2.0
    factor = build_scheduler(build_optimizer(model, config.train), config.train, 10).lr_lambdas[0]
    assert factor(5) == pytest.approx(0.5**2.0)  # halfway: (1 - 0.5) ** poly_exponent
    item = _item()
    assert _trainer(tmp_path / "a", 2, item=item).checkpoint_every == 3  # the argument wins
    config.train.checkpoint_every = 7
    builder = BatchBuilder(
        [Pool([item], 2, LABELED)], patch_size=(32, 32, 32), foreground_fraction=0.5, augment=False, seed=0, stream="t"
    )
    trainer = Trainer(
        model=model,
        loss_fn=supervised_loss_fn("dice_ce"),
        out_dir=tmp_path / "b",
        steps=2,
        batches=lambda a, b: batch_loader(builder, a, b, 0),
        config=config.train,
        device=torch.device("cpu"),
        seed=0,
    )
    assert trainer.checkpoint_every == 7


def test_saved_runs_without_the_newer_train_settings_load_with_the_values_they_ran_with(tmp_path):
    """sgd_momentum, poly_exponent and checkpoint_every were constants before they were settings: a run
    folder's config.yaml that does not name them gets those constants (their defaults)."""
    import yaml

    from brats_ssl import config as config_lib

    saved = config_lib.preset("tiny").to_dict()
    for key in ("sgd_momentum", "poly_exponent", "checkpoint_every"):
        del saved["train"][key]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    loaded = config_lib.load(tmp_path / "config.yaml", saved_run=True)
    assert (loaded.train.sgd_momentum, loaded.train.poly_exponent, loaded.train.checkpoint_every) == (0.99, 0.9, 100)
    assert loaded == config_lib.preset("tiny")


def test_validation_view_names_what_the_engine_shows():
    from brats_ssl.engine.progress_plot import ValidationView
    from brats_ssl.run.phase import VALIDATION_VIEW

    metrics = {"WT": 0.5, "TC": 0.25, "ET": 0.125, "NCR": 0.0, "ED": 1.0}
    assert VALIDATION_VIEW.bar_text(metrics) == "WT 0.500 TC 0.250 ET 0.125"
    assert [name for name, _ in VALIDATION_VIEW.curves(metrics)] == ["WT", "TC", "ET", "NCR", "ED"]
    generic = ValidationView()  # the engine alone: every metric, by name
    assert generic.bar_text({"b": 1.0, "a": 0.5}) == "a 0.500 b 1.000"
    assert generic.curves({"b": 1.0, "a": 0.5}) == [("a", None), ("b", None)]


def test_a_phase_records_what_each_process_that_trained_it_ran_on(tmp_path):
    """Results are bitwise reproducible only on the same torch, device, precision and thread count
    (fold 0-2 teachers of a 2-thread sweep differed from 1-thread re-runs by up to 0.35 Dice on a
    case): done.json lists them for every process, a resumed one included."""
    item = _item(2)
    _fit_until_killed(_trainer(tmp_path / "run", 6, item=item), at_step=4)  # the last checkpoint is at step 3
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        _trainer(tmp_path / "run", 6, item=item).fit()
    finally:
        torch.set_num_threads(threads)
    ran_on = json.loads((tmp_path / "run" / "done.json").read_text())["ran_on"]
    assert [entry["from_step"] for entry in ran_on] == [0, 3]
    assert [entry["threads"] for entry in ran_on] == [threads, 1 if threads > 1 else 2]
    precision = "bf16" if cpu_has_fast_bf16() else "fp32"  # the tiny preset's precision is auto
    for entry in ran_on:
        assert entry["precision"] == precision and entry["processes"] == 1 and entry["torch"] == torch.__version__
        assert entry["device"].startswith("cpu: ") and len(entry["device"]) > len("cpu: ")
    assert _trainer(tmp_path / "run", 6, item=item).fit().steps == 6  # a finished phase reads its done.json back
