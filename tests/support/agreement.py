"""The agreement harness: scenarios run by the fast and the reference engine, and the checks that they agree.

Both engines simulate one semantics with no shared behaviour code and no shared random numbers, so they can
only agree in distribution: the means over replications of key metrics must agree within K = 4 combined
standard errors, |mean_fast - mean_ref| <= 4 sqrt(se_fast^2 + se_ref^2), and a metric that does not vary
between replications must be equal. Test modules add their scenarios to :data:`SCENARIOS` with
:func:`register` and use :func:`runs`, :func:`assert_agree` and :func:`assert_curves_agree`
(tests/test_reference.py, tests/test_validation_examples.py, tests/test_validation_points.py;
``python bench/validation_table.py`` prints the whole table). Replications run in a pool of up to two
processes; seeds are fixed, so the checks are deterministic.
"""

from __future__ import annotations

import copy
import functools
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from sim.accounting.tables import ReplicationResult
from sim.engines.calendar import Engine
from sim.engines.reference import ReferenceEngine
from sim.experiments.replications import fast_engine
from sim.model.assumptions import realise
from sim.schema import Scenario

K = 4.0
WORKERS = max(1, min(2, os.cpu_count() or 1))
ENGINES = {"fast": fast_engine, "ref": ReferenceEngine}

# ---------------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------------
REGULAR = {  # BG/NBD, heterogeneous everything, spend growing with tenure, organic referrals
    "purchases_per_year": {"mean": 6.0, "cv": 0.8},
    "dropout": {"model": "per_purchase", "mean": 0.12, "cv": 0.5},
    "order_value": {"mean": 50.0, "cv": 0.5, "between_cv": 0.3, "growth_per_year": 0.05},
    "referrals_per_year": {"mean": 0.1, "cv": 0.5},
    "deal_proneness": 0.6,
}
LOYAL = {  # Pareto/NBD; its referrals join the regular segment
    "purchases_per_year": {"mean": 10.0, "cv": 0.6},
    "dropout": {"model": "hazard", "annual_churn": 0.25, "cv": 0.7},
    "order_value": {"mean": 70.0, "cv": 0.4, "between_cv": 0.3},
    "referrals_per_year": {"mean": 0.2, "segment": "regular"},
    "deal_proneness": 0.3,
}
NO_REFERRALS = {"mean": 0.0}


def build(*, customers: int, months: int, new_per_month: int = 0, referrals: bool = True,
          policy: dict | None = None, response: dict | None = None, seed: int = 11) -> Scenario:
    """Two segments through two channels: ``customers`` at time 0 (80% regular) and ``new_per_month``
    (half and half) through a second channel."""
    regular, loyal = copy.deepcopy(REGULAR), copy.deepcopy(LOYAL)
    if not referrals:
        regular["referrals_per_year"] = loyal["referrals_per_year"] = NO_REFERRALS
    data = {
        "name": "reference-check", "horizon_months": months, "replications": 1, "seed": seed,
        "economics": {"gross_margin": 0.3, "cost_to_serve_per_order": 2.0, "annual_discount_rate": 0.1,
                      "learning_value_per_customer_year": 4.0},
        "segments": {"regular": regular, "loyal": loyal},
        "acquisition": [
            {"channel": "web", "cac": 20.0, "initial_customers": customers,
             "segments": {"regular": 0.8, "loyal": 0.2}},
            {"channel": "store", "cac": 5.0, "new_per_month": new_per_month,
             "segments": {"regular": 0.5, "loyal": 0.5}},
        ],
    }
    if policy is not None:
        data["policy"] = policy
    if response is not None:
        data["response"] = response
    return Scenario.model_validate(data)


def bgnbd_only(*, customers: int, months: int, seed: int = 5) -> Scenario:
    """One BG/NBD segment, no referrals: customers are independent and identically distributed."""
    segment = dict(copy.deepcopy(REGULAR), referrals_per_year=NO_REFERRALS)
    return Scenario.model_validate({
        "name": "bgnbd", "horizon_months": months, "replications": 1, "seed": seed,
        "economics": {"gross_margin": 0.3, "cost_to_serve_per_order": 1.0},
        "segments": {"regular": segment},
        "acquisition": [{"channel": "web", "cac": 10.0, "initial_customers": customers}],
    })


