"""fp16 training goes through a GradScaler (CPU here: ``torch.amp.GradScaler("cpu")``), whose state is
checkpointed so a resumed fp16 run equals an uninterrupted one; ``auto`` picks bf16 only where it
is native."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from brats_ssl import atomic
from brats_ssl.engine import device as device_lib
from brats_ssl.engine.checkpoint import load_checkpoint

CPU = torch.device("cpu")
INITIAL_SCALE = 65536.0  # torch's default init_scale


def test_a_scaler_only_for_fp16(monkeypatch):
    assert isinstance(device_lib.grad_scaler(CPU, "fp16"), torch.amp.GradScaler)
    for precision in ("bf16", "fp32"):
        assert device_lib.grad_scaler(CPU, precision) is None
    monkeypatch.setattr(device_lib, "cpu_has_fast_bf16", lambda: False)
    assert device_lib.grad_scaler(CPU, "auto") is None  # CPU without native bf16: fp32, as before


@pytest.mark.parametrize("native_bf16, expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_auto_on_cuda_takes_bf16_only_where_it_is_native(monkeypatch, native_bf16, expected):
    # A T4 / V100 answers True to the default check (bf16 emulated, slowly); only native bf16 counts.
    def is_bf16_supported(including_emulation=True):
        return native_bf16 or including_emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert device_lib.autocast_dtype(torch.device("cuda"), "auto") is expected


def _fit(out: Path, *, kill_at: int | None = None):
    from brats_ssl.config import preset
    from brats_ssl.data.batches import LABELED, BatchBuilder, Pool, batch_loader
    from brats_ssl.data.sampling import TrainItem
    from brats_ssl.engine.trainer import Trainer
    from brats_ssl.run.model import build_model
    from brats_ssl.run.phase import supervised_loss_fn

    from conftest import synthetic_case

    image, labels = synthetic_case((16, 16, 16), 0)
    item = TrainItem("c0", image.astype(np.float16), {"label": labels})
    config = preset("tiny").train
    config.precision, config.log_every, config.augment, config.channels_last = "fp16", 1, False, False
    builder = BatchBuilder(
        [Pool([item], 1, LABELED)], patch_size=(16, 16, 16), foreground_fraction=0.5, augment=False, seed=0, stream="t"
    )
    supervised = supervised_loss_fn("dice_ce")

    def loss_fn(model, batch, step):
        loss, logs = supervised(model, batch, step)
        # Step 1 overflows (as an fp16 step may): the scaler must skip it and halve its scale.
        return (loss * float("inf") if step == 1 else loss), logs

    def batches(start, stop):
        for step, batch in zip(range(start, stop), batch_loader(builder, start, stop, 0)):
            if step == kill_at:
                raise KeyboardInterrupt
            yield batch

    torch.manual_seed(0)
    trainer = Trainer(
        model=build_model(preset("tiny")),
        loss_fn=loss_fn,
        batches=batches,
        out_dir=out,
        steps=6,
        config=config,
        device=CPU,
        seed=0,
        checkpoint_every=3,
    )
    trainer.fit()
    return trainer


def test_resumed_fp16_run_equals_an_uninterrupted_one(tmp_path):
    whole = _fit(tmp_path / "whole")
    assert whole.scaler is not None and whole.scaler.get_scale() == INITIAL_SCALE / 2  # step 1 was skipped
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "killed", kill_at=4)  # after the checkpoint of step 3
    saved = load_checkpoint(tmp_path / "killed" / "checkpoint_last.pt")
    assert saved["step"] == 3 and saved["scaler"]["scale"] == INITIAL_SCALE / 2  # the scaler is in the checkpoint
    assert saved["scaler"]["_growth_tracker"] == 1  # one good step since the skipped one
    resumed = _fit(tmp_path / "killed")
    assert resumed.scaler.state_dict() == whole.scaler.state_dict()
    a, b = (load_checkpoint(p / "checkpoint_last.pt") for p in (tmp_path / "whole", tmp_path / "killed"))
    assert a["scaler"] == b["scaler"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    rows = atomic.read_jsonl(tmp_path / "killed" / "metrics.jsonl")
    assert rows == atomic.read_jsonl(tmp_path / "whole" / "metrics.jsonl")
    assert np.isinf(rows[1]["loss"]) and all(np.isfinite(r["loss"]) for r in rows if r["step"] != 2)
    initial = _initial_weights()
    assert any(not torch.equal(v, initial[k]) for k, v in a["model"].items())  # the good steps did train


def _initial_weights() -> dict:
    from brats_ssl.config import preset
    from brats_ssl.run.model import build_model

    torch.manual_seed(0)
    return build_model(preset("tiny")).state_dict()
