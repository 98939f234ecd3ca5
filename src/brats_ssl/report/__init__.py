"""``brats-ssl report``: report.md and a self-contained report.html for a run or an experiment.

A run report shows the settings, the validation metrics of teacher and final model, each training
phase's ``progress.png``, the per-stage Dice and curriculum of ``--method ours``, the teacher's
confidence over the unlabeled pool, and overlay panels of validation cases with the final model's
MC-dropout uncertainty (computed at report time). An experiment report shows results per method
and labeled fraction with bootstrap intervals, paired comparisons, the effect of post-processing,
the data-efficiency curves, ours' per-stage curves, the total time and links to each run's own
report (written too).

Sections whose inputs are missing (a supervised run has no stages and no pool) are left out.
Figures are :class:`matplotlib.figure.Figure` objects (no pyplot) written beside report.md as
``report_*.png``; report.html embeds every picture as base64, so it is one file to send.

Modules: :mod:`~brats_ssl.report.document` (the document model and its Markdown / HTML
rendering), :mod:`~brats_ssl.report.formatting` (numbers, durations, intervals),
:mod:`~brats_ssl.report.run_summary` (what sections read from summary.json and split.json),
:mod:`~brats_ssl.report.run_report` with :mod:`~brats_ssl.report.stages`,
:mod:`~brats_ssl.report.pool` and :mod:`~brats_ssl.report.overlays`, and
:mod:`~brats_ssl.report.experiment_report` with :mod:`~brats_ssl.report.experiment_figures`.
"""

from __future__ import annotations

from pathlib import Path

from brats_ssl.errors import BadInputError
from brats_ssl.experiment_folder import is_experiment_folder
from brats_ssl.report.document import REPORT_HTML, REPORT_MD
from brats_ssl.report.experiment_report import write_experiment_report
from brats_ssl.report.run_report import write_run_report

__all__ = ["REPORT_HTML", "REPORT_MD", "write_experiment_report", "write_report", "write_run_report"]


def write_report(target: Path, console=None) -> Path:
    """Write report.md and report.html for a run folder or an experiment folder; returns report.md."""
    target = Path(target)
    if not target.is_dir():
        raise BadInputError(f"folder {target}: does not exist or is not a folder")
    if is_experiment_folder(target):
        return write_experiment_report(target, console=console)
    if (target / "config.yaml").is_file():
        return write_run_report(target, console=console)
    raise BadInputError(
        f"folder {target}: neither a run folder (config.yaml) nor an experiment folder "
        "(results.csv); pass the folder given to `brats-ssl train -o` or `brats-ssl experiment -o`"
    )
