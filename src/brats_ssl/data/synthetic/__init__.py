"""Synthetic BraTS-like cohort: skull-stripped brains with gliomas, scanned at simulated sites.

Each case is a brain (:mod:`.anatomy`) with a glioma in one hemisphere (:mod:`.tumour`; a share
:data:`LGG_FRACTION` of the cases LGG-like), scanned with its site's jittered acquisition
(:mod:`.scanner`), and written in BraTS 2021 layout with ``sites.csv`` (:mod:`.cohort`). Random
shapes come from smooth random fields (:mod:`.fields`). The same seed gives the same files, byte
for byte.

>>> write_cohort("synth", cases=4, shape=(48, 48, 32))  # doctest: +SKIP
"""

from brats_ssl.data.synthetic.anatomy import CSF, DEEP_GREY, GREY, TISSUES, WHITE, simulate_anatomy
from brats_ssl.data.synthetic.cohort import (
    LGG_FRACTION,
    CaseSpec,
    SyntheticCase,
    plan_cohort,
    simulate_case,
    synthetic_affine,
    write_cohort,
)
from brats_ssl.data.synthetic.fields import bounding_box, smooth_field
from brats_ssl.data.synthetic.scanner import Acquisition, site_name
from brats_ssl.data.synthetic.tumour import simulate_tumour

__all__ = [
    "CSF",
    "DEEP_GREY",
    "GREY",
    "TISSUES",
    "WHITE",
    "LGG_FRACTION",
    "Acquisition",
    "CaseSpec",
    "SyntheticCase",
    "bounding_box",
    "plan_cohort",
    "simulate_anatomy",
    "simulate_case",
    "simulate_tumour",
    "site_name",
    "smooth_field",
    "synthetic_affine",
    "write_cohort",
]