def revive(*, customers: int, months: int, seed: int) -> Scenario:
    segment = dict(copy.deepcopy(REGULAR), referrals_per_year=NO_REFERRALS,
                   dropout={"model": "per_purchase", "mean": 0.5})
    return Scenario.model_validate({
        "name": "revive", "horizon_months": months, "replications": 1, "seed": seed,
        "economics": {"gross_margin": 0.3, "learning_value_per_customer_year": 4.0},
        "segments": {"regular": segment},
        "acquisition": [{"channel": "web", "initial_customers": customers}],
        "policy": {"enrollment": {"probability": 1.0}, "costs": {"per_member_per_year": 12.0},
                   "discounts": [{"name": "wb", "kind": "winback", "inactive_days": 20, "depth": 0.1,
                                  "valid_days": 10}]},
        "response": {"winback_reactivation": 1.0},
    })


NO_MEMBERS = {"probability": 0.0}
POINTS = {"earn_per_currency": 1, "reward_threshold": 200, "reward_value": 5, "reward_cost_ratio": 0.7,
          "redeemer_share": 0.8, "expiry_months_inactive": 3}
TIERS = [
    {"name": "silver", "min_spend_12m": 150, "earn_multiplier": 1.25, "frequency_lift": 0.1,
     "dropout_multiplier": 0.8, "benefit_cost_per_year": 5},
    {"name": "gold", "min_spend_12m": 500, "earn_multiplier": 1.5, "frequency_lift": 0.3,
     "dropout_multiplier": 0.5, "benefit_cost_per_year": 20},
]
BLANKET = {"name": "sale", "kind": "blanket", "depth": 0.2, "start_month": 1, "every_months": 2,
           "duration_days": 10}
WINBACK = {"name": "win-back", "kind": "winback", "inactive_days": 60, "depth": 0.2, "valid_days": 30,
           "message_cost": 0.5}
TOP_CLV = {"name": "vip", "kind": "targeted", "target": "top_predicted_clv", "share": 0.25, "start_month": 2,
           "every_months": 2, "depth": 0.15, "valid_days": 30, "message_cost": 0.2}
AT_RISK = {"name": "rescue", "kind": "targeted", "target": "at_risk", "share": 0.3, "start_month": 1,
           "every_months": 3, "depth": 0.25, "valid_days": 45, "message_cost": 0.3}
EVERYTHING = {
    "enrollment": {"probability": 0.6, "self_selection": 1.0}, "points": POINTS, "tiers": TIERS,
    "discounts": [dict(BLANKET, every_months=6), WINBACK, TOP_CLV],
    "referral": {"referrer_bonus": 10, "referee_bonus": 5},
    "costs": {"fixed_per_month": 100, "per_member_per_year": 2.0},
}
STRONG = {"goal_gradient": 0.5, "habituation": 0.05, "winback_reactivation": 0.3, "member_frequency_lift": 0.1,
          "member_dropout_multiplier": 0.7}

#: Every effect on its value curve (docs/levers.md section 3), strengthened for power: tiers without fixed
#: lifts act through their benefits, the discounts through their depths, referrals through the bonus.
VALUE_CURVES = {"member_max_lift": 0.5, "member_max_retention": 1.0, "goal_gradient_max": 1.0,
                "tier_max_lift": 0.5, "tier_max_retention": 1.0, "habituation": 0.05, "heavy_buyer_damping": 2.0}
VALUE_TIERS = [{key: value for key, value in tier.items() if key not in ("frequency_lift", "dropout_multiplier")}
               for tier in TIERS]

