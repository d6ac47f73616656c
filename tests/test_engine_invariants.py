"""Identities that hold exactly in every run, reproducibility, and common random numbers."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.scenarios import BASE, scenario

from sim.accounting.ledger import PROGRAM_COSTS
from sim.experiments.replications import run_replication, run_scenario
from sim.schema import Scenario

CUSTOMER_COUNTS = ("customers_acquired", "active_customers_end", "customers_dropped_out", "referred_customers")


def check_invariants(sc: Scenario, result) -> None:
    totals, monthly, cohorts = result.totals, result.monthly, result.cohorts
    # every customer counted once
    assert totals["customers_acquired"] == totals["active_customers_end"] + totals["customers_dropped_out"]
    assert totals["customers_acquired"] == cohorts["customers"].sum()
    assert totals["active_customers_end"] == cohorts["active_end"].sum()
    assert totals["repeat_purchases"] == cohorts["repeat_purchases"].sum()
    assert totals["purchases"] == totals["repeat_purchases"] + totals["customers_acquired"]
    referral_rows = cohorts["channel"] == "referral"
    assert totals["referred_customers"] == cohorts["customers"][referral_rows].sum()
    planned = sc.planned_customers()
    assert totals["customers_acquired"] - totals["referred_customers"] == planned
    # money adds up
    program = sum(totals[name] for name in PROGRAM_COSTS)
    assert totals["program_cost"] == program
    assert totals["net_revenue"] == totals["gross_revenue"] - totals["discount_cost"]
    assert totals["gross_margin"] == sc.economics.gross_margin * totals["gross_revenue"]
    assert totals["profit"] == (totals["gross_margin"] - totals["cost_to_serve"] - totals["program_cost"]
                                - totals["acquisition_cost"])
    assert totals["cost_to_serve"] == sc.economics.cost_to_serve_per_order * totals["purchases"]
    expected_cac = sum(a.cac * (a.initial_customers + a.new_per_month * sc.acquisition_months(a))
                       for a in sc.acquisition)
    np.testing.assert_allclose(totals["acquisition_cost"], expected_cac, rtol=1e-12)
    np.testing.assert_allclose(cohorts["net_revenue"].sum(), totals["net_revenue"], rtol=1e-9)
    # monthly flows add up to the totals, stocks end where the totals say
    for name in ("purchases", "gross_revenue", "customers_acquired", "customers_dropped_out", "profit"):
        np.testing.assert_allclose(monthly[name].sum(), totals[name], rtol=1e-9, atol=1e-9)
    assert monthly["active_customers_end"][-1] == totals["active_customers_end"]
    assert np.all(np.diff(np.cumsum(monthly["customers_acquired"]) - monthly["active_customers_end"]) >= 0)
    assert all(totals[name] >= 0 for name in PROGRAM_COSTS + ("acquisition_cost", "cost_to_serve"))
    assert np.all(monthly["active_customers_end"] >= 0)
    # network value: every referred customer's CLV is credited to its referrer's cohort, once
    credited = float(np.sum(cohorts["network_value"] * cohorts["customers"]))
    referred_clv = float(np.sum((cohorts["clv"] * cohorts["customers"])[referral_rows]))
    np.testing.assert_allclose(credited, referred_clv, rtol=1e-9, atol=1e-6)


def test_invariants_on_the_base_scenario() -> None:
    sc = scenario(horizon_months=24, acquisition=[
        {"channel": "web", "cac": 10.0, "initial_customers": 3000, "new_per_month": 200, "months": 6}])
    check_invariants(sc, run_replication(sc, 0))


segment_strategy = st.fixed_dictionaries({
    "purchases_per_year": st.one_of(
        st.fixed_dictionaries({"mean": st.floats(0, 30), "cv": st.floats(0, 2)}),
        # native form: at most about 50 purchases a year on average, to keep examples fast
        st.fixed_dictionaries({"r": st.floats(0.1, 3), "alpha": st.floats(3, 40),
                               "alpha_unit": st.sampled_from(["week", "month", "year"])}),
    ),
    "dropout": st.one_of(
        st.fixed_dictionaries({"model": st.just("per_purchase"), "mean": st.floats(0.01, 0.9),
                               "cv": st.floats(0, 0.3)}),
        st.fixed_dictionaries({"model": st.just("hazard"), "annual_churn": st.floats(0, 0.95),
                               "cv": st.floats(0, 2)}),
        st.fixed_dictionaries({"model": st.just("hazard"), "s": st.floats(0.2, 5), "beta": st.floats(0.5, 20)}),
    ),
    "order_value": st.fixed_dictionaries({"mean": st.floats(1, 200), "cv": st.floats(0, 1.5),
                                          "between_cv": st.floats(0, 1.5), "growth_per_year": st.floats(-0.5, 0.5)}),
    "referrals_per_year": st.fixed_dictionaries({"mean": st.floats(0, 1), "cv": st.floats(0, 1)}),
})


@st.composite
def scenarios(draw) -> Scenario:
    names = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True))
    segments = {name: draw(segment_strategy) for name in names}
    channels = []
    for i in range(draw(st.integers(1, 2))):
        weights = [draw(st.integers(1, 5)) for _ in names]
        channels.append({
            "channel": f"ch{i}", "cac": draw(st.floats(0, 100)),
            "initial_customers": draw(st.integers(0, 400)), "new_per_month": draw(st.integers(0, 60)),
            "months": draw(st.one_of(st.none(), st.integers(0, 12))),
            "segments": {n: w / sum(weights) for n, w in zip(names, weights)},
        })
    # shares must sum to 1 exactly enough: put the rounding on the last one
    for ch in channels:
        shares = ch["segments"]
        last = names[-1]
        shares[last] = 1.0 - sum(v for k, v in shares.items() if k != last)
    data = dict(BASE, horizon_months=draw(st.integers(1, 18)), seed=draw(st.integers(0, 2**32)),
                segments=segments, acquisition=channels,
                economics={"gross_margin": draw(st.floats(0, 1)), "cost_to_serve_per_order": draw(st.floats(0, 10)),
                           "annual_discount_rate": draw(st.floats(0, 0.5))})
    return Scenario.model_validate(data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_invariants_hold_in_random_scenarios(sc: Scenario) -> None:
    check_invariants(sc, run_replication(sc, 0))


def test_same_seed_same_numbers_and_replications_differ() -> None:
    sc = scenario(replications=3)
    first, second = run_scenario(sc), run_scenario(sc)
    for a, b in zip(first.replications, second.replications):
        assert a.totals == b.totals
        for name in a.monthly:
            np.testing.assert_array_equal(a.monthly[name], b.monthly[name])
    assert first.replications[0].totals["purchases"] != first.replications[1].totals["purchases"]
    reseeded = run_replication(scenario(seed=2), 0)
    assert reseeded.totals["purchases"] != first.replications[0].totals["purchases"]


def test_common_random_numbers_survive_other_channels() -> None:
    """A channel's customers behave identically whether or not another channel is in the scenario.

    Traits come from the batch's own streams and events, order values included, from each customer's
    keyed streams, so adding a channel changes nothing for the others.
    """
    segment = dict(BASE["segments"]["only"], order_value={"mean": 30.0, "cv": 0.6, "between_cv": 0.4})
    alone = scenario(segments={"only": segment}, horizon_months=18,
                     acquisition=[{"channel": "web", "initial_customers": 2000, "new_per_month": 50}])
    both = scenario(segments={"only": segment}, horizon_months=18,
                    acquisition=[{"channel": "shop", "initial_customers": 1500, "new_per_month": 70},
                                 {"channel": "web", "initial_customers": 2000, "new_per_month": 50}])
    a, b = run_replication(alone, 0).cohorts, run_replication(both, 0).cohorts
    web = b["channel"] == "web"
    for column in ("acquisition_month", "customers", "repeat_purchases", "active_end"):
        np.testing.assert_array_equal(a[column], b[column][web])
    for column in ("net_revenue", "clv"):   # the same orders, summed in another order
        np.testing.assert_allclose(a[column], b[column][web], rtol=1e-12)


def test_acquisition_schedule() -> None:
    """initial_customers at time 0, new_per_month in each of the first `months` months, exact counts."""
    sc = scenario(horizon_months=10, acquisition=[
        {"channel": "web", "initial_customers": 100, "new_per_month": 7, "months": 4},
        {"channel": "ads", "new_per_month": 3}])
    result = run_replication(sc, 0)
    expected = np.array([100 + 7 + 3] + [7 + 3] * 3 + [3] * 6)
    np.testing.assert_array_equal(result.monthly["customers_acquired"], expected)


def test_segment_mix_is_allocated_exactly() -> None:
    segments = {name: BASE["segments"]["only"] for name in ("x", "y", "z")}
    sc = scenario(segments=segments, horizon_months=3, acquisition=[
        {"channel": "web", "new_per_month": 10, "segments": {"x": 0.25, "y": 0.35, "z": 0.40}}])
    cohorts = run_replication(sc, 0).cohorts
    for month in range(3):
        rows = cohorts["acquisition_month"] == month
        counts = dict(zip(cohorts["segment"][rows], cohorts["customers"][rows]))
        assert sum(counts.values()) == 10
        assert counts == {"x": 2, "y": 4, "z": 4} or counts == {"x": 3, "y": 3, "z": 4}


def test_pool_size_changes_nothing(monkeypatch) -> None:
    """Without a policy each customer is simulated on its own keyed streams, so the size of the engine's
    slices (how many customers are simulated together, when referrals are drawn) changes no count and
    money only by rounding."""
    from sim.engines import lifetimes

    segments = {
        "bg": dict(BASE["segments"]["only"], referrals_per_year={"mean": 0.6, "cv": 0.5, "segment": "haz"}),
        "haz": {"purchases_per_year": {"mean": 9.0, "cv": 0.7}, "dropout": {"model": "hazard", "annual_churn": 0.4},
                "order_value": {"mean": 40.0, "cv": 0.6, "growth_per_year": 0.1},
                "referrals_per_year": {"mean": 0.3}},
    }
    sc = scenario(segments=segments, horizon_months=24, acquisition=[
        {"channel": "web", "cac": 5.0, "initial_customers": 700, "new_per_month": 40,
         "segments": {"bg": 0.6, "haz": 0.4}}])
    default = run_replication(sc, 0, record_transactions=True)
    for slots, batch in ((7, 3), (128, 1000)):
        monkeypatch.setattr(lifetimes, "SLOTS", slots)
        monkeypatch.setattr(lifetimes, "REFERRER_BATCH", batch)
        small = run_replication(sc, 0, record_transactions=True)
        for name in ("purchases", "repeat_purchases", "customers_acquired", "referred_customers",
                     "customers_dropped_out", "active_customers_end"):
            np.testing.assert_array_equal(small.monthly[name], default.monthly[name], err_msg=name)
        for name in ("gross_revenue", "npv_profit", "profit"):
            np.testing.assert_allclose(small.monthly[name], default.monthly[name], rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(small.cohorts["clv"], default.cohorts["clv"], rtol=1e-12)
        np.testing.assert_allclose(small.cohorts["network_value"], default.cohorts["network_value"], rtol=1e-12)
        np.testing.assert_array_equal(np.sort(small.transactions["time"]), np.sort(default.transactions["time"]))
        check_invariants(sc, small)
