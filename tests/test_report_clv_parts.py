"""The run report's CLV in four parts: the numbers by channel, the stacked chart, and its place on the page
(only when the results carry the parts)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure
from support.reports import small_run

from sim.cli import main
from sim.report import clv_charts


def cohorts(arm_shift: float = 0.0) -> pd.DataFrame:
    """Two replications, a paid channel of two cohorts (100 and 300 customers) and a referral cohort."""
    return pd.DataFrame({
        "replication": [0, 0, 0, 1, 1, 1], "acquisition_month": [0, 1, 0, 0, 1, 0],
        "channel": ["paid", "paid", "referral"] * 2, "segment": "s",
        "customers": [100, 300, 50, 100, 300, 50],
        "clv_base": [10.0, 20.0, -3.0, 12.0, 22.0, -3.0],
        "clv_growth": [1.0, 2.0, 0.5, 1.0, 2.0, 0.5],
        "network_value": [4.0, 0.0, 0.0, 4.0, 0.0, 0.0],
        "clv_learning": [2.0, 2.0, 1.0, 2.0, 2.0, 1.0],
    }).assign(clv_base=lambda t: t["clv_base"] + arm_shift).assign(
        clv_total=lambda t: t["clv_base"] + t["clv_growth"] + t["network_value"] + t["clv_learning"])


def test_parts_are_weighted_by_customers_and_averaged_over_replications() -> None:
    table = clv_charts.parts_by_channel({"program": cohorts()}).set_index("channel")
    # replication 0: (100 x 10 + 300 x 20) / 400 = 17.5; replication 1: 19.5
    assert table.loc["paid", "clv_base"] == pytest.approx((17.5 + 19.5) / 2)
    assert table.loc["paid", "network_value"] == pytest.approx(1.0)
    assert table.loc["paid", "clv_growth"] == pytest.approx(1.75)
    assert table.loc["referral", "clv_base"] == pytest.approx(-3.0)
    for channel in ("paid", "referral"):
        row = table.loc[channel]
        assert row["clv_total"] == pytest.approx(row["clv_base"] + row["clv_growth"] + row["network_value"]
                                                 + row["clv_learning"])
        assert row["total_low"] <= row["clv_total"] <= row["total_high"]


def test_the_chart_stacks_the_parts_and_a_negative_base_downwards() -> None:
    table = clv_charts.parts_by_channel({"program": cohorts(), "baseline": cohorts(-1.0)})
    figure = clv_charts.clv_parts_chart(table, horizon_months=12)
    assert isinstance(figure, Figure)
    axis = figure.axes[0]
    bars = [patch for container in axis.containers if hasattr(container, "patches") for patch in container.patches]
    assert len(bars) == 2 * 2 * 4   # arms x channels x parts
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels[:4] == ["base", "growth", "network", "learning"]
    # the referral channel of the first arm: base -3 from 0 downwards, the others stacked from 0 upwards
    referral = sorted((bar for bar in bars if bar.get_x() > 0.5 and bar.get_x() < 1.0), key=lambda b: b.get_y())
    base = next(bar for bar in referral if bar.get_height() < 0)
    assert base.get_y() == 0 and base.get_height() == pytest.approx(-3.0)
    positive = [bar for bar in referral if bar.get_height() > 0]
    tops = sorted(bar.get_y() + bar.get_height() for bar in positive)
    assert tops[-1] == pytest.approx(0.5 + 1.0)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    return small_run(tmp_path_factory.mktemp("parts") / "run",
                     extra=("economics.learning_value_per_customer_year=5",))


def test_the_run_report_shows_the_parts(simulated: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(simulated, tmp_path / "run"))
    table = pd.read_parquet(folder / "cohorts.parquet")
    assert (table["clv_learning"] > 0).all() and (table["clv_growth"] > 0).any()
    np.testing.assert_allclose(table["clv_base"] + table["clv_growth"], table["clv"], rtol=1e-12, atol=1e-9)
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    html = (folder / "report.html").read_text()
    assert list((folder / "report_files").glob("*-clv-parts.png"))
    assert "CLV in four parts" in html and "learning_value_per_customer_year" in html


def test_results_without_the_parts_are_reported_without_the_chart(simulated: Path, tmp_path: Path) -> None:
    """Result directories written before the parts existed still make a report, without that chart."""
    folder = Path(shutil.copytree(simulated, tmp_path / "run"))
    for path in (folder / "cohorts.parquet", folder / "baseline" / "cohorts.parquet"):
        pd.read_parquet(path).drop(columns=["clv_base", "clv_growth", "clv_learning", "clv_total"]).to_parquet(path)
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    assert not list((folder / "report_files").glob("*-clv-parts.png"))
    assert list((folder / "report_files").glob("*-channel-clv.png"))


def test_channels_come_in_the_order_of_the_clv_by_channel_chart(simulated: Path) -> None:
    """Was: the four-parts chart listed paid_search, organic, existing, referral while the CLV-by-channel chart
    above it listed existing, organic, paid_search, referral."""
    from sim.report import analysis
    from sim.report.inputs import read_results

    cohorts = {"run": read_results(simulated).cohorts}
    parts = clv_charts.parts_by_channel(cohorts)
    summary = analysis.channel_summary(cohorts)
    assert list(parts["channel"]) == list(summary["channel"]) and len(parts) >= 3
