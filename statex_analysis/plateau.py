"""The plateau-escape metric (docs/results_format.md, "Plateau escape"; docs/analysis.md).

On MQAR a model first learns to answer every query with *some* value from its context, which
scores about 1/K (K = key-value pairs per example): the 1/K plateau. A run has escaped it at the
first eval whose overall test accuracy is strictly above

    threshold(K) = min(3/K, (1 + 1/K) / 2)

i.e. three times the plateau level, capped halfway between the plateau and perfect recall so
that small K (K <= 5, where 3/K >= (1 + 1/K)/2) keeps a reachable threshold. With a mixture of
test segments, K is the smallest K among them: the mixture's plateau (a weighted mean of the
segments' 1/K_i) is at most 1/K_min, so the threshold is above every segment's plateau.

The C++ results writer stores the same three numbers (`plateau_num_kv`, `plateau_threshold`,
`escape_step`); files written before it did are computed here from /eval and the test segments.
"""
from __future__ import annotations

import numpy as np

NOT_ESCAPED = -1  # escape_step in the file when the run never went above the threshold


def segment_num_kv(segment: str) -> int | None:
    """K of one test segment "[task:]T:K:count[:opt=v...]" (docs/tasks.md; None when the text
    names no K)."""
    parts = segment.split(":")
    if parts and parts[0][:1].isalpha():  # "forgetting:64:8:500:updates=4"
        parts = parts[1:]
    if len(parts) < 3 or "=" in "".join(parts[:3]) or not parts[1].strip().isdigit():
        return None
    k = int(parts[1])
    return k if k > 0 else None


def plateau_num_kv(segments) -> int | None:
    """Smallest K among test segments "T:K:count" (None when none names a K)."""
    ks = [k for k in map(segment_num_kv, segments) if k is not None]
    return min(ks) if ks else None


def plateau_threshold(num_kv: int | None) -> float:
    """min(3/K, (1 + 1/K)/2); NaN when K is unknown."""
    if num_kv is None or num_kv <= 0:
        return float("nan")
    plateau = 1.0 / num_kv
    return min(3.0 * plateau, 0.5 * (1.0 + plateau))


def escape_step(steps, accuracy, threshold: float) -> int | None:
    """Step of the first eval with accuracy strictly above `threshold` (a tie stays on the
    plateau; NaN accuracies never escape); None when no eval does or the threshold is NaN.
    steps, accuracy: [E] in eval order."""
    acc = np.asarray(accuracy, dtype=np.float64)  # float32 accuracies compared in float64, as C++
    steps = np.asarray(steps)
    if np.isnan(threshold) or len(acc) == 0:
        return None
    above = np.flatnonzero(np.nan_to_num(acc, nan=-np.inf) > threshold)
    return int(steps[above[0]]) if len(above) else None
