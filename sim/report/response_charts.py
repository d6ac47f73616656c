"""Charts of the response curves (``docs/levers.md`` section 3): what each value offered does to behaviour.

Each function takes a :class:`~sim.schema.policy.Response` (the curves' parameters) and returns a Figure
drawn from :mod:`sim.model.response`, the functions the engines call; ``scripts/response_curves.py`` writes
them as the PNGs the docs show.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from sim.model import response as curves
from sim.report.style import PALETTE, new_figure, styled
from sim.schema.policy import Response


def _percent(axis, which: str = "x") -> None:
    (axis.xaxis if which == "x" else axis.yaxis).set_major_formatter(PercentFormatter(1.0, decimals=0))


@styled
def membership_chart(response: Response) -> Figure:
    """Membership and goal-gradient effects against the program value V (reward back per unit spent, times
    reachability), for a customer at its segment's mean rate (weight 1) and a light one (weight 1.5)."""
    figure, (left, right) = new_figure(4.0, ncols=2)
    value = np.linspace(0.0, 0.08, 161)
    for weight, style in ((1.0, "-"), (1.5, "--")):
        lift = curves.member_rate_factor(value, weight, response.member_max_lift, response.half_reward_rate) - 1
        dropout = curves.member_dropout_factor(value, weight, response.member_max_retention,
                                               response.half_reward_rate)
        gradient = curves.goal_gradient_strength(value, weight, response.goal_gradient_max,
                                                 response.half_reward_rate)
        label = f"weight {weight:g}"
        left.plot(value, lift, style, color=PALETTE[0], label=f"purchase-rate lift, {label}")
        left.plot(value, gradient, style, color=PALETTE[1], label=f"goal gradient g, {label}")
        right.plot(value, dropout, style, color=PALETTE[2], label=f"dropout multiplier, {label}")
    for axis in (left, right):
        axis.axvline(0.02 * 0.55, color="#8C8C8C", lw=0.8)
        axis.annotate("2% back, reached in\n2.3 of 5 years", (0.02 * 0.55, 0.02), xycoords=("data", "axes fraction"),
                      xytext=(4, 0), textcoords="offset points", fontsize=7.5, color="#4D4D4D")
        _percent(axis)
        axis.set_xlabel("program value V = reward back x reachability")
        axis.legend(fontsize=7.5, frameon=False, loc="center right")
    left.set_title("Members buy more and chase rewards")
    right.set_title("... and drop out less")
    left.set_ylabel("lift / goal gradient")
    right.set_ylabel("x dropout probability or hazard")
    return figure


@styled
def reach_chart(response: Response) -> Figure:
    """Reachability of a reward against the years of the customer's own buying it takes, and who reacts:
    the weight against the customer's purchase rate relative to its segment's mean."""
    figure, (left, right) = new_figure(3.6, ncols=2)
    years = np.linspace(0.0, 1.5 * response.reward_reach_years, 151)
    reach = np.maximum(0.0, 1.0 - years / response.reward_reach_years)
    left.plot(years, reach, color=PALETTE[0])
    left.set_xlabel("years of own buying to one reward")
    left.set_ylabel("reachability")
    left.set_title("A distant reward is worth less")
    relative = np.linspace(0.0, 5.0, 201)
    for index, damping in enumerate(sorted({0.0, response.heavy_buyer_damping, 3.0})):
        right.plot(relative, curves.reaction_weight(relative, damping), color=PALETTE[index],
                   label=f"heavy_buyer_damping {damping:g}")
    right.set_xlabel("own purchase rate / segment's mean rate")
    right.set_ylabel("reaction weight")
    right.set_title("Heavy buyers react less")
    right.legend(fontsize=7.5, frameon=False)
    return figure


@styled
def discount_chart(response: Response) -> Figure:
    """Extra purchase rate while a discount is available, against its depth, with the published anchor."""
    figure, axis = new_figure(3.8)
    depth = np.linspace(0.0, 0.6, 121)
    for index, deal in enumerate((0.3, 0.5, 0.6)):
        extra = curves.discount_extra(depth, deal, response.discount_elasticity, response.discount_half_depth)
        axis.plot(depth, extra, color=PALETTE[index], label=f"deal proneness {deal:g}")
    axis.plot(depth, response.discount_elasticity * depth, ":", color="#8C8C8C",
              label=f"linear elasticity {response.discount_elasticity:g} (no saturation)")
    axis.plot([curves.ANCHOR_DEPTH], [response.discount_elasticity * curves.ANCHOR_DEPTH], "o", color="#000000",
              label="Bijmolt et al. 2005: a 20% cut, +72%")
    _percent(axis)
    _percent(axis, "y")
    axis.set_xlabel("depth of the discount")
    axis.set_ylabel("extra purchase rate")
    axis.set_title("Deeper discounts lift more, with diminishing returns")
    axis.legend(fontsize=7.5, frameon=False)
    return figure


@styled
def tier_referral_chart(response: Response) -> Figure:
    """A tier's lift and dropout multiplier against its benefits per unit of yearly spend; the referral rate
    factor against the bonus per unit of mean order value."""
    figure, (left, right) = new_figure(3.6, ncols=2)
    benefit = np.linspace(0.0, 0.15, 151)
    left.plot(benefit, curves.tier_rate_factor(benefit, 1.0, response.tier_max_lift, response.half_benefit_rate)
              - 1.0, color=PALETTE[0], label="purchase-rate lift")
    left.plot(benefit, 1.0 - curves.tier_dropout_factor(benefit, 1.0, response.tier_max_retention,
                                                        response.half_benefit_rate),
              color=PALETTE[2], label="dropout reduction")
    left.set_xticks(np.linspace(0.0, 0.15, 6))
    _percent(left)
    left.set_xlabel("tier benefits per year / own yearly spend")
    left.set_title("Tiers act through their benefits")
    left.legend(fontsize=7.5, frameon=False)
    ratio = np.linspace(0.0, 2.0, 201)
    right.plot(ratio, curves.referral_factor(ratio * 50.0, 50.0, response.referral_max_lift,
                                             response.half_bonus_ratio), color=PALETTE[3])
    right.set_xlabel("referral bonus / own mean order value")
    right.set_ylabel("x referral rate of members")
    right.set_title("Referrals follow the bonus")
    return figure


#: file stem -> chart, in the order docs/levers.md shows them
CHARTS = {"response_membership": membership_chart, "response_reach": reach_chart,
          "response_discount": discount_chart, "response_tier_referral": tier_referral_chart}
