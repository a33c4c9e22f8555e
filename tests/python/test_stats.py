"""stats.py on synthetic data with known answers: intervals, paired differences, sign test,
escape summaries."""
import math

import numpy as np
import pytest
import scipy.stats

from statex_analysis import stats


def test_constant_sample_has_a_zero_width_interval():
    low, high = stats.median_ci([0.75] * 5)
    assert low == high == 0.75
    s = stats.summarize([0.75] * 5)
    assert (s["n"], s["median"], s["mean"], s["std"]) == (5, 0.75, 0.75, 0.0)
    assert s["ci_low"] == s["ci_high"] == 0.75


@pytest.mark.parametrize("values", [[], [0.4], [0.4, 0.9], [np.nan, 0.4, np.nan]])
def test_fewer_than_three_values_have_no_interval(values):
    low, high = stats.median_ci(values)
    assert math.isnan(low) and math.isnan(high)
    s = stats.summarize(values)
    assert s["n"] == len([v for v in values if not np.isnan(v)])
    if s["n"]:
        assert s["median"] == pytest.approx(np.nanmedian(values))
    else:
        assert math.isnan(s["median"]) and math.isnan(s["mean"])


def test_nans_are_dropped_before_the_statistics():
    s = stats.summarize([0.1, np.nan, 0.2, 0.3])
    assert s["n"] == 3 and s["median"] == pytest.approx(0.2) and s["min"] == pytest.approx(0.1)


def test_interval_is_reproducible_and_the_seed_is_what_fixes_it():
    x = np.random.default_rng(1).normal(size=15)
    assert stats.median_ci(x) == stats.median_ci(x)
    assert stats.median_ci(x, seed=1) != stats.median_ci(x)


def _normal_median_halfwidth(n, sigma=1.0):
    """Asymptotic 95% half-width of a sample median of N(mu, sigma): 1.96 * sqrt(pi/2) sigma/sqrt(n)."""
    return scipy.stats.norm.ppf(0.975) * math.sqrt(math.pi / 2) * sigma / math.sqrt(n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_large_normal_sample_covers_the_true_median_and_shrinks(seed):
    rng = np.random.default_rng(seed)
    true_median = 0.3
    widths = {}
    for n in (100, 1600):
        x = rng.normal(true_median, 1.0, size=n)
        low, high = stats.median_ci(x)
        assert low < true_median < high, (n, low, high)
        widths[n] = high - low
        # the bootstrap width matches the median's asymptotic standard error within 35%
        assert widths[n] == pytest.approx(2 * _normal_median_halfwidth(n), rel=0.35)
    assert widths[1600] / widths[100] == pytest.approx(0.25, abs=0.1)  # ~ 1/sqrt(n)


@pytest.mark.parametrize("values", [[0.3, 0.5, 0.5, 0.5, 0.7], [0.0, 1.0, 1.0, 1.0, 1.0]])
def test_interval_is_defined_for_tied_seeds(values):
    """Repeated values (saturated runs) are where BCa degenerates to NaN; percentile does not."""
    low, high = stats.median_ci(values)
    assert min(values) <= low <= np.median(values) <= high <= max(values)


def test_interval_lies_within_the_sample_range():
    x = [0.2, 0.9, 0.5, 0.55, 0.6]
    low, high = stats.median_ci(x)
    assert min(x) <= low <= np.median(x) <= high <= max(x)


@pytest.mark.parametrize("pos, neg, p", [
    (5, 0, 2 / 2**5),          # 5 of 5: the smallest p five pairs can give, 0.0625
    (6, 0, 2 / 2**6),          # 0.03125: six pairs are the fewest that can reach p < 0.05
    (0, 6, 2 / 2**6),          # symmetric
    (3, 2, 1.0),
    (8, 2, 2 * (45 + 10 + 1) / 2**10),  # 2 P(X >= 8), X ~ Bin(10, 1/2)
])
def test_sign_test_known_counts(pos, neg, p):
    assert stats.sign_test(pos, neg) == pytest.approx(p)


def test_sign_test_without_nonzero_differences_is_nan():
    assert math.isnan(stats.sign_test(0, 0))


def test_paired_summary_on_constructed_pairs():
    a = np.array([0.9, 0.8, 0.95, 0.6, 0.7])
    b = np.array([0.8, 0.6, 0.65, 0.65, 0.7])  # differences 0.1, 0.2, 0.3, -0.05, 0
    s = stats.paired_summary(a - b)
    assert s["n_pairs"] == 5
    assert (s["n_positive"], s["n_negative"], s["n_ties"]) == (3, 1, 1)
    assert s["median_diff"] == pytest.approx(0.1)
    assert s["mean_diff"] == pytest.approx(0.11)
    assert s["sign_p"] == pytest.approx(2 * 5 / 16)  # 3 of 4 non-zero positive: 2 P(X >= 3)
    assert s["diff_ci_low"] <= 0.1 <= s["diff_ci_high"]
    shifted = stats.paired_summary((a + 1.0) - b)  # every difference positive
    assert shifted["n_positive"] == 5 and shifted["diff_ci_low"] > 0


def test_paired_summary_of_identical_arms():
    s = stats.paired_summary(np.zeros(4))
    assert s["median_diff"] == 0 and s["diff_ci_low"] == s["diff_ci_high"] == 0
    assert s["n_ties"] == 4 and math.isnan(s["sign_p"])


def test_escape_summary_counts_and_censored_median():
    s = stats.escape_summary([100, 200, np.nan])
    assert (s["n_escaped"], s["escape_fraction"]) == (2, pytest.approx(2 / 3))
    assert s["escape_step_median"] == 200  # the run that never escaped counts as "after the end"
    # half or more never escaped: the median is not reached
    assert math.isnan(stats.escape_summary([100, None])["escape_step_median"])
    assert math.isnan(stats.escape_summary([100, np.nan, np.nan])["escape_step_median"])
    assert stats.escape_summary([300, 100, 200, 400])["escape_step_median"] == 250
    empty = stats.escape_summary([])
    assert empty["n_escaped"] == 0 and math.isnan(empty["escape_fraction"])
