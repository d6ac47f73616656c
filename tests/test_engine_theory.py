"""The engine without policy against the closed forms of the models it implements.

Each test: a cohort arriving at time 0, per-customer statistics from the transaction log, and
|simulated mean - closed form| <= 4 standard errors, with a bound on the standard error so that a noisy
run cannot pass (STYLE "Statistical tests"). Seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from support.scenarios import assert_within, one_segment

from sim.experiments.replications import run_replication
from sim.model import theory
from sim.schema.units import WEEKS_PER_YEAR

CDNOW_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
CDNOW_PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


def repeat_counts_at(transactions: dict, customers: int, t_years: float) -> np.ndarray:
    """Repeat purchases of every customer (all acquired at time 0) in (0, t]."""
    ids = transactions["customer_id"][transactions["time"] <= t_years]
    return np.bincount(ids, minlength=customers) - 1


def cdnow_bgnbd_segment() -> dict:
    p = CDNOW_BGNBD
    return {
        "purchases_per_year": {"r": p["r"], "alpha": p["alpha"], "alpha_unit": "week"},
        "dropout": {"model": "per_purchase", "a": p["a"], "b": p["b"]},
        "order_value": {"p": 6.25, "q": 3.74, "gamma": 15.44},
    }


@pytest.mark.parametrize("months", [3, 12, 18])
def test_bgnbd_expected_repeat_purchases(months: int) -> None:
    customers = 40_000
    sc = one_segment(cdnow_bgnbd_segment(), customers=customers, months=18, seed=11)
    tx = run_replication(sc, 0, record_transactions=True).transactions
    counts = repeat_counts_at(tx, customers, months / 12)
    weeks = months / 12 * WEEKS_PER_YEAR
    expected = theory.bgnbd_expected_repeat_purchases(weeks, **CDNOW_BGNBD)
    se = counts.std(ddof=1) / math.sqrt(customers)
    assert_within(counts.mean(), expected, se, max_std_error=0.03 * expected)


def test_paretonbd_expected_repeat_purchases() -> None:
    p = CDNOW_PARETO
    segment = {
        "purchases_per_year": {"r": p["r"], "alpha": p["alpha"], "alpha_unit": "week"},
        "dropout": {"model": "hazard", "s": p["s"], "beta": p["beta"], "beta_unit": "week"},
        "order_value": {"mean": 35.0},
    }
    customers = 40_000
    sc = one_segment(segment, customers=customers, months=18, seed=12)
    tx = run_replication(sc, 0, record_transactions=True).transactions
    for months in (6, 18):
        counts = repeat_counts_at(tx, customers, months / 12)
        expected = theory.paretonbd_expected_repeat_purchases(months / 12 * WEEKS_PER_YEAR, **p)
        se = counts.std(ddof=1) / math.sqrt(customers)
        assert_within(counts.mean(), expected, se, max_std_error=0.03 * expected)


def test_friendly_forms_are_the_same_bgnbd() -> None:
    """mean/cv of the rate and of the dropout probability map onto the BG/NBD's r, alpha, a, b."""
    rate_mean, rate_cv, p_mean, p_cv = 5.0, 0.8, 0.2, 0.6
    segment = {
        "purchases_per_year": {"mean": rate_mean, "cv": rate_cv},
        "dropout": {"model": "per_purchase", "mean": p_mean, "cv": p_cv},
        "order_value": {"mean": 20.0},
    }
    customers = 30_000
    sc = one_segment(segment, customers=customers, months=24, seed=13)
    tx = run_replication(sc, 0, record_transactions=True).transactions
    r = 1 / rate_cv**2
    total = (1 - p_mean) / (p_cv**2 * p_mean) - 1
    counts = repeat_counts_at(tx, customers, 2.0)
    expected = theory.bgnbd_expected_repeat_purchases(2.0, r, r / rate_mean, p_mean * total, (1 - p_mean) * total)
    se = counts.std(ddof=1) / math.sqrt(customers)
    assert_within(counts.mean(), expected, se, max_std_error=0.02 * expected)


def test_identical_customers_per_purchase_dropout() -> None:
    """With every cv 0: E[X(t)] = (1 - exp(-lambda p t)) / p (purchases thinned by the killing coin)."""
    rate, p = 6.0, 0.15
    segment = {
        "purchases_per_year": {"mean": rate},
        "dropout": {"model": "per_purchase", "mean": p},
        "order_value": {"mean": 20.0},
    }
    customers = 20_000
    sc = one_segment(segment, customers=customers, months=24, seed=14)
    tx = run_replication(sc, 0, record_transactions=True).transactions
    counts = repeat_counts_at(tx, customers, 2.0)
    expected = (1 - math.exp(-rate * p * 2.0)) / p
    se = counts.std(ddof=1) / math.sqrt(customers)
    assert_within(counts.mean(), expected, se, max_std_error=0.02 * expected)


def test_annual_churn_is_the_share_gone_within_a_year() -> None:
    """With cv > 0 the Gamma of hazards is fitted so that P(gone within a year) = annual_churn."""
    churn = 0.3
    segment = {
        "purchases_per_year": {"mean": 4.0},
        "dropout": {"model": "hazard", "annual_churn": churn, "cv": 1.2},
        "order_value": {"mean": 20.0},
    }
    customers = 20_000
    sc = one_segment(segment, customers=customers, months=12, seed=15)
    result = run_replication(sc, 0)
    gone = result.totals["customers_dropped_out"] / customers
    se = math.sqrt(churn * (1 - churn) / customers)
    assert_within(gone, churn, se, max_std_error=0.005)