#: name -> (scenario, replications). Each scenario has its own seed, so that the tests are independent
#: (scenarios with one seed would share their customers in both engines, and their chance deviations).
SCENARIOS = {
    # no policy
    "bgnbd": (bgnbd_only(seed=101, customers=1500, months=12), 20),
    "mixed": (build(seed=102, customers=800, new_per_month=60, months=12), 20),
    "bgnbd_large": (bgnbd_only(seed=103, customers=3000, months=24), 24),
    "mixed_large": (build(seed=104, customers=1500, new_per_month=80, months=24), 20),
    # one lever (family) at a time
    "points": (build(seed=105, customers=800, new_per_month=40, months=12, response=STRONG, policy={
        "enrollment": {"probability": 0.6, "self_selection": 1.0}, "points": POINTS,
        "costs": {"fixed_per_month": 100, "per_member_per_year": 2.0}}), 16),
    "points_large": (build(seed=106, customers=1500, new_per_month=60, months=24, response=STRONG, policy={
        "enrollment": {"probability": 0.6, "self_selection": 1.0}, "points": POINTS,
        "costs": {"fixed_per_month": 100, "per_member_per_year": 2.0}}), 20),
    "blanket": (build(seed=107, customers=2000, months=18, referrals=False, response=STRONG, policy={
        "enrollment": NO_MEMBERS, "discounts": [BLANKET]}), 20),
    "tiers": (build(seed=108, customers=2000, months=24, referrals=False, response=STRONG, policy={
        "enrollment": {"probability": 0.7}, "points": dict(POINTS, expiry_months_inactive=None),
        "tiers": TIERS}), 20),
    "winback": (build(seed=109, customers=2500, months=18, referrals=False, response=STRONG, policy={
        "enrollment": NO_MEMBERS, "discounts": [WINBACK]}), 20),
    "targeted": (build(seed=110, customers=2500, months=18, referrals=False, response=STRONG, policy={
        "enrollment": NO_MEMBERS, "discounts": [TOP_CLV, AT_RISK]}), 20),
    "referral": (build(seed=111, customers=2000, new_per_month=50, months=18, policy={
        "enrollment": {"probability": 0.5}, "referral": {"referrer_bonus": 10, "referee_bonus": 5}},
        response={"referral_bonus_lift": 2.0}), 20),
    # win-back cycles: every repeat purchase has a 1 in 2 chance of dropout, every dropped-out member
    # gets a win-back 20 days after its last purchase and comes back: member time alive vs dead matters
    "revive": (revive(seed=113, customers=1000, months=12), 10),
    # every lever at once, every response on its value curve
    "value": (build(seed=114, customers=1200, new_per_month=40, months=24, response=VALUE_CURVES,
                    policy=dict(EVERYTHING, tiers=VALUE_TIERS)), 18),
    # every lever at once
    "everything": (build(seed=112, customers=1200, new_per_month=40, months=24, response=STRONG, policy=EVERYTHING), 18),
}

KEY = ("customers_acquired", "purchases", "repeat_purchases", "gross_revenue", "active_customers_end", "profit")
MONEY = ("npv_profit", "clv_per_customer")
POINT_METRICS = ("points_earned", "points_redeemed", "points_expired", "points_outstanding", "reward_cost")
MEMBER = ("members_acquired", "members_end", "member_purchases", "member_cost")
#: per scenario name, a function of (simulator, result) evaluated in the worker (see :func:`register`)
EXTRAS: dict[str, Callable] = {}
#: which inter-purchase times the two-sample tests compare (k = 1: acquisition to first repeat purchase)
GAP_ORDERS = (1, 2, 3)


# ---------------------------------------------------------------------------------------------------
# Running both engines
# ---------------------------------------------------------------------------------------------------
def register(name: str, scenario: Scenario, replications: int,
             extra: Callable[[Engine | ReferenceEngine, ReplicationResult], object] | None = None) -> None:
    """Add a scenario to :data:`SCENARIOS` (other test files add theirs: the shipped examples, ...).

    ``extra(simulator, result)``, a module-level function, runs in the worker after each replication and its
    value is kept as the replication's ``"extra"``: for statistics that need the engine object itself.
    """
    if name in SCENARIOS:
        raise ValueError(f"scenario {name!r} is registered already")
    SCENARIOS[name] = (scenario, replications)
    if extra is not None:
        EXTRAS[name] = extra


