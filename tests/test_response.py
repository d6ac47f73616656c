"""Responses that depend on the offer (docs/levers.md, section 3; sim/model/response.py).

The curves themselves are checked exactly (anchors, zero at no value, rising and flattening); the engine
is checked statistically against the curves' closed forms (purchases in discount windows of three depths)
and exactly where common random numbers pair a program with its baseline purchase for purchase (a
program offering nothing of value changes no behaviour at all).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from support.scenarios import ROOT, assert_within, one_segment, scenario

from sim.experiments.replications import run_replication, run_scenario
from sim.model import response as curves
from sim.schema import Scenario
from sim.schema.evidence import EVIDENCE
from sim.schema.policy import Response
from sim.schema.units import DAYS_PER_YEAR

STEADY = {"purchases_per_year": {"mean": 12.0, "cv": 0.0}, "dropout": {"model": "hazard", "annual_churn": 0.0},
          "order_value": {"mean": 50.0}, "deal_proneness": 0.5}
#: Lifetimes in calendar time, so that a faster purchase rate adds purchases (docs/levers.md, section 1).
HAZARD = {"purchases_per_year": {"mean": 6.0, "cv": 0.6}, "dropout": {"model": "hazard", "annual_churn": 0.3},
          "order_value": {"mean": 50.0, "cv": 0.3, "between_cv": 0.3}}
TWO_SEGMENTS = {
    "regular": {"purchases_per_year": {"mean": 5.0, "cv": 0.8},
                "dropout": {"model": "per_purchase", "mean": 0.15, "cv": 0.5},
                "order_value": {"mean": 45.0, "cv": 0.5, "between_cv": 0.4},
                "referrals_per_year": {"mean": 0.3, "cv": 0.5}},
    "loyal": {"purchases_per_year": {"mean": 10.0, "cv": 0.5},
              "dropout": {"model": "hazard", "annual_churn": 0.3, "cv": 0.6},
              "order_value": {"mean": 70.0, "cv": 0.4, "between_cv": 0.3},
              "referrals_per_year": {"mean": 0.2}},
}


# -- the curves ---------------------------------------------------------------------------------------

def test_discount_curve_reproduces_the_published_anchor() -> None:
    """Bijmolt et al. 2005: elasticity -3.6, a 20% cut gives about +72% for the average customer (deal
    proneness 0.5), whatever the saturation; twice the deal proneness, twice the extra; deeper lifts more,
    with diminishing returns, towards elasticity x (0.2 + h) at deal proneness 0.5."""
    response = Response()
    elasticity, half = response.discount_elasticity, response.discount_half_depth
    for h in (0.1, half, 1.0, 1e6):
        assert math.isclose(curves.discount_extra(0.2, 0.5, 3.6, h), 0.72, rel_tol=1e-12)
    assert math.isclose(curves.discount_extra(0.2, 1.0, elasticity, half), 1.44, rel_tol=1e-12)
    assert curves.discount_extra(0.0, 0.5, elasticity, half) == 0.0
    depths = np.linspace(0.0, 0.95, 96)
    extra = curves.discount_extra(depths, 0.5, elasticity, half)
    steps = np.diff(extra)
    assert np.all(steps > 0) and np.all(np.diff(steps) < 0)          # rising, concave
    assert extra[-1] < elasticity * (0.2 + half)                        # the saturation level
    # a small cut: close to the linear elasticity scaled by (1 + 0.2 / h), the curve's slope at 0
    assert math.isclose(curves.discount_extra(1e-9, 0.5, 3.6, half) / 1e-9, 3.6 * (1 + 0.2 / half), rel_tol=1e-6)


def test_value_curves_rise_flatten_and_vanish_without_value() -> None:
    half = 0.01
    rates = np.linspace(0.0, 0.2, 201)
    share = curves.saturation(rates, half)
    assert share[0] == 0.0 and math.isclose(curves.saturation(half, half), 0.5)
    assert np.all(np.diff(share) > 0) and np.all(np.diff(share, 2) < 0) and share[-1] < 1.0
    assert curves.member_rate_factor(0.0, 1.7, 0.125, half) == 1.0
    assert curves.member_dropout_factor(0.0, 1.7, 0.45, half) == 1.0
    assert curves.goal_gradient_strength(0.0, 1.7, 0.5, half) == 0.0
    assert curves.tier_rate_factor(curves.tier_value(0.0, 500.0), 1.0, 0.1, 0.02) == 1.0
    assert curves.referral_factor(0.0, 50.0, 2.0, 0.4) == 1.0
    assert curves.discount_extra(0.0, 0.9, 3.6, 0.3) == 0.0


def test_reachability_at_the_customers_own_pace() -> None:
    """A reward T years of the customer's own buying away is worth max(0, 1 - T / reach_years) of its rate."""
    # 500 points at 1 point per unit: 250 a year is 2 years away, 1000 a year half a year
    assert math.isclose(curves.reachability(250.0, 1.0, 1.0, 500, 5.0), 1.0 - 2.0 / 5.0)
    assert math.isclose(curves.reachability(1000.0, 1.0, 1.0, 500, 5.0), 0.9)
    assert curves.reachability(100.0, 1.0, 1.0, 500, 5.0) == 0.0        # exactly 5 years: unreachable
    assert curves.reachability(100.0, 0.0, 1.0, 500, 5.0) == 0.0        # no points earned
    # the program: 0.25 points per unit, threshold 4,000, a regular customer (4 x 55 a year)
    assert curves.program_value(220.0, 0.25, 1.0, 10.0, 4000, 5.0) == 0.0
    # "2% back" for the same customer: 2.27 years to a reward
    assert math.isclose(curves.program_value(220.0, 1.0, 1.0, 10.0, 500, 5.0), 0.02 * (1 - 500 / 220 / 5))


