"""Statistics over the seeds of one cell (docs/analysis.md, "Statistics").

Every number here comes from numpy / scipy; nothing is a hand-written formula:
  * per cell: n, mean, median, min, max, sample std (ddof=1) and a distribution-free confidence
    interval of the median from order statistics: for n values sorted x_(1) <= ... <= x_(n),
    [x_(l), x_(n+1-l)] covers the true median with probability 1 - 2 P(Bin(n, 1/2) <= l - 1)
    (scipy.stats.binom) for any continuous distribution (at least that much with ties). The
    narrowest such interval with coverage >= 95% is used; with n <= 5 none reaches 95%, and the
    interval is [min, max] with its real coverage (n = 3: 75%, 4: 87.5%, 5: 93.75%), which every
    table and figure states (column `ci_coverage`);
  * paired comparisons (StateX arm minus control / scratch, paired by seed): the per-seed
    differences, their median with the same interval, and a two-sided sign test
    (scipy.stats.binomtest on the counts of positive and negative differences; zero differences
    are ties and are left out, the usual sign-test convention);
  * plateau escape per cell: how many runs escaped, and the median escape step with runs that
    never escaped counted as "later than the end" (so the median is "not reached" when half or
    more did not escape).

Values are sorted before any statistic: the interval is a pair of order statistics, and a
floating-point mean or std of the same values summed in another order can differ in the last
digit, so sorting makes every number independent of the order the runs were read in. (The
bootstrap interval used before issue #29 drew its resamples by position: the same cell read in
another file order got another interval.)
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.stats

CONFIDENCE = 0.95
MIN_N_FOR_INTERVAL = 3      # below this, no interval (NaN) and the tables warn


def _clean(values) -> np.ndarray:
    """The values as float64, NaNs dropped, sorted."""
    x = np.asarray(values, dtype=np.float64).ravel()
    return np.sort(x[~np.isnan(x)])


def median_rank(n: int, confidence: float = CONFIDENCE) -> tuple[int, float]:
    """(l, coverage) of the median interval [x_(l), x_(n+1-l)] of n values: the largest l (the
    narrowest interval) whose coverage 1 - 2 P(Bin(n, 1/2) <= l - 1) is >= `confidence`, or
    l = 1 ([min, max], the widest there is) when no l reaches it. n >= 1."""
    ranks = np.arange(1, (n + 1) // 2 + 1)
    coverage = 1.0 - 2.0 * scipy.stats.binom.cdf(ranks - 1, n, 0.5)
    enough = ranks[coverage >= confidence]
    rank = int(enough.max()) if len(enough) else 1
    return rank, float(coverage[rank - 1])


def median_ci(values, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(low, high, coverage): the order-statistic interval of the median of `values` (NaNs
    dropped; median_rank) and the probability that it covers the true median.

    n < MIN_N_FOR_INTERVAL: (NaN, NaN, NaN); [min, max] of two values is a 50% interval, not
    worth a column. Equal values give a zero-width interval (v, v) with the same coverage."""
    x = _clean(values)
    n = len(x)
    if n < MIN_N_FOR_INTERVAL:
        return math.nan, math.nan, math.nan
    rank, coverage = median_rank(n, confidence)
    return float(x[rank - 1]), float(x[n - rank]), coverage


def summarize(values) -> dict:
    """n, mean, median, ci_low, ci_high, ci_coverage (median_ci), std (ddof=1), min, max of
    `values` (NaNs dropped). Empty: n = 0 and NaN elsewhere."""
    x = _clean(values)
    if len(x) == 0:
        return {"n": 0, **{k: math.nan for k in ("mean", "median", "ci_low", "ci_high",
                                                 "ci_coverage", "std", "min", "max")}}
    low, high, coverage = median_ci(x)
    return {"n": len(x), "mean": float(np.mean(x)), "median": float(np.median(x)),
            "ci_low": low, "ci_high": high, "ci_coverage": coverage,
            "std": float(np.std(x, ddof=1)) if len(x) > 1 else math.nan,
            "min": float(x[0]), "max": float(x[-1])}


def sign_test(n_positive: int, n_negative: int) -> float:
    """Two-sided sign test p-value: under H0 a non-zero paired difference is positive with
    probability 1/2. NaN without any non-zero difference. Note that with n pairs the smallest
    possible p is 2 / 2^n (0.0625 at n = 5, 0.03125 at n = 6)."""
    n = n_positive + n_negative
    if n == 0:
        return math.nan
    return float(scipy.stats.binomtest(n_positive, n, 0.5, alternative="two-sided").pvalue)


def paired_summary(differences) -> dict:
    """Summary of per-seed paired differences a - b: n_pairs, median_diff with its
    order-statistic interval (diff_ci_low, diff_ci_high, diff_ci_coverage: median_ci), mean_diff,
    counts n_positive / n_negative / n_ties and the sign-test p-value (sign_p)."""
    d = _clean(differences)
    low, high, coverage = median_ci(d)
    n_pos, n_neg = int((d > 0).sum()), int((d < 0).sum())
    return {"n_pairs": len(d),
            "median_diff": float(np.median(d)) if len(d) else math.nan,
            "diff_ci_low": low, "diff_ci_high": high, "diff_ci_coverage": coverage,
            "mean_diff": float(np.mean(d)) if len(d) else math.nan,
            "n_positive": n_pos, "n_negative": n_neg, "n_ties": len(d) - n_pos - n_neg,
            "sign_p": sign_test(n_pos, n_neg)}


def escape_summary(escape_steps) -> dict:
    """Plateau escape over the runs of a cell. `escape_steps`: one value per run, the escape
    step, or NaN / None for a run that never escaped. Returns n_escaped, escape_fraction and
    escape_step_median: the median with non-escaped runs counted as +inf (they escaped, if at
    all, after the end), NaN ("not reached") when that median is infinite."""
    steps = np.array([np.inf if s is None or (isinstance(s, float) and math.isnan(s)) else s
                      for s in escape_steps], dtype=np.float64)
    if len(steps) == 0:
        return {"n_escaped": 0, "escape_fraction": math.nan, "escape_step_median": math.nan}
    with warnings.catch_warnings():  # median of [.., inf, inf] may warn on inf - inf
        warnings.simplefilter("ignore", RuntimeWarning)
        median = float(np.median(steps))
    n_escaped = int(np.isfinite(steps).sum())
    return {"n_escaped": n_escaped, "escape_fraction": n_escaped / len(steps),
            "escape_step_median": median if math.isfinite(median) else math.nan}
