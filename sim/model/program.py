"""A scenario's ``policy`` and ``response`` blocks compiled into the arrays and dates the engine uses.

Everything here is fixed for a run: per-segment and per-tier factors, the calendar of discount windows
and targeted-offer rounds, and the enrollment curve (the firm's scoring of customers for targeted offers
is :mod:`sim.model.scoring`). The semantics are written out in ``docs/levers.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from sim.model.population import SegmentLaws
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
        deal = np.array([seg.deal_proneness for seg in scenario.segments.values()])
        # per segment: the purchase-rate factor while a discount is available
        self.uplift = 1.0 + response.discount_uplift * deal
        self.member_rate = 1.0 + response.member_frequency_lift
        self.member_dropout = response.member_dropout_multiplier
        tiers = policy.tiers
        self.tier_min = np.array([t.min_spend_12m for t in tiers])
        # index 0 = no tier
        self.tier_rate = np.array([1.0] + [1.0 + t.frequency_lift for t in tiers])
        self.tier_dropout = np.array([1.0] + [t.dropout_multiplier for t in tiers])
        self.tier_earn = np.array([1.0] + [t.earn_multiplier for t in tiers])
        self.tier_benefit = np.array([0.0] + [t.benefit_cost_per_year for t in tiers])
        # rate and dropout multipliers by (member, tier), indexed member x (tiers + 1) + tier
        self.member_tier_rate = np.concatenate([np.ones(len(tiers) + 1), self.member_rate * self.tier_rate])
        self.member_tier_dropout = np.concatenate([np.ones(len(tiers) + 1), self.member_dropout * self.tier_dropout])
        self.points = policy.points
        self.goal_gradient = response.goal_gradient if policy.points is not None else 0.0
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
        self.referral_rate = 1.0 + response.referral_bonus_lift if policy.referral is not None else 1.0
        winbacks = [d for d in policy.discounts if isinstance(d, WinbackOffer)]
        self.winback = winbacks[0] if winbacks else None
        self.winback_delay = self.winback.inactive_days / DAYS_PER_YEAR if self.winback else None
        self.windows = _windows(policy.discounts, horizon, self.uplift - 1.0, response.pull_forward)
        self.target_rounds = [
            TargetRound((offer.start_month - 1 + k * offer.every_months) / 12.0, offer)
            for offer in policy.discounts if isinstance(offer, TargetedOffer)
            for k in range(scenario.horizon_months)
            if (offer.start_month - 1 + k * offer.every_months) < scenario.horizon_months
        ]
        self.enrollment_intercept = [_enrollment_intercept(law, policy.enrollment.probability,
                                                           policy.enrollment.self_selection) for law in laws]
        self.laws = laws

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
        return special.expit(intercept + enrollment.self_selection * np.log(rate / mean))


def _enrollment_intercept(law: SegmentLaws, probability: float, self_selection: float) -> float | None:
    """c with E[expit(c + s ln(lambda / mean))] = probability over the segment's rate law; None if flat.

    Bisection, stopped at a relative tolerance or after :data:`MAX_HALVINGS` halvings, so that it ends for
    any finite input: with a large ``self_selection`` the root is large and an absolute tolerance finer
    than the spacing of floats there is never reached.
    """
    shape = law.purchase_rate.shape
    if self_selection == 0 or shape is None or probability in (0.0, 1.0):
        return None
    grid = np.linspace(0.5, 4095.5, 4096) / 4096.0
    with np.errstate(divide="ignore"):   # a quantile that underflows to 0 is a log ratio of -inf
        log_ratio = np.log(special.gammaincinv(shape, grid) / shape)   # quantiles of rate / mean
    finite = log_ratio[np.isfinite(log_ratio)]
    def gap(c):
        with np.errstate(over="ignore", invalid="ignore"):
            return float(np.mean(special.expit(c + self_selection * log_ratio))) - probability
    # the mean lies between expit(c + s min) and expit(c + s max), which brackets the root exactly
    centre = special.logit(probability)
    low = centre - self_selection * finite.max() - 1.0
    high = centre - self_selection * finite.min() + 1.0
    for _ in range(MAX_HALVINGS):   # bisection: gap rises with c
        middle = (low + high) / 2.0
        if not low < middle < high or high - low <= RELATIVE_TOLERANCE * max(1.0, abs(low), abs(high)):
            break                   # as fine as floats resolve (or the bracket is not finite)
        low, high = (middle, high) if gap(middle) < 0 else (low, middle)
    return (low + high) / 2.0


def _windows(discounts, horizon: float, extra: np.ndarray, pull_forward: float) -> list[Window]:
    """Every occurrence of every blanket discount that opens within the horizon."""
    windows = []
    for discount in discounts:
        if not isinstance(discount, BlanketDiscount):
            continue
        duration = discount.duration_days / DAYS_PER_YEAR
        month = discount.start_month - 1
        while month / 12.0 < horizon:
            start = month / 12.0
            borrowed = pull_forward * extra                      # dip depth x length / duration
            depth = np.minimum(MAX_DIP, borrowed)
            with np.errstate(invalid="ignore", divide="ignore"):
                length = np.where(depth > 0, borrowed * duration / depth, 0.0)
            windows.append(Window(discount.name, start, start + duration, discount.depth,
                                  1.0 - depth, start + duration + length))
            if discount.every_months is None:
                break
            month += discount.every_months
    return windows
