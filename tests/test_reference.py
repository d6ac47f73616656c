"""The fast engine against the reference engine (sim/engines/reference.py): two implementations of one semantics.

The reference engine is the plain one (a simpy process per customer, rates redrawn after every change);
the fast engine is vectorised (rounds, time change, keyed streams). They share no behaviour code and no
random numbers, so they can only agree in distribution: for each scenario below, the means over
replications of key metrics must agree within K = 4 combined standard errors,

    |mean_fast - mean_ref| <= 4 sqrt(se_fast^2 + se_ref^2),

and a metric that does not vary between replications (e.g. customers acquired without referrals) must be
equal. Each test's comment gives the smallest relative difference it can detect, 4 combined SE / mean,
measured at the seeds used here (``python bench/validation_table.py`` prints the whole table). Distribution
tests compare repeat purchases per customer (chi-square on binned counts), spend per customer
(two-sample KS), the k-th inter-purchase time (two-sample KS, one gap per customer) and the month-by-month
curves of active customers and purchases. Some checks are exact instead: member costs against the time
alive that the log implies (``test_member_cost_is_the_time_alive``).

Other files add their scenarios to :data:`SCENARIOS` with :func:`register` and reuse :func:`runs`,
:func:`assert_agree` and :func:`assert_curves_agree`: tests/test_validation_examples.py (the shipped examples)
and tests/test_validation_points.py (points expiry at high power).

Replications run in a pool of up to two processes. Seeds are fixed, so the tests are deterministic.
Where a disagreement is a bug of the fast engine, the test is an ``xfail(strict=True)`` with the reason.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from support.agreement import (
    ENGINES,
    EVERYTHING,
    GAP_ORDERS,
    KEY,
    MEMBER,
    MONEY,
    POINT_METRICS,
    STRONG,
    WINBACK,
    assert_agree,
    assert_curves_agree,
    build,
    runs,
)

from sim.engines.reference import KNOWN_FIELDS, ReferenceEngine
from sim.schema import Scenario
from sim.schema.policy import Response, WinbackOffer
from sim.schema.units import DAYS_PER_YEAR


def test_bgnbd_means() -> None:
    # detectable (4 combined SE / mean): purchases 2.4%, repeat_purchases 3.0%, gross_revenue 2.7%,
    # active_customers_end 2.1%, profit 3.2%, clv_per_customer 2.7%; customers_acquired must be equal
    assert_agree("bgnbd", KEY + MONEY)


def test_mixed_means() -> None:
    # two segments (BG/NBD and Pareto/NBD), two channels, arrivals every month, referrals across segments;
    # detectable: customers_acquired 0.9%, purchases 1.9%, gross_revenue 2.4%, active_customers_end 1.8%,
    # profit 3.0%, clv_per_customer 2.5%, referred_customers 11%
    assert_agree("mixed", KEY + MONEY + ("referred_customers", "customers_dropped_out"))


def test_repeat_purchases_per_customer_distribution() -> None:
    """Chi-square two-sample test on repeat purchases per customer, KS on spend per customer (BG/NBD,
    i.i.d. customers, both engines pooled over replications: 18,000 customers each)."""
    both = runs("bgnbd")
    repeats = {e: np.concatenate([rep["repeats_per_customer"] for rep in both[e]]) for e in ENGINES}
    top = 12  # bins 0, 1, ..., 11 and 12 or more; every bin has hundreds of customers
    table = np.array([np.bincount(np.minimum(repeats[e], top), minlength=top + 1) for e in ENGINES])
    assert table.min() >= 20
    chi2 = stats.chi2_contingency(table)
    assert chi2.pvalue > 1e-3, f"repeat purchases per customer differ: p = {chi2.pvalue:.2g}\n{table}"
    spend = {e: np.concatenate([rep["spend_per_customer"] for rep in both[e]]) for e in ENGINES}
    ks = stats.ks_2samp(spend["fast"], spend["ref"])
    assert ks.pvalue > 1e-3, f"spend per customer differs: KS p = {ks.pvalue:.2g}"


@pytest.mark.parametrize("name", ["bgnbd", "points"])
def test_interpurchase_times(name: str) -> None:
    """Two-sample KS on the k-th inter-purchase time, k = 1, 2, 3 (one gap per customer, pooled over
    replications). ``bgnbd``: Poisson purchases thinned by the dropout coin (the k+1-th gap exists only if the
    coin spared the customer after its k-th repeat purchase); ``points``: rates that change with the points
    balance (goal gradient 0.5 resets at each redemption and expiry), member lifts and self-selection.
    Detectable (p < 1e-3 in either direction, measured by rescaling one sample's gaps until the test fails):
    a change of every purchase rate by 5-6% (bgnbd, 16,000-27,000 gaps per k) and 5-10% (points,
    13,000-19,000 gaps per k)."""
    both = runs(name)
    for k in GAP_ORDERS:
        gaps = {e: np.concatenate([rep["gaps"][k] for rep in both[e]]) for e in ENGINES}
        assert min(g.size for g in gaps.values()) >= 2000, "too few gaps for power"
        ks = stats.ks_2samp(gaps["fast"], gaps["ref"])
        assert ks.pvalue > 1e-3, f"{name}: gap {k} differs, KS D = {ks.statistic:.4f}, p = {ks.pvalue:.2g}"


def test_active_customer_curve() -> None:
    """Month by month: active customers at each month end and purchases in each month."""
    assert_curves_agree("bgnbd")
    assert_curves_agree("mixed")


def test_both_engines_give_the_same_tables() -> None:
    both = runs("mixed")
    fast, ref = both["fast"][0], both["ref"][0]
    assert fast["columns"] == ref["columns"]


def test_network_value_without_policy() -> None:
    """Organic referrals without a policy still give their referrer's cohort a network value (the fast
    engine reported 0 until 50928eb). Detectable: 15% of the network value (few referrals)."""
    # the network value of all cohorts together is the CLV of all referred customers (direct referrals)
    assert_agree("mixed", (network_value,))
    for engine in ENGINES:
        for rep in runs("mixed")[engine]:
            assert math.isclose(rep["network_value"], rep["referral_clv"], rel_tol=1e-9, abs_tol=1e-9)


def network_value(rep: dict) -> float:
    return rep["network_value"]


def clv_growth(rep: dict) -> float:
    return rep["clv_growth"]


def clv_learning(rep: dict) -> float:
    return rep["clv_learning"]


def test_clv_growth_and_learning_parts() -> None:
    """CLV's growth part (the regular segment's spend grows 5% a year) and learning part (4 a customer-year
    alive), each engine with its own code: without a program (referrals, both dropout models), and with
    win-back cycles, where a customer's alive time is its spells (the calendar engine counts each spell as
    it ends). Detectable: see the printed table on failure."""
    assert_agree("mixed", (clv_growth, clv_learning))
    assert_agree("revive", (clv_growth, clv_learning))


# ---------------------------------------------------------------------------------------------------
# Levers (points and the win-back cycles are fast tests; the others are slow)
# ---------------------------------------------------------------------------------------------------
def test_points_enrollment_costs() -> None:
    # self-selected enrollment, points with goal gradient 0.5 and 3-month expiry, fixed and member costs;
    # detectable: purchases 3.1%, points_earned 5.5%, points_redeemed 9.9%, points_expired 7.4%,
    # points_outstanding 6.8%, reward_cost 9.9%, members_acquired 3.5%, members_end 4.9%, member_cost 4.1%
    assert_agree("points", KEY + POINT_METRICS + MEMBER + ("program_cost",))
    assert_curves_agree("points")


@pytest.mark.slow
def test_points_large() -> None:
    # as test_points_enrollment_costs with 2.4x the customers and twice the horizon;
    # detectable: purchases 2.0%, points_earned 4.0%, points_redeemed 6.7%, points_expired 3.9%,
    # points_outstanding 7.2%, members_acquired 2.1%, members_end 3.0%, member_cost 2.6%
    assert_agree("points_large", KEY + MONEY + POINT_METRICS + MEMBER + ("program_cost", "points_liability"))
    assert_curves_agree("points_large")


@pytest.mark.slow
def test_no_policy_large() -> None:
    # detectable: bgnbd_large purchases 1.7%, gross_revenue 1.8%, active_customers_end 2.7%, clv 1.8%;
    # mixed_large purchases 1.8%, gross_revenue 2.3%, active_customers_end 1.8%, referred_customers 5.9%
    assert_agree("bgnbd_large", KEY + MONEY)
    assert_agree("mixed_large", KEY + MONEY + ("referred_customers", "customers_dropped_out"))


@pytest.mark.slow
def test_no_policy_large_distributions() -> None:
    both = runs("bgnbd_large")
    repeats = {e: np.concatenate([rep["repeats_per_customer"] for rep in both[e]]) for e in ENGINES}
    top = 20
    table = np.array([np.bincount(np.minimum(repeats[e], top), minlength=top + 1) for e in ENGINES])
    assert stats.chi2_contingency(table).pvalue > 1e-3, table
    spend = {e: np.concatenate([rep["spend_per_customer"] for rep in both[e]]) for e in ENGINES}
    assert stats.ks_2samp(spend["fast"], spend["ref"]).pvalue > 1e-3
    assert_curves_agree("bgnbd_large")
    assert_curves_agree("mixed_large")


@pytest.mark.slow
def test_blanket_windows() -> None:
    # a 10-day window every 2 months, uplift, pull-forward dip, habituation 0.05; nobody enrols;
    # detectable: purchases 2.0%, gross_revenue 2.6%, discount_cost 2.5%, active_customers_end 3.2%
    assert_agree("blanket", KEY + ("discount_cost", "net_revenue"))
    assert_curves_agree("blanket")  # the windows' bumps and the dips after them, month by month


@pytest.mark.slow
def test_tiers() -> None:
    # two tiers on trailing 12-month spend (lifts, dropout multipliers, earn multipliers, benefit costs);
    # detectable: purchases 3.1%, tier_benefit_cost 4.3%, points_earned 5.0%, active_customers_end 2.2%,
    # members_end 2.3%
    assert_agree("tiers", KEY + ("tier_benefit_cost", "points_earned", "points_redeemed", "members_end"))
    assert_curves_agree("tiers")


@pytest.mark.slow
def test_winback() -> None:
    # win-back after 60 inactive days, reactivation 0.3; detectable: purchases 1.8%,
    # active_customers_end 2.3%, customers_reactivated 7.0%, message_cost 1.2%, discount_cost 3.2%
    assert_agree("winback", KEY + ("customers_reactivated", "customers_dropped_out", "message_cost",
                                   "discount_cost"))
    assert_curves_agree("winback")


@pytest.mark.slow
def test_targeted_offers() -> None:
    # top_predicted_clv every 2 months and at_risk every 3 months, scored from observable histories;
    # detectable: purchases 2.0%, message_cost 0.2%, discount_cost 3.1%, active_customers_end 2.6%
    assert_agree("targeted", KEY + ("message_cost", "discount_cost"))
    assert_curves_agree("targeted")


@pytest.mark.slow
def test_referral_program() -> None:
    # members refer at 3x the organic rate and cost 15 per referral; detectable: purchases 1.8%,
    # referred_customers 5.0%, referral_bonus_cost 6.0%
    assert_agree("referral", KEY + MONEY + ("referred_customers", "referral_bonus_cost", "members_end"))
    assert_curves_agree("referral")


@pytest.mark.slow
def test_everything_at_once() -> None:
    # every lever together; detectable: purchases 2.0%, profit 3.1%, discount_cost 2.0%, points_redeemed 5.5%,
    # points_expired 6.6%, member_cost 2.4%, customers_reactivated 7.1%, tier_benefit_cost 3.8%,
    # referral_bonus_cost 7.1%, message_cost 1.5%
    assert_agree("everything", KEY + MONEY + POINT_METRICS + MEMBER + (
        "discount_cost", "tier_benefit_cost", "referral_bonus_cost", "message_cost", "customers_reactivated",
        "referred_customers", "program_cost"))
    assert_curves_agree("everything")


@pytest.mark.slow
def test_value_curves() -> None:
    # every lever at once with every response a function of the value offered (reward rate and its
    # reachability at each customer's own pace, who reacts, tier benefits, discount depths, the referral
    # bonus): the reference engine computes each customer's factors in its own plain code
    assert_agree("value", KEY + MONEY + POINT_METRICS + MEMBER + (
        "discount_cost", "tier_benefit_cost", "referral_bonus_cost", "customers_reactivated",
        "referred_customers", "program_cost"))
    assert_curves_agree("value")


def test_winback_cycles() -> None:
    # detectable: purchases 3.6%, customers_reactivated 3.0%, members_end 2.6%
    assert_agree("revive", KEY + ("customers_reactivated", "customers_dropped_out", "members_end"))
    assert_curves_agree("revive")


def test_member_cost_of_reactivated_members() -> None:
    # was a fast-engine bug: members won back were also charged for the time they were dropped out
    assert_agree("revive", ("member_cost",))


def cycling_members(inactive_days: int) -> Scenario:
    """Every customer a member; certain dropout right after every repeat purchase; every dropped-out
    customer won back by the win-back offer ``inactive_days`` after its last purchase. So the log alone says
    when each member was alive: from arrival to its first repeat purchase, then from each purchase +
    ``inactive_days`` (the win-back) to the next purchase, and after the last one to the horizon if the
    win-back came in time."""
    return Scenario.model_validate({
        "name": "cycles", "horizon_months": 6, "replications": 1, "seed": 5,
        "economics": {"gross_margin": 0.3},
        "segments": {"only": {"purchases_per_year": {"mean": 12.0},
                              "dropout": {"model": "per_purchase", "mean": 1.0},
                              "order_value": {"mean": 20.0}}},
        "acquisition": [{"channel": "web", "initial_customers": 300, "new_per_month": 20}],
        "policy": {"enrollment": {"probability": 1.0}, "costs": {"per_member_per_year": 12.0},
                   "discounts": [{"name": "wb", "kind": "winback", "inactive_days": inactive_days, "depth": 0.1,
                                  "valid_days": 3}]},
        "response": {"winback_reactivation": 1.0, "member_dropout_multiplier": 1.0},
    })


def time_alive_by_month(tx: dict, scenario: Scenario, inactive_years: float) -> np.ndarray:
    """Years alive in each month, summed over the customers of a :func:`cycling_members` log."""
    ids, times = tx["customer_id"], tx["time"]
    horizon, months = scenario.horizon_years, scenario.horizon_months
    first = np.r_[True, ids[1:] != ids[:-1]]
    last = np.r_[ids[1:] != ids[:-1], True]
    previous = np.r_[np.nan, times[:-1]]
    after_acquisition = np.r_[False, first[:-1]]
    start = np.where(after_acquisition, previous, previous + inactive_years)   # arrival, or the win-back
    spells = list(zip(start[~first], times[~first]))
    for j in np.flatnonzero(last):
        begin = times[j] if first[j] else times[j] + inactive_years
        if begin < horizon:
            spells.append((begin, horizon))
    alive = np.zeros(months)
    for begin, end in spells:
        for month in range(int(begin * 12.0), min(math.ceil(end * 12.0), months)):
            alive[month] += max(0.0, min(end, (month + 1) / 12.0) - max(begin, month / 12.0))
    return alive


@pytest.mark.parametrize(("engine", "inactive_days"), [("fast", 4), ("fast", 40), ("ref", 4), ("ref", 40)])
def test_member_cost_is_the_time_alive(engine: str, inactive_days: int) -> None:
    """member_cost = per_member_per_year x time alive, month by month, exactly (levers.md 2.7). With win-back
    after 4 days members cycle through several lives a month (the fast engine overcharged 4-5% a month until
    it charged a closed spell at the win-back); with 40 days at most one win-back falls in a month."""
    scenario = cycling_members(inactive_days)
    result = ENGINES[engine](scenario, 0, record_transactions=True).run()
    alive = time_alive_by_month(result.transactions, scenario, inactive_days / DAYS_PER_YEAR)
    assert result.totals["customers_reactivated"] > 100
    np.testing.assert_allclose(result.monthly["member_cost"], 12.0 * alive, rtol=1e-9)


# ---------------------------------------------------------------------------------------------------
# The reference engine on its own: exact identities, determinism, refusal of unknown levers
# ---------------------------------------------------------------------------------------------------
def test_reference_identities_and_determinism() -> None:
    sc = build(customers=300, new_per_month=20, months=12, response=STRONG, policy=EVERYTHING)
    first = ReferenceEngine(sc, 3).run()
    again = ReferenceEngine(sc, 3).run()
    assert first.totals == again.totals
    t = first.totals
    assert t["points_earned"] == t["points_redeemed"] + t["points_expired"] + t["points_outstanding"]
    assert (t["customers_acquired"] + t["customers_reactivated"]
            == t["active_customers_end"] + t["customers_dropped_out"])
    assert t["purchases"] == t["repeat_purchases"] + t["customers_acquired"]
    assert first.cohorts["customers"].sum() == t["customers_acquired"]
    assert first.cohorts["active_end"].sum() == t["active_customers_end"]
    assert ReferenceEngine(sc, 4).run().totals != first.totals


def test_reference_refuses_levers_it_does_not_know(monkeypatch) -> None:
    monkeypatch.setitem(KNOWN_FIELDS, Response, KNOWN_FIELDS[Response] - {"goal_gradient"})
    with pytest.raises(NotImplementedError, match="scenario.response.goal_gradient"):
        ReferenceEngine(build(customers=10, months=1, response={"goal_gradient": 0.3}), 0)
    ReferenceEngine(build(customers=10, months=1), 0)  # at its default the field is harmless
    monkeypatch.delitem(KNOWN_FIELDS, WinbackOffer)  # a discount kind it would not know
    with pytest.raises(NotImplementedError, match=r"scenario\.policy\.discounts\.0 \(WinbackOffer\)"):
        ReferenceEngine(build(customers=10, months=1, policy={"discounts": [WINBACK]}), 0)