def test_gamma_gamma_order_values() -> None:
    """First orders: mean p gamma / (q - 1) (native form); mean and variance of the friendly form."""
    customers = 100_000
    native = {
        "purchases_per_year": {"mean": 0.0},
        "dropout": {"model": "hazard", "annual_churn": 0.0},
        "order_value": {"p": 6.25, "q": 4.5, "gamma": 15.44},
    }
    tx = run_replication(one_segment(native, customers=customers, months=1, seed=16), 0,
                         record_transactions=True).transactions
    amounts = tx["amount"]
    assert len(amounts) == customers
    expected = theory.gamma_gamma_mean_spend(6.25, 4.5, 15.44)
    assert_within(amounts.mean(), expected, amounts.std(ddof=1) / math.sqrt(customers),
                  max_std_error=0.005 * expected)

    mean, cv, between_cv = 40.0, 0.5, 0.3
    friendly = dict(native, order_value={"mean": mean, "cv": cv, "between_cv": between_cv})
    tx = run_replication(one_segment(friendly, customers=customers, months=1, seed=17), 0,
                         record_transactions=True).transactions
    amounts = tx["amount"]
    assert_within(amounts.mean(), mean, amounts.std(ddof=1) / math.sqrt(customers), max_std_error=0.1)
    # Var = E[own mean^2] / p + Var(own mean), with p = 1/cv^2.
    expected_var = mean**2 * (1 + between_cv**2) * cv**2 + (between_cv * mean) ** 2
    centred = amounts - amounts.mean()
    var = centred.var(ddof=1)
    var_se = math.sqrt((np.mean(centred**4) - var**2) / customers)
    assert_within(var, expected_var, var_se, max_std_error=0.03 * expected_var)


def test_order_value_growth_with_tenure() -> None:
    """growth_per_year g: an order t years after acquisition is worth (1 + g)^t times the first."""
    g = 0.5
    segment = {
        "purchases_per_year": {"mean": 12.0},
        "dropout": {"model": "hazard", "annual_churn": 0.0},
        "order_value": {"mean": 10.0, "growth_per_year": g},
    }
    tx = run_replication(one_segment(segment, customers=200, months=24, seed=18), 0,
                         record_transactions=True).transactions
    np.testing.assert_allclose(tx["amount"], 10.0 * (1 + g) ** tx["time"], rtol=1e-6)


@pytest.mark.parametrize("rate,churn,discount", [(6.0, 0.3, 0.10), (2.0, 0.6, 0.0), (12.0, 0.1, 0.25)])
def test_constant_rate_clv(rate: float, churn: float, discount: float) -> None:
    """Identical customers, hazard dropout: CLV = m v + m v lambda (1 - e^{-(mu+delta)T}) / (mu+delta)."""
    margin, value, months = 0.3, 50.0, 36
    segment = {
        "purchases_per_year": {"mean": rate},
        "dropout": {"model": "hazard", "annual_churn": churn},
        "order_value": {"mean": value},
    }
    customers = 20_000
    sc = one_segment(segment, customers=customers, months=months, seed=19,
                     economics={"gross_margin": margin, "annual_discount_rate": discount})
    result = run_replication(sc, 0, record_transactions=True)
    tx = result.transactions
    per_customer = np.bincount(tx["customer_id"], weights=margin * tx["amount"] * np.exp(-math.log1p(discount) * tx["time"]),
                               minlength=customers)
    np.testing.assert_allclose(per_customer.mean(), result.totals["clv_per_customer"], rtol=1e-9)
    expected = theory.constant_rate_clv(margin, value, rate, -math.log1p(-churn), math.log1p(discount), months / 12)
    se = per_customer.std(ddof=1) / math.sqrt(customers)
    assert_within(per_customer.mean(), expected, se, max_std_error=0.01 * expected)


def test_organic_referrals_first_generation() -> None:
    """Referrals at rate rho while alive: E[referred] = N rho (1 - e^{-mu T}) / mu (children do not refer)."""
    rho, churn, months, customers = 0.5, 0.4, 24, 20_000
    mu, horizon = -math.log1p(-churn), months / 12
    segments = {
        "parent": {
            "purchases_per_year": {"mean": 3.0},
            "dropout": {"model": "hazard", "annual_churn": churn},
            "order_value": {"mean": 10.0},
            "referrals_per_year": {"mean": rho, "segment": "child"},
        },
        "child": {
            "purchases_per_year": {"mean": 3.0},
            "dropout": {"model": "hazard", "annual_churn": churn},
            "order_value": {"mean": 10.0},
        },
    }
    from support.scenarios import scenario

    sc = scenario(horizon_months=months, segments=segments, seed=20,
                  acquisition=[{"channel": "web", "initial_customers": customers, "segments": {"parent": 1.0}}])
    result = run_replication(sc, 0)
    referred = result.totals["referred_customers"]
    mean_life = (1 - math.exp(-mu * horizon)) / mu
    second_moment = 2 / mu**2 * (1 - math.exp(-mu * horizon) * (1 + mu * horizon))
    per_parent_var = rho * mean_life + rho**2 * (second_moment - mean_life**2)
    se = math.sqrt(customers * per_parent_var)
    assert_within(referred, customers * rho * mean_life, se, max_std_error=0.02 * customers * rho * mean_life)
    assert result.totals["customers_acquired"] == customers + referred