def interpurchase_gaps(tx: dict, orders: tuple[int, ...] = GAP_ORDERS) -> dict[int, np.ndarray]:
    """Per customer, the k-th inter-purchase time (years) for k in ``orders``: k = 1 is the time from the
    acquisition purchase to the first repeat purchase. One gap per customer and k, so the gaps of one k are
    independent draws (customers are independent), as a two-sample test needs."""
    ids, times = tx["customer_id"], tx["time"]   # sorted by customer, then time, in both engines
    position = np.arange(ids.size) - np.searchsorted(ids, ids)   # 0 = the acquisition purchase
    gap = np.diff(times, prepend=np.nan)
    return {k: gap[position == k] for k in orders}


def points_balances(tx: dict, expiry: float, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """Per transaction: the points balance right after it, and whether the balance expires before the
    customer's next purchase (or before the horizon, after its last one), as the rules of docs/levers.md 2.2
    imply from the log alone: a balance expires ``expiry`` years after a purchase not followed by another
    within that time. ``expiry`` inf = no expiry."""
    ids, times = tx["customer_id"], tx["time"]
    change = tx["points_earned"] - tx["points_redeemed"]
    first = np.r_[True, ids[1:] != ids[:-1]]
    last = np.r_[ids[1:] != ids[:-1], True]
    gap_after = np.where(last, np.inf, np.r_[np.diff(times), np.inf])
    expires = np.where(last, times + expiry < horizon, gap_after >= expiry)
    reset = first | np.r_[False, expires[:-1]]   # the balance starts from 0 at these purchases
    running = np.cumsum(change)
    start = np.flatnonzero(reset)
    balance = running - (running[start] - change[start])[np.cumsum(reset) - 1]
    return balance, expires


def points_from_log(tx: dict, scenario: Scenario) -> tuple[np.ndarray, float]:
    """(points expired in each month, points outstanding at the horizon) implied by the transaction log."""
    points = scenario.policy.points
    expiry = math.inf if points.expiry_months_inactive is None else points.expiry_months_inactive / 12.0
    months = scenario.horizon_months
    expired = np.zeros(months)
    if not tx["customer_id"].size:
        return expired, 0.0
    balance, expires = points_balances(tx, expiry, scenario.horizon_years)
    ends = expires & (balance > 0)
    month = np.minimum(((tx["time"][ends] + expiry) * 12.0).astype(np.int64), months - 1)
    np.add.at(expired, month, balance[ends])
    last = np.r_[tx["customer_id"][1:] != tx["customer_id"][:-1], True]
    return expired, float(balance[last & ~expires].sum())


def _replicate(engine: str, scenario: Scenario, replication: int, extra=None) -> dict:
    """One replication, reduced to what the tests need (small, so cheap to send back from a worker); both
    engines meet the replication's draws of any uncertain value, as in a run."""
    scenario = realise(scenario, replication)
    start = time.perf_counter()
    simulator = ENGINES[engine](scenario, replication, record_transactions=True)
    result = simulator.run()
    seconds = time.perf_counter() - start
    cohorts, tx = result.cohorts, result.transactions
    ids = tx["customer_id"]
    return {
        "totals": result.totals,
        "active": result.monthly["active_customers_end"],
        "purchases": result.monthly["purchases"],
        "network_value": float(np.sum(cohorts["network_value"] * cohorts["customers"])),
        "referral_clv": float(np.sum((cohorts["clv"] * cohorts["customers"])[cohorts["channel"] == "referral"])),
        # CLV's growth and learning parts, summed over customers
        **{name: float(np.sum(cohorts[name] * cohorts["customers"])) for name in ("clv_growth", "clv_learning")},
        "repeats_per_customer": np.bincount(ids) - 1,
        "spend_per_customer": np.bincount(ids, weights=tx["amount"]),
        "gaps": interpurchase_gaps(tx),
        "points_log": (points_from_log(tx, scenario)
                       if scenario.policy is not None and scenario.policy.points is not None else None),
        "points_engine": (result.monthly["points_expired"], result.totals["points_outstanding"]),
        "seconds": seconds,
        "extra": extra(simulator, result) if extra is not None else None,
        "columns": {"totals": sorted(result.totals), "monthly": sorted(result.monthly),
                    "cohorts": sorted(cohorts), "transactions": sorted(tx)},
    }


@functools.cache
def runs(name: str) -> dict[str, list[dict]]:
    """Every replication of scenario ``name`` by both engines (replications 0..n-1 of its seed)."""
    scenario, replications = SCENARIOS[name]
    extra = EXTRAS.get(name)
    tasks = [(engine, r) for engine in ENGINES for r in range(replications)]
    engines, indices = zip(*tasks)
    if WORKERS > 1:
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
        with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
            results = list(pool.map(_replicate, engines, [scenario] * len(tasks), indices, [extra] * len(tasks)))
    else:
        results = [_replicate(engine, scenario, r, extra) for engine, r in tasks]
    return {engine: [res for (eng, _), res in zip(tasks, results) if eng == engine] for engine in ENGINES}


def compare(name: str, metric: str) -> tuple[float, float, float, float]:
    """(mean fast, mean ref, combined standard error, smallest detectable relative difference)."""
    both = runs(name)
    values = {engine: np.array([rep["totals"][metric] if isinstance(metric, str) else metric(rep)
                                for rep in both[engine]], dtype=float) for engine in ENGINES}
    means = {engine: float(v.mean()) for engine, v in values.items()}
    se = math.sqrt(sum(float(v.var(ddof=1)) / v.size for v in values.values()))
    scale = max(abs(means["fast"]), abs(means["ref"]))
    return means["fast"], means["ref"], se, (K * se / scale if scale else math.nan)


def assert_agree(name: str, metrics: tuple) -> None:
    lines, bad = [], []
    for metric in metrics:
        fast, ref, se, detectable = compare(name, metric)
        label = metric if isinstance(metric, str) else metric.__name__
        if se == 0:
            ok, z = fast == ref, (0.0 if fast == ref else math.inf)
        else:
            z = (fast - ref) / se
            ok = abs(z) <= K
        lines.append(f"{label:24} fast {fast:14.6g} ref {ref:14.6g} z {z:6.2f} detectable {detectable:7.2%}")
        if not ok:
            bad.append(label)
    assert not bad, f"{name}: {', '.join(bad)} disagree beyond {K} SE\n" + "\n".join(lines)


#: The chance that :func:`assert_curves_agree` fails a curve when the engines agree (Bonferroni over months).
CURVE_FALSE_ALARM = 24 * 6.3e-5


def assert_curves_agree(name: str, columns: tuple[str, ...] = ("active", "purchases")) -> None:
    """Month by month, the engines' means differ by at most the Welch t quantile that keeps the chance of a
    false alarm over all the months below :data:`CURVE_FALSE_ALARM` (Bonferroni; about 4.0 SE for 24 months
    of normal means, about 5 SE for 36 months with 12 replications a side, where the estimated SE itself varies)."""
    from scipy import stats

    both = runs(name)
    for column in columns:
        curves = {e: np.array([rep[column] for rep in both[e]]) for e in ENGINES}
        parts = [c.var(0, ddof=1) / len(c) for c in curves.values()]
        se = np.sqrt(sum(parts))
        with np.errstate(divide="ignore", invalid="ignore"):   # Welch-Satterthwaite degrees of freedom
            df = sum(parts) ** 2 / sum(p**2 / (len(c) - 1) for p, c in zip(parts, curves.values(), strict=True))
            z = (curves["fast"].mean(0) - curves["ref"].mean(0)) / se
        limit = stats.t.isf(CURVE_FALSE_ALARM / (2 * se.size), np.where(np.isfinite(df), df, 1e9))
        same = (se == 0) & (curves["fast"].mean(0) == curves["ref"].mean(0))
        bad = ~same & ~(np.abs(z) <= limit)
        assert not bad.any(), f"{name}: {column} by month, z = {np.round(z, 2)}, limits {np.round(limit, 2)}"


# ---------------------------------------------------------------------------------------------------
# The model without a policy (fast tests)
# ---------------------------------------------------------------------------------------------------
