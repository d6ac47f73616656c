"""Extreme numbers at the door: every numeric key of a small scenario with every lever, set to 0, negative,
tiny, huge, inf or nan, is either refused as bad input (exit status 2) or runs to finite results.

Was: a cost of 1e308 gave ``profit: null``, ``order_value.growth_per_year: 1e6`` negative points earned,
a cv of 1e154 an OverflowError, a ``reward_threshold`` of 10^30 a traceback, and a ``self_selection`` of
1e5 a run that never ended.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sim.cli import main
from sim.experiments.replications import run_scenario
from sim.input.errors import InputError
from sim.input.scenarios import load_scenario, resolve_baseline

#: About 200 customers over 12 months, one replication; every lever and both dropout models.
SMALL: dict[str, Any] = {
    "name": "extreme",
    "horizon_months": 12,
    "replications": 1,
    "seed": 3,
    "economics": {"gross_margin": 0.3, "cost_to_serve_per_order": 4.0, "annual_discount_rate": 0.1},
    "segments": {
        "regular": {
            "purchases_per_year": {"mean": 5.0, "cv": 0.8},
            "dropout": {"model": "per_purchase", "mean": 0.15, "cv": 0.6},
            "order_value": {"mean": 50.0, "cv": 0.5, "between_cv": 0.4, "growth_per_year": 0.03},
            "referrals_per_year": {"mean": 0.1, "cv": 0.5},
            "deal_proneness": 0.6,
        },
        "loyal": {
            "purchases_per_year": {"mean": 9.0, "cv": 0.6},
            "dropout": {"model": "hazard", "annual_churn": 0.2, "cv": 0.8},
            "order_value": {"mean": 75.0, "cv": 0.4},
        },
    },
    "acquisition": [{"channel": "web", "cac": 20.0, "initial_customers": 100, "new_per_month": 8,
                     "months": 12, "segments": {"regular": 0.7, "loyal": 0.3}}],
    "policy": {
        "enrollment": {"probability": 0.6, "self_selection": 1.0},
        "points": {"earn_per_currency": 1.0, "reward_threshold": 200, "reward_value": 10.0,
                   "reward_cost_ratio": 0.7, "redeemer_share": 0.75, "expiry_months_inactive": 6},
        "tiers": [{"name": "gold", "min_spend_12m": 300.0, "earn_multiplier": 2.0, "frequency_lift": 0.1,
                   "dropout_multiplier": 0.8, "benefit_cost_per_year": 12.0}],
        "discounts": [
            {"name": "sale", "kind": "blanket", "depth": 0.2, "start_month": 2, "every_months": 6,
             "duration_days": 7.0},
            {"name": "come-back", "kind": "winback", "inactive_days": 90.0, "depth": 0.25, "valid_days": 14.0,
             "message_cost": 0.5},
            {"name": "best", "kind": "targeted", "target": "top_predicted_clv", "share": 0.2, "start_month": 3,
             "every_months": 3, "depth": 0.1, "valid_days": 10.0, "message_cost": 0.2},
        ],
        "referral": {"referrer_bonus": 10.0, "referee_bonus": 5.0},
        "costs": {"fixed_per_month": 100.0, "per_member_per_year": 1.0},
    },
    "response": {"member_frequency_lift": 0.05, "member_dropout_multiplier": 0.85, "goal_gradient": 0.2,
                 "discount_uplift": 1.5, "pull_forward": 0.5, "habituation": 0.02, "winback_reactivation": 0.05,
                 "referral_bonus_lift": 1.0},
}

#: Results that are ratios, undefined (nan) when their denominator is 0: never infinite, though.
RATIOS = {"clv_per_customer", "clv_minus_cac_per_customer", "breakage_rate", "roi", "payback_month"}
#: Results that cannot be negative.
COUNTS = {"customers_acquired", "purchases", "points_earned", "points_redeemed", "points_expired",
          "points_outstanding"}


def _numeric_keys(value: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _numeric_keys(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _numeric_keys(v, (*path, i))]
    return [path] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


NUMERIC_KEYS = _numeric_keys(SMALL)
EXTREMES = [0, 0.0, -1, -1.0, -1e308, 5e-324, 1e-300, 1e-12, 1e9, 1e12, 1e30, 1e154, 1e300, 1e308,
            10**30, 2**63, math.inf, -math.inf, math.nan]


def _with(path: tuple, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(SMALL)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _write(data: dict[str, Any], folder: Path) -> Path:
    path = folder / "extreme.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _assert_finite_run(path: Path) -> None:
    try:
        scenario = load_scenario(path)
    except InputError as exc:
        assert all(str(path) in str(p) for p in exc.problems), exc
        return
    result = run_scenario(scenario, baseline=resolve_baseline(scenario, path), workers=1)
    for source, values in (("metrics", result.metrics()), ("vs_baseline", result.vs_baseline())):
        for name, estimate in values.items():
            mean = estimate.mean
            assert not math.isinf(mean), f"{source}.{name} is {mean}"
            assert math.isfinite(mean) or name in RATIOS, f"{source}.{name} is {mean}"
            if source == "metrics" and name in COUNTS:
                assert mean >= 0, f"{name} is {mean}"


def test_the_small_scenario_runs(tmp_path: Path) -> None:
    _assert_finite_run(_write(SMALL, tmp_path))
    assert len(NUMERIC_KEYS) > 50


# about 10-20 s: in the default run
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(NUMERIC_KEYS),
       value=st.sampled_from(EXTREMES) | st.floats(allow_nan=True, allow_infinity=True)
       | st.integers(-(2**70), 2**70))
@example(key=("acquisition", 0, "cac"), value=1e308)
@example(key=("segments", "regular", "order_value", "growth_per_year"), value=1e6)
@example(key=("segments", "regular", "purchases_per_year", "cv"), value=1e154)
@example(key=("policy", "points", "reward_threshold"), value=10**30)
@example(key=("policy", "enrollment", "self_selection"), value=1e5)
@example(key=("segments", "loyal", "purchases_per_year", "mean"), value=-0.0)
def test_extreme_values_are_refused_or_give_finite_results(tmp_path: Path, key: tuple, value: Any) -> None:
    _assert_finite_run(_write(_with(key, value), tmp_path))


@pytest.mark.parametrize(("key", "value", "message"), [
    (("acquisition", 0, "cac"), 1e308, "acquisition.0.cac: Input should be less than or equal to 1000000000"),
    (("policy", "costs", "fixed_per_month"), 1e308, "policy.costs.fixed_per_month: Input should be less"),
    (("segments", "regular", "order_value", "growth_per_year"), 1e6, "growth_per_year: Input should be less"),
    (("segments", "regular", "purchases_per_year", "cv"), 1e154, "purchases_per_year.cv: Input should be less"),
    (("policy", "points", "reward_threshold"), 10**30, "policy.points.reward_threshold: Input should be less"),
    (("policy", "enrollment", "self_selection"), 1e5, "policy.enrollment.self_selection: Input should be less"),
])
def test_beyond_any_business_is_bad_input(tmp_path: Path, key: tuple, value: Any, message: str) -> None:
    path = _write(_with(key, value), tmp_path)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {path}:"), result.stderr
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(("segment", "message"), [
    ({"purchases_per_year": {"r": 1.0, "alpha": 1e-300}}, "the mean purchase rate (r / alpha) per year is"),
    ({"dropout": {"model": "hazard", "annual_churn": 0.999999, "cv": 100.0}}, "the mean dropout hazard"),
    ({"order_value": {"p": 2.0, "q": 3.0, "gamma": 1e300}}, "the mean order value"),
])
def test_native_parameters_beyond_the_bounds_are_bad_input(tmp_path: Path, segment: dict, message: str) -> None:
    data = copy.deepcopy(SMALL)
    data["segments"]["loyal"].update(segment)
    path = _write(data, tmp_path)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:" in result.stderr and message in result.stderr, result.stderr


def test_points_beyond_exact_counting_are_bad_input(tmp_path: Path) -> None:
    """Each number within its bound, together: orders of 1e9 growing x11 a year for 10 years, 1000 points
    per unit, a x100 tier. Was: accepted, and the int64 points wrapped negative."""
    data = copy.deepcopy(SMALL)
    data["horizon_months"] = 120
    data["segments"]["regular"]["order_value"].update(mean=1e9, growth_per_year=10.0)
    data["policy"]["points"]["earn_per_currency"] = 1000.0
    data["policy"]["tiers"][0]["earn_multiplier"] = 100.0
    path = _write(data, tmp_path)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:" in result.stderr and "policy.points.earn_per_currency: an average order of segment " \
        "'regular' would earn 2.59e+24 points" in result.stderr, result.stderr


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_one_purchase_earns_at_most_2_to_the_53_points(engine: str) -> None:
    """The door keeps an average order's points below 1e12; a heavy-tailed order far beyond is capped
    rather than wrapping the int64 points negative (here forced: the scenario is altered behind the door)."""
    from sim.experiments.replications import run_replication
    from sim.schema import Scenario

    data = copy.deepcopy(SMALL)
    data["acquisition"][0].update(initial_customers=20, new_per_month=0)
    scenario = Scenario.model_validate(data)
    segment = scenario.segments["regular"]
    huge = segment.model_copy(update={"order_value": segment.order_value.model_copy(update={"mean": 1e20})})
    scenario = scenario.model_copy(update={"segments": {**scenario.segments, "regular": huge}})
    totals = run_replication(scenario, 0, engine=engine).totals
    assert 0 < totals["points_earned"] <= 2.0**53 * totals["purchases"]
    assert totals["points_outstanding"] >= 0


def test_negative_zero_is_zero(tmp_path: Path) -> None:
    """Was: a purchase rate of -0.0 passed `>= 0`, and the run never ended (event times went to -inf)."""
    path = _write(_with(("segments", "loyal", "purchases_per_year", "mean"), -0.0), tmp_path)
    scenario = load_scenario(path, ["segments.regular.order_value.growth_per_year=-0.0"])
    assert math.copysign(1.0, scenario.segments["loyal"].purchases_per_year.mean) == 1.0
    assert math.copysign(1.0, scenario.segments["regular"].order_value.growth_per_year) == 1.0
