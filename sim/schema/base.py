"""Shared pieces of the scenario schema: a strict frozen base model and constrained number types.

Every number has an upper bound that no real business reaches, so that every scenario the door accepts
gives finite results (a cost of 1e308 made profit overflow to null; a cv of 1e154 overflowed a Gamma
shape). The bounds are generous by orders of magnitude; each is stated in the field's description, and
the JSON Schema (``loyalty-sim schema``) carries them to editors.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

#: Money per order, per customer, per member-year or per month: a billion in the scenario's currency (more
#: than a year's revenue of most retailers), so that sums over 10^13 customers and a century stay finite.
MAX_MONEY = 1e9
#: Purchases or referrals per year of one customer: 27 a day.
MAX_RATE_PER_YEAR = 1e4
#: A dropout hazard creates no work (one dropout a customer, however soon), so its bound only keeps lifetimes
#: above zero: the mean of a heavy-tailed hazard (annual_churn 0.94 with cv 2 has a mean of 1.6e4 per year) is
#: dominated by a few customers who leave at once, and is legitimate.
MAX_HAZARD_PER_YEAR = 1e12
#: Coefficients of variation across customers or orders: 100 is a Gamma shape of 1e-4, where nearly every
#: customer has a rate of 0 and a few have all of it; a cv of ~1e154 overflows the shape 1 / cv^2.
MAX_CV = 100.0
#: Native Gamma and Beta shapes (r, s, a, b, p, q): the range that cv 100 (1e-4) and a negligible cv
#: (:data:`sim.schema.behaviour.NEGLIGIBLE_CV`, 1e12) span.
MIN_SHAPE, MAX_SHAPE = 1e-4, 1e12
#: Days in a window or delay: a century, the longest horizon (1200 months).
MAX_DAYS = 36_525.0
#: Months in a schedule: the longest horizon.
MAX_MONTHS = 1200

NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Share = Annotated[float, Field(ge=0, le=1)]
Money = Annotated[float, Field(ge=0, le=MAX_MONEY, description=f"Money, at most {MAX_MONEY:.0e}.")]
PositiveMoney = Annotated[float, Field(gt=0, le=MAX_MONEY, description=f"Money, at most {MAX_MONEY:.0e}.")]
RatePerYear = Annotated[float, Field(ge=0, le=MAX_RATE_PER_YEAR,
                                     description=f"Per year, at most {MAX_RATE_PER_YEAR:.0e}.")]
Cv = Annotated[float, Field(ge=0, le=MAX_CV, description=f"Coefficient of variation, at most {MAX_CV:g}.")]
Shape = Annotated[float, Field(ge=MIN_SHAPE, le=MAX_SHAPE,
                               description=f"A shape parameter, from {MIN_SHAPE:g} to {MAX_SHAPE:g}.")]
Days = Annotated[float, Field(gt=0, le=MAX_DAYS, description=f"Days, at most {MAX_DAYS:,.0f} (a century).")]


class Frozen(BaseModel):
    """Immutable, strict, closed: unknown keys are errors, strings are never read as numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class KeyPathError(ValueError):
    """A validation error about a key other than the one being validated (cross-references).

    The input door reads ``path`` to point the user at the right key and YAML line.
    """

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path

#: The most replications a scenario, sweep or optimize file (or ``--replications``) may ask for.
MAX_REPLICATIONS = 100_000
