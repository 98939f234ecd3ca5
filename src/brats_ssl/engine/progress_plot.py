"""``progress.png``: training loss, validation metrics and learning rate against steps.

The engine knows no metric by name: :class:`ValidationView` says which of the validator's
metrics to draw (and in what colour), which to show on the progress bar, and what they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from brats_ssl import atomic


@dataclass(frozen=True)
class ValidationView:
    """How the trainer shows validation metrics. ``colours``: a curve per named metric, in this
    order (empty: every metric, in matplotlib's colours); ``bar``: the metrics on the progress bar
    (None: every metric); ``title``: the validation panel's title."""

    colours: Mapping[str, str] = field(default_factory=dict)
    bar: Sequence[str] | None = None
    title: str = "validation"

    def curves(self, metrics: Mapping[str, float]) -> list[tuple[str, str | None]]:
        """(metric, colour) of each curve to draw, for a validation row holding ``metrics``."""
        if not self.colours:
            return [(name, None) for name in sorted(metrics)]
        return [(name, colour) for name, colour in self.colours.items() if name in metrics]

    def bar_text(self, metrics: Mapping[str, float]) -> str:
        names = sorted(metrics) if self.bar is None else [name for name in self.bar if name in metrics]
        return " ".join(f"{name} {metrics[name]:.3f}" for name in names)


def draw_progress(
    rows: list[dict], out_png: str | Path, *, title: str = "", view: ValidationView | None = None
) -> Path:
    from matplotlib.figure import Figure  # here: importing the trainer stays cheap

    view = view if view is not None else ValidationView()
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
    for name, colour in view.curves(val[0]["val"]) if val else []:
        ax_val.plot([r["step"] for r in val], [r["val"][name] for r in val], marker="o", ms=3, color=colour, label=name)
    if val:
        ax_val.legend(fontsize=7, ncol=2)
        ax_val.set_ylim(0, 1)
    ax_loss.set_title("training loss")
    ax_val.set_title(view.title)
    ax_lr.set_title("learning rate")
    for ax in (ax_loss, ax_val, ax_lr):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return atomic.write_with(out_png, lambda tmp: fig.savefig(tmp, format="png"), suffix=".png")
