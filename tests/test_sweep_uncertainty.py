"""Sweep files with ``levers`` (what the firm chooses, the design's points) and ``uncertainties`` (drawn per
replication, the same draws at every point): the best lever setting is chosen among levers only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from sim.cli import main
from sim.experiments.sweep_plan import plan_sweep

SCENARIO = """name: s
horizon_months: 6
economics: {gross_margin: 0.3}
segments:
  s:
    purchases_per_year: {mean: 4, cv: 0.5}
    dropout: {model: per_purchase, mean: 0.1, cv: 0.5}
    order_value: {mean: 40, cv: 0.5}
acquisition: [{channel: web, initial_customers: 200}]
policy: {enrollment: {probability: 0.5}}
"""
SWEEP = """sweep:
  name: lv
  scenario: scen.yaml
  replications: 5
  levers:
    policy.enrollment.probability: [0.2, 0.8]
  uncertainties:
    acquisition.0.initial_customers: {low: 100, high: 400}
    response.member_frequency_lift: {dist: triangular, low: 0.0, mode: 0.05, high: 0.2}
"""


def _files(tmp_path: Path, sweep: str = SWEEP) -> Path:
    (tmp_path / "scen.yaml").write_text(SCENARIO)
    (tmp_path / "sweep.yaml").write_text(sweep)
    return tmp_path / "sweep.yaml"


def test_uncertainties_are_drawn_per_replication_and_shared_by_every_lever_setting(tmp_path: Path) -> None:
    path = _files(tmp_path)
    plan = plan_sweep(path)
    assert {p.key for p in plan.parameters} == {"policy.enrollment.probability"}
    assert all({u.key for u in s.uncertain} >= {"acquisition.0.initial_customers"} for s in plan.scenarios)
    result = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(tmp_path / "out" / "results.parquet")
    acquired = rows.pivot(index="replication", columns="point", values="customers_acquired")
    assert (acquired.nunique(axis=1) == 1).all()            # the same draw at every point of a replication
    assert acquired.iloc[:, 0].nunique() == len(acquired)   # a new one in each replication
    assert acquired.iloc[:, 0].between(100, 400).all()


def test_levers_must_be_policy_keys_and_not_beside_parameters(tmp_path: Path) -> None:
    path = _files(tmp_path, SWEEP.replace("policy.enrollment.probability", "response.goal_gradient"))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:6: sweep.levers.response.goal_gradient: a lever is what the firm chooses" in result.output
    path = _files(tmp_path, SWEEP + "  parameters:\n    policy.enrollment.probability: [0.1]\n")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and "not both" in result.output


def test_an_uncertainty_outside_its_key_range_names_the_sweep_line(tmp_path: Path) -> None:
    path = _files(tmp_path, SWEEP.replace("{low: 100, high: 400}", "{low: -5, high: 400}"))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:8: sweep.uncertainties.acquisition.0.initial_customers" in result.output
