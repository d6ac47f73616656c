"""How customers respond to what a program offers them: pure functions from value to behaviour.

Every behavioural effect of a program is a function of the value the customer is offered, with
diminishing returns, and is zero when nothing of value is offered (``docs/levers.md``, section 3):

* membership (purchase rate, dropout) and the goal gradient: the **program value** V, the effective
  reward rate (value back per unit spent) times the reachability of a reward at the customer's own pace;
* a tier's lift: the value of the tier's benefits per unit the customer spends in a year;
* a discount's uplift: its depth, through a promotion elasticity with saturation;
* referrals: the bonus relative to the customer's mean order value.

Who reacts: a customer buying at x times its segment's mean rate reacts with weight
(1 + d) / (1 + d x^2), d = ``heavy_buyer_damping`` (light and moderate buyers change, heavy buyers claim
rewards without changing: Liu 2007). The purchases a lift adds grow with x w(x), which peaks at
x = 1 / sqrt(d) and falls towards 0 for the heaviest buyers, so self-selection of heavy buyers makes a program
costlier per unit of incremental behaviour.

Only + - x / and comparisons, each correctly rounded: no transcendental function whose SIMD and libm
results could differ, so the numbers do not depend on the CPU. Every function takes scalars or numpy arrays.
The defaults of their parameters and the evidence range of each are :data:`sim.schema.evidence.EVIDENCE`.
"""

from __future__ import annotations

import numpy as np

#: The cut at which the promotion elasticity is quoted: Bijmolt et al. 2005 (-3.6), a 20% cut giving +72%.
ANCHOR_DEPTH = 0.20
#: The deal proneness of the average customer, at which a discount's uplift is the published elasticity.
AVERAGE_DEAL_PRONENESS = 0.5


def saturation(value, half):
    """value / (value + half): 0 at no value, 1/2 at ``half``, approaching 1 (diminishing returns).

    Negative values count as none; ``half`` must be positive."""
    value = np.maximum(value, 0.0)
    return value / (value + half)


def reaction_weight(relative_rate, heavy_buyer_damping: float):
    """Who reacts: (1 + d) / (1 + d x^2) for a customer buying at x times its segment's mean rate.

    1 at the mean, 1 + d for the lightest, falling towards 0 for the heaviest faster than 1 / x, so that
    the purchases a lift adds (proportional to x times the weight) fall for heavy buyers; 1 for all when
    d = 0.
    """
    return (1.0 + heavy_buyer_damping) / (1.0 + heavy_buyer_damping * (relative_rate * relative_rate))


def reward_rate(earn_per_currency: float, earn_multiplier, reward_value: float, reward_threshold: float):
    """The effective reward rate: value back per unit of net spend (0.02 is "2% back")."""
    return earn_per_currency * earn_multiplier * reward_value / reward_threshold


def reachability(annual_spend, earn_per_currency: float, earn_multiplier, reward_threshold: float,
                 reach_years: float):
    """max(0, 1 - T / reach_years), T = the years of the customer's own buying one reward takes.

    ``annual_spend`` is the customer's own rate x its mean order value; 0 when no reward can be reached
    within ``reach_years`` (or no point is ever earned)."""
    earned_per_year = np.asarray(annual_spend, dtype=np.float64) * earn_per_currency * earn_multiplier
    with np.errstate(divide="ignore"):
        years = np.where(earned_per_year > 0, reward_threshold / np.maximum(earned_per_year, 1e-300), np.inf)
    return np.maximum(0.0, 1.0 - years / reach_years)


def program_value(annual_spend, earn_per_currency: float, earn_multiplier, reward_value: float,
                  reward_threshold: float, reach_years: float):
    """V: the effective reward rate, discounted by how reachable a reward is at the customer's pace."""
    return (reward_rate(earn_per_currency, earn_multiplier, reward_value, reward_threshold)
            * reachability(annual_spend, earn_per_currency, earn_multiplier, reward_threshold, reach_years))


def member_rate_factor(value, weight, max_lift: float, half_reward_rate: float):
    """A member's purchase-rate factor: 1 + max_lift x weight x saturation(V)."""
    return 1.0 + max_lift * weight * saturation(value, half_reward_rate)


def member_dropout_factor(value, weight, max_retention: float, half_reward_rate: float):
    """A member's dropout multiplier: 1 / (1 + max_retention x weight x saturation(V)), in (0, 1]."""
    return 1.0 / (1.0 + max_retention * weight * saturation(value, half_reward_rate))


def goal_gradient_strength(value, weight, gradient_max: float, half_reward_rate: float):
    """The goal gradient g of a redeeming member: rate x (1 + g x progress to the next reward)."""
    return gradient_max * weight * saturation(value, half_reward_rate)


def tier_value(benefit_per_year, annual_spend):
    """A tier's benefits per unit the customer spends in a year (0 without a benefit or a spend)."""
    annual_spend = np.asarray(annual_spend, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(annual_spend > 0, benefit_per_year / np.maximum(annual_spend, 1e-300), 0.0)


def tier_rate_factor(value, weight, max_lift: float, half_benefit_rate: float):
    """A tier holder's purchase-rate factor from the value of its tier's benefits."""
    return 1.0 + max_lift * weight * saturation(value, half_benefit_rate)


def tier_dropout_factor(value, weight, max_retention: float, half_benefit_rate: float):
    """A tier holder's dropout multiplier from the value of its tier's benefits, in (0, 1]."""
    return 1.0 / (1.0 + max_retention * weight * saturation(value, half_benefit_rate))


def discount_extra(depth, deal_proneness, elasticity: float, half_depth: float):
    """The extra purchase rate while a discount of ``depth`` is available: rate x (1 + this).

    deal_proneness / 0.5 x elasticity x depth x (1 + 0.2 / h) / (1 + depth / h): the published elasticity's
    anchor (a 20% cut gives elasticity x 0.2 for the average customer, +72% at 3.6), saturating in depth
    with half-saturation h (the linear elasticity for h -> infinity)."""
    depth = np.maximum(depth, 0.0)
    shape = (1.0 + ANCHOR_DEPTH / half_depth) / (1.0 + depth / half_depth)
    return deal_proneness / AVERAGE_DEAL_PRONENESS * elasticity * depth * shape


def referral_factor(bonus: float, order_value, max_lift: float, half_bonus_ratio: float):
    """A member's referral-rate factor under a referral program: 1 + max_lift x saturation(bonus / order),
    with the bonus paid per referral and the customer's own mean order value (positive)."""
    return 1.0 + max_lift * saturation(bonus / np.asarray(order_value, dtype=np.float64), half_bonus_ratio)
