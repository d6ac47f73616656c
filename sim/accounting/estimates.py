"""Confidence intervals over replications (Law & Kelton, Simulation Modeling and Analysis, ch. 9)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """Mean over replications with a t-based confidence interval (None bounds with one replication)."""

    mean: float
    ci_low: float | None
    ci_high: float | None
    std_error: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"mean": _finite(self.mean), "ci_low": _finite(self.ci_low), "ci_high": _finite(self.ci_high)}


def estimate(values: np.ndarray | list[float], confidence: float = 0.95) -> Estimate:
    """Mean and t-based interval of independent replication values (NaNs, e.g. undefined ratios, dropped)."""
    data = np.asarray(values, dtype=float)
    data = data[~np.isnan(data)]
    if data.size == 0:
        return Estimate(math.nan, None, None, None)
    mean = float(data.mean())
    if data.size == 1:
        return Estimate(mean, None, None, None)
    std_error = float(data.std(ddof=1) / math.sqrt(data.size))
    half = float(half_width(std_error, data.size, confidence))
    return Estimate(mean, mean - half, mean + half, std_error)


def half_width(std_error, count, confidence: float = 0.95):
    """Half the width of the t-based interval of a mean: t quantile (``count`` - 1 degrees of freedom, at
    least 1) x standard error. Numbers or arrays (numpy or pandas).

    The quantile is ``scipy.special.stdtrit``, the function ``scipy.stats.t.ppf`` evaluates for a
    probability in (0, 1], without importing ``scipy.stats`` (0.3 s or more, much of a small run)."""
    from scipy.special import stdtrit

    return stdtrit(np.maximum(count - 1, 1), 0.5 + confidence / 2.0) * std_error


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
