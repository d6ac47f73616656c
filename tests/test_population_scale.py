"""population_scale: K (or --scale K): simulate one customer in K, report counts and money at the population's size."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sim.accounting.metrics import SCALE_FREE
from sim.cli import main
from sim.experiments.replications import run_replication
from sim.schema import Scenario

POPULATION = """\
name: sampled
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
  - {channel: web, cac: 20, initial_customers: 4000, new_per_month: 400}
policy:
  enrollment: {probability: 0.6, self_selection: 1.0}
  points: {earn_per_currency: 1, reward_threshold: 500, reward_value: 10, reward_cost_ratio: 0.7,
           redeemer_share: 0.75, expiry_months_inactive: 12}
  costs: {fixed_per_month: 1000, per_member_per_year: 1.0}
"""


def _scenario(**changes) -> Scenario:
    import yaml

    data = yaml.safe_load(POPULATION)
    for key, value in changes.items():
        target = data
        *path, last = key.split(".")
        for part in path:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
    return Scenario.model_validate(data)


def test_a_scaled_run_is_k_times_its_sample_exactly() -> None:
    """The engine simulates the sample (counts and fixed cost divided by K); every count and amount is K times
    the sample's, per-customer figures and ratios are the sample's."""
    scaled = _scenario(population_scale=10)
    sample = _scenario(**{"acquisition.0.initial_customers": 400, "acquisition.0.new_per_month": 40,
                          "policy.costs.fixed_per_month": 100.0})
    for replication in (0, 1):
        big, small = run_replication(scaled, replication), run_replication(sample, replication)
        assert big.totals.keys() == small.totals.keys()
        for name, value in small.totals.items():
            expected = value if name in SCALE_FREE else 10 * value
            assert math.isclose(big.totals[name], expected, rel_tol=1e-12, abs_tol=1e-9), name
        for name, column in small.monthly.items():
            np.testing.assert_allclose(big.monthly[name], 10 * column, rtol=1e-12, atol=1e-9)
        for name in ("customers", "repeat_purchases", "active_end"):
            np.testing.assert_array_equal(big.cohorts[name], 10 * small.cohorts[name])
        for name in ("clv", "cac", "network_value", "clv_base", "clv_growth", "clv_learning", "clv_total"):
            np.testing.assert_array_equal(big.cohorts[name], small.cohorts[name])
        assert big.totals["customers_acquired"] == 10 * small.totals["customers_acquired"]


@pytest.mark.slow
def test_a_sample_estimates_the_population_without_bias() -> None:
    """K times a one-in-10 sample's profit and customers estimate the whole population's: the two means
    agree within 4 standard errors of their difference (independent replications of each)."""
    whole, scaled = _scenario(), _scenario(population_scale=10)
    replications = 24
    for metric in ("profit", "customers_acquired", "program_cost", "points_liability"):
        a = np.array([run_replication(whole, r).totals[metric] for r in range(replications)])
        b = np.array([run_replication(scaled, 100 + r).totals[metric] for r in range(replications)])
        se = math.sqrt(a.var(ddof=1) / replications + b.var(ddof=1) / replications)
        assert se < 0.05 * abs(a.mean()), metric        # precise enough to mean something
        assert abs(a.mean() - b.mean()) <= 4 * se, metric


def test_counts_that_do_not_divide_by_the_scale_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(POPULATION.replace("new_per_month: 400", "new_per_month: 405"))
    result = CliRunner().invoke(main, ["run", str(path), "--scale", "10", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"{path}:13: acquisition.0.new_per_month: 405 customers cannot be sampled one in 10" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out" / "summary.json").exists()
    written = tmp_path / "written.yaml"
    written.write_text(POPULATION.replace("seed: 3", "seed: 3\npopulation_scale: 7"))
    result = CliRunner().invoke(main, ["validate", str(written)])
    assert result.exit_code == 2 and "acquisition.0.initial_customers: 4,000 customers cannot be sampled one in 7" \
        in result.output, result.output


def test_every_output_states_the_scale(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(POPULATION)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(path), "--scale", "10", "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "simulated one customer in 10 (population_scale 10); counts and money are at the population's size" \
        in result.output.replace("\n", " ")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["population_scale"] == 10
    assert summary["metrics"]["customers_acquired"]["mean"] >= 4000 + 12 * 400     # the population, not 880
    assert "population_scale: 10" in (out / "scenario.yaml").read_text()
    report = CliRunner().invoke(main, ["report", str(out)])
    assert report.exit_code == 0, report.output
    html = (out / "report.html").read_text()
    assert "one customer in 10 simulated (population_scale 10), counts and money at the population&#39;s size" \
        in html


def test_compared_scenarios_share_one_sample(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(POPULATION)
    b.write_text(POPULATION.replace("name: sampled", "name: other\npopulation_scale: 10"))
    result = CliRunner().invoke(main, ["compare", str(a), str(b), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "population_scale: 10, but" in result.output and "same sample" in result.output
    result = CliRunner().invoke(main, ["compare", str(a), str(b), "--scale", "10", "--replications", "2",
                                       "--workers", "1", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "compare.json").read_text())["population_scale"] == 10


def test_shards_of_a_sample_add_up_to_the_scaled_run(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(POPULATION.replace("new_per_month: 400}", "new_per_month: 400, months: 3}\n"
                                       "  - {channel: shop, cac: 5, initial_customers: 1000}"))
    summaries = []
    for extra in ((), ("--shards", "2")):
        out = tmp_path / f"out{len(extra)}"
        result = CliRunner().invoke(main, ["run", str(path), "--scale", "10", "--replications", "2", "--workers", "1",
                                           "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        summaries.append(json.loads((out / "summary.json").read_text()))
    whole, sharded = summaries
    for name in ("customers_acquired", "purchases", "points_earned"):
        assert whole["metrics"][name] == sharded["metrics"][name]
    for name in ("profit", "program_cost"):
        assert math.isclose(whole["metrics"][name]["mean"], sharded["metrics"][name]["mean"], rel_tol=1e-9)


def test_the_export_states_the_scale(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "scenario.yaml"
    path.write_text(POPULATION)
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["run", str(path), "--scale", "10", "--replications", "2", "--workers", "1",
                                     "--out", str(out)]).exit_code == 0
    result = CliRunner().invoke(main, ["export", str(out), str(tmp_path / "run.xlsx")])
    assert result.exit_code == 0, result.output
    scale = pd.read_excel(tmp_path / "run.xlsx", sheet_name="scale")
    assert scale["population_scale"].tolist() == [10]
    assert "one customer in 10 simulated" in scale["note"].iloc[0]


BASE = {"count": 3000, "history_months": 18}


def test_a_simulated_base_is_sampled_with_the_rest() -> None:
    """existing_customers: {count, history_months} at population_scale 10 is the sample's base of count / 10,
    and the run is 10 times that sample's exactly, the base's own figures included."""
    scaled = _scenario(population_scale=10, existing_customers=BASE)
    sample = _scenario(**{"acquisition.0.initial_customers": 400, "acquisition.0.new_per_month": 40,
                          "policy.costs.fixed_per_month": 100.0, "existing_customers": {**BASE, "count": 300}})
    assert scaled.sample().existing_customers.count == 300
    big, small = run_replication(scaled, 0), run_replication(sample, 0)
    assert big.totals["existing_customers"] == 10 * small.totals["existing_customers"] == 3000
    assert big.totals["clv_per_existing_customer"] == small.totals["clv_per_existing_customer"] != 0
    for name, value in small.totals.items():
        expected = value if name in SCALE_FREE else 10 * value
        assert math.isclose(big.totals[name], expected, rel_tol=1e-12, abs_tol=1e-9), name


@pytest.mark.slow
def test_a_sampled_base_estimates_the_whole_base_without_bias() -> None:
    """Ten times a one-in-10 sample of a simulated base (with the acquired customers) estimates the whole run:
    means within 4 standard errors of their difference."""
    whole, scaled = _scenario(existing_customers=BASE), _scenario(population_scale=10, existing_customers=BASE)
    replications = 24
    for metric in ("profit", "clv_per_existing_customer", "points_liability"):
        a = np.array([run_replication(whole, r).totals[metric] for r in range(replications)])
        b = np.array([run_replication(scaled, 100 + r).totals[metric] for r in range(replications)])
        se = math.sqrt(a.var(ddof=1) / replications + b.var(ddof=1) / replications)
        assert se < 0.05 * abs(a.mean()), metric
        assert abs(a.mean() - b.mean()) <= 4 * se, metric


def test_a_base_count_that_does_not_divide_or_a_customer_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(POPULATION + "existing_customers: {count: 3005, history_months: 18}\n")
    result = CliRunner().invoke(main, ["validate", str(path), "--set", "population_scale=10"])
    assert result.exit_code == 2
    assert f"{path}:19: existing_customers.count: 3,005 customers cannot be sampled one in 10" in result.output
    table = tmp_path / "table.yaml"
    table.write_text(POPULATION + "existing_customers: {file: base.parquet, segment: regular}\n")
    result = CliRunner().invoke(main, ["validate", str(table), "--set", "population_scale=10"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "population_scale: 10: a customer table (base.parquet) is simulated whole" in result.output
