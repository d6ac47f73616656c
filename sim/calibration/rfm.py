"""RFM segmentation: the recency / frequency / monetary scoring marketing teams use, cut into segments.

Each customer of the calibration cohort gets three quintile scores, 1 (worst) to 5 (best), from its
calibration period (Hughes 1994, *Strategic Database Marketing*):

- **recency**: days from its last purchase to the calibration end (fewer is better);
- **frequency**: repeat purchases ``x``;
- **monetary**: mean amount of its purchases, the first included.

Ties share a score (the score of their mean rank), so a frequency of 0 held by most customers is one score.
The sum of the three (3..15) orders customers; ``n`` segments are cut at the quantiles of that sum without
splitting customers of equal sum. Segment 1 has the lowest scores.

The segments are chosen *on* the calibration-period behaviour, so fitting the models to each segment's
customers alone would be biased by that selection (a segment of customers with no repeat purchase looks
like customers who never buy): :mod:`sim.calibration.segments` derives each segment's laws from the pooled
fit instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.calibration.summary import CustomerSummary

SCORES = 5


def rfm_scores(summary: CustomerSummary) -> pd.DataFrame:
    """Columns ``recency``, ``frequency``, ``monetary`` (scores 1..5) and ``rfm`` (their sum), per customer."""
    days_since_last = summary.age_days - summary.tx_days
    scores = pd.DataFrame({
        "recency": _quintile_score(-days_since_last),
        "frequency": _quintile_score(summary.x),
        "monetary": _quintile_score(summary.monetary),
    })
    scores["rfm"] = scores.sum(axis=1)
    return scores


def rfm_segments(summary: CustomerSummary, n: int) -> np.ndarray:
    """Segment index 0..n-1 of every customer (0 = lowest RFM scores).

    Raises
    ------
    ValueError
        When the scores take fewer distinct values than ``n`` segments need.
    """
    total = rfm_scores(summary)["rfm"].to_numpy()
    levels, counts = np.unique(total, return_counts=True)
    if levels.size < n:
        raise ValueError(f"the customers' RFM scores take only {levels.size} distinct value(s); "
                         f"{n} segments cannot be formed")
    return _contiguous_groups(counts, n)[np.searchsorted(levels, total)]


def _quintile_score(values: np.ndarray) -> np.ndarray:
    """1..5 by quintile of the average rank (ties share the score of their mean rank)."""
    percentile = pd.Series(values).rank(method="average", pct=True).to_numpy()
    return np.clip(np.ceil(percentile * SCORES - 1e-9), 1, SCORES).astype(np.int64)


def _contiguous_groups(counts: np.ndarray, n: int) -> np.ndarray:
    """Group 0..n-1 of each of the ordered levels: contiguous, none empty, sizes near total / n.

    Group k starts at the first level whose midpoint (in cumulative share) reaches k / n, moved just enough
    to leave every group at least one level.
    """
    levels = counts.size
    midpoints = (np.cumsum(counts) - counts / 2) / counts.sum()
    starts = np.searchsorted(midpoints, np.arange(1, n) / n)
    for k in range(starts.size):  # at least one level per group, from the bottom ...
        starts[k] = max(starts[k], (starts[k - 1] if k else 0) + 1)
    for k in range(starts.size - 1, -1, -1):  # ... and from the top
        starts[k] = min(starts[k], levels - (n - 1 - k), (starts[k + 1] if k + 1 < starts.size else levels) - 1)
    return np.searchsorted(starts, np.arange(levels), side="right")
