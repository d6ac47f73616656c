"""A scenario's ``policy`` and ``response`` blocks compiled into the arrays and dates the engine uses.

Everything here is fixed for a run: per-segment and per-tier factors, the calendar of discount windows
and targeted-offer rounds, and the enrollment curve (the firm's scoring of customers for targeted offers
is :mod:`sim.model.scoring`). The semantics are written out in ``docs/levers.md``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numba
import numpy as np

from sim.model import response as response_model
from sim.model.population import SegmentLaws
from sim.random import streams as rng
from sim.random.compiled import OPTIONS
from sim.random.quantile_cache import gamma_quantiles
from sim.random.streams import Purpose
from sim.schema import Scenario
from sim.schema.policy import BlanketDiscount, TargetedOffer, WinbackOffer
from sim.schema.units import DAYS_PER_YEAR

#: Full-price buying never falls below this share of its level through habituation.
HABITUATION_FLOOR = 0.5
#: The deepest pull-forward dip; a larger borrowed volume makes the dip longer instead.
MAX_DIP = 0.9
#: The enrollment intercept's bisection stops when its bracket is this small relative to the root (or 1)...
RELATIVE_TOLERANCE = 1e-12
#: ...or after this many halvings, enough to shrink any finite bracket of doubles (width < 2^1024) to it.
MAX_HALVINGS = 1100


@dataclass(frozen=True)
class Window:
    """One occurrence of a blanket discount: open over [start, end); then a dip per segment."""

    name: str
    start: float
    end: float
    depth: float
    dip_factor: np.ndarray      # per segment: purchase-rate factor during the dip (1 = none)
    dip_end: np.ndarray         # per segment: when the dip ends (years)


@dataclass(frozen=True)
class TargetRound:
    time: float
    offer: TargetedOffer


class Program:
    """The policy of ``scenario`` as the engine sees it. ``laws`` are the segments' laws (per year)."""

    def __init__(self, scenario: Scenario, laws: list[SegmentLaws]) -> None:
        policy, response = scenario.policy, scenario.response
        assert policy is not None
        self.policy, self.response = policy, response
        horizon = scenario.horizon_years
        self.deal = np.array([seg.deal_proneness for seg in scenario.segments.values()])
        self.mean_rate = np.array([law.purchase_rate.mean for law in laws])
        tiers = policy.tiers
        self.tier_min = np.array([t.min_spend_12m for t in tiers])
        # index 0 = no tier; a tier's fixed effects (NaN: from the value of its benefits)
        self.tier_rate = np.array([1.0] + [np.nan if t.frequency_lift is None else 1.0 + t.frequency_lift
                                           for t in tiers])
        self.tier_dropout = np.array([1.0] + [np.nan if t.dropout_multiplier is None else t.dropout_multiplier
                                              for t in tiers])
        self.tier_earn = np.array([1.0] + [t.earn_multiplier for t in tiers])
        self.tier_benefit = np.array([0.0] + [t.benefit_cost_per_year for t in tiers])
        self.points = policy.points
        self.expiry = (None if policy.points is None or policy.points.expiry_months_inactive is None
                       else policy.points.expiry_months_inactive / 12.0)
        self.habituation = response.habituation
        self.habituation_floor = HABITUATION_FLOOR
        # max(floor, (1 - h)^n) for n = 0, 1, ... up to the first n at the floor
        # (capped at 10^6 entries: a tinier habituation needs more discounted purchases than anyone makes)
        with np.errstate(over="ignore", divide="ignore"):
            steps = 0.0 if response.habituation == 0 else np.ceil(np.log(HABITUATION_FLOOR)
                                                                  / np.log1p(-response.habituation))
        self.habituation_table = np.maximum(HABITUATION_FLOOR,
                                            (1.0 - response.habituation) ** np.arange(int(min(steps, 1e6)) + 1))
        self.referral = policy.referral
        winbacks = [d for d in policy.discounts if isinstance(d, WinbackOffer)]
        self.winback = winbacks[0] if winbacks else None
        self.winback_delay = self.winback.inactive_days / DAYS_PER_YEAR if self.winback else None
        self.windows = _windows(policy.discounts, horizon, self.discount_extra, len(self.deal),
                                response.pull_forward)
        self.target_rounds = [
            TargetRound((offer.start_month - 1 + k * offer.every_months) / 12.0, offer)
            for offer in policy.discounts if isinstance(offer, TargetedOffer)
            for k in range(scenario.horizon_months)
            if (offer.start_month - 1 + k * offer.every_months) < scenario.horizon_months
        ]
        self.enrollment_intercept = [_enrollment_intercept(law, policy.enrollment.probability,
                                                           policy.enrollment.self_selection) for law in laws]
        self.laws = laws

    # -- responses to the value offered (sim.model.response; docs/levers.md, section 3) ----------------
    # (``tier``: each customer's, or one for all of them, which gives the same numbers as an array of it)
    def weight(self, rate: np.ndarray, segment: np.ndarray) -> np.ndarray:
        """Who reacts: each customer's reaction weight from its latent rate relative to its segment's."""
        mean = self.mean_rate[segment]
        with np.errstate(divide="ignore", invalid="ignore"):   # a segment that never buys: weight 1
            relative = np.where(mean > 0, np.asarray(rate, dtype=np.float64) / mean, 1.0)
        return response_model.reaction_weight(relative, self.response.heavy_buyer_damping)

    def value(self, tier: np.ndarray | int, annual_spend: np.ndarray) -> np.ndarray:
        """The program value V of members holding ``tier`` who spend ``annual_spend`` a year (0 without points)."""
        points = self.points
        if points is None or points.earn_per_currency == 0:
            return np.zeros(np.shape(annual_spend))
        return response_model.program_value(annual_spend, points.earn_per_currency, self.tier_earn[tier],
                                            points.reward_value, points.reward_threshold,
                                            self.response.reward_reach_years)

    def inputs(self, tier: np.ndarray | int, rate: np.ndarray, spend_mean: np.ndarray,
               segment: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the value curves read of each customer: its yearly spend, reaction weight and program value
        (computed once and handed to :meth:`member_rate` and :meth:`goal_gradient`)."""
        annual_spend = np.asarray(rate, dtype=np.float64) * spend_mean
        return annual_spend, self.weight(rate, segment), self.value(tier, annual_spend)

    def inputs_by_tier(self, rate: np.ndarray, spend_mean: np.ndarray, segment: np.ndarray) -> list[tuple]:
        """:meth:`inputs` of the same customers at each tier (index 0: none), their yearly spend and reaction
        weight computed once: only the program value depends on the tier."""
        first = self.inputs(0, rate, spend_mean, segment)
        annual_spend, weight = first[0], first[1]
        return [first] + [(annual_spend, weight, self.value(tier, annual_spend))
                          for tier in range(1, len(self.tier_min) + 1)]

    def member_rate(self, member: np.ndarray, tier: np.ndarray | int, rate: np.ndarray, spend_mean: np.ndarray,
                    segment: np.ndarray, inputs: tuple | None = None) -> np.ndarray:
        """The purchase-rate factor of membership and tier (1 for non-members)."""
        response = self.response
        curve = response.member_frequency_lift is None
        if not curve and not len(self.tier_min):
            return np.where(member, 1.0 + response.member_frequency_lift, 1.0)
        annual_spend, weight, value = inputs or self.inputs(tier, rate, spend_mean, segment)
        if curve:
            factor = response_model.member_rate_factor(value, weight, response.member_max_lift,
                                                       response.half_reward_rate)
        else:
            factor = np.full(np.shape(member), 1.0 + response.member_frequency_lift)
        if len(self.tier_min):
            factor = factor * self._tier_effect(self.tier_rate, response_model.tier_rate_factor,
                                                response.tier_max_lift, tier, annual_spend, weight)
        return np.where(member, factor, 1.0)

    def member_dropout(self, member: np.ndarray, tier: np.ndarray | int, rate: np.ndarray, spend_mean: np.ndarray,
                       segment: np.ndarray, inputs: tuple | None = None) -> np.ndarray:
        """The dropout multiplier of membership and tier (1 for non-members), in (0, 1] on the value curves."""
        response = self.response
        curve = response.member_dropout_multiplier is None
        if not curve and not len(self.tier_min):
            return np.where(member, response.member_dropout_multiplier, 1.0)
        annual_spend, weight, value = inputs or self.inputs(tier, rate, spend_mean, segment)
        if curve:
            factor = response_model.member_dropout_factor(value, weight, response.member_max_retention,
                                                          response.half_reward_rate)
        else:
            factor = np.full(np.shape(member), response.member_dropout_multiplier)
        if len(self.tier_min):
            factor = factor * self._tier_effect(self.tier_dropout, response_model.tier_dropout_factor,
                                                response.tier_max_retention, tier, annual_spend, weight)
        return np.where(member, factor, 1.0)

    def _tier_effect(self, fixed_by_tier: np.ndarray, curve, limit: float, tier: np.ndarray | int,
                     annual_spend: np.ndarray, weight: np.ndarray) -> np.ndarray | float:
        """A tier's factor (rate or dropout): its fixed value from ``fixed_by_tier``, or where that is NaN,
        ``curve`` of the value of its benefits up to ``limit``. One tier for all with a fixed value reads no
        curve (the same numbers: the fixed value times each customer's other factors)."""
        fixed = fixed_by_tier[tier]
        if np.ndim(fixed) == 0 and not np.isnan(fixed):
            return fixed
        return np.where(np.isnan(fixed), curve(response_model.tier_value(self.tier_benefit[tier], annual_spend),
                                               weight, limit, self.response.half_benefit_rate), fixed)

    @property
    def has_goal_gradient(self) -> bool:
        """Whether progress to a reward can move anybody's rate at all."""
        if self.points is None:
            return False
        gradient = self.response.goal_gradient
        return bool(gradient) if gradient is not None else self.response.goal_gradient_max > 0

    def goal_gradient(self, tier: np.ndarray | int, rate: np.ndarray, spend_mean: np.ndarray,
                      segment: np.ndarray, inputs: tuple | None = None) -> np.ndarray | float:
        """The goal-gradient strength g of redeeming members: rate x (1 + g x progress)."""
        response = self.response
        if response.goal_gradient is not None:
            return response.goal_gradient
        _, weight, value = inputs or self.inputs(tier, rate, spend_mean, segment)
        return response_model.goal_gradient_strength(value, weight, response.goal_gradient_max,
                                                     response.half_reward_rate)

    @property
    def uses_value_curves(self) -> bool:
        """Whether any purchase-rate factor of members reads the value curves (else all are fixed)."""
        response = self.response
        return bool(response.member_frequency_lift is None or len(self.tier_min)
                    or (self.points is not None and response.goal_gradient is None))

    def uplift(self, segment: np.ndarray, depth: np.ndarray | float) -> np.ndarray:
        """The purchase-rate factor while a discount of ``depth`` is available to customers of ``segment``."""
        return 1.0 + self.discount_extra(segment, depth)

    def discount_extra(self, segment: np.ndarray, depth: np.ndarray | float) -> np.ndarray:
        response = self.response
        deal = self.deal[segment]
        if response.discount_uplift is not None:
            return response.discount_uplift * deal
        return response_model.discount_extra(depth, deal, response.discount_elasticity,
                                             response.discount_half_depth)

    def referral_factor(self, member: np.ndarray, spend_mean: np.ndarray) -> np.ndarray:
        """Referral-rate factor of customers under the referral program (members only; 1 without one)."""
        response, referral = self.response, self.referral
        if referral is None:
            return np.ones(np.shape(member))
        if response.referral_bonus_lift is not None:
            return np.where(member, 1.0 + response.referral_bonus_lift, 1.0)
        bonus = referral.referrer_bonus + referral.referee_bonus
        return np.where(member, response_model.referral_factor(bonus, spend_mean, response.referral_max_lift,
                                                               response.half_bonus_ratio), 1.0)

    def liability_per_point(self) -> float:
        """Cost of an outstanding point net of expected breakage, estimated as the non-redeemers' share."""
        points = self.points
        return (points.reward_value * points.reward_cost_ratio / points.reward_threshold
                * points.redeemer_share)

    # -- which columns the population needs ---------------------------------------------------------
    def columns(self) -> tuple[str, ...]:
        names = ["member", "redeemer", "tier", "lives", "discounted", "points", "mult", "deadline",
                 "offer_until", "offer_depth", "winback_at", "repeat_spend", "spell_start",
                 "arrival_discount"]
        if len(self.tier_min):
            names += ["spend12", "spend_12m"]
        return tuple(names)

    # -- enrollment ---------------------------------------------------------------------------------
    def join_probability(self, segment: int, rate: np.ndarray) -> np.ndarray:
        """P(join) of new customers of ``segment`` with latent purchase rates ``rate``."""
        enrollment = self.policy.enrollment
        intercept = self.enrollment_intercept[segment]
        if intercept is None:
            return np.full(len(rate), enrollment.probability)
        mean = self.laws[segment].purchase_rate.mean
        return join_curve(rate, mean, intercept, enrollment.self_selection)

    def joins(self, keys: np.ndarray, segment: int, rate: np.ndarray) -> np.ndarray:
        """Which new customers of ``segment`` with latent purchase rates ``rate`` join: each one's enrollment
        draw (keyed by ``keys``, the same in every engine but the reference) against :meth:`join_probability`."""
        return rng.uniform(keys, Purpose.ENROLLMENT, 0) < self.join_probability(segment, rate)


def _enrollment_intercept(law: SegmentLaws, probability: float, self_selection: float) -> float | None:
    """c with E[expit(c + s ln(lambda / mean))] = probability over the segment's rate law; None if flat."""
    shape = law.purchase_rate.shape
    if self_selection == 0 or shape is None or probability in (0.0, 1.0):
        return None
    return _intercept(float(shape), float(probability), float(self_selection))


@functools.lru_cache(maxsize=1024)
def _intercept(shape: float, probability: float, self_selection: float) -> float:
    """:func:`_enrollment_intercept` for a Gamma rate law of ``shape`` (its mean cancels out): remembered,
    since it costs about 5 ms (a bisection over 4,096 quantiles) and the runs of a sweep or of replications
    in one process mostly share it. The quantiles are scipy's, kept on disk between processes
    (:mod:`sim.random.quantile_cache`), so that a run whose quantiles are kept does not import scipy.special.

    Bisection, stopped at a relative tolerance or after :data:`MAX_HALVINGS` halvings, so that it ends for
    any finite input: with a large ``self_selection`` the root is large and an absolute tolerance finer
    than the spacing of floats there is never reached.
    """
    quantiles = gamma_quantiles(shape, 4096, midpoints=True)   # of the rate / mean times shape
    positive = quantiles[quantiles > 0]   # one that underflows to 0 is a log ratio of -inf: never joins
    def gap(c):
        return _mean_join(quantiles, shape, c, self_selection) - probability
    # the mean lies between expit(c + s min) and expit(c + s max) over the finite log ratios, which brackets
    # the root exactly; the C library's log, like the curve's, so that the root is the same on every CPU
    centre = math.log(probability / (1.0 - probability))
    low = centre - self_selection * math.log(positive.max() / shape) - 1.0
    high = centre - self_selection * math.log(positive.min() / shape) + 1.0
    for _ in range(MAX_HALVINGS):   # bisection: gap rises with c
        middle = (low + high) / 2.0
        if not low < middle < high or high - low <= RELATIVE_TOLERANCE * max(1.0, abs(low), abs(high)):
            break                   # as fine as floats resolve (or the bracket is not finite)
        low, high = (middle, high) if gap(middle) < 0 else (low, middle)
    return (low + high) / 2.0


@numba.njit(**OPTIONS)
def join_curve(rates, mean, intercept, selection):
    """P(join) = expit(intercept + selection ln(rate / mean)) of each of ``rates`` (docs/levers.md, 2.1), in
    double precision with the C library's ``log`` and ``exp``: it decides a draw (the enrollment coin is
    compared with it), so it has one implementation on every CPU, as the draws of :mod:`sim.random.compiled`
    have. A rate of 0 never joins (with ``selection`` > 0)."""
    out = np.empty(len(rates))
    for i in range(len(rates)):
        x = intercept + selection * math.log(np.float64(rates[i]) / mean)
        out[i] = 1.0 / (1.0 + math.exp(-x))
    return out


@numba.njit(**OPTIONS)
def _mean_join(rates, mean, intercept, selection):
    """The mean of :func:`join_curve` over ``rates``, summed in their order (numpy's sums may take another)."""
    total = 0.0
    curve = join_curve(rates, mean, intercept, selection)
    for i in range(len(curve)):
        total += curve[i]
    return total / len(curve)


def _windows(discounts, horizon: float, extra, segments: int, pull_forward: float) -> list[Window]:
    """Every occurrence of every blanket discount that opens within the horizon; ``extra(segments, depth)``
    is the extra purchase rate of each segment while a discount of ``depth`` is available."""
    windows = []
    for discount in discounts:
        if not isinstance(discount, BlanketDiscount):
            continue
        duration = discount.duration_days / DAYS_PER_YEAR
        month = discount.start_month - 1
        while month / 12.0 < horizon:
            start = month / 12.0
            borrowed = pull_forward * extra(np.arange(segments), discount.depth)   # dip depth x length / duration
            depth = np.minimum(MAX_DIP, borrowed)
            with np.errstate(invalid="ignore", divide="ignore"):
                length = np.where(depth > 0, borrowed * duration / depth, 0.0)
            windows.append(Window(discount.name, start, start + duration, discount.depth,
                                  1.0 - depth, start + duration + length))
            if discount.every_months is None:
                break
            month += discount.every_months
    return windows
