"""stats.py on synthetic data with known answers: order-statistic intervals of the median and
their coverage, paired differences, sign test, escape summaries."""
import math

import numpy as np
import pytest
import scipy.stats

from statex_analysis import stats


def test_constant_sample_has_a_zero_width_interval():
    low, high, coverage = stats.median_ci([0.75] * 5)
    assert low == high == 0.75 and coverage == 1 - 2 / 2**5
    s = stats.summarize([0.75] * 5)
    assert (s["n"], s["median"], s["mean"], s["std"]) == (5, 0.75, 0.75, 0.0)
    assert s["ci_low"] == s["ci_high"] == 0.75


@pytest.mark.parametrize("values", [[], [0.4], [0.4, 0.9], [np.nan, 0.4, np.nan]])
def test_fewer_than_three_values_have_no_interval(values):
    assert all(math.isnan(v) for v in stats.median_ci(values))
    s = stats.summarize(values)
    assert s["n"] == len([v for v in values if not np.isnan(v)])
    assert math.isnan(s["ci_low"]) and math.isnan(s["ci_coverage"])
    if s["n"]:
        assert s["median"] == pytest.approx(np.nanmedian(values))
    else:
        assert math.isnan(s["median"]) and math.isnan(s["mean"])


def test_nans_are_dropped_before_the_statistics():
    s = stats.summarize([0.1, np.nan, 0.2, 0.3])
    assert s["n"] == 3 and s["median"] == pytest.approx(0.2) and s["min"] == pytest.approx(0.1)


# Hand-computed: [x_(l), x_(n+1-l)] covers the median with probability 1 - 2 P(Bin(n, 1/2) <= l-1);
# l is the largest with coverage >= 95%, or 1 ([min, max]) when none reaches it.
#   n = 3, 5: even [min, max] is short of 95%: 1 - 2/2^3 = 75%, 1 - 2/2^5 = 93.75%
#   n = 6: [min, max] at 1 - 2/2^6 = 96.9%; l = 2 would give 1 - 2 (1 + 6)/64 = 78.1%
#   n = 10: l = 2 at 1 - 2 (1 + 10)/1024 = 97.9%; l = 3 would give 1 - 2 (1 + 10 + 45)/1024 = 89.1%
#   n = 20: l = 6 at 1 - 2 (1 + 20 + 190 + 1140 + 4845 + 15504)/2^20 = 95.9%
@pytest.mark.parametrize("n, rank, coverage", [
    (3, 1, 1 - 2 / 2**3),
    (4, 1, 1 - 2 / 2**4),
    (5, 1, 1 - 2 / 2**5),
    (6, 1, 1 - 2 / 2**6),
    (10, 2, 1 - 2 * (1 + 10) / 2**10),
    (20, 6, 1 - 2 * 21700 / 2**20),
])
def test_interval_is_the_hand_computed_order_statistic(n, rank, coverage):
    assert stats.median_rank(n) == (rank, pytest.approx(coverage, abs=1e-12))
    ordered = np.arange(1, n + 1) / 100.0  # x_(i) = i / 100
    shuffled = np.random.default_rng(n).permutation(ordered)
    low, high, got = stats.median_ci(shuffled)
    assert (low, high) == (ordered[rank - 1], ordered[n - rank])
    assert got == pytest.approx(coverage, abs=1e-12)
    s = stats.summarize(shuffled)
    assert (s["ci_low"], s["ci_high"], s["ci_coverage"]) == (low, high, got)


def test_coverage_below_95_only_for_five_values_or_fewer_and_narrowest_otherwise():
    assert [n for n in range(3, 200) if stats.median_rank(n)[1] < 0.95] == [3, 4, 5]
    for n in range(6, 200):
        rank, coverage = stats.median_rank(n)
        narrower = 1 - 2 * scipy.stats.binom.cdf(rank, n, 0.5)  # [x_(l+1), x_(n-l)]
        assert coverage >= 0.95 > narrower, n


@pytest.mark.parametrize("n", [6, 7, 9, 10, 15, 30, 101])
def test_interval_agrees_with_scipy_quantile_test(n):
    """scipy.stats.quantile_test's interval of the median uses the same order statistics."""
    x = np.random.default_rng(n).normal(size=n)
    want = scipy.stats.quantile_test(x, q=np.median(x), p=0.5).confidence_interval(0.95)
    low, high, _ = stats.median_ci(x)
    assert (low, high) == (want.low, want.high)


@pytest.mark.parametrize("n", [3, 5, 10])
def test_measured_coverage_is_the_stated_coverage(n):
    rng = np.random.default_rng(n)
    samples = rng.normal(size=(4000, n))  # true median 0
    covered = [low <= 0 <= high for low, high, _ in map(stats.median_ci, samples)]
    stated = stats.median_rank(n)[1]
    assert np.mean(covered) == pytest.approx(stated, abs=0.02)  # 4000 draws: sd < 0.007


def test_statistics_do_not_depend_on_the_order_of_the_values():
    x = [0.1, 0.7, 0.2, 0.3, 0.9, 0.35, 0.61]
    orders = [list(p) for p in np.random.default_rng(0).permuted(np.tile(x, (40, 1)), axis=1)]
    # the precondition that makes this test bite: a float mean depends on the summation order
    assert len({float(np.mean(o)) for o in orders}) > 1
    first = stats.summarize(orders[0])
    assert all(stats.summarize(o) == first for o in orders)
    d = stats.paired_summary(orders[0])
    assert all(stats.paired_summary(o) == d for o in orders)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_large_normal_sample_covers_the_true_median_and_shrinks(seed):
    rng = np.random.default_rng(seed)
    true_median = 0.3
    widths = {}
    for n in (100, 1600):
        x = rng.normal(true_median, 1.0, size=n)
        low, high, coverage = stats.median_ci(x)
        assert low < true_median < high, (n, low, high)
        assert 0.95 <= coverage < 0.97
        widths[n] = high - low
        # the width matches the median's asymptotic standard error within 35%
        assert widths[n] == pytest.approx(2 * _normal_median_halfwidth(n), rel=0.35)
    assert widths[1600] / widths[100] == pytest.approx(0.25, abs=0.1)  # ~ 1/sqrt(n)


def _normal_median_halfwidth(n, sigma=1.0):
    """Asymptotic 95% half-width of a sample median of N(mu, sigma): 1.96 sqrt(pi/2) sigma/sqrt(n)."""
    return scipy.stats.norm.ppf(0.975) * math.sqrt(math.pi / 2) * sigma / math.sqrt(n)


@pytest.mark.parametrize("values", [[0.3, 0.5, 0.5, 0.5, 0.7], [0.0, 1.0, 1.0, 1.0, 1.0]])
def test_interval_is_defined_for_tied_seeds(values):
    """Repeated values (saturated runs) are common; order statistics need no special case."""
    low, high, _ = stats.median_ci(values)
    assert (low, high) == (min(values), max(values))


def test_interval_lies_within_the_sample_range():
    x = [0.2, 0.9, 0.5, 0.55, 0.6]
    low, high, _ = stats.median_ci(x)
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
    assert (s["diff_ci_low"], s["diff_ci_high"]) == pytest.approx((-0.05, 0.3))  # [min, max]
    assert s["diff_ci_coverage"] == 1 - 2 / 2**5
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
