"""Whole-case inference on a real 240x240x155 case, each as a whole process (start, load,
predict, write NIfTI), timed with /usr/bin/time for wall time and peak memory:
- ``brats-ssl predict`` with a cpu-preset run (default fast path);
- the same run on its slow path (overlap 0.5, channels_last off) for the accuracy check;
- a plain MONAI process (bench/monai_baseline_predict.py: UNet 4.8 M, 96³, overlap 0.5, fp32).
Then the Dice between our fast and slow predictions (target: within 0.005).

Usage: .venv/bin/python bench/bench_predict.py RUN [--case BraTS2021_00006] [--repeats 3]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from common import real_data

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run_timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of a command, from GNU time."""
    result = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    rss = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) / 1024
    return hours * 3600 + minutes * 60 + seconds, rss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--case", default="BraTS2021_00006")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one = tmp / "one"
        one.mkdir()
        (one / args.case).symlink_to(real_data() / args.case)
        slow_run = tmp / "slow_run"
        shutil.copytree(
            args.run,
            slow_run,
            ignore=shutil.ignore_patterns("pseudo", "val_predictions", "*.png", "student_pseudo", "checkpoint_best.pt"),
        )
        config = (slow_run / "config.yaml").read_text()
        config = re.sub(r"overlap: [\d.]+", "overlap: 0.5", config)
        config = re.sub(r"channels_last: true", "channels_last: false", config)
        (slow_run / "config.yaml").write_text(config)
        commands = {
            "brats-ssl predict (cpu preset, default)": [
                str(BIN / "brats-ssl"),
                "predict",
                args.run,
                str(one),
                "-o",
                str(tmp / "fast"),
            ],
            "brats-ssl predict (slow path: overlap 0.5)": [
                str(BIN / "brats-ssl"),
                "predict",
                str(slow_run),
                str(one),
                "-o",
                str(tmp / "slow"),
            ],
            "plain MONAI process (UNet 4.8 M, 96^3, overlap 0.5)": [
                sys.executable,
                str(ROOT / "bench" / "monai_baseline_predict.py"),
                str(one / args.case),
                str(tmp / "monai.nii.gz"),
            ],
        }
        results = {}
        for label, command in commands.items():
            runs = [run_timed(command) for _ in range(args.repeats)]
            results[label] = (statistics.median(r[0] for r in runs), max(r[1] for r in runs))
        baseline = results["plain MONAI process (UNet 4.8 M, 96^3, overlap 0.5)"][0]
        print(f"case {args.case}, {args.repeats} runs each, median wall time, peak RSS")
        for label, (wall, rss) in results.items():
            print(f"{label:<56} {wall:7.2f} s  {rss:7.0f} MB  {wall / baseline:5.2f}x MONAI")
        fast = np.asarray(nib.load(str(tmp / "fast" / f"{args.case}.nii.gz")).dataobj)
        slow = np.asarray(nib.load(str(tmp / "slow" / f"{args.case}.nii.gz")).dataobj)
        from brats_ssl.data.conventions import BRATS2021
        from brats_ssl.metrics import region_dice

        agreement = region_dice(BRATS2021.to_internal(fast), BRATS2021.to_internal(slow))
        print("Dice fast vs slow path: " + ", ".join(f"{k} {v:.5f}" for k, v in agreement.items()))


if __name__ == "__main__":
    main()
