"""Sweep files with ``levers`` (what the firm chooses, the design's points) and ``uncertainties`` (drawn per
replication, the same draws at every point): the best lever setting is chosen among levers only."""

from __future__ import annotations

import json
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


def test_a_sweep_of_levers_names_the_best_lever_setting_in_the_table_and_the_report(tmp_path: Path) -> None:
    """With levers and uncertainties, a point is a choice judged over the drawn assumptions: the CLI and the
    report rank lever settings (one per choice, the draws never make points) and call the winner the best
    lever setting. A fixed cost of 5,000 a month is 30,000 less profit in every replication, whatever the
    draws, so the cheaper setting is separated from the other."""
    (tmp_path / "scen.yaml").write_text(SCENARIO.replace("policy: {enrollment: {probability: 0.5}}",
                                                         "policy: {enrollment: {probability: 0.5}, "
                                                         "costs: {fixed_per_month: 0}}"))
    (tmp_path / "sweep.yaml").write_text(SWEEP.replace("policy.enrollment.probability: [0.2, 0.8]",
                                                       "policy.costs.fixed_per_month: [5000, 0]"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["sweep", str(tmp_path / "sweep.yaml"), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["levers"] is True and len(manifest["points"]) == 2
    assert manifest["uncertainties"] == ["acquisition.0.initial_customers", "response.member_frequency_lift"]
    assert "top lever settings of 2" in result.output
    assert "lever setting #1 is the best: above every other lever setting" in result.output
    assert "point #" not in result.output and "best point" not in result.output
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert "Best lever setting: #1" in html and "The top 2 lever settings by incremental profit" in html
    assert "draws the uncertain assumptions (acquisition.0.initial_customers, response.member_frequency_lift)" in html
    assert "Best point" not in html and "best point" not in html


def test_the_ranking_sentence_names_tied_lever_settings() -> None:
    from sim.experiments.ranking import Ranking, ranked_unit, ranking_sentence

    tied = Ranking(order=[2, 0, 1], best=None, tied=[2, 0], confidence=0.975)
    unit = ranked_unit(True)
    assert ranking_sentence(tied, 8, unit).startswith(
        "no single best lever setting: 2 of 3 lever settings (#2, #0) cannot be told from the highest mean")
    assert ranking_sentence(tied, 8, ranked_unit(False)).startswith("no single best point: 2 of 3 points")
