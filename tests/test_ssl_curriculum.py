import numpy as np
import pytest

from brats_ssl.data import confidence_codec
from brats_ssl.ssl.confidence import RankedCase, image_confidence, rank_cases
from brats_ssl.ssl.curriculum import entry_stage, stage_members, stage_size, threshold
from brats_ssl.ssl.pseudolabels import PseudoLabel, absent_bits
from brats_ssl.ssl.refinement import agreement_dice, refine


def test_stage_membership_follows_ceil_k_n_over_k():
    ranked = [f"c{i}" for i in range(10)]
    sizes = [len(stage_members(ranked, k, 4)) for k in range(1, 5)]
    assert sizes == [3, 5, 8, 10]  # ceil(k*10/4)
    assert stage_members(ranked, 2, 4) == ranked[:5]
    assert stage_members(ranked, 1, 4, curriculum=False) == ranked
    assert [entry_stage(i, 10, 4) for i in range(10)] == [1, 1, 1, 2, 2, 3, 3, 3, 4, 4]
    assert stage_size(4, 10, 4) == 10


def test_pool_fraction_keeps_the_least_confident_cases_out_of_every_stage():
    ranked = [f"c{i}" for i in range(10)]
    assert [len(stage_members(ranked, k, 2, pool_fraction=0.3)) for k in (1, 2)] == [2, 3]
    # 0.07 of 100 is 7 cases, not 8 (0.07 * 100 is 7.000000000000001 in floating point)
    assert len(stage_members([f"c{i}" for i in range(100)], 1, 1, pool_fraction=0.07)) == 7
    assert [len(stage_members(ranked, k, 4, pool_fraction=0.5)) for k in range(1, 5)] == [2, 3, 4, 5]
    assert stage_members(ranked, 1, 4, curriculum=False, pool_fraction=0.5) == ranked[:5]
    assert [entry_stage(i, 10, 2, pool_fraction=0.3) for i in range(10)] == [1, 1, 2] + [0] * 7
    assert len(stage_members(ranked[:2], 1, 4, pool_fraction=0.1)) == 1  # never an empty pool
    rows = [RankedCase(f"c{i}", s, {}) for i, s in enumerate([0.5, 0.9, 0.7, 0.8])]
    assert [r.stage for r in rank_cases(rows, stages=2, pool_fraction=0.5)] == [1, 2, 0, 0]


def test_threshold_schedule():
    assert [round(threshold(k, 4, 0.9, 0.7), 4) for k in range(1, 5)] == [0.9, 0.8333, 0.7667, 0.7]
    assert threshold(1, 1, 0.9, 0.7) == 0.9


def test_image_confidence_uses_dilated_tumour_region_and_penalises_empty():
    brain = np.ones((20, 20, 20), bool)
    label = np.zeros((20, 20, 20), np.uint8)
    label[8:12, 8:12, 8:12] = 2
    conf = np.full(label.shape, 1.0, np.float32)
    conf[9, 9, 9] = 0.0  # inside the tumour: counts
    conf[0, 0, 0] = 0.0  # far away: does not count
    score = image_confidence(label, conf, brain, (1, 1, 1), margin_mm=2, empty_penalty=0.5)
    roi = 6**3 + 0  # approx: the 4-cube grown by 2 voxels (rounded corners)
    assert 1 - 1 / 100 < score < 1 - 1 / (roi + 200)
    empty = image_confidence(np.zeros_like(label), conf, brain, (1, 1, 1), margin_mm=2, empty_penalty=0.5)
    assert empty == pytest.approx(0.5 * (1 - 2 / 8000))


def test_ranking_orders_most_confident_first_and_assigns_stages():
    rows = [RankedCase(f"c{i}", s, {}) for i, s in enumerate([0.5, 0.9, 0.7, 0.8])]
    ranked = rank_cases(rows, stages=2)
    assert [r.case for r in ranked] == ["c1", "c3", "c2", "c0"]
    assert [r.rank for r in ranked] == [1, 2, 3, 4] and [r.stage for r in ranked] == [1, 1, 2, 2]
    for r, a in zip(rows, [0.9, 0.1, 0.9, 0.5]):
        r.agreement = a
    by_agreement = rank_cases(rows, stages=2, by_agreement=True)
    assert [r.case for r in by_agreement] == ["c2", "c0", "c3", "c1"]  # ties broken by confidence


def _pseudo(labels, confs):
    labels = np.array(labels, np.uint8)
    probs = np.full((4,) + labels.shape, 0.01, np.float32)
    return PseudoLabel(
        labels,
        confidence_codec.encode(np.array(confs, np.float32)),
        absent_bits(probs, 0.05),
        np.zeros(labels.shape, np.uint8),
    )


def test_refinement_rules():
    teacher = _pseudo([1, 1, 2, 2, 0], [0.6, 0.95, 0.5, 0.6, 0.9])
    student = _pseudo([1, 2, 3, 3, 0], [0.8, 0.7, 0.9, 0.7, 0.3])
    # class 2 ruled out by the teacher at voxels 0 and 1, by the student at voxels 1 and 2
    teacher.absent = np.array([0b0100, 0b0100, 0, 0, 0], np.uint8)
    student.absent = np.array([0, 0b0100, 0b0100, 0, 0], np.uint8)
    refined, dice = refine(teacher, student, tau_agree=0.85)
    # agree -> label stands, mean confidence; disagree -> more confident if >= tau_agree, else unlearn
    assert refined.label.tolist() == [1, 1, 3, 2, 0]
    q = confidence_codec.encode(np.array([0.6, 0.8, 0.95, 0.9, 0.3], np.float32)).astype(int)
    expected = [(q[0] + q[1]) // 2, q[2], q[3], 1, (q[3] + q[4]) // 2]  # 1: the "nothing learned" level
    assert refined.confidence.tolist() == expected
    assert refine(teacher, student, tau_agree=0.85, agree="max")[0].confidence.tolist()[::4] == [q[1], q[3]]
    # a class stays ruled out only where both models rule it out
    assert refined.absent.tolist() == [0, 0b0100, 0, 0, 0]
    assert dice == pytest.approx(agreement_dice(teacher.label, student.label))
    assert agreement_dice(np.array([1, 1, 0]), np.array([1, 0, 0])) == pytest.approx(2 / 3)
    # neither model finds a tumour: no agreement to reward (it would rank an empty pseudo-label first)
    assert agreement_dice(np.zeros(3), np.zeros(3)) == 0.0


def test_absent_bits_mark_ruled_out_classes():
    probs = np.array([[0.9, 0.01], [0.04, 0.5], [0.03, 0.3], [0.03, 0.19]], np.float32)
    assert absent_bits(probs, 0.05).tolist() == [0b1110, 0b0001]


def test_pseudolabel_roundtrip(tmp_path):
    p = _pseudo([0, 1, 2], [0.1, 0.5, 1.0])
    p.save(tmp_path / "case", {"x": 1})
    q = PseudoLabel.load(tmp_path / "case")
    assert PseudoLabel.exists(tmp_path / "case") and PseudoLabel.info(tmp_path / "case") == {"x": 1}
    assert np.array_equal(q.label, p.label) and np.array_equal(q.confidence, p.confidence)
    assert q.confidence_float == pytest.approx(np.array([0.1, 0.5, 1.0]), abs=2e-3)
