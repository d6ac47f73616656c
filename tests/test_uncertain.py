"""Uncertain values (``{dist: ...}``): the distributions' draws against their closed forms, and common random
numbers over assumptions (the same draw for every scenario of a replication, a different one per replication)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.experiments.compare import Comparison
from sim.experiments.replications import run_many, run_scenario
from sim.input.errors import InputError
from sim.input.scenarios import load_scenario, resolve_baseline
from sim.model.assumptions import assumption_values, realise
from sim.random.streams import assumption_uniform
from sim.schema import Scenario
from sim.schema.uncertain import TAIL, UncertainValue

SEGMENT = {"purchases_per_year": {"mean": 4.0, "cv": 0.5},
           "dropout": {"model": "per_purchase", "mean": 0.1, "cv": 0.5},
           "order_value": {"mean": 40.0, "cv": 0.5}}


def scenario(**changes) -> Scenario:
    data = {"name": "u", "horizon_months": 6, "replications": 6, "seed": 3, "economics": {"gross_margin": 0.3},
            "segments": {"s": SEGMENT},
            "acquisition": [{"channel": "web", "initial_customers": {"dist": "uniform", "low": 50, "high": 400}}],
            "policy": {"points": {"reward_threshold": 300, "reward_value": 5}},
            "response": {"goal_gradient": {"dist": "triangular", "low": 0.0, "mode": 0.1, "high": 0.4}}}
    data.update(changes)
    return Scenario.model_validate(data)


# (distribution, closed-form mean, closed-form variance)
LAWS = [
    ({"dist": "uniform", "low": 2.0, "high": 5.0}, 3.5, 9.0 / 12.0),
    ({"dist": "triangular", "low": 0.0, "mode": 0.1, "high": 0.4}, 0.5 / 3.0,
     (0.0 + 0.01 + 0.16 - 0.0 - 0.0 - 0.04) / 18.0),
    ({"dist": "normal", "mean": 0.05, "sd": 0.02}, 0.05, 0.02**2),
    ({"dist": "lognormal", "median": 10.0, "sd_log": 0.4}, 10.0 * math.exp(0.08),
     100.0 * (math.exp(0.16) - 1.0) * math.exp(0.16)),
    ({"dist": "beta", "mean": 0.3, "sd": 0.1}, 0.3, 0.01),
]


@pytest.mark.parametrize(("law", "mean", "variance"), LAWS, ids=[law[0]["dist"] for law in LAWS])
def test_draws_have_the_closed_form_mean_and_variance(law, mean, variance) -> None:
    item = UncertainValue(path=("x",), distribution=law)
    draws = np.array([item.value(assumption_uniform(5, r, "x")) for r in range(4000)])
    std_error = math.sqrt(variance / draws.size)
    assert std_error < 0.02 * max(abs(mean), 1e-9) + 1e-3          # the test can tell a wrong mean
    assert abs(draws.mean() - mean) <= 4 * std_error
    # the sample variance's standard error: sqrt((m4 - variance^2) / n), m4 the sample's fourth central moment
    fourth = float(np.mean((draws - draws.mean()) ** 4))
    assert abs(draws.var(ddof=1) - variance) <= 4 * math.sqrt((fourth - draws.var() ** 2) / draws.size)
    low, high = item.extremes()
    assert draws.min() >= low and draws.max() <= high


def test_uniforms_stay_inside_the_tails() -> None:
    values = [assumption_uniform(0, r, "k") for r in range(2000)]
    assert 0.0 < min(values) and max(values) < 1.0
    item = UncertainValue(path=("x",), distribution={"dist": "normal", "mean": 0.0, "sd": 1.0})
    assert item.value(0.0) == item.value(TAIL) == pytest.approx(-6.0)


def test_the_scenario_shows_the_median_and_keeps_the_distribution() -> None:
    s = scenario()
    assert s.acquisition[0].initial_customers == 225 and isinstance(s.acquisition[0].initial_customers, int)
    assert [item.key for item in s.uncertain] == ["acquisition.0.initial_customers", "response.goal_gradient"]
    assert s.uncertain[0].integer and not s.uncertain[1].integer


def test_draws_differ_across_replications_and_are_shared_by_every_scenario() -> None:
    main = scenario()
    other = scenario(name="v", policy={"points": {"reward_threshold": 600, "reward_value": 9}})
    run = run_scenario(main, baseline=main.without_policy())
    drawn = [assumption_values(main, r)["acquisition.0.initial_customers"] for r in range(main.replications)]
    assert len(set(drawn)) == main.replications                       # a new draw each replication
    assert list(run.metric_values("customers_acquired")) == drawn      # ... which the replication ran with
    assert list(run.baseline.metric_values("customers_acquired")) == drawn   # ... as did its baseline
    both = run_many([main, other])
    assert list(both[1].metric_values("customers_acquired")) == drawn  # and every compared scenario
    gradients = {assumption_values(s, 2)["response.goal_gradient"] for s in (main, other)}
    assert len(gradients) == 1
    assert realise(main, 2).response.goal_gradient == gradients.pop()


def test_same_seed_same_draws_other_seed_other_draws() -> None:
    assert assumption_values(scenario(), 1) == assumption_values(scenario(), 1)
    assert assumption_values(scenario(), 1) != assumption_values(scenario(seed=4), 1)


def test_policy_keys_are_left_out_of_the_baseline() -> None:
    s = scenario(policy={"points": {"reward_threshold": {"dist": "uniform", "low": 100, "high": 900},
                                    "reward_value": 5}})
    baseline = realise(s.without_policy(), 0)
    assert baseline.policy is None
    assert 100 <= realise(s, 0).policy.points.reward_threshold <= 900


def test_comparison_results_keep_the_pairing() -> None:
    main = scenario()
    results = run_many([main, scenario(name="w")])
    comparison = Comparison(results, results[0], reference_is_baseline=False)
    diff = comparison.differences()["w"]["customers_acquired"]
    assert diff.mean == 0.0 and diff.ci_low == diff.ci_high == 0.0


def test_a_file_baseline_must_share_the_population_uncertainty(tmp_path) -> None:
    text = """name: {name}
