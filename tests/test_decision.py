"""The decision block: chance of paying, acceptability, chance best and expected loss, EVPI/EVPPI against
their closed form, break-even against the constant-rate model's closed form, and the files that carry it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import norm

from sim.accounting.decision import (
    acceptability_curve,
    choice_figures,
    decision_block,
    drawn_values,
    run_decision,
)
from sim.cli import main
from sim.experiments.replications import run_scenario
from sim.schema import Scenario


def evpi_std_error(net: np.ndarray) -> float:
    """Standard error of the EVPI estimate from ``net`` = E[net benefit | assumptions] per replication: that of
    the mean opportunity loss, max(net, 0) - net when the option is chosen (mean > 0), max(net, 0) otherwise."""
    loss = np.maximum(net, 0.0) - (net if net.mean() > 0 else 0.0)
    return float(np.std(loss, ddof=1)) / math.sqrt(net.size)


def closed_form_evpi(mu: float, sd: float) -> float:
    """EVPI of a choice between 0 and a net benefit ~ Normal(mu, sd): E[max(NB, 0)] - max(E[NB], 0)."""
    return sd * norm.pdf(mu / sd) + mu * norm.cdf(mu / sd) - max(mu, 0.0)


@pytest.mark.parametrize(("mu", "sd"), [(0.0, 1.0), (0.5, 1.0), (-1.0, 2.0), (1.0, 1.5)])
def test_evpi_of_a_net_benefit_linear_in_one_normal_assumption(mu: float, sd: float) -> None:
    rng = np.random.default_rng(7)
    n = 4000
    theta = rng.normal(mu, sd, n)
    noisy = 2.0 * theta + 1.0 + rng.normal(0.0, 0.8, n)     # simulation noise on top: not information
    block = decision_block({"program": noisy}, {"program": np.ones(n)}, {"x": theta})
    expected = closed_form_evpi(2.0 * mu + 1.0, 2.0 * sd)
    std_error = evpi_std_error(2.0 * theta + 1.0)
    assert std_error < 0.1 * expected
    assert abs(block["evpi"] - expected) <= 4 * std_error
    assert block["evppi"]["x"] == pytest.approx(block["evpi"])       # the only assumption: EVPPI = EVPI
    # the noise's share of the variance: 0.64 / (4 sd^2 + 0.64), within 4 standard errors of a variance ratio
    share = 0.64 / (4 * sd**2 + 0.64)
    assert abs(block["spread"]["simulation_noise_share"] - share) <= 4 * share * math.sqrt(2.0 / n)


def test_evppi_of_an_assumption_that_does_not_matter_is_nothing() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    matters, idle = rng.normal(0.0, 1.0, n), rng.uniform(0.0, 1.0, n)
    block = decision_block({"program": matters + rng.normal(0, 0.3, n)}, {"program": np.ones(n)},
                           {"matters": matters, "idle": idle})
    assert block["evppi"]["idle"] < 0.02 * block["evppi"]["matters"]
    assert block["evppi"]["matters"] == pytest.approx(closed_form_evpi(0.0, 1.0), abs=4 * 0.58 / math.sqrt(n))
    assert block["break_even"]["idle"]["value"] is None or block["break_even"]["idle"]["ci_low"] is None


def test_chance_best_and_expected_loss() -> None:
    a = np.array([1.0, -2.0, 3.0, 0.5])
    b = np.array([2.0, -1.0, 1.0, 0.4])
    figures = choice_figures({"a": a, "b": b})
    assert figures["a"]["p_best"] == 0.5 and figures["b"]["p_best"] == 0.25 and figures["baseline"]["p_best"] == 0.25
    best = np.array([2.0, 0.0, 3.0, 0.5])
    assert figures["a"]["expected_loss"] == pytest.approx(np.mean(best - a))
    assert figures["baseline"]["expected_loss"] == pytest.approx(np.mean(best))


def test_acceptability_curve_falls_and_starts_at_the_chance_of_paying() -> None:
    roi = np.linspace(-1.0, 3.0, 101)
    curve = acceptability_curve(roi)
    chances = [point["probability"] for point in curve]
    assert all(later <= earlier for earlier, later in zip(chances, chances[1:]))
    at_zero = acceptability_curve(roi, points=2)[0]          # from min(0, 5% quantile) = -0.8
    assert at_zero["probability"] == np.mean(roi > at_zero["roi"])


# ---- the constant-rate model: every customer alike, a constant purchase rate and dropout hazard ----------
N, RATE, CHURN, LIFT, VALUE, MARGIN, MONTHS = 500, 6.0, 0.3, 0.2, 50.0, 0.3, 24


def constant_rate_gain() -> float:
    """Expected extra margin of members buying at rate x (1 + LIFT): N x margin x value x LIFT x RATE x
    (1 - exp(-mu T)) / mu, mu = -ln(1 - annual churn) the dropout hazard, T the horizon in years."""
    hazard, years = -math.log(1.0 - CHURN), MONTHS / 12.0
    return N * MARGIN * VALUE * LIFT * RATE * (1.0 - math.exp(-hazard * years)) / hazard


def constant_rate(fixed_cost: dict, replications: int = 200) -> Scenario:
    return Scenario.model_validate({
        "name": "constant", "horizon_months": MONTHS, "replications": replications, "seed": 1,
        "economics": {"gross_margin": MARGIN},
        "segments": {"s": {"purchases_per_year": {"mean": RATE, "cv": 0},
                           "dropout": {"model": "hazard", "annual_churn": CHURN, "cv": 0},
                           "order_value": {"mean": VALUE, "cv": 0}}},
        "acquisition": [{"channel": "web", "initial_customers": N}],
        "policy": {"costs": {"fixed_per_month": fixed_cost}},
        "response": {"member_frequency_lift": LIFT, "member_dropout_multiplier": 1.0}})


@pytest.mark.slow
def test_break_even_and_evpi_on_the_constant_rate_model() -> None:
    """Incremental profit is the members' extra margin minus MONTHS x the fixed cost, linear in the fixed cost:
    it breaks even at gain / MONTHS exactly, and with a normal fixed cost centred there the EVPI is
    MONTHS x sd x phi(0)."""
    exact = constant_rate_gain() / MONTHS
    sd = 80.0
    scenario = constant_rate({"dist": "normal", "mean": exact, "sd": sd})
    result = run_scenario(scenario, baseline=scenario.without_policy())
    decision = run_decision(result)
    even = decision["break_even"]["policy.costs.fixed_per_month"]
    assert even["pays_when"] == "below"
    assert even["std_error"] < 0.01 * exact
    assert abs(even["value"] - exact) <= 4 * even["std_error"]
    assert even["ci_low"] < even["value"] < even["ci_high"]
    fixed = drawn_values([result])["policy.costs.fixed_per_month"]
    expected_net = constant_rate_gain() - MONTHS * fixed                 # E[incremental profit | fixed cost]
    std_error = evpi_std_error(expected_net)
    evpi = closed_form_evpi(0.0, MONTHS * sd)
    assert std_error < 0.15 * evpi
    assert abs(decision["evpi"] - evpi) <= 4 * std_error


def test_summary_and_compare_carry_the_decision(tmp_path) -> None:
    text = """name: {name}
