"""Post-processing rules on constructed volumes, and their choice on selection cases."""

import numpy as np
import pytest

from brats_ssl.postprocess import IDENTITY, Rule, apply_rule, choose_rule, load_rule, save_rule

ML = 0.001  # 1 mm voxels


def _truth() -> np.ndarray:
    gt = np.zeros((40, 40, 40), np.uint8)
    gt[10:20, 10:20, 10:20] = 2  # edema shell
    gt[13:17, 13:17, 13:17] = 1  # necrosis
    gt[12:13, 12:18, 12:18] = 3  # a thin enhancing rim
    return gt


def test_largest_component_removes_a_distant_blob_only():
    pred = _truth()
    pred[30:33, 30:33, 30:33] = 2  # 27 voxels far away (another "hemisphere")
    pred[30, 10, 10] = 3  # a single voxel
    out = apply_rule(pred, Rule(wt="largest"), ML)
    assert np.array_equal(out, _truth()) and pred[31, 31, 31] == 2  # the input is not modified
    # by volume: 27 voxels = 0.027 ml survive a 0.02 ml threshold, the single voxel does not
    kept = apply_rule(pred, Rule(wt="min_ml", wt_min_ml=0.02), ML)
    assert kept[31, 31, 31] == 2 and kept[30, 10, 10] == 0
    assert np.array_equal(kept[:25, :25, :25], _truth()[:25, :25, :25])


def test_small_enhancing_volume_becomes_necrosis():
    pred = _truth()
    et_ml = int((pred == 3).sum()) * ML  # 36 voxels = 0.036 ml
    out = apply_rule(pred, Rule(et_to_ncr_below_ml=0.05), ML)
    assert not (out == 3).any() and (out[pred == 3] == 1).all()
    assert np.array_equal(apply_rule(pred, Rule(et_to_ncr_below_ml=et_ml / 2), ML), pred)
    assert apply_rule(pred, IDENTITY, ML) is pred


def test_choice_keeps_a_rule_only_when_it_raises_selection_dice():
    gt = _truth()
    blob = gt.copy()
    blob[30:36, 30:36, 30:36] = 2  # a false-positive blob of 216 voxels: WT Dice drops
    rule, candidates = choose_rule([(blob, gt, ML), (gt.copy(), gt, ML)])
    assert rule.wt in ("largest", "min_ml") and rule.et_to_ncr_below_ml == 0
    assert candidates[0]["describe"] == "none" and max(c["score"] for c in candidates) == pytest.approx(1.0)
    clean, _ = choose_rule([(gt.copy(), gt, ML)])
    assert clean == IDENTITY  # nothing to gain: the simplest rule stays
    # a case without enhancing tumour where the model predicts a few ET voxels: the ET rule pays
    no_et = gt.copy()
    no_et[no_et == 3] = 1
    rule, _ = choose_rule([(gt.copy(), no_et, ML)])
    assert rule.et_to_ncr_below_ml > 0.036


def test_rule_file_round_trip(tmp_path):
    assert load_rule(tmp_path) == IDENTITY  # runs made before post-processing existed
    save_rule(tmp_path, Rule(wt="largest", et_to_ncr_below_ml=0.5), chosen_on=["a"], phase="teacher", candidates=[])
    assert load_rule(tmp_path) == Rule(wt="largest", et_to_ncr_below_ml=0.5)
