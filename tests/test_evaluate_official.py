"""Cross-check Dice and HD95 against panoptica, the engine of the official BraTS evaluation.

Optional: needs the ``brats-eval`` extra (panoptica) and the real dev cases; skipped otherwise.
panoptica's global (whole-volume) metrics are compared on the BraTS regions and labels, with the
groups of the official ``BraTS_evaluation`` glioma config (wt, tc, et, netc, snfh).

Dice must agree to 1e-4. HD95 differs by definition: both take the same surface voxels (mask XOR
its 6-connected erosion) and the same Euclidean distances between them, but MONAI (ours, as in
BraTS 2021-2023) reports the larger of the two directed 95th percentiles, panoptica the 95th
percentile of both directions pooled. The pooled percentile always lies between the two directed
ones, so the check is: ``min(directed) <= panoptica <= ours == max(directed)`` (1e-4 mm), with
the directed values computed here independently (scipy's distance transform).
Empty masks also differ: panoptica's glioma config scores a missing structure HD95 = inf, BraTS
(and we) 373.13 mm.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from brats_ssl.data.dataset import open_dataset
from brats_ssl.data.io import load_nifti, read_seg
from brats_ssl.metrics import EVALUATED, HD95_MAX, case_metrics

from conftest import real_data_or_skip

panoptica = pytest.importorskip("panoptica")

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.slow,
    # MONAI 1.5-1.6 passes its own deprecated argument to get_mask_edges.
    pytest.mark.filterwarnings("ignore:.*always_return_as_numpy.*:FutureWarning"),
]

CASES = ("BraTS2021_00006", "Brats18_CBICA_ABM_1")
# Group names as in BraTS_evaluation's config_gli.yaml (labels there are ours: 1 NCR, 2 ED, 3 ET).
OFFICIAL_GROUPS = {"WT": "wt", "TC": "tc", "ET": "et", "NCR": "netc", "ED": "snfh"}


def _perturbations(gt: np.ndarray) -> dict[str, np.ndarray]:
    eroded = np.where(ndimage.binary_erosion(gt > 0, iterations=2), gt, 0)
    return {
        "shift": np.roll(gt, (2, -1, 1), axis=(0, 1, 2)),
        "dilate": ndimage.grey_dilation(gt, size=(3, 3, 3)),  # ET grows over NCR and ED too
        "erode, no ET": np.where(eroded == 3, 1, eroded).astype(np.uint8),  # ET missing entirely
    }


@pytest.fixture(scope="module")
def evaluator():
    from panoptica import ConnectedComponentsInstanceApproximator, InputType, Metric, NaiveThresholdMatching
    from panoptica.utils import (
        EdgeCaseHandler,
        EdgeCaseResult,
        LabelGroup,
        LabelMergeGroup,
        SegmentationClassGroups,
    )
    from panoptica.utils.edge_case_handling import MetricZeroTPEdgeCaseHandling

    try:
        from panoptica import disable_citation_reminder

        disable_citation_reminder()
    except ImportError:  # older releases have no switch
        pass
    groups = SegmentationClassGroups(
        {
            "wt": LabelMergeGroup([1, 2, 3]),
            "tc": LabelMergeGroup([1, 3]),
            "et": LabelGroup(3),
            "netc": LabelGroup(1),
            "snfh": LabelGroup(2),
        }
    )
    # Empty structures as in config_gli: Dice 0, HD95 inf (NaN when both are empty).
    edge_cases = EdgeCaseHandler(
        {
            Metric.DSC: MetricZeroTPEdgeCaseHandling(
                no_instances_result=EdgeCaseResult.NAN, default_result=EdgeCaseResult.ZERO
            ),
            Metric.HD95: MetricZeroTPEdgeCaseHandling(
                no_instances_result=EdgeCaseResult.NAN, default_result=EdgeCaseResult.INF
            ),
        }
    )
    # Instance metrics are irrelevant here; DSC alone keeps panoptica to a few seconds a case.
    return panoptica.Panoptica_Evaluator(
        expected_input=InputType.SEMANTIC,
        instance_approximator=ConnectedComponentsInstanceApproximator(),
        instance_matcher=NaiveThresholdMatching(),
        edge_case_handler=edge_cases,
        segmentation_class_groups=groups,
        instance_metrics=[Metric.DSC],
        global_metrics=[Metric.DSC, Metric.HD95],
    )


def _directed_hd95(a: np.ndarray, b: np.ndarray, spacing) -> float:
    """95th percentile of the distances from a's surface voxels to b's, computed independently.

    Surfaces are a mask minus its 6-connected erosion (as MONAI and panoptica), distances come
    from scipy's exact Euclidean distance transform, on a box around both masks.
    """
    box = ndimage.find_objects((a | b).astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in box)
    a, b = a[box], b[box]
    surface_a = a & ~ndimage.binary_erosion(a)
    surface_b = b & ~ndimage.binary_erosion(b)
    distances = ndimage.distance_transform_edt(~surface_b, sampling=spacing)[surface_a]
    return float(np.percentile(distances, 95))


@pytest.mark.parametrize("case_id", CASES)
def test_dice_and_hd95_agree_with_panoptica(case_id, evaluator):
    root = real_data_or_skip()
    case = open_dataset(root).case(case_id)
    gt = read_seg(case)
    spacing = tuple(float(z) for z in load_nifti(case.seg, case_id).header.get_zooms()[:3])
    # panoptica's global metrics are in voxels; BraTS data is 1 mm, where voxels are mm.
    assert spacing == (1.0, 1.0, 1.0)

    report = []
    for name, pred in _perturbations(gt).items():
        ours = case_metrics(pred, gt, spacing)
        official = evaluator.evaluate(pred, gt, verbose=False)
        for region, labels in EVALUATED.items():
            theirs = official[OFFICIAL_GROUPS[region]]
            p, g = np.isin(pred, labels), np.isin(gt, labels)
            dice, hd95 = ours[region]["dice"], ours[region]["hd95"]
            if not g.any():
                continue  # not in this case's reference: both conventions agree there is nothing
            if not p.any():  # the structure was missed: same Dice, different HD95 convention
                assert dice == 0.0 and theirs.global_bin_dsc == 0.0
                assert hd95 == HD95_MAX and math.isinf(theirs.global_bin_hd95)
                report.append(f"{name:>13} {region:>3}: missed; HD95 ours {HD95_MAX}, panoptica inf")
                continue
            assert dice == pytest.approx(theirs.global_bin_dsc, abs=1e-4), (name, region)
            forward, backward = _directed_hd95(p, g, spacing), _directed_hd95(g, p, spacing)
            assert hd95 == pytest.approx(max(forward, backward), abs=1e-4), (name, region)
            assert min(forward, backward) - 1e-4 <= theirs.global_bin_hd95 <= hd95 + 1e-4, (name, region)
            report.append(
                f"{name:>13} {region:>3}: Dice |diff| {abs(dice - theirs.global_bin_dsc):.1e}, "
                f"HD95 ours {hd95:.3f} panoptica {theirs.global_bin_hd95:.3f}"
            )
    print(f"\n{case_id}\n" + "\n".join(report))
