"""Sweep reports, against the sweep directory format of docs/results.md (sweep.json, results.parquet, sensitivity.json).

:func:`synthetic_sweep` writes such a directory from a known response surface, so the report can be
tested (and timed, bench/bench_report.py) without simulating: 200 points in a second.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure
from support.reports import synthetic_sweep

from sim.cli import main
from sim.report import analysis, sweep_charts


#: The swept parameters of the synthetic sweep and their ranges.
def _charts(folder: Path) -> str:
    return " ".join(p.name for p in sorted(folder.glob("*.png")))


def test_sweep_report(tmp_path: Path) -> None:
    folder = synthetic_sweep(tmp_path / "sweep")
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    names = _charts(folder / "report_files")
    for chart in ("metric-frontier", "-frontier", "tornado", "sobol", "points-map", "pairs"):
        assert chart in names
    assert "heatmap" not in names   # a Latin hypercube's points: each drawn where it is, not binned
    html = (folder / "report.html").read_text()
    assert "What drives the answer" in html
    # a best point only when the paired intervals separate it from every other point, else the tied ones
    from sim.experiments.ranking import rank_points

    ranking = rank_points(pd.read_parquet(folder / "results.parquet"), "vs_baseline.profit")
    if ranking.best is None:
        assert f"No single best point: {len(ranking.tied)} tied" in html
    else:
        assert f"Best point: #{ranking.best}" in html
    assert "best?" in html and "Bonferroni over 29" in html
    assert "Showing the 4 most influential of 6 parameters" in html
    assert "swept: 0.5 to 2" in html      # the assumptions table marks the swept keys
    assert "https://" not in html and "http://" not in html


def test_partial_sweep_without_sensitivity(tmp_path: Path) -> None:
    folder = synthetic_sweep(tmp_path / "sweep", points=20, finished=12, folder=False)
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    names = _charts(folder / "report_files")
    assert "tornado" not in names and "sobol" not in names and "points-map" in names
    assert "only 12 of 20 points are finished" in (folder / "report.html").read_text()


def test_sweep_without_baseline_and_with_one_parameter(tmp_path: Path) -> None:
    folder = synthetic_sweep(tmp_path / "sweep", points=12, parameters=1, baseline=False)
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    names = _charts(folder / "report_files")
    assert "parameter" in names and "heatmap" not in names and "pairs" not in names
    assert "top 10 points by profit" in (folder / "report.html").read_text()


def test_sweep_summary_names_the_best_point_only_when_separated(tmp_path: Path) -> None:
    """Two points far apart are told apart (a best point); with the gap inside the noise, they are tied."""
    from sim.report.inputs import read_results
    from sim.report.sweep_page import sweep_summary

    for gap, lead in ((1e6, "Best point: #"), (0.0, "No single best point: 2 tied")):
        folder = synthetic_sweep(tmp_path / f"gap-{gap:.0f}", points=2, replications=4, parameters=1)
        rows = pd.read_parquet(folder / "results.parquet")
        rows.loc[rows["point"] == 1, "vs_baseline.profit"] = (
            rows.loc[rows["point"] == 0, "vs_baseline.profit"].to_numpy() + gap + np.array([1e4, -1e4, 1e4, -1e4]))
        for point, frame in rows.groupby("point"):
            frame.to_parquet(folder / "results.parquet" / f"point-{point:07d}.parquet", index=False)
        sweep = read_results(folder)
        bullets = sweep_summary(sweep, analysis.point_statistics(sweep.results, sweep.parameters,
                                                                 ["vs_baseline.profit"]),
                                "vs_baseline.profit", sweep.parameters)
        assert bullets[0]["lead"].startswith(lead), bullets[0]
        if gap:
            assert bullets[0]["lead"] == "Best point: #1"


def test_tornado_puts_the_widest_swing_on_top() -> None:
    oat = {"center": {"mean": 0.0}, "parameters": [
        {"parameter": "a.narrow", "low_value": 1, "high_value": 2, "low": {"mean": -1.0}, "high": {"mean": 1.0}},
        {"parameter": "a.wide", "low_value": 1, "high_value": 2, "low": {"mean": -5.0}, "high": {"mean": 9.0}},
        {"parameter": "a.middle", "low_value": 1, "high_value": 2, "low": {"mean": 3.0}, "high": {"mean": -2.0}}]}
    figure = sweep_charts.tornado_chart(oat, metric_label="incremental profit")
    labels = [tick.get_text() for tick in figure.axes[0].get_yticklabels()]
    assert labels == ["a.narrow", "a.middle", "a.wide"]          # bottom to top
    widths = sorted(round(abs(p.get_width()), 6) for p in figure.axes[0].patches)
    assert widths == [1.0, 1.0, 2.0, 3.0, 5.0, 9.0]


def test_sobol_bars_are_the_indices() -> None:
    sobol = {"parameters": ["x.a", "x.b"], "S1": [0.1, 0.6], "S1_conf": [0.01, 0.02], "ST": [0.2, 0.7],
             "ST_conf": [0.02, 0.03]}
    figure = sweep_charts.sobol_chart(sobol)
    widths = sorted(round(p.get_width(), 6) for p in figure.axes[0].patches)
    assert widths == [0.1, 0.2, 0.6, 0.7]


def test_heatmap_cells_are_the_mean_over_the_other_parameters() -> None:
    grid = pd.DataFrame([(x, y, z) for x in (1, 2) for y in (10, 20, 30) for z in (0, 1)], columns=["x", "y", "z"])
    grid["m"] = grid["x"] * 100 + grid["y"] + grid["z"] * 4
    figure = sweep_charts.heatmap_chart(grid, "x", "y", "m", metric_label="m")
    image = figure.axes[0].images[0].get_array()
    expected = np.array([[x * 100 + y + 2 for x in (1, 2)] for y in (10, 20, 30)], dtype=float)
    np.testing.assert_allclose(np.asarray(image), expected)


def test_pairs_plot_shows_at_most_four_parameters() -> None:
    rng = np.random.default_rng(1)
    points = pd.DataFrame({k: rng.uniform(size=50) for k in "abcdef"})
    points["m"] = points["a"] - points["b"]
    figure = sweep_charts.pairs_chart(points, list("abcdef"), "m", metric_label="m")
    assert isinstance(figure, Figure)
    assert sum(1 for ax in figure.axes if ax.get_subplotspec() is not None) == 16


@pytest.mark.parametrize("damage", ["corrupt-manifest", "no-results", "no-metric-column"])
def test_bad_sweep_directories_exit_2(tmp_path: Path, damage: str) -> None:
    folder = synthetic_sweep(tmp_path / "sweep", points=6, folder=False)
    if damage == "corrupt-manifest":
        (folder / "sweep.json").write_text("{")
        expected = "sweep.json"
    elif damage == "no-results":
        (folder / "results.parquet").unlink()
        expected = "results.parquet: no such file"
    else:
        pd.read_parquet(folder / "results.parquet").drop(columns=["vs_baseline.profit"]).to_parquet(
            folder / "results.parquet")
        expected = "no column 'vs_baseline.profit'"
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output


def test_report_of_a_200_point_sweep(tmp_path: Path, record_property) -> None:
    """Runs and reports its time (the benchmark, bench/bench_report.py, is where speed is judged)."""
    folder = synthetic_sweep(tmp_path / "sweep", points=200, replications=5)
    start = time.perf_counter()
    result = CliRunner().invoke(main, ["report", str(folder)])
    seconds = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    record_property("report_seconds_200_points", round(seconds, 2))
    print(f"report of a 200-point sweep: {seconds:.1f} s")
    pngs = list((folder / "report_files").glob("*.png"))
    assert len(pngs) <= 8
    assert sum(p.stat().st_size for p in pngs) < 3_000_000


def test_the_subtitle_counts_in_words(tmp_path: Path) -> None:
    """Was: "Sweep of 2 parameter(s) ... 25 point(s) x 4 replication(s)"."""
    from sim.report.inputs import read_results
    from sim.report.sweep_page import sweep_page

    one = sweep_page(read_results(synthetic_sweep(tmp_path / "one", points=5, replications=1, parameters=1)))
    assert "Sweep of 1 parameter, latin_hypercube design: 5 points x 1 replication," in one.subtitle
    many = sweep_page(read_results(synthetic_sweep(tmp_path / "many", points=6, replications=3, parameters=2)))
    assert "Sweep of 2 parameters, latin_hypercube design: 6 points x 3 replications," in many.subtitle
    assert "(s)" not in one.subtitle + many.subtitle
