"""A scenario's ``policy`` and ``response`` blocks compiled into the arrays and dates the engine uses.

Everything here is fixed for a run: per-segment and per-tier factors, the calendar of discount windows
and targeted-offer rounds, the enrollment curve, and the firm's scoring of customers for targeted offers
(``score_customers``: the BG/NBD or Pareto/NBD and Gamma-Gamma conditional expectations of each
customer's *observable* history, vectorised). The semantics are written out in ``docs/levers.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from sim import theory
from sim.population import SegmentLaws
from sim.scenario import Scenario
from sim.scenario.policy import BlanketDiscount, TargetedOffer, WinbackOffer
from sim.units import DAYS_PER_YEAR

#: Full-price buying never falls below this share of its level through habituation.
HABITUATION_FLOOR = 0.5
#: The deepest pull-forward dip; a larger borrowed volume makes the dip longer instead.
MAX_DIP = 0.9
#: Forecast window of ``top_predicted_clv`` scoring, in years.
SCORING_WINDOW = 1.0
#: Segments with no heterogeneity in a trait are scored as if its cv were this (the closed forms need a mix).
SCORING_MIN_CV = 0.1


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
                 "offer_until", "offer_depth", "winback_at", "repeat_spend", "spell_start"]
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
    """c with E[expit(c + s ln(lambda / mean))] = probability over the segment's rate law; None if flat."""
    shape = law.purchase_rate.shape
    if self_selection == 0 or shape is None or probability in (0.0, 1.0):
        return None
    grid = np.linspace(0.5, 4095.5, 4096) / 4096.0
    log_ratio = np.log(stats.gamma.ppf(grid, shape, scale=1.0 / shape))
    gap = lambda c: float(np.mean(special.expit(c + self_selection * log_ratio))) - probability
    # the mean lies between expit(c + s min) and expit(c + s max), which brackets the root exactly
    centre = special.logit(probability)
    low = centre - self_selection * log_ratio.max() - 1.0
    high = centre - self_selection * log_ratio.min() + 1.0
    return optimize.brentq(gap, low, high, xtol=1e-12)


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


def select_targets(laws: list[SegmentLaws], segment: np.ndarray, repeats: np.ndarray, recency: np.ndarray,
                   age: np.ndarray, repeat_spend: np.ndarray, *, target: str, share: float) -> np.ndarray:
    """Indices of the customers who get a targeted offer: the ``share`` with the highest
    :func:`score_customers` score among those with a score (ties broken deterministically).

    For ``top_predicted_clv`` the exact scores (a 2F1 per customer) are computed only where they can matter:
    a cheap upper bound (the expected purchases without future dropout, times P(alive) under BG/NBD) ranks
    the customers, and exact scores are computed down that ranking until no unscored customer's bound can
    beat the share's cut-off. The selection is the one the exact scores of everybody would give.
    """
    if target != "top_predicted_clv":
        score = score_customers(laws, segment, repeats, recency, age, repeat_spend, target=target)
        eligible = np.flatnonzero(np.isfinite(score))
        return _top(eligible, score[eligible], round(share * eligible.size))
    count = round(share * len(segment))
    if count == 0:
        return np.empty(0, dtype=np.int64)
    bound = score_customers(laws, segment, repeats, recency, age, repeat_spend, target=target, bound=True)
    order = np.argsort(-bound)
    done, exact = [], []
    position, chunk = 0, max(2 * count, 4096)
    while position < len(order):
        batch = order[position:position + chunk]
        position += batch.size
        done.append(batch)
        exact.append(score_customers(laws, segment[batch], repeats[batch], recency[batch], age[batch],
                                     repeat_spend[batch], target=target))
        scored = np.concatenate(exact)
        if scored.size >= count and position < len(order):
            cut = np.partition(scored, scored.size - count)[scored.size - count]
            if bound[order[position]] * (1.0 + 1e-9) < cut:  # nobody left can reach the cut-off
                break
        chunk *= 2
    return _top(np.concatenate(done), np.concatenate(exact), count)


def _top(ids: np.ndarray, score: np.ndarray, count: int) -> np.ndarray:
    if count >= ids.size:
        return np.sort(ids)
    return np.sort(ids[np.argpartition(-score, count - 1)[:count]])


