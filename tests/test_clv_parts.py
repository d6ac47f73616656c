"""CLV in the four parts of the marketing texts (docs/model.md, "CLV in four parts"): base, growth, network
and learning, as columns of cohorts.parquet on every engine.

The growth part (the discounted margin on what spend growth with tenure adds to each order) and the
learning part (the learning value times the customer's discounted alive years) are checked against their
closed forms for customers with constant rates (``sim.model.theory``), within 4 standard errors computed
from the sample with the standard error itself bounded; the identities (base + growth = clv, growth 0
without growth, learning 0 without a learning value, the total the sum of the parts) hold on every engine.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from support.scenarios import ROOT, assert_within, one_segment

from sim.accounting.tables import replication_result
from sim.engines.calendar import Engine
from sim.engines.lifetimes import Lifetimes
from sim.engines.program_lifetimes import ProgramLifetimes
from sim.engines.reference import ReferenceEngine
from sim.experiments.replications import run_replication
from sim.input.scenarios import load_scenario
from sim.model import theory

PARTS = ("clv_base", "clv_growth", "clv_learning", "clv_total")
SMALL_POINTS = ["acquisition.0.initial_customers=1500", "acquisition.0.new_per_month=100",
                "acquisition.1.new_per_month=40"]


def constant_segment(rate: float, churn: float, value: float, growth: float) -> dict:
    return {"purchases_per_year": {"mean": rate}, "dropout": {"model": "hazard", "annual_churn": churn},
            "order_value": {"mean": value, "cv": 0.5, "growth_per_year": growth}}


@pytest.mark.parametrize("rate,churn,growth,discount", [(6.0, 0.3, 0.10, 0.10), (12.0, 0.1, 0.5, 0.0)])
def test_growth_part_has_its_closed_form(rate: float, churn: float, growth: float, discount: float) -> None:
    """Identical customers (Gamma order values around a constant mean), hazard dropout, spend growth g:
    E[clv_growth] = m v lambda [A(mu+delta-gamma) - A(mu+delta)], A(k) = (1 - e^-kT)/k, gamma = ln(1+g)."""
    margin, value, months, customers = 0.3, 50.0, 36, 20_000
    sc = one_segment(constant_segment(rate, churn, value, growth), customers=customers, months=months, seed=23,
                     economics={"gross_margin": margin, "cost_to_serve_per_order": 1.5,
                                "annual_discount_rate": discount})
    result = run_replication(sc, 0, record_transactions=True)
    tx = result.transactions
    delta, log_growth = math.log1p(discount), math.log1p(growth)
    amount = tx["amount"]   # list price: no program
    grown = margin * (amount - amount / np.exp(log_growth * tx["time"])) * np.exp(-delta * tx["time"])
    per_customer = np.bincount(tx["customer_id"], weights=grown, minlength=customers)
    cohorts = result.cohorts
    assert len(cohorts["customers"]) == 1
    # the engine's cohort column is the definition applied to its own log, to rounding
    np.testing.assert_allclose(cohorts["clv_growth"][0], per_customer.mean(), rtol=1e-9)
    np.testing.assert_allclose(cohorts["clv_base"][0] + cohorts["clv_growth"][0], cohorts["clv"][0], rtol=1e-12)
    expected = theory.constant_rate_clv_growth(margin, value, rate, -math.log1p(-churn), delta, log_growth,
                                               months / 12)
    se = per_customer.std(ddof=1) / math.sqrt(customers)
    assert_within(per_customer.mean(), expected, se, max_std_error=0.02 * expected)


def test_learning_part_is_exact_without_dropout() -> None:
    """Nobody leaves: every customer's discounted alive years are (1 - e^-delta (T - a)) / delta from its
    arrival a, exactly, on the engine without a program and on both program engines."""
    v, discount, months = 7.5, 0.12, 18
    delta = math.log1p(discount)
    segment = constant_segment(4.0, 0.0, 30.0, 0.0)
    sc = one_segment(segment, customers=300, months=months, seed=3,
                     economics={"gross_margin": 0.3, "annual_discount_rate": discount,
                                "learning_value_per_customer_year": v})
    expected = v * float(theory.discounted_alive_years(0.0, delta, months / 12))
    cohorts = Lifetimes(sc, 0).run().cohorts
    np.testing.assert_allclose(cohorts["clv_learning"], [expected], rtol=1e-12)
    with_program = sc.model_copy(update={"policy": load_scenario(
        ROOT / "scenarios" / "points_program.yaml").policy.model_copy(update={"discounts": []})})
    for engine in (ProgramLifetimes, Engine):
        got = engine(with_program, 0).run().cohorts
        np.testing.assert_allclose(got["clv_learning"], [expected], rtol=1e-12, err_msg=engine.__name__)


def test_learning_part_with_exponential_lifetimes() -> None:
    """Hazard mu: E[clv_learning] = v (1 - e^-(delta+mu)T)/(delta+mu); the cohort's mean over replications
    against it, the standard error from the replications."""
    v, churn, discount, months, customers, replications = 10.0, 0.4, 0.1, 30, 4000, 12
    sc = one_segment(constant_segment(3.0, churn, 20.0, 0.0), customers=customers, months=months, seed=29,
                     economics={"gross_margin": 0.3, "annual_discount_rate": discount,
                                "learning_value_per_customer_year": v})
    means = np.array([run_replication(sc, r).cohorts["clv_learning"][0] for r in range(replications)])
    expected = v * float(theory.discounted_alive_years(-math.log1p(-churn), math.log1p(discount), months / 12))
    se = means.std(ddof=1) / math.sqrt(replications)
    assert_within(means.mean(), expected, se, max_std_error=0.005 * expected)


def assert_parts_add_up(cohorts: dict, *, growth: bool, learning: bool, label: str) -> None:
    for name in PARTS:
        assert name in cohorts, f"{label}: {name}"
    clv = cohorts["clv"]
    np.testing.assert_allclose(cohorts["clv_base"] + cohorts["clv_growth"], clv, rtol=1e-12, atol=1e-9,
                               err_msg=label)
    np.testing.assert_allclose(cohorts["clv_total"], cohorts["clv_base"] + cohorts["clv_growth"]
                               + cohorts["network_value"] + cohorts["clv_learning"], rtol=1e-12, atol=1e-9,
                               err_msg=label)
    if growth:   # a cohort without repeat purchases (tenure 0 only) has none
        assert np.all(cohorts["clv_growth"] >= 0) and np.any(cohorts["clv_growth"] > 0), label
    else:
        assert np.all(cohorts["clv_growth"] == 0.0), label
    if learning:
        assert np.all(cohorts["clv_learning"] > 0), label
    else:
        assert np.all(cohorts["clv_learning"] == 0.0), label


@pytest.mark.parametrize("growth,learning", [(True, True), (False, False)])
def test_parts_add_up_on_every_engine(growth: bool, learning: bool) -> None:
    """base + growth = clv and total = base + growth + network + learning, cohort by cohort; the growth part
    is exactly 0 without spend growth and the learning part exactly 0 without a learning value."""
    overrides = [*SMALL_POINTS, f"economics.learning_value_per_customer_year={3.0 if learning else 0}",
                 f"segments.regular.order_value.growth_per_year={0.05 if growth else 0}",
                 f"segments.loyal.order_value.growth_per_year={0.02 if growth else 0}"]
    program = load_scenario(ROOT / "scenarios" / "points_program.yaml", overrides)
    without = program.model_copy(update={"policy": None})
    for label, engine, sc in (("lifetimes", Lifetimes, without), ("compiled program", ProgramLifetimes, program),
                              ("calendar", Engine, program)):
        ledger = engine(sc, 1).simulate()
        cohorts = replication_result(sc, 1, ledger, 0, None).cohorts
        assert_parts_add_up(cohorts, growth=growth, learning=learning, label=label)
    small = program.model_copy(update={"acquisition": [a.model_copy(update={"initial_customers": 150,
                                                                            "new_per_month": 10})
                                                       for a in program.acquisition], "horizon_months": 8})
    assert_parts_add_up(ReferenceEngine(small, 0).run().cohorts, growth=growth, learning=learning,
                        label="reference")