def test_heavy_buyers_react_less() -> None:
    """Liu 2007: light and moderate buyers change, heavy buyers do not; weight 1 at the segment's mean."""
    relative = np.array([0.0, 0.5, 1.0, 2.0, 10.0])
    weight = curves.reaction_weight(relative, 1.0)
    assert weight[2] == 1.0 and weight[0] == 2.0 and np.all(np.diff(weight) < 0)
    assert np.all(curves.reaction_weight(relative, 0.0) == 1.0)


def test_every_value_key_has_its_evidence_range() -> None:
    """One table for issue-18 style uncertainty: every value-response key of the schema, default inside its
    range, and the schema's default read from it."""
    value_keys = set(Response.model_fields) - {"member_frequency_lift", "member_dropout_multiplier",
                                               "goal_gradient", "discount_uplift", "referral_bonus_lift",
                                               "pull_forward", "habituation", "winback_reactivation"}
    assert value_keys == set(EVIDENCE)
    for key, evidence in EVIDENCE.items():
        assert evidence.low <= evidence.default <= evidence.high, key
        assert getattr(Response(), key) == evidence.default, key
        assert evidence.status.split()[0] in ("measured", "judgement"), key


def test_explicit_constants_are_fixed_effects() -> None:
    forms = Response(member_frequency_lift=0.05, discount_uplift=1.5).forms()
    assert forms["membership rate"] == "fixed 0.05" and forms["discount uplift"] == "fixed 1.5"
    assert forms["membership dropout"] == "value curve"


# -- the engine: nothing of value, no behaviour ----------------------------------------------------

def _paired_exactly(sc: Scenario) -> None:
    """Every replication of ``sc`` makes the purchases and keeps the customers of its baseline, month by
    month (common random numbers pair them purchase for purchase when no multiplier moves)."""
    run = run_scenario(sc, baseline=sc.without_policy())
    for rep, base in zip(run.replications, run.baseline.replications):
        for name in ("purchases", "customers_acquired", "referred_customers", "customers_dropped_out",
                     "active_customers_end"):
            np.testing.assert_array_equal(rep.monthly[name], base.monthly[name], err_msg=name)
        assert math.isclose(rep.totals["gross_revenue"], base.totals["gross_revenue"], rel_tol=1e-9)


def _program(policy: dict, months: int = 18, replications: int = 2) -> Scenario:
    """Two segments (one per dropout model, with referrals), arrivals every month, default responses."""
    return scenario(horizon_months=months, replications=replications, seed=31, segments=TWO_SEGMENTS,
                    acquisition=[{"channel": "web", "cac": 10.0, "initial_customers": 1500, "new_per_month": 60,
                                  "segments": {"regular": 0.7, "loyal": 0.3}}],
                    policy=policy)


POINTS = {"earn_per_currency": 1.0, "reward_threshold": 500, "reward_value": 10.0, "redeemer_share": 0.8,
          "expiry_months_inactive": 6.0}


@pytest.mark.parametrize("points", [
    dict(POINTS, earn_per_currency=0.25, reward_threshold=4000),     # no reward within reach of anyone
    dict(POINTS, reward_value=0.0),                                  # rewards worth nothing
    dict(POINTS, earn_per_currency=0.0),                             # no points earned
], ids=["unreachable", "worthless", "no-points"])
def test_a_program_of_no_value_changes_no_behaviour(points: dict) -> None:
    """Default responses (value curves), everybody a member: with no reward of value within reach, the
    program's customers buy, refer and drop out exactly as without it, purchase for purchase. (The
    unreachable threshold, 4,000 points at 0.25 a unit, is 16,000 of spend: more than 5 years of buying for
    every customer here, whose yearly spend stays below 3,200 but for a negligible tail: the check is exact,
    so a customer reaching it would fail the test.)"""
    _paired_exactly(_program({"enrollment": {"probability": 1.0}, "points": points}))