horizon_months: 6
replications: 12
seed: 2
economics: {{gross_margin: 0.3}}
segments:
  s:
    purchases_per_year: {{mean: 4, cv: 0.5}}
    dropout: {{model: per_purchase, mean: 0.1, cv: 0.5}}
    order_value: {{mean: 40, cv: 0.5}}
acquisition: [{{channel: web, initial_customers: 300}}]
policy: {{costs: {{fixed_per_month: {cost}}}}}
response:
  member_frequency_lift: {{dist: uniform, low: 0.0, high: 0.3}}
"""
    (tmp_path / "a.yaml").write_text(text.format(name="a", cost=20))
    (tmp_path / "b.yaml").write_text(text.format(name="b", cost=60))
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(tmp_path / "a.yaml"), "--out", str(tmp_path / "run"),
                                  "--hurdle", "100"])
    assert result.exit_code == 0, result.output
    decision = json.loads((tmp_path / "run" / "summary.json").read_text())["decision"]
    assert decision["assumptions"] == ["response.member_frequency_lift"] and decision["hurdle"] == 100
    assert 0.0 <= decision["p_above_hurdle"] <= decision["p_positive"] <= 1.0
    assert "chance incremental profit > 0" in result.output
    result = runner.invoke(main, ["report", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "run" / "report.html").read_text()
    assert (tmp_path / "run" / "report_files" / "01-decision.png").exists()   # the first chart
    assert f"pays in {decision['p_positive']:.0%} of the replications" in page
    result = runner.invoke(main, ["compare", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"),
                                  "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    decision = json.loads((tmp_path / "cmp" / "compare.json").read_text())["decision"]
    assert set(decision["options"]) == {"baseline", "b"}             # a is the reference here
    # b only adds a fixed cost to a, on the same customers and assumption draws: it never wins
    assert decision["options"]["b"]["p_best"] == 0.0
    assert decision["options"]["b"]["expected_loss"] == pytest.approx(40 * 6)


def test_the_report_does_not_claim_uncertain_assumptions_a_run_does_not_have() -> None:
    """Without any {dist: ...} value the chance of paying is over the customers' chance alone: the report's
    first bullet says so, and speaks of uncertain assumptions only when there are some."""
    from sim.report.decision import decision_bullets

    block = {"p_positive": 1.0, "incremental_profit": {"p5": 1.0, "p50": 2.0, "p95": 3.0}, "assumptions": []}
    first = decision_bullets(block, "points")[0]["text"]
    assert "customers' chance alone" in first and "over the uncertain assumptions" not in first
    first = decision_bullets({**block, "assumptions": ["economics.gross_margin"]}, "points")[0]["text"]
    assert "over the uncertain assumptions and the customers" in first
