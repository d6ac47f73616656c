"""`loyalty-sim report`: the numbers behind the charts, each chart's content, and the command end to end."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure
from support.reports import SMALL, small_comparison, small_run
from support.scenarios import ROOT

import sim
from sim.accounting import derived
from sim.cli import main
from sim.report import analysis, charts


#: A points program on a small sample of customers: a report in seconds, every run chart applies.
@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """One small run with its baseline, simulated once for the tests of this module."""
    return small_run(tmp_path_factory.mktemp("simulated") / "run")


def copy_of(simulated: Path, tmp_path: Path) -> Path:
    """A private copy of the simulated run directory, free to damage."""
    return Path(shutil.copytree(simulated, tmp_path / "run"))


def timeseries(replications: int, months: int, rng: np.random.Generator, scale: float = 1.0) -> pd.DataFrame:
    """A synthetic timeseries table with every column the decomposition reads."""
    rows = []
    for r in range(replications):
        for m in range(months):
            purchases = rng.integers(800, 1200) * scale
            gross_margin = purchases * rng.uniform(15, 20)
            costs = {c: rng.uniform(0, 500) * scale for c, _ in analysis.COST_STEPS}
            cost_to_serve = purchases * 2.0
            program = sum(v for c, v in costs.items() if c != "acquisition_cost")
            rows.append({"replication": r, "month": m, "customers_acquired": rng.integers(50, 80) * scale,
                         "active_customers_end": rng.integers(900, 1100) * scale,
                         "customers_dropped_out": 20.0, "purchases": purchases, "net_revenue": gross_margin / 0.3,
                         "gross_margin": gross_margin, "cost_to_serve": cost_to_serve, "program_cost": program,
                         **costs,
                         "profit": gross_margin - cost_to_serve - program - costs["acquisition_cost"]})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ the numbers


def test_shapley_split_of_a_product() -> None:
    effects = analysis.shapley_product(np.array([[1.0], [1.0]]), np.array([[2.0], [3.0]]))
    # f = a b from (1, 1) to (2, 3): a's effect (1 x 1 + 1 x 3) / 2 = 2, b's (2 x 1 + 2 x 2) / 2 = 3
    assert effects[:, 0] == pytest.approx([2.0, 3.0])


def test_waterfall_adds_up_exactly_to_the_incremental_profit(rng) -> None:
    program, baseline = timeseries(4, 12, rng, 1.1), timeseries(4, 12, rng)
    decomposition = analysis.decompose_incremental_profit(program, baseline)
    incremental = (program.groupby("replication")["profit"].sum() - baseline.groupby("replication")["profit"].sum())
    steps = decomposition.drop(columns=["baseline", "program"]).sum(axis=1)
    np.testing.assert_allclose(steps, incremental, rtol=1e-10)
    assert {"customers", "retention", "frequency", "spend"} <= set(decomposition.columns)

    table = analysis.waterfall_steps(decomposition)
    assert table["kind"].tolist() == ["total"] + ["step"] * (len(table) - 2) + ["total"]
    first, last = table["mean"].iloc[0], table["mean"].iloc[-1]
    assert first + table.loc[table["kind"] == "step", "mean"].sum() == pytest.approx(last, rel=1e-12)
    assert last - first == pytest.approx(incremental.mean(), rel=1e-10)

    figure = charts.waterfall_chart(table)
    assert isinstance(figure, Figure)
    bars = {patch.get_gid(): patch for patch in figure.axes[0].patches}
    heights = [bars[key].get_height() for key in table.loc[table["kind"] == "step", "key"]]
    program_top = bars["program"].get_y() + bars["program"].get_height()
    baseline_top = bars["baseline"].get_y() + bars["baseline"].get_height()
    assert baseline_top + sum(heights) == pytest.approx(program_top, rel=1e-12)
    assert program_top - baseline_top == pytest.approx(incremental.mean(), rel=1e-10)


def test_zero_steps_are_left_out_of_the_waterfall(rng) -> None:
    baseline = timeseries(2, 6, rng)
    program = baseline.copy()
    program["reward_cost"] += 100.0
    program["program_cost"] += 100.0
    program["profit"] -= 100.0
    table = analysis.waterfall_steps(analysis.decompose_incremental_profit(program, baseline))
    assert table["key"].tolist() == ["baseline", "reward_cost", "program"]
    assert table["mean"].iloc[1] == pytest.approx(-600.0)


def test_payback_month_follows_the_runs_rule() -> None:
    monthly = np.array([[-5.0, 2, 2, 2, -2, 3, 1],        # negative again in month 5, then for good: month 6
                        [1.0, 1, 1, 1, 1, 1, 1],          # never negative: month 1
                        [-1.0, -1, -1, -1, -1, -1, 1]])   # still negative at the end: never
    cumulative = np.cumsum(monthly, axis=1)
    assert derived.payback_months(cumulative).tolist() == [6.0, 1.0, np.inf]
    # the result files' rule, one replication's monthly differences at a time, is the same one
    assert [derived.payback_month(row) for row in monthly] == [6.0, 1.0, np.inf]


def test_payback_marker_is_at_the_mean_payback_month() -> None:
    monthly = np.array([[-3.0, 1, 1, 2, 2, 2], [-3.0, 1, 1, 0.5, 1, 2]])   # paybacks 4 and 5
    figure = charts.cumulative_profit_chart({"program": np.cumsum(monthly, axis=1)})
    marker = [line for line in figure.axes[0].lines if line.get_gid() == "payback:program"]
    assert len(marker) == 1 and list(marker[0].get_xdata()) == [4.5, 4.5]


def test_no_payback_marker_when_a_replication_never_pays_back() -> None:
    figure = charts.cumulative_profit_chart({"program": np.cumsum([[-1.0, 2, 2], [-1.0, 0, 0]], axis=1)})
    assert not [line for line in figure.axes[0].lines if (line.get_gid() or "").startswith("payback")]
    assert "no payback by month 3 in 1 of 2" in figure.axes[0].texts[0].get_text()


def test_frontier_holds_exactly_the_non_dominated_points() -> None:
    points = pd.DataFrame({"label": list("abcdef"),
                           "cost": [0.0, 10, 10, 20, 30, 25],
                           "value": [5.0, 8, 6, 8, 12, 11]})
    # b beats c (same cost, more value) and d (less cost, same value); f is not beaten by e (cheaper)
    assert derived.pareto_mask(points["cost"], points["value"]).tolist() == [True, True, False, False,
                                                                             True, True]
    figure = charts.frontier_chart(points)
    line = next(line for line in figure.axes[0].lines if line.get_gid() == "frontier")
    assert list(zip(line.get_xdata(), line.get_ydata())) == [(0, 5), (10, 8), (25, 11), (30, 12)]


def test_clv_by_channel_is_weighted_by_customers() -> None:
    cohorts = pd.DataFrame({"replication": [0, 0, 0, 1, 1, 1], "acquisition_month": [0, 1, 0, 0, 1, 0],
                            "channel": ["paid", "paid", "referral"] * 2, "segment": "s",
                            "customers": [100, 300, 50, 100, 300, 50], "clv": [10.0, 20.0, 30.0, 12.0, 22.0, 30.0],
                            "cac": [5.0, 5.0, 0.0, 5.0, 5.0, 0.0], "active_end": [50, 200, 40, 50, 200, 40]})
    table = analysis.channel_summary({"program": cohorts}).set_index("channel")
    assert table.loc["paid", "clv"] == pytest.approx((17.5 + 19.5) / 2)
    assert table.loc["paid", "ratio"] == pytest.approx(18.5 / 5)
    assert np.isnan(table.loc["referral", "ratio"])
    curves = analysis.retention_curves({"program": cohorts}, horizon_months=12)
    assert curves.set_index("age_months")["share_active"].to_dict() == {12.0: 0.6, 11.0: 400 / 600}


def test_simple_clv_formulas() -> None:
    metrics = {"purchases": 1200.0, "customers_acquired": 100.0, "net_revenue": 60_000.0, "gross_margin": 18_000.0,
               "customers_dropped_out": 50.0, "cost_to_serve": 2_400.0, "reward_cost": 600.0,
               "acquisition_cost": 2_000.0, "clv_per_customer": 90.0, "clv_minus_cac_per_customer": 70.0}
    ts = pd.DataFrame({"replication": 0, "month": range(12), "active_customers_end": 100.0})  # 100 customer-years
    f = analysis.simple_clv(metrics, ts, annual_discount_rate=0.1)
    assert (f["aov"], f["frequency"], f["churn"], f["lifespan"]) == pytest.approx((50.0, 12.0, 0.5, 2.0))
    assert f["revenue_clv"] == pytest.approx(50 * 12 * 2)
    assert f["margin_clv_minus_cac"] == pytest.approx((180 - 30) * 2 - 20)
    assert f["retention_clv"] == pytest.approx(150 * 0.5 / (1 + 0.1 - 0.5))


def test_every_run_chart_returns_a_figure(simulated: Path) -> None:
    from sim.report.inputs import read_run

    run = read_run(simulated)
    base = run.baseline
    arms = {"program": run.cohorts, "baseline": base.cohorts}
    figures = [
        charts.customers_chart({"program": run.timeseries, "baseline": base.timeseries},
                               analysis.retention_curves(arms, 12)),
        charts.channel_clv_chart(analysis.channel_summary(arms), horizon_months=12),
        charts.points_chart(run.timeseries),
        charts.member_comparison_chart(run.summary["member_comparison"]),
        charts.clv_formulas_chart({"program": analysis.simple_clv(
            {k: v["mean"] for k, v in run.summary["metrics"].items()}, run.timeseries, 0.1)}, horizon_months=12),
        charts.differences_chart(pd.DataFrame({"label": ["a"], "mean": [1.0], "ci_low": [0.5], "ci_high": [1.5]}),
                                 metric_label="Profit", reference="b"),
    ]
    assert all(isinstance(f, Figure) and f.axes for f in figures)


# ------------------------------------------------------------------------------------------ end to end


def _self_contained(html: str) -> None:
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html, flags=re.IGNORECASE)
    assert "http://" not in html and "https://" not in html
    sources = re.findall(r'<img[^>]*src="([^"]+)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_run_report(simulated: Path, tmp_path: Path) -> None:
    folder = copy_of(simulated, tmp_path)
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    html = (folder / "report.html").read_text()
    _self_contained(html)
    pngs = sorted((folder / "report_files").glob("*.png"))
    assert len(pngs) == html.count("<img ") >= 7
    names = " ".join(p.name for p in pngs)
    for chart in ("cumulative-profit", "waterfall", "customers", "channel-clv", "points", "members", "clv-formulas",
                  "frontier"):
        assert chart in names
    for words in ("Executive summary", "incremental profit", "Assumptions", "policy.points.reward_threshold",
                  "Methods", "Common random numbers", "t-based"):
        assert words in html


def test_run_without_policy_skips_what_does_not_apply(tmp_path: Path) -> None:
    folder = small_run(tmp_path / "run", "baseline_retail.yaml",
                       ("acquisition.1.initial_customers=0", "acquisition.1.new_per_month=60"))
    result = CliRunner().invoke(main, ["report", str(folder), "-o", str(tmp_path / "out" / "plain.html")])
    assert result.exit_code == 0, result.output
    names = " ".join(p.name for p in (tmp_path / "out" / "plain_files").glob("*.png"))
    assert "customers" in names and "clv-formulas" in names
    for absent in ("cumulative-profit", "waterfall", "points", "members", "frontier"):
        assert absent not in names
    assert "no policy to compare" in (tmp_path / "out" / "plain.html").read_text()


def test_comparison_report(tmp_path: Path) -> None:
    folder = small_comparison(tmp_path / "cmp")
    result = CliRunner().invoke(main, ["report", str(folder), "-o", str(tmp_path / "cmp.html")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "cmp.html").read_text()
    _self_contained(html)
    assert "has the highest profit" in html and "discount-heavy" in html
    assert "net of points liability" in html and "net of the incremental points liability" in html
    names = " ".join(p.name for p in (tmp_path / "cmp_files").glob("*.png"))
    for chart in ("differences", "frontier", "cumulative-profit", "waterfall-discount-heavy", "points-points-program"):
        assert chart in names


def test_run_and_comparison_directories_hold_the_scenario(simulated: Path, tmp_path: Path) -> None:
    run = simulated
    text = (run / "scenario.yaml").read_text()
    assert "# source: " in text and "points_program.yaml" in text
    again = sim.load_scenario(run / "scenario.yaml")
    original = sim.load_scenario(ROOT / "scenarios" / "points_program.yaml", overrides=SMALL)
    assert again == original
    assert sim.load_scenario(run / "baseline" / "scenario.yaml").policy is None
    assert "without its policy block" in (run / "baseline" / "scenario.yaml").read_text()
    comparison = small_comparison(tmp_path / "cmp")
    folders = json.loads((comparison / "compare.json").read_text())["folders"]
    for name, folder in folders.items():
        assert sim.load_scenario(comparison / "scenarios" / folder / "scenario.yaml").name == name


@pytest.mark.parametrize("damage", ["missing-dir", "empty-dir", "corrupt-summary", "summary-not-object",
                                    "missing-metric", "missing-timeseries", "corrupt-cohorts", "missing-column",
                                    "missing-baseline"])
def test_bad_directories_exit_2_naming_the_file(simulated: Path, tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "run"
    if damage not in ("missing-dir", "empty-dir"):
        copy_of(simulated, tmp_path)
    expected = str(folder)
    if damage == "empty-dir":
        folder.mkdir()
    elif damage == "corrupt-summary":
        (folder / "summary.json").write_text('{"scenario": "x", ')
        expected = str(folder / "summary.json")
    elif damage == "summary-not-object":
        (folder / "summary.json").write_text("[1, 2]")
        expected = str(folder / "summary.json")
    elif damage == "missing-metric":
        summary = json.loads((folder / "summary.json").read_text())
        del summary["metrics"]["profit"]
        (folder / "summary.json").write_text(json.dumps(summary))
        expected = "metrics: missing metric(s): profit"
    elif damage == "missing-timeseries":
        (folder / "timeseries.parquet").unlink()
        expected = str(folder / "timeseries.parquet")
    elif damage == "corrupt-cohorts":
        (folder / "cohorts.parquet").write_bytes(b"PAR1 not really")
        expected = str(folder / "cohorts.parquet")
    elif damage == "missing-column":
        pd.read_parquet(folder / "timeseries.parquet").drop(columns=["profit"]).to_parquet(
            folder / "timeseries.parquet")
        expected = "missing column(s): profit"
    elif damage == "missing-baseline":
        for file in (folder / "baseline").iterdir():
            file.unlink()
        expected = str(folder / "baseline" / "summary.json")
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and expected in result.output


def test_output_that_is_a_directory_exits_2(simulated: Path, tmp_path: Path) -> None:
    folder = simulated
    (tmp_path / "taken.html").mkdir()
    result = CliRunner().invoke(main, ["report", str(folder), "-o", str(tmp_path / "taken.html")])
    assert result.exit_code == 2 and "is a directory" in result.output
