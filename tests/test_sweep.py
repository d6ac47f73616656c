"""`loyalty-sim sweep`: designs, common random numbers across points, executors, resume, sensitivity, errors."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from support.scenarios import EXAMPLE_SWEEPS

from sim.accounting.derived import pareto_front
from sim.accounting.metrics import METRICS
from sim.cli import main
from sim.experiments.designs import sobol_sample
from sim.experiments.replications import run_replication
from sim.experiments.sensitivity import sobol_indices
from sim.experiments.sweep import run_sweep
from sim.experiments.sweep_plan import plan_sweep
from sim.experiments.sweep_results import read_results
from sim.input.errors import InputError
from sim.schema import Scenario

SCENARIO = """\
name: tiny-points
horizon_months: 12
replications: 3
seed: 3
economics: {gross_margin: 0.3, cost_to_serve_per_order: 4.0, annual_discount_rate: 0.1}
segments:
  regular:
    purchases_per_year: {mean: 5, cv: 0.8}
    dropout: {model: per_purchase, mean: 0.15, cv: 0.6}
    order_value: {mean: 50, cv: 0.5}
    referrals_per_year: {mean: 0.1}
acquisition:
  - {channel: web, cac: 20, initial_customers: 400, new_per_month: 40}
policy:
  enrollment: {probability: 0.6, self_selection: 1.0}
  points: {earn_per_currency: 1, reward_threshold: 500, reward_value: 10, reward_cost_ratio: 0.7,
           redeemer_share: 0.75, expiry_months_inactive: 12}
  costs: {fixed_per_month: 100, per_member_per_year: 1.0}
"""


def _sweep(tmp_path: Path, body: str, name: str = "sweep.yaml") -> Path:
    (tmp_path / "tiny.yaml").write_text(SCENARIO)
    path = tmp_path / name
    path.write_text("sweep:\n  name: tiny\n  scenario: tiny.yaml\n" + body)
    return path


GRID = """\
  design: grid
  replications: 2
  seed: 5
  parameters:
    policy.points.reward_threshold: [250, 1000]
    response.goal_gradient: {low: 0.0, high: 0.4, levels: 2}
"""


@pytest.fixture(scope="module")
def whole_grid(tmp_path_factory) -> Path:
    """The grid sweep run uninterrupted in this process: the results every other way must reproduce."""
    tmp = tmp_path_factory.mktemp("whole")
    run_sweep(plan_sweep(_sweep(tmp, GRID)), tmp / "out", workers=1)
    return tmp / "out"


def test_grid_results_follow_the_spec(whole_grid: Path) -> None:
    manifest = json.loads((whole_grid / "sweep.json").read_text())
    assert manifest["design"] == "grid" and manifest["complete"] and manifest["finished_points"] == 4
    assert [p["values"] for p in manifest["points"]] == [
        {"policy.points.reward_threshold": t, "response.goal_gradient": g} for t in (250, 1000) for g in (0.0, 0.4)]
    rows = read_results(whole_grid)
    assert len(rows) == 4 * 2
    assert list(rows.columns[:4]) == ["point", "policy.points.reward_threshold", "response.goal_gradient",
                                      "replication"]
    assert rows["policy.points.reward_threshold"].dtype == np.int64
    assert set(METRICS) <= set(rows.columns)
    assert {f"vs_baseline.{m}" for m in (*METRICS, "profit_net_of_liability", "roi", "payback_month")} <= set(rows.columns)
    assert np.allclose(rows["vs_baseline.profit_net_of_liability"],
                       rows["vs_baseline.profit"] - rows["vs_baseline.points_liability"])
    # vs_baseline is the paired difference: the point's replication minus the same replication of the
    # scenario without its policy (seed 5 of the sweep), simulated here on its own
    baseline = yaml.safe_load(SCENARIO)
    del baseline["policy"]
    baseline["seed"] = 5
    for replication in (0, 1):
        own = run_replication(Scenario.model_validate(baseline), replication).totals
        chosen = rows[rows["replication"] == replication]
        for name in ("profit", "purchases", "program_cost"):
            np.testing.assert_allclose(chosen[name] - chosen[f"vs_baseline.{name}"], own[name], rtol=1e-12)
    sensitivity = json.loads((whole_grid / "sensitivity.json").read_text())
    assert sensitivity["metric"] == "vs_baseline.profit"
    # one-at-a-time effects of both parameters, each at the low and the high end of its range
    oat = sensitivity["oat"]["parameters"]
    assert sorted(p["parameter"] for p in oat) == ["policy.points.reward_threshold", "response.goal_gradient"]
    for parameter in oat:
        assert {parameter["low_value"], parameter["high_value"]} in ({250, 1000}, {0.0, 0.4})
        assert math.isfinite(parameter["low"]["mean"]) and math.isfinite(parameter["high"]["mean"])
    assert not (whole_grid / ".partial").exists()


def test_points_face_the_same_customers(tmp_path: Path) -> None:
    """Replication i of every point has the same customers: a parameter with no effect (a win-back response
    without a win-back offer) gives identical numbers at every point, and the baseline is simulated once."""
    plan = plan_sweep(_sweep(tmp_path, """\
  design: grid
  replications: 2
  oat: false
  parameters:
    response.winback_reactivation: [0.0, 0.3, 0.9]