horizon_months: 6
baseline: {baseline}
economics: {{gross_margin: 0.3}}
segments:
  s:
    purchases_per_year: {{mean: {rate}, cv: 0.5}}
    dropout: {{model: per_purchase, mean: 0.1, cv: 0.5}}
    order_value: {{mean: 40, cv: 0.5}}
acquisition: [{{channel: web, initial_customers: 100}}]
"""
    (tmp_path / "base.yaml").write_text(text.format(name="b", baseline="none", rate=4))
    uncertain = "{dist: uniform, low: 2, high: 6}"
    (tmp_path / "main.yaml").write_text(text.format(name="m", baseline="base.yaml", rate=uncertain))
    main = load_scenario(tmp_path / "main.yaml")
    with pytest.raises(InputError, match="segments.s.purchases_per_year.mean"):
        resolve_baseline(main, tmp_path / "main.yaml")
    (tmp_path / "base.yaml").write_text(text.format(name="b", baseline="none", rate=uncertain))
    assert resolve_baseline(main, tmp_path / "main.yaml").uncertain == main.uncertain


def test_uncertain_evidence_draws_every_response_default_not_set_in_the_file() -> None:
    from sim.schema.evidence import EVIDENCE_RANGES
    from sim.schema.policy import Response

    s = scenario(response={"uncertain": "evidence", "member_max_lift": 0.2})
    keys = {item.key: item for item in s.uncertain if item.path[0] == "response"}
    assert set(keys) == {f"response.{k}" for k in EVIDENCE_RANGES if k != "member_max_lift"}
    # every response default has its range; the fixed effects (unset by default: a choice of form) have none
    defaults = {name for name, field in Response.model_fields.items() if field.default is not None}
    assert set(EVIDENCE_RANGES) == defaults
    for name, (low, high) in EVIDENCE_RANGES.items():
        if name != "member_max_lift":
            law = keys[f"response.{name}"].distribution
            assert (law.low, law.mode, law.high) == (low, Response.model_fields[name].default, high)
    values = [realise(s, r).response for r in range(20)]
    assert all(v.member_max_lift == 0.2 and v.member_frequency_lift is None for v in values)
    assert len({v.discount_elasticity for v in values}) == 20


def test_uncertain_takes_only_evidence() -> None:
    with pytest.raises(ValueError, match="only choice"):
        scenario(response={"uncertain": "all"})
