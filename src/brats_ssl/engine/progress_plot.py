"""``progress.png``: training loss, validation Dice per region and learning rate against steps."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from brats_ssl import atomic

REGION_COLOURS = {"WT": "#2a9d8f", "TC": "#e76f51", "ET": "#264653", "NCR": "#e9c46a", "ED": "#8ab17d"}


def draw_progress(rows: list[dict], out_png: str | Path, *, title: str = "") -> Path:
    train = [r for r in rows if "loss" in r]
    val = [r for r in rows if "val" in r]
    fig = Figure(figsize=(11, 3.4), dpi=100)
    ax_loss, ax_val, ax_lr = fig.subplots(1, 3)
    if train:
        steps = [r["step"] for r in train]
        ax_loss.plot(steps, [r["loss"] for r in train], color="#555", lw=1, label="loss")
        for key in sorted({k for r in train for k in r} - {"step", "loss", "lr"}):
            ax_loss.plot(steps, [r.get(key, float("nan")) for r in train], lw=0.8, label=key)
        ax_loss.legend(fontsize=7)
        ax_lr.plot(steps, [r["lr"] for r in train], color="#7b2cbf")
    for region, colour in REGION_COLOURS.items():
        if val and region in val[0]["val"]:
            ax_val.plot([r["step"] for r in val], [r["val"][region] for r in val], marker="o", ms=3,
                        color=colour, label=region)
    if val:
        ax_val.legend(fontsize=7, ncol=2)
        ax_val.set_ylim(0, 1)
    ax_loss.set_title("training loss")
    ax_val.set_title("validation Dice")
    ax_lr.set_title("learning rate")
    for ax in (ax_loss, ax_val, ax_lr):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return atomic.write_with(out_png, lambda tmp: fig.savefig(tmp, format="png"), suffix=".png")