"""))
    assert len(plan.scenarios) == 3 + 1
    run_sweep(plan, tmp_path / "out")
    rows = read_results(tmp_path / "out")
    metrics = rows[list(METRICS)].fillna(-1.0)
    for replication in (0, 1):
        same = metrics[rows["replication"] == replication]
        assert (same.nunique() == 1).all()


def test_same_numbers_with_two_workers_and_a_dask_cluster(tmp_path: Path, whole_grid: Path) -> None:
    """Results are identical, number for number, in one process, a 2-process pool and a Dask LocalCluster."""
    from distributed import LocalCluster

    expected = read_results(whole_grid)
    pooled = tmp_path / "pool"
    run_sweep(plan_sweep(_sweep(tmp_path, GRID)), pooled, workers=2)
    pd.testing.assert_frame_equal(read_results(pooled), expected)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = CliRunner().invoke(main, ["sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "dask"),
                                           "--scheduler", cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(read_results(tmp_path / "dask"), expected)
    assert json.loads((tmp_path / "dask" / "sensitivity.json").read_text()) == \
        json.loads((whole_grid / "sensitivity.json").read_text())


def test_killed_sweep_resumes_to_the_same_results(tmp_path: Path, whole_grid: Path) -> None:
    """kill -9 while points are finishing, then --resume: nothing finished is lost or rewritten, only the
    missing work runs, and the results equal an uninterrupted sweep's."""
    path = _sweep(tmp_path, GRID)
    out = tmp_path / "cut"
    command = [sys.executable, "-m", "sim.cli", "sweep", str(path), "--out", str(out), "--workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list((out / "results.parquet").glob("point-*"))) < 1 and process.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "results.parquet").glob("point-*")}
    assert 1 <= len(kept) < 4, "the sweep should have been killed half-way"
    assert not json.loads((out / "sweep.json").read_text())["complete"]
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert "already finished" in resumed.stderr
    for name, mtime in kept.items():
        assert (out / "results.parquet" / name).stat().st_mtime_ns == mtime  # never rewritten
    pd.testing.assert_frame_equal(read_results(out), read_results(whole_grid))
    assert json.loads((out / "sensitivity.json").read_text()) == \
        json.loads((whole_grid / "sensitivity.json").read_text())


def test_resume_refuses_a_different_sweep(tmp_path: Path, whole_grid: Path) -> None:
    path = _sweep(tmp_path, GRID.replace("[250, 1000]", "[250, 750]"))
    result = CliRunner().invoke(main, ["sweep", str(path), "--out", str(whole_grid), "--resume"])
    assert result.exit_code == 2
    assert "different sweep" in result.output


@pytest.mark.parametrize("design", ["random", "latin_hypercube", "sobol"])
def test_sampled_designs(tmp_path: Path, design: str) -> None:
    design_body = f"""\
  design: {design}
  samples: 8
  replications: 1
  parameters:
    policy.points.reward_threshold: {{low: 100, high: 900}}
    policy.points.earn_per_currency: {{low: 0.5, high: 2.0, log: true}}
    policy.points.expiry_months_inactive: [6, 12, 24]
"""
    plan = plan_sweep(_sweep(tmp_path, design_body))
    expected = {"random": 8, "latin_hypercube": 8, "sobol": 8 * (3 + 2)}[design]
    assert len(plan.points) == expected
    thresholds = np.array([p["policy.points.reward_threshold"] for p in plan.points])
    earn = np.array([p["policy.points.earn_per_currency"] for p in plan.points])
    assert all(isinstance(t, int) for t in thresholds.tolist())   # the scenario's field holds whole numbers
    assert thresholds.min() >= 100 and thresholds.max() <= 900
    assert earn.min() >= 0.5 and earn.max() <= 2.0
    assert {p["policy.points.expiry_months_inactive"] for p in plan.points} <= {6, 12, 24}
    if design == "latin_hypercube":   # one sample in each of the 8 strata of every parameter
        assert sorted(np.floor(plan.unit_sample * 8).astype(int)[:, 0].tolist()) == list(range(8))
        assert sorted(np.floor(np.log(earn / 0.5) / np.log(4.0) * 8).astype(int).tolist()) == list(range(8))
    again = plan_sweep(_sweep(tmp_path, design_body, name="again.yaml"))
    assert again.points == plan.points   # the sweep's seed fixes the design


def test_sobol_indices_of_a_known_function() -> None:
    """Y = X1 + 2 X2 + 0 X3 with independent uniform inputs: S1 = ST = (1/5, 4/5, 0)."""
    sample = sobol_sample(3, 1024, seed=1)
    values = sample[:, 0] + 2.0 * sample[:, 1]
    indices = sobol_indices(values, 3, seed=1)
    for name in ("S1", "ST"):
        for got, conf, want in zip(indices[name], indices[f"{name}_conf"], (0.2, 0.8, 0.0)):
            assert abs(got - want) <= max(conf, 0.02)


def test_pareto_front() -> None:
    cost = np.array([1.0, 2.0, 2.0, 3.0, 0.5, np.nan, 4.0])
    value = np.array([5.0, 6.0, 7.0, 6.5, 1.0, 100.0, 7.0])
    # point 1 is beaten by 2 (same cost, more value); 3 by 2; 6 by 2 (7.0 for less); 5 is undefined
    assert pareto_front(cost, value) == [4, 0, 2]


BAD = {
    "unknown key": ("    policy.points.reward_treshold: [250, 500]\n",
                    "sweep.parameters.policy.points.reward_treshold: unknown key", "did you mean 'reward_threshold'"),
    "missing block": ("    policy.tiers.0.threshold: [100, 200]\n",
                      "sweep.parameters.policy.tiers.0.threshold", "policy.tiers is a list of 0 item(s)"),
    "bad range": ("    response.goal_gradient: {low: 0.5, high: 0.1}\n",
                  "sweep.parameters.response.goal_gradient.high", "must be above low"),
    "invalid value": ("    policy.points.reward_threshold: [0, 500]\n",
                      "sweep.parameters.policy.points.reward_threshold", "point 0: policy.points.reward_threshold=0"),
    "a block": ("    policy.points: [1, 2]\n", "sweep.parameters.policy.points", "not a value"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_parameters_exit_2_naming_the_key_and_line(tmp_path: Path, case: str) -> None:
    line, where, what = BAD[case]
    path = _sweep(tmp_path, "  design: grid\n  replications: 1\n  parameters:\n" + line)
    for command in ("sweep", "validate"):
        result = CliRunner().invoke(main, [command, str(path), "--out", str(tmp_path / "out")]
                                    if command == "sweep" else [command, str(path)])
        assert result.exit_code == 2, result.output
        assert f"{path}:7: {where}" in result.output
        assert what in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "results.parquet").exists()   # nothing ran


@pytest.mark.parametrize(("body", "message"), [
    ("  design: grid\n  parameters:\n    response.goal_gradient: {low: 0, high: 1}\n", "needs `levels`"),
    ("  design: sobol\n  samples: 10\n  parameters:\n    response.goal_gradient: {low: 0, high: 1}\n",
     "power of two"),
    ("  design: random\n  parameters:\n    response.goal_gradient: {low: 0, high: 1}\n", "sweep.samples"),
    ("  metric: proft\n  parameters:\n    response.goal_gradient: [0.1]\n", "did you mean 'profit'"),
    ("  set: {acquisition.0.cac: -5}\n  parameters:\n    response.goal_gradient: [0.1]\n",
     "sweep.set.acquisition.0.cac"),
])
def test_bad_sweep_files(tmp_path: Path, body: str, message: str) -> None:
    path = _sweep(tmp_path, body)
    with pytest.raises(InputError) as caught:
        plan_sweep(path)
    assert message in str(caught.value)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and message in result.output


def test_missing_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("sweep:\n  name: x\n  scenario: nowhere.yaml\n  parameters: {seed: [1]}\n")
    result = CliRunner().invoke(main, ["sweep", str(path)])
    assert result.exit_code == 2
    assert f"{path}:3: sweep.scenario: no such scenario file" in result.output


def test_example_sweeps_validate() -> None:
    assert EXAMPLE_SWEEPS
    for example in EXAMPLE_SWEEPS:
        result = CliRunner().invoke(main, ["validate", str(example)])
        assert result.exit_code == 0, result.output
        assert "valid sweep" in result.output


def test_unreachable_scheduler_is_bad_input_and_keeps_earlier_results(tmp_path: Path, whole_grid: Path) -> None:
    before = sorted(p.name for p in (whole_grid / "results.parquet").iterdir())
    result = CliRunner().invoke(main, ["sweep", str(_sweep(tmp_path, GRID)), "--out", str(whole_grid),
                                       "--scheduler", "no-port-here"])
    assert result.exit_code == 2
    assert "--scheduler: cannot reach a Dask scheduler at 'no-port-here'" in result.output
    assert sorted(p.name for p in (whole_grid / "results.parquet").iterdir()) == before


def test_sweep_directory_holds_the_scenario_every_point_starts_from(tmp_path: Path) -> None:
    path = _sweep(tmp_path, """\
  replications: 1
  oat: false
  set: {acquisition.0.initial_customers: 123}
  parameters:
    response.goal_gradient: [0.1]
""")
    plan = plan_sweep(path)
    assert plan.source == str(path)
    run_sweep(plan, tmp_path / "out")
    written = (tmp_path / "out" / "scenario.yaml").read_text()
    assert f"({path})" in written
    from sim.input.scenarios import load_scenario

    again = load_scenario(tmp_path / "out" / "scenario.yaml")
    assert again.acquisition[0].initial_customers == 123 and again.replications == 1
    manifest = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert manifest["set"] == {"acquisition.0.initial_customers": 123}


def _file_baseline(tmp_path: Path, baseline_text: str) -> None:
    """The tiny scenario compared with the file ``base.yaml`` instead of ``baseline: auto``."""
    (tmp_path / "tiny.yaml").write_text(SCENARIO.replace("seed: 3\n", "seed: 3\nbaseline: base.yaml\n"))
    (tmp_path / "base.yaml").write_text(baseline_text)


def test_a_file_baseline_gets_the_sweeps_fixed_and_population_values(tmp_path: Path) -> None:
    """`set:` values and swept population keys go to a file baseline too (else every point compares a small
    population with the full one); a swept lever (policy) does not, it is what is compared."""
    path = tmp_path / "sweep.yaml"
    path.write_text("""\
sweep:
  name: file-baseline
  scenario: tiny.yaml
  replications: 2
  oat: false
  set: {acquisition.0.initial_customers: 40}
  parameters:
    acquisition.0.new_per_month: [4, 8]
    policy.points.reward_threshold: [250, 1000]
""")
    _file_baseline(tmp_path, SCENARIO.split("policy:")[0].replace("name: tiny-points", "name: plain"))
    plan = plan_sweep(path)
    for number, values in enumerate(plan.points):
        baseline = plan.scenarios[plan.point_base[number]]
        assert baseline.name == "plain" and baseline.policy is None
        assert baseline.acquisition[0].initial_customers == 40
        assert baseline.acquisition[0].new_per_month == values["acquisition.0.new_per_month"]
    assert len({plan.point_base[n] for n in range(len(plan.points))}) == 2   # one per population
    run_sweep(plan, tmp_path / "out")
    rows = read_results(tmp_path / "out")
    baseline_customers = rows["customers_acquired"] - rows["vs_baseline.customers_acquired"]
    planned = 40 + 12 * rows["acquisition.0.new_per_month"]
    assert (baseline_customers >= planned).all() and (baseline_customers < 1.5 * planned).all()


def test_a_file_baseline_with_other_customers_is_refused(tmp_path: Path) -> None:
    path = _sweep(tmp_path, """\
  replications: 1
  oat: false
  set: {acquisition.0.initial_customers: 40}
  parameters:
    response.goal_gradient: [0.1, 0.2]
""")
    _file_baseline(tmp_path, SCENARIO.split("policy:")[0].replace("name: tiny-points", "name: plain")
                   .replace("order_value: {mean: 50", "order_value: {mean: 60"))
    result = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "tiny.yaml" in result.output and "base.yaml" in result.output
    assert "segments.regular.order_value.mean" in result.output and "different customers" in result.output


def test_results_read_whole_when_a_list_starts_with_a_whole_number(tmp_path: Path) -> None:
    """Every point file types a parameter's column alike: `[0, 0.25, ...]` is a float column in all of them,
    so pandas reads the results folder whole (it failed with 'Float value 0.25 was truncated')."""
    path = _sweep(tmp_path, """\
  replications: 2
  oat: false
  set: {acquisition.0.initial_customers: 40, acquisition.0.new_per_month: 4}
  parameters:
    response.goal_gradient: [0, 0.25, 0.5, 1.0, 2.0]
    policy.points.reward_threshold: [250, 500]
""")
    run_sweep(plan_sweep(path), tmp_path / "out")
    rows = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert len(rows) == 5 * 2 * 2
    assert rows["response.goal_gradient"].dtype == np.float64
    assert sorted(rows["response.goal_gradient"].unique()) == [0.0, 0.25, 0.5, 1.0, 2.0]
    assert rows["policy.points.reward_threshold"].dtype == np.int64
    from sim.experiments.sweep_plan import common_type

    assert common_type([1, 2]) == (1, 2) and common_type(["a", "b"]) == ("a", "b")
    assert [type(v) for v in common_type([0, 0.25])] == [float, float]


def _results(values: dict[int, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"point": p, "replication": r, "profit": v} for p, row in values.items()
                         for r, v in enumerate(row)])


def test_a_best_point_is_named_only_when_separated_from_every_other() -> None:
    """Replications are paired across points (common random numbers): a customer-driven swing shared by all
    points does not hide a consistent difference, but a difference that changes sign does not make a best."""
    from sim.experiments.ranking import rank_points, ranking_sentence

    shared = [1000.0, -800.0, 300.0, -1200.0, 700.0]       # what replication i's customers do to every point
    separated = rank_points(_results({0: [s for s in shared], 1: [s + 50 for s in shared],
                                      2: [s + 100 + (r % 2) for r, s in enumerate(shared)]}), "profit")
    assert separated.best == 2 and separated.tied == [2] and separated.order == [2, 1, 0]
    assert separated.status(2) == "best" and separated.status(1) == ""
    assert "point #2 is the best" in ranking_sentence(separated, 5)
    assert abs(separated.confidence - (1 - 0.05 / 2)) < 1e-12        # Bonferroni over the two comparisons

    tied = rank_points(_results({0: [s - 100 for s in shared],
                                 1: [s + d for s, d in zip(shared, [0, 4, 0, 4, 0])],
                                 2: [s + d for s, d in zip(shared, [3, 3, 3, 3, 3])]}), "profit")
    assert tied.best is None and tied.tied == [2, 1]
    assert tied.status(1) == tied.status(2) == "tied" and tied.status(0) == ""
    assert "no single best point: 2 of 3 points (#2, #1)" in ranking_sentence(tied, 5)


def test_sweep_table_names_the_best_or_the_tied_points_and_keeps_column_names(tmp_path: Path) -> None:
    path = _sweep(tmp_path, """\
  replications: 2
  oat: false
  set: {acquisition.0.initial_customers: 40, acquisition.0.new_per_month: 4}
  parameters:
    response.member_frequency_lift: [0.0, 0.1]
    segments.regular.referrals_per_year.mean: [0.1, 0.2]
""")
    result = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    for header in ("member_frequency_lift", "referrals_per_year.", "vs_baseline.", "profit_net_of_liability",
                   "best?"):
        assert header in result.output
    from sim.experiments.ranking import rank_points

    ranking = rank_points(read_results(tmp_path / "out"), "vs_baseline.profit")
    if ranking.best is None:
        assert "no single best point" in result.output
    else:
        assert f"point #{ranking.best} is the best" in result.output


def test_rich_markup_in_sweep_and_parameter_names(tmp_path: Path) -> None:
    """Was: a sweep named '[/]' ran, wrote its results, then died of rich's MarkupError."""
    path = _sweep(tmp_path, "  replications: 1\n  oat: true\n  parameters:\n    name: ['[/]x', '[bold]y']\n")
    path.write_text(path.read_text().replace("name: tiny", "name: '[/]'"))
    result = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "[/]: the top points of" in result.output
    assert "[bold]y" in result.output


TOO_BIG = {
    "a 1000 x 1000 grid": ("  parameters:\n    response.goal_gradient: {low: 0, high: 0.4, levels: 1000}\n"
                           "    policy.points.earn_per_currency: {low: 0.5, high: 2, levels: 1000}\n",
                           ":5: sweep.parameters.response.goal_gradient.levels", "1,000,000 points (1000 x 1000)"),
    "a 1000^3 grid": ("  parameters:\n    response.goal_gradient: {low: 0, high: 0.4, levels: 1000}\n"
                      "    policy.points.earn_per_currency: {low: 0.5, high: 2, levels: 1000}\n"
                      "    policy.points.reward_value: {low: 5, high: 20, levels: 1000}\n",
                      ":5: sweep.parameters.response.goal_gradient.levels", "1,000,000,000 points"),
    "a 200 x 150 grid": ("  parameters:\n    response.goal_gradient: {low: 0, high: 0.4, levels: 200}\n"
                         "    policy.points.earn_per_currency: {low: 0.5, high: 2, levels: 150}\n",
                         ":5: sweep.parameters.response.goal_gradient.levels", "30,000 points (200 x 150)"),
    "a million samples": ("  design: random\n  samples: 1000000\n  parameters:\n"
                          "    response.goal_gradient: {low: 0, high: 0.4}\n", ":5: sweep.samples", "1,000,000 points"),
    "2^19 sobol samples": ("  design: sobol\n  samples: 524288\n  parameters:\n"
                           "    response.goal_gradient: {low: 0, high: 0.4}\n", ":5: sweep.samples",
                           "1,572,864 points (524288 samples x (1 parameters + 2))"),
    "too many replications": ("  replications: 100000\n  parameters:\n    response.goal_gradient: "
                              f"{[i / 1000 for i in range(120)]}\n", ":4: sweep.replications",
                              "241 points x 100,000 replications are 24,100,000"),
}


@pytest.mark.parametrize("case", TOO_BIG, ids=list(TOO_BIG))
def test_a_sweep_too_big_to_finish_is_refused_at_once(tmp_path: Path, case: str) -> None:
    """Was: planning built every point first (past 60 s, or a MemoryError for 1000^3)."""
    body, where, count = TOO_BIG[case]
    path = _sweep(tmp_path, body)
    for command in (["validate", str(path)], ["sweep", str(path), "--out", str(tmp_path / "out")]):
        started = time.process_time()
        result = CliRunner().invoke(main, command)
        assert time.process_time() - started < 1.0
        assert result.exit_code == 2, result.output
        assert f"{path}{where}: " in result.output
        assert count in result.output and "at most" in result.output
    assert not (tmp_path / "out").exists()


def test_points_never_share_what_they_write(tmp_path: Path) -> None:
    """A point's values are written into its own copy of the blocks they go through (not a deep copy of
    the whole scenario, to keep planning quick): neither the scenario, the sweep's `set:` values nor
    another point sees them."""
    path = _sweep(tmp_path, "  replications: 1\n  oat: true\n  set: {policy.enrollment.probability: 0.5}\n"
                            "  parameters:\n"
                            "    policy.tiers.0.min_spend_12m: [100, 200, 400]\n"
                            "    policy.tiers.1.earn_multiplier: [2, 3]\n")
    (tmp_path / "tiny.yaml").write_text(SCENARIO + "  tiers: [{name: silver, min_spend_12m: 300, earn_multiplier: "
                                                   "1.25}, {name: gold, min_spend_12m: 800}]\n")
    plan = plan_sweep(path)
    seen = [(s.policy.tiers[0].min_spend_12m, s.policy.tiers[1].earn_multiplier, s.policy.tiers[0].earn_multiplier,
             s.policy.tiers[1].min_spend_12m) for s in (plan.scenarios[arm] for arm in plan.point_arm)]
    assert seen == [(a, b, 1.25, 800) for a in (100, 200, 400) for b in (2, 3)]
    assert plan.base.policy.tiers[0].min_spend_12m == 300 and plan.base.policy.tiers[1].earn_multiplier == 1
    assert {plan.scenarios[arm].policy.enrollment.probability for arm in plan.point_arm} == {0.5}
    own = plan.scenarios[plan.oat[0]["arm"]].policy    # planned after every point: their values are not there
    assert (own.tiers[0].min_spend_12m, own.tiers[1].earn_multiplier, own.enrollment.probability) == (300, 1, 0.5)
    assert plan_sweep(path).scenarios == plan.scenarios   # planning again from the same files: the same


def test_too_many_replications_by_option_names_the_option(tmp_path: Path) -> None:
    path = _sweep(tmp_path, f"  parameters:\n    response.goal_gradient: {[i / 1000 for i in range(100)]}\n")
    result = CliRunner().invoke(main, ["sweep", str(path), "--replications", "100000"])
    assert result.exit_code == 2, result.output
    assert "--replications: 201 points x 100,000 replications" in result.output


@pytest.mark.parametrize(("block", "key", "message"), [
    ("parameters", "replications", "cannot be swept: every point shares the sweep's `replications:`"),
    ("parameters", "seed", "cannot be swept: every point shares the sweep's `seed:`"),
    ("set", "replications", "cannot be set here: every point shares the sweep's `replications:`"),
    ("set", "seed", "cannot be set here: every point shares the sweep's `seed:`"),
    ("parameters", "baseline", "cannot be swept: every point is compared with the same kind of baseline"),
])
def test_keys_every_point_shares_cannot_be_swept(tmp_path: Path, block: str, key: str, message: str) -> None:
    """Was: swept replications were silently ignored (one row per point), a swept baseline a KeyError after
    every point ran."""
    values = {"replications": "[1, 3]", "seed": "[1, 2]", "baseline": "[auto, none]"}[key]
    body = (f"  replications: 1\n  set: {{{key}: 2}}\n  parameters:\n    response.goal_gradient: [0.1]\n"
            if block == "set" else f"  replications: 1\n  parameters:\n    {key}: {values}\n")
    path = _sweep(tmp_path, body)
    for command in (["validate", str(path)], ["sweep", str(path), "--out", str(tmp_path / "out")]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2, result.output
        line = 5 if block == "set" else 6
        assert f"{path}:{line}: sweep.{block}.{key}: {message}" in result.output
    assert not (tmp_path / "out" / "results.parquet").exists()


def test_a_block_problem_caused_by_a_sweeps_value_names_the_sweep_file_and_the_point(tmp_path: Path) -> None:
    """Was: the scenario file's line, for customers the sweep's `set:` or a swept value multiplied. (A points
    program runs in flat memory but for the referred customers waiting to be simulated: 10^11 customers
    bring more than a machine holds.)"""
    fixed = _sweep(tmp_path, "  set: {acquisition.0.initial_customers: 100000000000}\n  parameters:\n"
                             "    response.goal_gradient: [0.1]\n")
    result = CliRunner().invoke(main, ["validate", str(fixed)])
    assert result.exit_code == 2, result.output
    assert f"{fixed}:4: sweep.set.acquisition.0.initial_customers: " in result.output
    swept = _sweep(tmp_path, "  parameters:\n    acquisition.0.initial_customers: [400, 100000000000]\n")
    result = CliRunner().invoke(main, ["validate", str(swept)])
    assert result.exit_code == 2, result.output
    assert f"{swept}:5: sweep.parameters.acquisition.0.initial_customers: point 1: " in result.output
    assert "tiny.yaml" not in result.output


@pytest.mark.parametrize("command", ["run", "sweep", "compare"])
def test_replications_over_the_limit_are_blamed_on_the_option(command, tmp_path) -> None:
    """``--replications`` beyond the schema's limit is the option's fault, not a line of the input file."""
    target = "scenarios/sweep_points.yaml" if command == "sweep" else "scenarios/points_program.yaml"
    from support.scenarios import ROOT

    result = CliRunner().invoke(main, [command, str(ROOT / target), "--replications", "1000000000",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "--replications" in result.output and "100000" in result.output
    assert ".yaml:" not in result.output and not (tmp_path / "out").exists()
