"""Segment behaviour in the scenario file: purchase rate, dropout, order value, referrals.

Each block accepts two forms: the strategist-friendly one (mean / cv / annual_churn) and the native
parameters of the buy-till-you-die models (r, alpha; a, b; s, beta; p, q, gamma) with their time unit.
Both are turned into the same laws (:class:`GammaLaw`, :class:`BetaLaw`, :class:`SpendLaw`) whose rates
are **per year**, the engine's only time base.

References: Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2)
(BG/NBD); Schmittlein, Morrison & Colombo (1987), Management Science 33(1) (Pareto/NBD); Fader, Hardie &
Lee (2005), "RFM and CLV", JMR 42(4), and Colombo & Jiang (1999) (Gamma-Gamma spend).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, model_validator

from sim.schema.base import (
    MAX_HAZARD_PER_YEAR,
    MAX_MONEY,
    MAX_RATE_PER_YEAR,
    MAX_SHAPE,
    Cv,
    Frozen,
    Positive,
    PositiveMoney,
    RatePerYear,
    Shape,
    Share,
)
from sim.schema.units import UNITS_PER_YEAR, TimeUnit


@dataclass(frozen=True)
class GammaLaw:
    """A non-negative trait across customers: Gamma with this mean, or the constant ``mean``.

    ``shape`` is None when every customer has the mean (cv 0). Rates are per year.
    """

    mean: float
    shape: float | None

    @property
    def rate(self) -> float | None:
        """Gamma rate parameter (alpha of the BTYD papers, in years)."""
        return None if self.shape is None else self.shape / self.mean


@dataclass(frozen=True)
class BetaLaw:
    """A probability across customers: Beta(a, b), or the constant ``mean`` when ``a`` is None."""

    mean: float
    a: float | None = None
    b: float | None = None


@dataclass(frozen=True)
class SpendLaw:
    """Gamma-Gamma order values.

    A customer's own mean order value is ``mean * (q - 1) / G`` with ``G ~ Gamma(q, 1)`` (so its
    population mean is ``mean``); each order is ``own_mean * Gamma(p, 1) / p``. ``p`` None means every order
    equals the customer's own mean, ``q`` None that every customer has the same mean.
    """

    mean: float
    p: float | None
    q: float | None
    growth_per_year: float = 0.0


class PurchaseRate(Frozen):
    """Repeat purchases per year of an active customer, Gamma-distributed across customers.

    Give ``mean`` (purchases per year) and ``cv``, or the NBD's native ``r`` and ``alpha`` with
    ``alpha_unit`` (the unit in which ``alpha`` is a time: a rate per week when ``alpha_unit: week``).
    """

    mean: RatePerYear | None = None
    cv: Cv = 0.0
    r: Shape | None = None
    alpha: Positive | None = None
    alpha_unit: TimeUnit = "year"

    @model_validator(mode="after")
    def _one_form(self) -> PurchaseRate:
        _exactly_one_form(self, friendly=("mean",), native=("r", "alpha"), optional_friendly=("cv",),
                          optional_native=("alpha_unit",))
        _at_most(self.law().mean, MAX_RATE_PER_YEAR, "the mean purchase rate (r / alpha) per year")
        return self

    def law(self) -> GammaLaw:
        if self.r is not None:
            alpha_years = self.alpha / UNITS_PER_YEAR[self.alpha_unit]
            return GammaLaw(mean=self.r / alpha_years, shape=self.r)
        return gamma_law(self.mean, self.cv)


class PerPurchaseDropout(Frozen):
    """BG/NBD dropout: after each *repeat* purchase the customer drops out with probability p.

    p ~ Beta across customers: ``mean`` and ``cv`` of p, or the native ``a`` and ``b``.
    """

    model: Literal["per_purchase"]
    mean: Share | None = None
    cv: Cv = 0.0
    a: Shape | None = None
    b: Shape | None = None

    @model_validator(mode="after")
    def _one_form(self) -> PerPurchaseDropout:
        _exactly_one_form(self, friendly=("mean",), native=("a", "b"), optional_friendly=("cv",))
        if self.mean is not None and self.cv > 0:
            if not 0 < self.mean < 1:
                raise ValueError("a cv above 0 needs a mean strictly between 0 and 1")
            if self.cv >= _max_beta_cv(self.mean):
                raise ValueError(
                    f"cv {self.cv} is too large for a Beta distribution with mean {self.mean}: "
                    f"it must be below {_max_beta_cv(self.mean):.4g}"
                )
            if self.cv >= NEGLIGIBLE_CV:   # a + b = (1 - mean) / (cv^2 mean) - 1 may overflow
                try:
                    law = self.law()   # parameters beyond MAX_SHAPE mean the constant (see law)
                    largest = max(law.a or 0.0, law.b or 0.0)
                except (ZeroDivisionError, OverflowError):
                    largest = math.inf
                _at_most(largest, MAX_SHAPE, f"the larger Beta parameter of mean {self.mean} and cv {self.cv}")
        return self

    def law(self) -> BetaLaw:
        if self.a is not None:
            return BetaLaw(mean=self.a / (self.a + self.b), a=self.a, b=self.b)
        if self.cv < NEGLIGIBLE_CV:
            return BetaLaw(mean=self.mean)
        total = (1.0 - self.mean) / (self.cv**2 * self.mean) - 1.0  # a + b, from the Beta variance
        if max(self.mean, 1.0 - self.mean) * total > MAX_SHAPE:
            return BetaLaw(mean=self.mean)   # so concentrated that it is the constant, as a negligible cv is
        return BetaLaw(mean=self.mean, a=self.mean * total, b=(1.0 - self.mean) * total)


class HazardDropout(Frozen):
    """Pareto/NBD dropout: an exponential lifetime with hazard mu (per year), Gamma across customers.

    ``annual_churn`` is the probability that a new customer is gone within a year (over the population,
    so with ``cv`` > 0 the Gamma is fitted to that probability); or the native ``s`` and ``beta`` with
    ``beta_unit``.
    """

    model: Literal["hazard"]
    annual_churn: Annotated[float, Field(ge=0, lt=1)] | None = None
    cv: Cv = 0.0
    s: Shape | None = None
    beta: Positive | None = None
    beta_unit: TimeUnit = "year"

    @model_validator(mode="after")
    def _one_form(self) -> HazardDropout:
        _exactly_one_form(self, friendly=("annual_churn",), native=("s", "beta"), optional_friendly=("cv",),
                          optional_native=("beta_unit",))
        try:
            hazard = self.law().mean
        except OverflowError:       # math.expm1 of a churn near 1 with a large cv
            hazard = math.inf
        _at_most(hazard, MAX_HAZARD_PER_YEAR, "the mean dropout hazard per year")
        return self

    def law(self) -> GammaLaw:
        if self.s is not None:
            beta_years = self.beta / UNITS_PER_YEAR[self.beta_unit]
            return GammaLaw(mean=self.s / beta_years, shape=self.s)
        churn = self.annual_churn
        if self.cv < NEGLIGIBLE_CV or churn == 0:
            return GammaLaw(mean=-math.log1p(-churn), shape=None)
        shape = 1.0 / self.cv**2
        # P(gone within a year) = 1 - (beta / (beta + 1))^s; solve for beta (in years).
        # With x = ln(1 - churn) / s: beta = e^x / (1 - e^x), so the mean hazard s / beta = s (e^-x - 1).
        x = math.log1p(-churn) / shape
        return GammaLaw(mean=shape * math.expm1(-x), shape=shape)


Dropout = Annotated[PerPurchaseDropout | HazardDropout, Field(discriminator="model")]


class OrderValue(Frozen):
    """Order value at list price (Gamma-Gamma), in the scenario's currency.

    ``mean`` of customers' own means, ``cv`` of orders around a customer's own mean (within), and
    ``between_cv`` of the customers' own means; or the native ``p``, ``q``, ``gamma``.
    ``growth_per_year`` raises a customer's order values with tenure (cross/up-sell): x (1 + g)^years.
    """

    mean: PositiveMoney | None = None
    cv: Cv = 0.0
    between_cv: Cv = 0.0
    p: Shape | None = None
    q: Annotated[float, Field(gt=1, le=MAX_SHAPE)] | None = None
    gamma: Positive | None = None
    #: Cross/up-sell doubles order values every year at 1; 10 (x11 a year) is beyond any business.
    growth_per_year: Annotated[float, Field(gt=-1, le=10, description="Per year, above -1, at most 10.")] = 0.0

    @model_validator(mode="after")
    def _one_form(self) -> OrderValue:
        _exactly_one_form(self, friendly=("mean",), native=("p", "q", "gamma"),
                          optional_friendly=("cv", "between_cv"))
        _at_most(self.law().mean, MAX_MONEY, "the mean order value (p gamma / (q - 1))")
        return self

    def law(self) -> SpendLaw:
        if self.p is not None:
            return SpendLaw(mean=self.p * self.gamma / (self.q - 1.0), p=self.p, q=self.q,
                            growth_per_year=self.growth_per_year)
        within = None if self.cv < NEGLIGIBLE_CV else 1.0 / self.cv**2
        # The inverse Gamma of customers' means has cv 1 / sqrt(q - 2).
        between = None if self.between_cv < NEGLIGIBLE_CV else 2.0 + 1.0 / self.between_cv**2
        return SpendLaw(mean=self.mean, p=within, q=between, growth_per_year=self.growth_per_year)


class Referrals(Frozen):
    """Organic referrals that become customers, per year of an active customer (Gamma across customers).

    ``segment``: the segment of referred customers (default: the referrer's own).
    """

    mean: RatePerYear = 0.0
    cv: Cv = 0.0
    segment: str | None = None

    def law(self) -> GammaLaw:
        return gamma_law(self.mean, self.cv)


class Segment(Frozen):
    """Who a group of customers is: how often they buy, how they drop out, what they spend."""

    purchases_per_year: PurchaseRate
    dropout: Dropout
    order_value: OrderValue
    referrals_per_year: Referrals = Referrals()
    deal_proneness: Share = 0.5


#: Below this cv a trait is treated as constant (a Gamma shape of 1e12 is indistinguishable from it).
NEGLIGIBLE_CV = 1e-6


def gamma_law(mean: float, cv: float) -> GammaLaw:
    """Gamma across customers with this mean and cv (shape 1/cv^2), or the constant ``mean``."""
    if cv < NEGLIGIBLE_CV or mean == 0:
        return GammaLaw(mean=mean, shape=None)
    return GammaLaw(mean=mean, shape=1.0 / cv**2)


def _at_most(value: float, limit: float, what: str) -> None:
    """Refuse native parameters whose implied mean is beyond the bound its friendly form has."""
    if not value <= limit:
        raise ValueError(f"{what} is {value:.4g}; at most {limit:.4g}")


def _max_beta_cv(mean: float) -> float:
    """Largest cv of a Beta with this mean (a + b -> 0)."""
    return math.sqrt((1.0 - mean) / mean)


def _exactly_one_form(model: Frozen, *, friendly: tuple[str, ...], native: tuple[str, ...],
                      optional_friendly: tuple[str, ...] = (), optional_native: tuple[str, ...] = ()) -> None:
    """Require either all the friendly keys or all the native ones, never a mix."""
    given = model.model_fields_set
    friendly_given = [k for k in friendly + optional_friendly if k in given]
    native_given = [k for k in native + optional_native if k in given]
    if friendly_given and native_given:
        raise ValueError(
            f"give either {'/'.join(friendly)} or the native {', '.join(native)}, not both "
            f"(found {', '.join(friendly_given + native_given)})"
        )
    if native_given:
        missing = [k for k in native if getattr(model, k) is None]
        if missing:
            raise ValueError(f"the native form needs {', '.join(native)}; missing {', '.join(missing)}")
        return
    missing = [k for k in friendly if getattr(model, k) is None]
    if missing:
        raise ValueError(
            f"missing {', '.join(missing)} (or give the native parameters {', '.join(native)})"
        )
