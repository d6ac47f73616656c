"""Smooth regressions of a replication outcome on the uncertain assumptions' values, for the value of
information and break-even values (:mod:`sim.accounting.decision`).

Each replication is one draw of the assumptions *and* of the customers, so its incremental profit is the
expected profit at those assumption values plus simulation noise. A regression of the outcome on the values
estimates the first part, E[profit | values] (Strong, Oakley & Brennan 2014, "Estimating multiparameter
partial expected value of perfect information from a probabilistic sensitivity analysis sample: a
nonparametric regression approach", *Medical Decision Making* 34(3)). Strong et al. fit generalised additive
models; here each assumption enters as a cubic regression spline (truncated power basis, knots at
quantiles), the number of knots chosen by generalised cross-validation (Craven & Wahba 1979) among a few
sizes that leave at least three replications per coefficient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Interior knots tried for each assumption's spline (0 = a straight line).
KNOT_CHOICES = (0, 1, 2, 3, 5, 8)
#: At least this many replications per coefficient of a regression.
REPLICATIONS_PER_COEFFICIENT = 3


@dataclass(frozen=True)
class Spline:
    """A cubic regression spline basis of one variable (a line when it has no knots)."""

    centre: float
    scale: float
    knots: tuple[float, ...]

    @classmethod
    def fit(cls, values: np.ndarray, knots: int) -> Spline:
        centre, scale = float(np.mean(values)), float(np.std(values)) or 1.0
        standard = (values - centre) / scale
        inner = np.quantile(standard, np.linspace(0, 1, knots + 2)[1:-1]) if knots else np.array([])
        return cls(centre, scale, tuple(float(k) for k in inner))

    @property
    def size(self) -> int:
        return 1 if not self.knots else 3 + len(self.knots)

    def basis(self, values: np.ndarray) -> np.ndarray:
        """Columns of the basis at ``values`` (no intercept)."""
        x = (np.asarray(values, dtype=float) - self.centre) / self.scale
        if not self.knots:
            return x[:, None]
        columns = [x, x**2, x**3] + [np.maximum(x - k, 0.0) ** 3 for k in self.knots]
        return np.column_stack(columns)


@dataclass(frozen=True)
class Fit:
    """A fitted additive regression: an intercept and one spline per variable."""

    splines: tuple[Spline, ...]
    coefficients: np.ndarray
    residual_variance: float

    def predict(self, columns: Sequence[np.ndarray]) -> np.ndarray:
        return design(self.splines, columns) @ self.coefficients


def design(splines: Sequence[Spline], columns: Sequence[np.ndarray]) -> np.ndarray:
    rows = len(columns[0]) if columns else 0
    return np.column_stack([np.ones(rows)] + [s.basis(c) for s, c in zip(splines, columns)])


def _least_squares(matrix: np.ndarray, outcome: np.ndarray) -> tuple[np.ndarray, float, int]:
    coefficients, _, rank, _ = np.linalg.lstsq(matrix, outcome, rcond=None)
    residuals = outcome - matrix @ coefficients
    return coefficients, float(residuals @ residuals), int(rank)


def fit_additive(columns: Sequence[np.ndarray], outcome: np.ndarray, knots: int | None = None) -> Fit | None:
    """The additive spline regression of ``outcome`` on ``columns`` (one array per variable), its number of
    knots chosen by generalised cross-validation, n RSS / (n - p)^2, unless given; None when the replications
    are too few for even a straight line per variable."""
    outcome = np.asarray(outcome, dtype=float)
    n = outcome.size
    best: tuple[float, Fit] | None = None
    for choice in KNOT_CHOICES if knots is None else (knots,):
        splines = tuple(Spline.fit(np.asarray(c, dtype=float), choice) for c in columns)
        size = 1 + sum(s.size for s in splines)
        if size * REPLICATIONS_PER_COEFFICIENT > n:
            break
        coefficients, rss, rank = _least_squares(design(splines, columns), outcome)
        score = n * rss / (n - rank) ** 2
        fit = Fit(splines, coefficients, rss / (n - rank))
        if best is None or score < best[0]:
            best = (score, fit)
    return None if best is None else best[1]
