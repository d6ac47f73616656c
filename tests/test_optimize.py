"""``loyalty-sim optimize``: the search finds known optima (a saturating response against its linear cost,
whole-number and categorical levers), the command finds the simulator's known best policy, honours a budget,
resumes, confirms on fresh replications, and refuses bad files with exit status 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from support.scenarios import EXAMPLE_OPTIMIZES

from sim.cli import main
from sim.experiments.optimize import Evaluation, feasible_trials, plan_optimize, search
from sim.experiments.replications import run_many
from sim.experiments.sweep_plan import Parameter
from sim.experiments.sweep_results import read_results

SCENARIO = """name: opt
horizon_months: 12
replications: 8
seed: 4
economics: {gross_margin: 0.3}
segments:
  s:
    purchases_per_year: {mean: 6, cv: 0}
    dropout: {model: hazard, annual_churn: 0.3, cv: 0}
    order_value: {mean: 50, cv: 0}
acquisition: [{channel: web, initial_customers: 400}]
policy:
  enrollment: {probability: 0.5}
  costs: {per_member_per_year: 5}
response:
  member_frequency_lift: {dist: uniform, low: 0.1, high: 0.3}
  member_dropout_multiplier: 1.0
"""


def test_search_finds_the_optimum_of_a_saturating_response_against_its_linear_cost() -> None:
    """Value a (1 - exp(-x / s)) of a reward rate x costing c x: the optimum is x* = s ln(a / (c s))."""
    a, s, c = 1000.0, 0.2, 2000.0
    best_x = s * math.log(a / (c * s))

    def value(x: float) -> float:
        return a * (1.0 - math.exp(-x / s)) - c * x

    lever = Parameter("policy.points.reward_rate", ("policy", "points", "reward_rate"), None, 0.0, 1.0)
    study = search(lambda v: Evaluation(value(v[lever.key])), [lever], trials=60, seed=3)
    found = feasible_trials(study)[0].params[lever.key]
    assert abs(found - best_x) <= 0.03                       # stated tolerance: 0.03 on a range of 1
    assert value(best_x) - value(found) <= 0.005 * value(best_x)


def test_search_handles_whole_number_and_categorical_levers_and_constraints() -> None:
    whole = Parameter("n", ("n",), None, 1, 20, integer=True)
    kind = Parameter("kind", ("kind",), ("plain", "gold", "silver"))
    bonus = {"plain": 0.0, "gold": 5.0, "silver": 3.0}

    def evaluate(v: dict) -> Evaluation:
        # the best unconstrained is n = 12 with gold; gold is over budget unless n <= 9
        budget = [(v["n"] - 9.0) if v["kind"] == "gold" else -1.0]
        return Evaluation(-(v["n"] - 12) ** 2 + bonus[v["kind"]], budget)

    study = search(evaluate, [whole, kind], trials=80, seed=1)
    best = feasible_trials(study)[0].params
    # feasible candidates: gold at n = 9 (-9 + 5 = -4) or silver at n = 12 (3): silver 12 wins
    assert best == {"n": 12, "kind": "silver"}


def _files(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "scen.yaml").write_text(SCENARIO)
    (tmp_path / "opt.yaml").write_text(f"""optimize:
  name: enrol
  scenario: scen.yaml
  levers:
    policy.enrollment.probability: {{low: 0.0, high: 1.0}}
    policy.costs.fixed_per_month: [0.0, 100.0, 500.0]
  trials: 16
  runners_up: 2
{extra}""")
    return tmp_path / "opt.yaml"


def test_optimize_finds_the_best_policy_of_a_linear_case_and_confirms_it(tmp_path: Path) -> None:
    """All customers alike, members buy 10-30% more for 5 a year: each member adds about
    0.3 x 50 x 0.2 x 6 x (1 - e^-mu)/mu - 5 ~ 10 > 0 a year, so incremental profit rises linearly with the
    enrollment probability (best: 1) and falls with the fixed cost (best: 0)."""
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["optimize", str(_files(tmp_path)), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    content = json.loads((out / "optimize.json").read_text())
    chosen = content["confirmation"]["options"]["chosen"]["levers"]
    assert chosen["policy.costs.fixed_per_month"] == 0.0
    assert chosen["policy.enrollment.probability"] >= 0.9
    assert len(content["trials"]) == 16
    confirmation = content["confirmation"]
    assert confirmation["seed"] == 5 and confirmation["replications"] == 16
    assert set(confirmation["options"]) == {"chosen", "runner-up 1", "runner-up 2"}
    for name in ("runner-up 1", "runner-up 2"):
        option = confirmation["options"][name]
        assert option["separable"] == (option["chosen_minus_this"]["ci_low"] > 0)
        assert (name in confirmation["tied_with_chosen"]) != option["separable"]
    assert "separable" in result.output
    # resume: the stored trials count, only the missing ones run
    result = CliRunner().invoke(main, ["optimize", str(_files(tmp_path)), "--out", str(out), "--workers", "1",
                                       "--resume", "--trials", "20"])
    assert result.exit_code == 0, result.output
    assert len(json.loads((out / "optimize.json").read_text())["trials"]) == 20


def test_a_budget_binds(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["optimize", str(_files(tmp_path, "  max_program_cost: 700\n")),
                                       "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    content = json.loads((out / "optimize.json").read_text())
    best = next(t for t in content["trials"] if t["number"] == content["best"]["number"])
    assert best["feasible"] and best["mean_program_cost"] <= 700
    assert any(not t["feasible"] for t in content["trials"])


def test_bad_optimize_files_exit_2_naming_key_and_line(tmp_path: Path) -> None:
    path = _files(tmp_path)
    path.write_text(path.read_text().replace("policy.costs.fixed_per_month", "response.goal_gradient"))
    result = CliRunner().invoke(main, ["optimize", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert f"{path}:6: optimize.levers.response.goal_gradient: a lever is what the firm chooses" in result.output
    path.write_text(path.read_text().replace("trials: 16", "trials: 0"))
    result = CliRunner().invoke(main, ["optimize", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and f"{path}:7: optimize.trials" in result.output
    result = CliRunner().invoke(main, ["validate", str(_files(tmp_path))])
    assert result.exit_code == 0 and "valid optimize file 'enrol': 2 lever(s)" in result.output


EARN_SCENARIO = """name: earn
horizon_months: 24
replications: 6
seed: 3
baseline: auto
economics: {gross_margin: 0.30, cost_to_serve_per_order: 4.0, annual_discount_rate: 0.10}
segments:
  regular:
    purchases_per_year: {mean: 4, cv: 0.9}
    dropout: {model: per_purchase, mean: 0.15, cv: 0.6}
    order_value: {mean: 55, cv: 0.5, between_cv: 0.4}
  loyal:
    purchases_per_year: {mean: 9, cv: 0.6}
    dropout: {model: hazard, annual_churn: 0.20, cv: 0.8}
    order_value: {mean: 75, cv: 0.4, between_cv: 0.3}