def test_memberships_without_value_change_nothing() -> None:
    """Tier-only and referral-only programs need everybody enrolled; membership alone is worth nothing,
    so with tiers without benefits and a referral program without a bonus nothing changes."""
    tiers = [{"name": "silver", "min_spend_12m": 100.0, "earn_multiplier": 1.5},
             {"name": "gold", "min_spend_12m": 400.0, "earn_multiplier": 2.0}]
    _paired_exactly(_program({"enrollment": {"probability": 1.0}, "tiers": tiers,
                              "referral": {"referrer_bonus": 0.0, "referee_bonus": 0.0}}))


def test_a_tier_only_program_acts_only_through_its_benefits() -> None:
    """A tier-only program: the members who hold no tier are untouched (first month, before any tier is
    held, identical purchases), and the program adds purchases only once benefits are worth something.
    Paired replications; the incremental purchases with benefits must exceed 4 SE of their paired
    differences, and be 0 exactly without benefits."""
    tiers = [{"name": "silver", "min_spend_12m": 150.0, "benefit_cost_per_year": 10.0},
             {"name": "gold", "min_spend_12m": 500.0, "benefit_cost_per_year": 40.0}]
    sc = one_segment(HAZARD, customers=3000, months=18, replications=6, seed=41,
                     policy={"enrollment": {"probability": 1.0}, "tiers": tiers},
                     response={"tier_max_lift": 0.3, "tier_max_retention": 0.5})
    run = run_scenario(sc, baseline=sc.without_policy())
    gained = run.differences(run.baseline)["purchases"]
    assert gained.mean > 4 * gained.std_error > 0, (gained.mean, gained.std_error)
    for rep, base in zip(run.replications, run.baseline.replications):
        assert rep.monthly["purchases"][0] == base.monthly["purchases"][0]   # nobody holds a tier yet
        assert rep.totals["tier_benefit_cost"] > 0


# -- the engine: discount depth --------------------------------------------------------------------

def test_deeper_sales_lift_more_at_the_curves_rate() -> None:
    """Three blanket windows of 14 days, depths 0.1, 0.2 (the published anchor: +72% at deal proneness 0.5)
    and 0.4, no pull-forward and no habituation; customers without heterogeneity or dropout buy at
    12 a year, so the purchases in each window are Poisson with mean N x 12 x (1 + extra(depth)) x 14 days.
    Each count is checked within 4 Poisson SE (about 6% of the count here: the three depths' rates, 1.45,
    1.72 and 2.03, differ by more than 10%)."""
    customers, days = 5000, 14.0
    depths = {2: 0.1, 5: 0.2, 8: 0.4}
    windows = [{"name": f"sale-{month}", "kind": "blanket", "depth": depth, "start_month": month,
                "duration_days": days} for month, depth in depths.items()]
    sc = one_segment(STEADY, customers=customers, months=10, seed=43,
                     policy={"enrollment": {"probability": 0.0}, "discounts": windows},
                     response={"pull_forward": 0.0, "habituation": 0.0})
    times = run_replication(sc, 0, record_transactions=True).transactions["time"]
    response = sc.response
    for month, depth in depths.items():
        start = (month - 1) / 12.0
        end = start + days / DAYS_PER_YEAR
        count = int(np.count_nonzero((times >= start) & (times < end)))
        factor = 1.0 + curves.discount_extra(depth, 0.5, response.discount_elasticity, response.discount_half_depth)
        expected = customers * 12.0 * factor * days / DAYS_PER_YEAR
        assert_within(count, expected, math.sqrt(expected), max_std_error=0.02 * expected)
    assert math.isclose(curves.discount_extra(0.2, 0.5, response.discount_elasticity,
                                              response.discount_half_depth), 0.72)


# -- the engine: rising and flattening with the reward rate ---------------------------------------