def score_customers(laws: list[SegmentLaws], segment: np.ndarray, repeats: np.ndarray, recency: np.ndarray,
                    age: np.ndarray, repeat_spend: np.ndarray, *, target: str, bound: bool = False) -> np.ndarray:
    """The firm's score of each customer from what it can observe (higher = more deserving of the offer).

    ``repeats`` x, ``recency`` t_x (time of the last purchase since arrival), ``age`` T, in years;
    ``repeat_spend`` the list value of the repeat orders. ``top_predicted_clv``: expected repeat purchases
    in the next :data:`SCORING_WINDOW` times the expected order value (Gamma-Gamma). ``at_risk``: 1 - P(alive)
    for past-valuable customers (at least one repeat purchase, repeat spend at or above the median of
    those), -inf for the others. ``bound=True`` (top_predicted_clv only) gives a cheap upper bound instead:
    P(alive) x (r+x)/(alpha+T) x window (the expected purchases of an alive customer if it could not drop
    out) x the expected order value, with, for Pareto/NBD, the bound P(alive) <= 1 / (1 + s (T - t_x) /
    ((r+s+x) (beta+T))) in place of P(alive).
    """
    score = np.full(len(segment), -np.inf)
    if target == "at_risk":
        repeaters = repeats > 0
        if not repeaters.any():
            return score
        valuable = repeaters & (repeat_spend >= np.median(repeat_spend[repeaters]))
    for index, law in enumerate(laws):
        chosen = np.flatnonzero(segment == index) if len(laws) > 1 else np.arange(len(segment))
        if target == "at_risk":
            chosen = chosen[valuable[chosen]]
        if not chosen.size:
            continue
        x, t_x, T = repeats[chosen], recency[chosen], age[chosen]
        if law.purchase_rate.mean == 0:  # nobody in the segment ever buys again
            score[chosen] = 0.0
            continue
        r, alpha = _gamma_parameters(law.purchase_rate)
        never_drop = (law.hazard is not None and law.hazard.mean == 0) or (law.dropout is not None
                                                                          and law.dropout.mean == 0)
        if never_drop:  # the gamma-Poisson posterior mean
            score[chosen] = (0.0 if target == "at_risk" else
                             (r + x) / (alpha + T) * SCORING_WINDOW * _expected_order_value(law, x, repeat_spend[chosen]))
            continue
        if law.dropout is not None and law.dropout.mean == 1:  # gone right after the first repeat purchase
            if target == "at_risk":
                score[chosen] = np.where(x > 0, 1.0, 0.0)
            else:  # only those without a repeat purchase yet can still make one (exactly one)
                one_more = -np.expm1(r * np.log((alpha + T) / (alpha + T + SCORING_WINDOW)))
                score[chosen] = np.where(x > 0, 0.0, one_more) * _expected_order_value(law, x, repeat_spend[chosen])
            continue
        if bound:
            if law.dropout is not None:
                alive = theory.bgnbd_probability_alive(x, t_x, T, r, alpha, *_beta_parameters(law.dropout))
            else:  # the dead-since-t_x integrand falls with y, so it is at least (T - t_x) x its value at T
                s_, beta = _gamma_parameters(law.hazard)
                alive = 1.0 / (1.0 + s_ * (T - t_x) / ((r + s_ + x) * (beta + T)))
            score[chosen] = (alive * (r + x) / (alpha + T) * SCORING_WINDOW
                             * _expected_order_value(law, x, repeat_spend[chosen]))
            continue
        if law.dropout is not None:
            a, b = _beta_parameters(law.dropout)
            if target == "at_risk":
                score[chosen] = 1.0 - theory.bgnbd_probability_alive(x, t_x, T, r, alpha, a, b)
                continue
            purchases = theory.bgnbd_conditional_expected_purchases(SCORING_WINDOW, x, t_x, T, r, alpha, a, b)
        else:
            s, beta = _gamma_parameters(law.hazard)
            if target == "at_risk":
                score[chosen] = 1.0 - theory.paretonbd_probability_alive(x, t_x, T, r, alpha, s, beta)
                continue
            purchases = theory.paretonbd_conditional_expected_purchases(SCORING_WINDOW, x, t_x, T, r, alpha, s, beta)
        score[chosen] = purchases * _expected_order_value(law, x, repeat_spend[chosen])
    return score


def _expected_order_value(law: SegmentLaws, x: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """E[the customer's mean order value | x repeat orders of total list value ``spend``] (Gamma-Gamma)."""
    law = law.spend
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.where(x > 0, spend / np.maximum(x, 1), law.mean)
    if law.q is None:           # every customer has the same mean
        return np.full(len(x), law.mean)
    if law.p is None:           # no within-customer variation: the observed mean is the customer's mean
        return observed
    gamma = law.mean * (law.q - 1.0) / law.p
    return theory.gamma_gamma_conditional_mean_spend(law.p, law.q, gamma, x, observed)


def _gamma_parameters(law) -> tuple[float, float]:
    """(shape, rate per year) of a Gamma law, with at most 1/SCORING_MIN_CV**2 as shape."""
    shape = min(law.shape or np.inf, SCORING_MIN_CV**-2)
    return shape, shape / law.mean


def _beta_parameters(law) -> tuple[float, float]:
    """(a, b) of a Beta law, with at least the spread of cv SCORING_MIN_CV."""
    if law.a is not None:
        concentration = min(law.a + law.b, (1.0 - law.mean) / (SCORING_MIN_CV**2 * law.mean) - 1.0)
    else:
        concentration = (1.0 - law.mean) / (SCORING_MIN_CV**2 * law.mean) - 1.0
    concentration = max(concentration, 1e-3)
    return law.mean * concentration, (1.0 - law.mean) * concentration
