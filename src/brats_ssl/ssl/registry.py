"""Every training method by name, in one table that config validation, the command line, the
pipeline, the experiment, the report, the run-folder reader and the tests read.

Torch-free and cheap to import: a method's code is named by an import path and loaded only when
the method runs, so ``brats-ssl --help`` and config validation can read the table. Adding a
method = its module (a function ``runner(ctx: RunContext) -> MethodResult``) + one entry in
:data:`METHODS` + its test; the test suite parametrises over this table.

>>> get_method("ua-mt").phases
('ua_mt',)
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Callable

from brats_ssl.errors import BadInputError

# In Method.phases: the student stages stage_1 ... stage_K (K = ssl.stages), in order.
STAGES = "stage_*"
DEFAULT_METHOD = "ours"  # of a new run given no --method (nor a method in its --config file)


@dataclass(frozen=True)
class Method:
    """What the rest of the package needs to know about a method."""

    name: str  # as in --method, config.yaml, run and experiment folder names
    runner: str  # "module:function", called as function(ctx) -> MethodResult
    help: str  # one line for --help
    uses_unlabeled: bool  # needs unlabeled cases in its split
    # Its first phase is the supervised method's teacher phase itself (same split, settings, seed and
    # batch stream): an experiment copies a finished supervised run's teacher instead of training it again.
    starts_from_teacher: bool
    phases: tuple[str, ...]  # the phase folders it writes, in order (STAGES for the student stages)
    colour: str  # of its curves in experiment figures
    # Training steps in the run report; {teacher}: train.steps, {student}: "ssl.stages × ssl.stage_steps".
    steps_text: str = "{teacher} + {student} (one phase)"

    @property
    def staged(self) -> bool:
        """Teacher → student stages: its runs have stages.json and per-stage curves."""
        return STAGES in self.phases

    def phase_names(self, stages: int) -> list[str]:
        """The phases a run of this method writes with ``ssl.stages = stages``."""
        names: list[str] = []
        for phase in self.phases:
            names += [f"stage_{k}" for k in range(1, stages + 1)] if phase == STAGES else [phase]
        return names

    def phase_key(self, phase: str) -> tuple:
        """Sort key of a phase folder: this method's order; folders it does not name last, by name."""
        stage = re.fullmatch(r"stage_(\d+)", phase)
        for i, known in enumerate(self.phases):
            if known == phase:
                return (i, 0, "")
            if known == STAGES and stage:
                return (i, int(stage.group(1)), "")
        return (len(self.phases), 0, phase)

    def load_runner(self) -> Callable:
        """The method's code (imported now, not when the table is read)."""
        module, _, function = self.runner.partition(":")
        return getattr(importlib.import_module(module), function)


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method(
            "supervised",
            "brats_ssl.ssl.teacher:run_supervised",
            "the teacher alone: supervised training on the labeled cases",
            uses_unlabeled=False,
            starts_from_teacher=False,
            phases=("teacher",),
            colour="#6c757d",
            steps_text="{teacher}",
        ),
        Method(
            "ours",
            "brats_ssl.ssl.ours:run_ours",
            "the method: teacher, MC pseudo-labels with uncertainty, confidence curriculum of student stages "
            "with the learn/unlearn loss, teacher-student agreement refinement",
            uses_unlabeled=True,
            starts_from_teacher=True,
            phases=("teacher", STAGES),
            colour="#d62828",
            steps_text="{teacher} (teacher) + {student} (student stages)",
        ),
        Method(
            "ours-control",
            "brats_ssl.ssl.ours:run_ours_control",
            "ours' teacher and stages on the labeled cases alone: the control for what the unlabeled scans add",
            uses_unlabeled=False,
            starts_from_teacher=True,
            phases=("teacher", STAGES),
            colour="#7b2cbf",
            steps_text="{teacher} (teacher) + {student} (stages on the labeled cases only)",
        ),
        Method(
            "ours-student-control",
            "brats_ssl.ssl.ours:run_ours_student_control",
            "ours' student as it is (extra patches, strong views, copy-paste, online teacher, stages) with the "
            "extra patches drawn from the labeled cases and their true labels: what the unlabeled scans' content adds",
            uses_unlabeled=False,
            starts_from_teacher=True,
            phases=("teacher", STAGES),
            colour="#c77dff",
            steps_text="{teacher} (teacher) + {student} (ours' student on the labeled cases only)",
        ),
        Method(
            "self-training",
            "brats_ssl.ssl.baselines:run_self_training",
            "teacher, one pass of pseudo-labels for every unlabeled case, one student",
            uses_unlabeled=True,
            starts_from_teacher=True,
            phases=("teacher", "student"),
            colour="#f77f00",
            steps_text="{teacher} (teacher) + {student} (student)",
        ),
        Method(
            "mean-teacher",
            "brats_ssl.ssl.baselines:run_mean_teacher",
            "Mean Teacher: consistency with an EMA teacher on unlabeled patches, trained from scratch",
            uses_unlabeled=True,
            starts_from_teacher=False,
            phases=("mean_teacher",),
            colour="#457b9d",
        ),
        Method(
            "bcp",
            "brats_ssl.ssl.bcp:run_bcp",
            "BCP: bidirectional copy-paste of labeled and EMA-pseudo-labeled patches, from the supervised teacher",
            uses_unlabeled=True,
            starts_from_teacher=True,
            phases=("teacher", "bcp"),
            colour="#e9c46a",
            steps_text="{teacher} (teacher) + {student} (copy-paste student)",
        ),
        Method(
            "ua-mt",
            "brats_ssl.ssl.baselines:run_ua_mt",
            "UA-MT: Mean Teacher with the consistency masked by the EMA teacher's MC-dropout uncertainty",
            uses_unlabeled=True,
            starts_from_teacher=False,
            phases=("ua_mt",),
            colour="#2a9d8f",
        ),
    )
}


def get_method(name: str) -> Method:
    """The registered method ``name``; an unknown name is bad input that lists the valid ones."""
    method = METHODS.get(name)
    if method is None:
        raise BadInputError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    return method


def staged_methods() -> list[str]:
    """Names of the methods whose runs have teacher → student stage phases, in table order."""
    return [name for name, method in METHODS.items() if method.staged]


def method_colour(name: str, fallback: str) -> str:
    """A method's curve colour; ``fallback`` for a name not in the table (an old results.csv)."""
    method = METHODS.get(name)
    return method.colour if method is not None else fallback


def methods_help() -> str:
    """The --method help: every method with its one line, the default first."""
    order = [DEFAULT_METHOD] + [name for name in METHODS if name != DEFAULT_METHOD]
    default = " (the default of a new run; a resumed run keeps its own)"
    return " | ".join(
        f"{name}{default if name == DEFAULT_METHOD else ''}: {METHODS[name].help}" for name in order if name in METHODS
    )
