"""The benchmark's naive points script (bench/bench_engine.py) simulates the model the engine does.

The benchmark quotes the points program's speed as a multiple of a one-simpy-process-per-customer script of
the same model. The multiple means something only if the script is that model: its totals must agree with
the engine's in distribution (independent draws, so compared by the means of replications and their
standard errors), and stay so when the model or the response defaults change.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from sim.experiments.replications import run_scenario
from sim.schema import Scenario

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_engine.py"
CUSTOMERS, REPLICATIONS = 2_000, 40
#: Every total the script keeps; z beyond this for any of them fails (fixed seeds: the test is deterministic;
#: at the same model, P(|z| > 4 for one of 11) is under 1e-3).
Z_LIMIT = 4.0
TOTALS = ("customers_acquired", "referred_customers", "members_acquired", "purchases", "gross_revenue",
          "reward_cost", "points_earned", "points_redeemed", "points_expired", "member_cost", "profit")


def _bench():
    spec = importlib.util.spec_from_file_location("bench_engine", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_naive_points_script_simulates_the_engines_model():
    bench = _bench()
    model = bench.naive_points_model(CUSTOMERS)
    script = [bench.child_naive_points(model, seed=1_000 + k)["totals"] for k in range(REPLICATIONS)]
    scenario = Scenario.model_validate({**bench.scenario_dict(CUSTOMERS, points=True), "replications": REPLICATIONS})
    engine = [replication.totals for replication in run_scenario(scenario).replications]
    assert min(run["points_redeemed"] for run in script) > 0 and min(run["points_expired"] for run in script) > 0
    for name in TOTALS:
        a = np.array([run[name] for run in script])
        b = np.array([run[name] for run in engine])
        se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        z = (a.mean() - b.mean()) / se
        assert abs(z) < Z_LIMIT, (name, a.mean(), b.mean(), z)


def test_naive_points_script_fails_a_model_it_does_not_simulate():
    """The script is written for the benchmark's points scenario (value curves, no tiers, discounts or
    referral program): a scenario beyond it stops it rather than running another model."""
    bench = _bench()
    original = bench.POINTS_POLICY
    bench.POINTS_POLICY = {**original, "tiers": [{"name": "gold", "min_spend_12m": 500}]}
    try:
        with pytest.raises(AssertionError, match="the script's model"):
            bench.naive_points_model(100)
    finally:
        bench.POINTS_POLICY = original