acquisition:
  - {channel: web, cac: 20, initial_customers: 3000, segments: {regular: 0.8, loyal: 0.2}}
policy:
  enrollment: {probability: 0.6, self_selection: 1.0}
  points: {earn_per_currency: 1, reward_threshold: 500, reward_value: 10, reward_cost_ratio: 0.7,
           redeemer_share: 0.75, expiry_months_inactive: 12}
"""
EARN_LOW, EARN_HIGH, GRID_LEVELS = 0.25, 8.0, 13


@pytest.mark.slow
def test_optimize_finds_the_interior_optimum_of_the_earn_rate_that_a_fine_grid_sweep_finds(tmp_path: Path) -> None:
    """Members respond to the reward rate (earn x 10 / 500, from 0.5% to 16% back) with a saturating value
    curve while the reward cost grows linearly, so incremental profit peaks inside the range (near 4% back).

    A grid sweep of 13 log-spaced earn rates (a step of a factor 32^(1/12) = 1.33) and the search run on the
    same seed and replications, so a lever setting scores the same in both. The grid's optimum is known to
    within its resolution and the replications' noise: the settings that cannot be told from the grid's best
    (paired difference of incremental profit within 4 of its standard errors) widened by one grid step on each
    side. The search's choice must lie in that interval, and its own incremental profit, paired with the
    grid's best on the same replications, must not be below it by more than 4 standard errors."""
    (tmp_path / "scen.yaml").write_text(EARN_SCENARIO)
    lever = "policy.points.earn_per_currency"
    (tmp_path / "sweep.yaml").write_text(f"""sweep:
  name: earn-grid
  scenario: scen.yaml
  oat: false
  levers:
    {lever}: {{low: {EARN_LOW}, high: {EARN_HIGH}, levels: {GRID_LEVELS}, log: true}}
""")
    (tmp_path / "opt.yaml").write_text(f"""optimize:
  name: earn-search
  scenario: scen.yaml
  levers:
    {lever}: {{low: {EARN_LOW}, high: {EARN_HIGH}, log: true}}
  trials: 16
  runners_up: 0
  confirm_replications: 2
""")
    result = CliRunner().invoke(main, ["sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "grid"),
                                       "--workers", "1"])
    assert result.exit_code == 0, result.output
    rows = read_results(tmp_path / "grid")
    profit = rows.pivot(index="replication", columns=lever, values="vs_baseline.profit").sort_index(axis=1)
    grid = profit.columns.to_numpy(float)
    step = (EARN_HIGH / EARN_LOW) ** (1 / (GRID_LEVELS - 1))
    assert np.allclose(grid[1:] / grid[:-1], step)
    best = int(profit.mean().to_numpy().argmax())
    assert 0 < best < len(grid) - 1                            # an interior optimum, not an end of the range

    def within_noise(difference: np.ndarray) -> bool:          # best minus another, paired by replication
        return difference.mean() <= 4 * difference.std(ddof=1) / math.sqrt(len(difference))

    tied = [i for i in range(len(grid)) if i == best or within_noise((profit.iloc[:, best] - profit.iloc[:, i])
                                                                       .to_numpy())]
    low, high = grid[min(tied)] / step, grid[max(tied)] * step
    assert EARN_LOW < low and high < EARN_HIGH                 # the tied settings are interior too

    result = CliRunner().invoke(main, ["optimize", str(tmp_path / "opt.yaml"), "--out", str(tmp_path / "search"),
                                       "--workers", "1"])
    assert result.exit_code == 0, result.output
    content = json.loads((tmp_path / "search" / "optimize.json").read_text())
    chosen = content["best"]["levers"][lever]
    assert low <= chosen <= high, (chosen, low, high, grid[tied])
    # the chosen setting on the grid's replications (the search's own: same seed, same replications)
    plan = plan_optimize(tmp_path / "opt.yaml")
    at_chosen = run_many([plan.scenario_at({lever: chosen}, "chosen")])[0].metric_values("profit")
    baseline = run_many([plan.baseline])[0].metric_values("profit")
    incremental = at_chosen - baseline
    assert math.isclose(incremental.mean(), content["best"]["objective"], rel_tol=1e-9)
    assert within_noise(profit.iloc[:, best].to_numpy() - incremental)


def test_example_optimize_files_validate() -> None:
    """Every optimize file shipped in scenarios/ is valid, with its scenario's uncertain values."""
    assert EXAMPLE_OPTIMIZES
    for example in EXAMPLE_OPTIMIZES:
        result = CliRunner().invoke(main, ["validate", str(example)])
        assert result.exit_code == 0, result.output
        assert "valid optimize file" in result.output and " 0 uncertain value(s)" not in result.output
