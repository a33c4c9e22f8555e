"""Statistics over the seeds of one cell (docs/analysis.md, "Statistics").

Every number here comes from numpy / scipy; nothing is a hand-written formula:
  * per cell: n, mean, median, min, max, sample std (ddof=1) and a 95% bootstrap confidence
    interval of the median (scipy.stats.bootstrap, percentile method, 9,999 resamples, a fixed
    seed so tables are reproducible);
  * paired comparisons (StateX arm minus control / scratch, paired by seed): the per-seed
    differences, their median with the same bootstrap interval, and a two-sided sign test
    (scipy.stats.binomtest on the counts of positive and negative differences; zero differences
    are ties and are left out, the usual sign-test convention);
  * plateau escape per cell: how many runs escaped, and the median escape step with runs that
    never escaped counted as "later than the end" (so the median is "not reached" when half or
    more did not escape).

Why percentile and not BCa: the bootstrap distribution of a median of a few values is discrete
(it only takes sample values), so BCa's bias correction - the share of resamples below the
observed median - jumps with ties and its jackknife acceleration degenerates when values repeat
(scipy returns NaN for seeds 0, 1, 1, 1, 1: saturated runs are common). The percentile interval
is always defined. At n = 5 it is
still narrow for a median (its coverage is below 95%; docs/analysis.md gives the measured
coverage): read it as "how much the median moves when seeds are resampled", not as an exact
interval.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.stats

CONFIDENCE = 0.95
N_RESAMPLES = 9999
BOOTSTRAP_METHOD = "percentile"
BOOTSTRAP_SEED = 0          # the same resamples for every cell: tables are reproducible
MIN_N_FOR_INTERVAL = 3      # below this, no interval (NaN) and the tables warn


def _clean(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    return x[~np.isnan(x)]


def median_ci(values, confidence: float = CONFIDENCE, seed: int = BOOTSTRAP_SEED,
              n_resamples: int = N_RESAMPLES) -> tuple[float, float]:
    """Bootstrap confidence interval of the median of `values` (NaNs dropped).

    n < MIN_N_FOR_INTERVAL: (NaN, NaN), too few values to resample. All values equal: a
    zero-width interval (v, v) - every resample has the same median (scipy is not called, as it
    would warn about degenerate data)."""
    x = _clean(values)
    if len(x) < MIN_N_FOR_INTERVAL:
        return math.nan, math.nan
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    res = scipy.stats.bootstrap((x,), np.median, confidence_level=confidence,
                                n_resamples=n_resamples, method=BOOTSTRAP_METHOD,
                                vectorized=True, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(values) -> dict:
    """n, mean, median, ci_low, ci_high (bootstrap interval of the median), std (ddof=1), min,
    max of `values` (NaNs dropped). Empty: n = 0 and NaN elsewhere."""
    x = _clean(values)
    if len(x) == 0:
        return {"n": 0, **{k: math.nan for k in
                           ("mean", "median", "ci_low", "ci_high", "std", "min", "max")}}
    low, high = median_ci(x)
    return {"n": len(x), "mean": float(np.mean(x)), "median": float(np.median(x)),
            "ci_low": low, "ci_high": high,
            "std": float(np.std(x, ddof=1)) if len(x) > 1 else math.nan,
            "min": float(np.min(x)), "max": float(np.max(x))}


def sign_test(n_positive: int, n_negative: int) -> float:
    """Two-sided sign test p-value: under H0 a non-zero paired difference is positive with
    probability 1/2. NaN without any non-zero difference. Note that with n pairs the smallest
    possible p is 2 / 2^n (0.0625 at n = 5, 0.03125 at n = 6)."""
    n = n_positive + n_negative
    if n == 0:
        return math.nan
    return float(scipy.stats.binomtest(n_positive, n, 0.5, alternative="two-sided").pvalue)


def paired_summary(differences) -> dict:
    """Summary of per-seed paired differences a - b: n_pairs, median_diff with its bootstrap
    interval (diff_ci_low, diff_ci_high), mean_diff, counts n_positive / n_negative / n_ties and
    the sign-test p-value (sign_p)."""
    d = _clean(differences)
    low, high = median_ci(d)
    n_pos, n_neg = int((d > 0).sum()), int((d < 0).sum())
    return {"n_pairs": len(d),
            "median_diff": float(np.median(d)) if len(d) else math.nan,
            "diff_ci_low": low, "diff_ci_high": high,
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