@pytest.mark.slow
def test_incremental_purchases_rise_and_flatten_with_the_reward_rate() -> None:
    """One hazard segment, everybody a member, reward values 0, 5, 10 and 15 at a threshold of 500 (0%, 1%,
    2% and 3% back, the same reachability): on the same customers (common random numbers), incremental
    purchases are 0 exactly at 0% back, rise with the reward rate (each step above 4 SE of its paired
    differences) and flatten: the second step adds less than the first (the paired second difference is
    more than 4 SE below 0)."""
    def arm(value: float):
        sc = one_segment(HAZARD, customers=4000, months=24, replications=8, seed=47,
                         policy={"enrollment": {"probability": 1.0},
                                 "points": dict(POINTS, reward_value=value, expiry_months_inactive=None)})
        return sc

    runs = {value: run_scenario(arm(value)) for value in (0.0, 5.0, 10.0, 15.0)}
    base = run_scenario(arm(0.0).without_policy())
    purchases = {v: np.array([rep.totals["purchases"] for rep in r.replications]) for v, r in runs.items()}
    baseline = np.array([rep.totals["purchases"] for rep in base.replications])
    np.testing.assert_array_equal(purchases[0.0], baseline)
    n = len(baseline)

    def significant(values: np.ndarray) -> tuple[float, float]:
        return float(values.mean()), float(values.std(ddof=1) / math.sqrt(n))

    first, first_se = significant(purchases[10.0] - purchases[5.0])
    second, second_se = significant(purchases[15.0] - purchases[10.0])
    start, start_se = significant(purchases[5.0] - baseline)
    curvature, curvature_se = significant((purchases[15.0] - purchases[10.0]) - (purchases[10.0] - purchases[5.0]))
    print(f"incremental purchases at 1/2/3% back: {start:.0f} (SE {start_se:.0f}), +{first:.0f} ({first_se:.0f}), "
          f"+{second:.0f} ({second_se:.0f}); second difference {curvature:.0f} ({curvature_se:.0f})")
    for step, se in ((start, start_se), (first, first_se), (second, second_se)):
        assert step > 4 * se > 0
    assert curvature < -4 * curvature_se < 0


def test_the_response_charts_are_drawn_from_the_code(tmp_path) -> None:
    """scripts/response_curves.py draws every chart docs/levers.md shows, and the docs show them all."""
    import runpy

    from sim.report.response_charts import CHARTS

    main = runpy.run_path(str(ROOT / "scripts" / "response_curves.py"))["main"]
    written = main(tmp_path)
    assert [path.name for path in written] == [f"{stem}.png" for stem in CHARTS]
    levers = (ROOT / "docs" / "levers.md").read_text()
    for path in written:
        assert path.stat().st_size > 10_000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (ROOT / "docs" / "images" / path.name).exists(), path.name
        assert f"images/{path.name}" in levers, path.name


@pytest.mark.slow
def test_self_selection_makes_incremental_behaviour_costlier() -> None:
    """Half the customers join, at random (self_selection 0) or heavy buyers first (2): heavy members
    earn and redeem more rewards and react less (who reacts, reachability), so the reward cost per
    incremental purchase rises with self-selection. Paired by replication (the same customers in all
    arms); the rise must exceed 4 SE of its paired differences."""
    def arm(self_selection: float) -> Scenario:
        return one_segment(HAZARD, customers=4000, months=24, replications=8, seed=53,
                           policy={"enrollment": {"probability": 0.5, "self_selection": self_selection},
                                   "points": dict(POINTS, expiry_months_inactive=None)})

    base = run_scenario(arm(0.0).without_policy())
    baseline = np.array([rep.totals["purchases"] for rep in base.replications])
    cost_per_purchase = {}
    for selection in (0.0, 2.0):
        run = run_scenario(arm(selection))
        gained = np.array([rep.totals["purchases"] for rep in run.replications]) - baseline
        assert np.all(gained > 0)
        cost_per_purchase[selection] = np.array([rep.totals["reward_cost"] for rep in run.replications]) / gained
    rise = cost_per_purchase[2.0] - cost_per_purchase[0.0]
    se = rise.std(ddof=1) / math.sqrt(len(rise))
    print(f"reward cost per incremental purchase: {cost_per_purchase[0.0].mean():.2f} at random, "
          f"{cost_per_purchase[2.0].mean():.2f} with self-selection (paired rise {rise.mean():.2f}, SE {se:.2f})")
    assert rise.mean() > 4 * se > 0


def test_validate_says_which_form_each_response_uses(tmp_path) -> None:
    from click.testing import CliRunner

    from sim.cli import main

    result = CliRunner().invoke(main, ["validate", str(ROOT / "scenarios" / "points_program.yaml")])
    assert result.exit_code == 0, result.output
    assert "membership rate: value curve" in result.output and "discount uplift: value curve" in result.output
    result = CliRunner().invoke(main, ["validate", str(ROOT / "scenarios" / "points_program.yaml"),
                                       "--set", "response.member_frequency_lift=0.05",
                                       "--set", "response.discount_uplift=1.5"])
    assert result.exit_code == 0, result.output
    assert "membership rate: fixed 0.05" in result.output and "discount uplift: fixed 1.5" in result.output
    assert "membership dropout: value curve" in result.output
