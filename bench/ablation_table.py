"""Ablation table (markdown) of the runs bench/ablations.sh wrote: the last student's val Dice, and the teacher's mean.

Usage: python bench/ablation_table.py OUT [OUT ...]
"""

import json
import sys
from pathlib import Path

R = ("WT", "TC", "ET", "NCR", "ED")
order = [
    "supervised",
    "ours",
    "ours_control",
    "ours_no_pseudo",
    "ours_unlearn_none",
    "ours_unlearn_argmax",
    "ours_no_curriculum",
    "ours_no_refinement",
    "ours_no_weighting",
    "self_training",
    "mean_teacher",
    "ua_mt",
]
what = {
    "supervised": "teacher only (3 labeled)",
    "ours": "ours (defaults: unlearn absent)",
    "ours_control": "control: ours' schedule, no unlabeled scans (`--method ours-control`)",
    # folders from before ours-control existed; identical training (tests/test_pipeline.py)
    "ours_no_pseudo": "control: ours' schedule, no pseudo-labeled patches (`--set ssl.pseudo_fraction=0`)",
    "ours_unlearn_none": "`--unlearn none`",
    "ours_unlearn_argmax": "`--unlearn argmax`",
    "ours_no_curriculum": "`--no-curriculum`",
    "ours_no_refinement": "`--no-refinement`",
    "ours_no_weighting": "`--no-uncertainty-weighting`",
    "self_training": "self-training",
    "mean_teacher": "mean-teacher (600 steps from scratch)",
    "ua_mt": "UA-MT (600 steps from scratch)",
}


def mean(s):
    return sum(s["mean"][r]["dice"] for r in ("WT", "TC", "ET")) / 3


print("| run | final model | " + " | ".join(R) + " | mean WT/TC/ET (teacher) |")
print("| --- | --- | " + " | ".join("---" for _ in R) + " | --- |")
for root in sys.argv[1:]:
    for name in order:
        p = Path(root) / name / "summary.json"
        if not p.is_file():
            continue
        s = json.loads(p.read_text())
        st = s.get("student") or s
        t = s.get("teacher")
        tm = f" ({mean(t):.3f})" if t else ""
        print(
            f"| {what[name]} | {s.get('model')} | "
            + " | ".join(f"{st['mean'][r]['dice']:.3f}" for r in R)
            + f" | {mean(st):.3f}{tm} |"
        )
