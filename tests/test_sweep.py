"""`loyalty-sim sweep`: designs, common random numbers across points, executors, resume, sensitivity, errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import EXAMPLE_SWEEPS

from sim.accounting.metrics import METRICS
from sim.cli import main
from sim.experiments.sensitivity import pareto_front, sobol_indices, sobol_sample
from sim.experiments.sweep import plan_sweep, read_results, run_sweep
from sim.input.errors import InputError

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
    assert {f"vs_baseline.{m}" for m in (*METRICS, "roi", "payback_month")} <= set(rows.columns)
    # vs_baseline is the paired difference: the same replication of the point minus its baseline
    assert np.allclose(rows["vs_baseline.profit"] + (rows["profit"] - rows["vs_baseline.profit"]), rows["profit"])
    baseline_profit = rows["profit"] - rows["vs_baseline.profit"]
    assert baseline_profit.groupby(rows["replication"]).nunique().eq(1).all()  # one baseline for all points
    sensitivity = json.loads((whole_grid / "sensitivity.json").read_text())
    assert sensitivity["metric"] == "vs_baseline.profit"
    assert [p["parameter"] for p in sensitivity["oat"]["parameters"]] != []
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


def test_rich_markup_in_sweep_and_parameter_names(tmp_path: Path) -> None:
    """Was: a sweep named '[/]' ran, wrote its results, then died of rich's MarkupError."""
    path = _sweep(tmp_path, "  replications: 1\n  oat: true\n  parameters:\n    name: ['[/]x', '[bold]y']\n")
    path.write_text(path.read_text().replace("name: tiny", "name: '[/]'"))
    result = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "[/]: vs_baseline.profit, best points" in result.output
    assert "[bold]y" in result.output
