"""``loyalty-sim export``: result directories as spreadsheets whose numbers are the result files' numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner
from support.reports import small_comparison, small_run, synthetic_sweep

from sim.cli import EXIT_BAD_INPUT, main


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_run(tmp_path_factory.mktemp("simulated") / "run")


def _export(*args: str):
    return CliRunner().invoke(main, ["export", *args])


def _same(value: float | None, expected: float | None) -> bool:
    if expected is None:
        return value is None or (isinstance(value, float) and math.isnan(value))
    return math.isclose(value, expected, rel_tol=1e-12, abs_tol=1e-12)


def test_run_exports_every_metric_of_summary_json(simulated: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.xlsx"
    result = _export(str(simulated), str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads((simulated / "summary.json").read_text())
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["headline", "vs baseline", "monthly", "monthly by replication", "cohorts"]
    for sheet, section in (("headline", "metrics"), ("vs baseline", "vs_baseline")):
        rows = {row[0]: row[1:] for row in book[sheet].iter_rows(min_row=2, values_only=True)}
        assert set(rows) == {name for name, v in summary[section].items() if isinstance(v, dict)}
        for name, (mean, low, high) in rows.items():
            expected = summary[section][name]
            assert all(_same(v, expected[k]) for v, k in zip((mean, low, high), ("mean", "ci_low", "ci_high"))), name
    headline = book["headline"]
    assert headline.freeze_panes == "A2" and all(cell.font.b for cell in headline[1])
    profit_row = next(row for row in headline.iter_rows(min_row=2) if row[0].value == "profit")
    assert profit_row[1].number_format == "#,##0.00"


def test_monthly_sheet_is_the_timeseries_averaged_over_replications(simulated: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.xlsx"
    assert _export(str(simulated), str(out)).exit_code == 0
    monthly = pd.read_excel(out, sheet_name="monthly")
    expected = pd.read_parquet(simulated / "timeseries.parquet").groupby("month").mean()
    assert list(monthly["month"]) == list(expected.index)
    assert monthly["profit"].to_numpy() == pytest.approx(expected["profit"].to_numpy(), rel=1e-12)
    cohorts = pd.read_excel(out, sheet_name="cohorts")
    assert cohorts["clv"].sum() == pytest.approx(pd.read_parquet(simulated / "cohorts.parquet")["clv"].sum())


def test_csv_writes_the_headline_and_one_file_per_further_table(simulated: Path, tmp_path: Path) -> None:
    result = _export(str(simulated), str(tmp_path / "run.csv"))
    assert result.exit_code == 0, result.output
    headline = pd.read_csv(tmp_path / "run.csv").set_index("metric")
    summary = json.loads((simulated / "summary.json").read_text())
    assert headline.loc["profit", "mean"] == pytest.approx(summary["metrics"]["profit"]["mean"], rel=1e-12)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["run-cohorts.csv", "run-monthly-by-replication.csv", "run-monthly.csv",
                     "run-vs-baseline.csv", "run.csv"]


def test_comparison_and_sweep_export(tmp_path: Path) -> None:
    comparison = small_comparison(tmp_path / "cmp")
    assert _export(str(comparison), str(tmp_path / "cmp.xlsx")).exit_code == 0
    content = json.loads((comparison / "compare.json").read_text())
    differences = pd.read_excel(tmp_path / "cmp.xlsx", sheet_name="differences")
    (name,) = content["differences"]
    row = differences[(differences["scenario"] == name) & (differences["metric"] == "profit")].iloc[0]
    assert row["mean"] == pytest.approx(content["differences"][name]["profit"]["mean"], rel=1e-12)
    sweep = synthetic_sweep(tmp_path / "sweep", points=5, replications=2)
    assert _export(str(sweep), str(tmp_path / "sweep.xlsx")).exit_code == 0
    points = pd.read_excel(tmp_path / "sweep.xlsx", sheet_name="points")
    results = pd.read_parquet(sweep / "results.parquet")
    assert points["point"].tolist() == sorted(results["point"].unique())
    assert points["profit"].to_numpy() == pytest.approx(results.groupby("point")["profit"].mean().to_numpy())


@pytest.mark.parametrize("case", ["missing", "not_results", "suffix"])
def test_bad_input_exits_2_naming_the_path(simulated: Path, tmp_path: Path, case: str) -> None:
    directory, out = {"missing": (tmp_path / "nowhere", tmp_path / "x.xlsx"),
                      "not_results": (tmp_path, tmp_path / "x.xlsx"),
                      "suffix": (simulated, tmp_path / "x.ods")}[case]
    result = _export(str(directory), str(out))
    assert result.exit_code == EXIT_BAD_INPUT
    named = out if case == "suffix" else directory
    assert str(named) in result.output
    assert not out.exists()


SWEEP_SCENARIO = """\
name: tiny
horizon_months: 6
replications: 2
seed: 3
economics: {gross_margin: 0.3, cost_to_serve_per_order: 4.0}
segments:
  regular:
    purchases_per_year: {mean: 5, cv: 0.8}
    dropout: {model: per_purchase, mean: 0.15, cv: 0.6}
    order_value: {mean: 50, cv: 0.5}
acquisition:
  - {channel: web, cac: 20, initial_customers: 200}
policy:
  points: {earn_per_currency: 1, reward_threshold: 500, reward_value: 10}
"""


def test_sweep_export_keeps_whole_number_parameters_whole(tmp_path: Path) -> None:
    """A sweep over ``horizon_months`` (a whole number) and a list starting with an integer shows 12 in the
    points table, not the 12.00 of an average over replications; fractions stay fractions."""
    (tmp_path / "tiny.yaml").write_text(SWEEP_SCENARIO)
    (tmp_path / "sweep.yaml").write_text(
        "sweep:\n  name: months\n  scenario: tiny.yaml\n  design: grid\n  replications: 2\n  parameters:\n"
        "    horizon_months: [6, 12]\n    policy.points.earn_per_currency: [1, 1.5]\n")
    assert CliRunner().invoke(main, ["sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "out"),
                                     "--workers", "1"]).exit_code == 0
    assert _export(str(tmp_path / "out"), str(tmp_path / "months.xlsx")).exit_code == 0
    sheet = openpyxl.load_workbook(tmp_path / "months.xlsx")["points"]
    header = [cell.value for cell in sheet[1]]
    months = [row[header.index("horizon_months")] for row in sheet.iter_rows(min_row=2)]
    assert sorted({cell.value for cell in months}) == [6, 12]
    assert {cell.number_format for cell in months} == {"#,##0"}
    earn = [row[header.index("policy.points.earn_per_currency")].value for row in sheet.iter_rows(min_row=2)]
    assert sorted(set(earn)) == [1, 1.5]
    assert _export(str(tmp_path / "out"), str(tmp_path / "months.csv")).exit_code == 0
    points = (tmp_path / "months.csv").read_text().splitlines()
    column = points[0].split(",").index("horizon_months")
    assert sorted({line.split(",")[column] for line in points[1:]}) == ["12", "6"]
