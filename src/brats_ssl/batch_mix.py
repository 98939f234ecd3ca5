"""How many patches of each kind a training step's global batch holds: arithmetic the methods
(ssl/) and the settings' validation (config.py) share, torch-free."""

from __future__ import annotations

from brats_ssl.errors import BadInputError


def batch_counts(batch_size: int, unlabeled_ratio: float, legacy_fraction: float | None = None) -> tuple[int, int]:
    """(labeled, extra) samples per global batch: the full labeled batch plus ``unlabeled_ratio``
    pseudo-labeled / unlabeled patches per labeled one. ``legacy_fraction`` reproduces runs made
    before: one ``batch_size`` batch shared, the extra patches taken out of the labeled ones."""
    if legacy_fraction is None:
        return batch_size, int(round(unlabeled_ratio * batch_size))
    extra = min(batch_size - 1, max(1 if legacy_fraction > 0 else 0, int(round(legacy_fraction * batch_size))))
    return batch_size - extra, extra


def extra_counts(extra: int, labeled_share: float) -> tuple[int, int]:
    """(true-labeled, pseudo-labeled) of a step's ``extra`` patches: ``labeled_share`` of them
    from the labeled cases with their true labels. A share that rounds to none or to all of them
    would silently be another setting, so it is refused, naming the shares this batch can give."""
    if labeled_share <= 0:
        return 0, extra
    true = int(round(labeled_share * extra))
    if not 1 <= true <= extra - 1:
        possible = ", ".join(f"{k / extra:g}" for k in range(1, extra)) or "none (raise ssl.unlabeled_ratio)"
        raise BadInputError(
            f"invalid setting ssl.labeled_extra_share={labeled_share:g}: of {extra} extra patch(es) per step it "
            f"gives {true} from the labeled cases and {extra - true} pseudo-labeled; shares that keep both: "
            f"{possible}; or ssl.labeled_extra_share=0 (every extra patch pseudo-labeled)"
        )
    return true, extra - true


def stage_counts(
    method: str, batch_size: int, unlabeled_ratio: float, legacy_fraction: float | None, labeled_share: float
) -> tuple[int, int, int]:
    """(labeled, true-labeled extra, pseudo-labeled extra) patches per step of the stages of ours and
    its controls: ours splits its extra patches by ``labeled_share``, ours-student-control takes all
    of them from the labeled cases, ours-control has none (in runs made before, the whole batch)."""
    labeled, extra = batch_counts(batch_size, unlabeled_ratio, legacy_fraction)
    if method == "ours":
        return (labeled, *extra_counts(extra, labeled_share))
    if method == "ours-student-control":
        return labeled, extra, 0
    if method == "ours-control":
        return (batch_size if legacy_fraction is not None else labeled), 0, 0
    raise ValueError(f"{method}: not a staged method")
