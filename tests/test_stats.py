"""Paired statistics against values computed by hand."""

import math

import pytest

from brats_ssl.stats import mean_ci, paired, wilcoxon_p


def test_bootstrap_interval_of_two_values_is_their_range():
    # resampling [1, 3] gives means 1, 2, 3 with probabilities 1/4, 1/2, 1/4:
    # the 2.5th percentile is 1 and the 97.5th is 3
    assert mean_ci([1.0, 3.0]) == (2.0, 1.0, 3.0)
    # a constant sample has no spread; an empty one has no mean
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    assert all(math.isnan(v) for v in mean_ci([]))


def test_bootstrap_interval_of_a_larger_sample_is_seeded_and_brackets_the_mean():
    values = [0.01, 0.03, -0.005, 0.02, 0.0, 0.015, 0.04, -0.01]
    mean, low, high = mean_ci(values)
    assert low < mean < high and mean == pytest.approx(sum(values) / len(values))
    # the percentile interval lies inside the sample's range, and the same seed gives the same interval
    assert min(values) <= low and high <= max(values)
    assert mean_ci(values) == (mean, low, high) and mean_ci(values, seed=1) != (mean, low, high)


def test_wilcoxon_exact_p_values():
    # five positive differences: W- = 0; exact two-sided p = 2 * (1 / 2**5) = 0.0625
    assert wilcoxon_p([1, 2, 3, 4, 5]) == pytest.approx(0.0625)
    # one negative difference of rank 2: W- = 2; subsets of {1..5} summing to <= 2: {}, {1}, {2}
    # p = 2 * 3 / 32 = 0.1875
    assert wilcoxon_p([1, -2, 3, 4, 5]) == pytest.approx(0.1875)
    assert wilcoxon_p([0, 0, 0]) == 1.0  # no difference at all


def test_paired_difference_and_resolution():
    better = paired([0.02, 0.03, 0.01, 0.04, 0.02, 0.03])
    assert better.n == 6 and better.mean == pytest.approx(0.025) and better.ci_low > 0 and better.resolved
    assert better.p_value == pytest.approx(2 / 2**6)  # all six positive: exact p = 2 / 64
    mixed = paired([0.02, -0.03, 0.01, -0.01])
    assert mixed.ci_low < 0 < mixed.ci_high and not mixed.resolved
    assert not paired([0.5]).resolved  # one case resolves nothing
