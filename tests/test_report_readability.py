"""Charts a manager can read: no legend over a bar, no labels piled on each other, colour scales and axes
that show the differences that matter without exaggerating them, and a page one can find one's way in."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from sim.report import charts, sweep_charts


def _extents(fig, artists) -> list:
    renderer = fig.canvas.get_renderer()
    return [artist.get_window_extent(renderer) for artist in artists]


def _drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    return fig


def _estimate(mean: float) -> dict:
    return {"mean": mean, "ci_low": mean - 5_000, "ci_high": mean + 5_000}


def _oat(parameters: int) -> dict:
    return {"center": _estimate(100_000),
            "parameters": [{"parameter": f"policy.points.p{i}", "low_value": 1, "high_value": 2,
                            "low": _estimate(100_000 - 20_000 * (i + 1)), "high": _estimate(100_000 + 30_000 * (i + 1))}
                           for i in range(parameters)]}


def _lopsided() -> dict:
    """The narrowest swing (drawn lowest) reaches as far right as the widest."""
    return {"center": _estimate(100_000),
            "parameters": [{"parameter": "policy.points.narrow", "low_value": 1, "high_value": 2,
                            "low": _estimate(100_000), "high": _estimate(185_000)},
                           {"parameter": "policy.points.wide", "low_value": 1, "high_value": 2,
                            "low": _estimate(0), "high": _estimate(190_000)}]}


def test_the_tornado_legend_covers_no_bar() -> None:
    """Was: the legend sat in the lower right corner of the axes, over the lowest bar."""
    for oat in (_oat(1), _oat(2), _oat(5), _lopsided()):
        fig = _drawn(sweep_charts.tornado_chart(oat, metric_label="incremental profit"))
        ax = fig.axes[0]
        bars = [p for p in ax.patches if isinstance(p, Rectangle)]
        legends = fig.legends or [ax.get_legend()]
        assert len(legends) == 1 and legends[0] is not None
        legend = _extents(fig, legends)[0]
        for bar in _extents(fig, bars):
            assert not legend.overlaps(bar)


def test_the_heatmap_scale_shows_the_differences_between_gains_beside_a_large_loss() -> None:
    """Was: a scale of ±482k (symmetric around zero) left cells of 99k and 153k nearly the same colour."""
    norm = sweep_charts.colour_scale(np.array([-482_000.0, 99_000.0, 120_000.0, 153_000.0]))
    assert norm(0.0) == 0.5                           # white is still zero
    assert norm(153_000.0) == 1.0 and norm(-482_000.0) == 0.0
    assert norm(153_000.0) - norm(99_000.0) > 0.15    # was 0.056
    same_sign = sweep_charts.colour_scale(np.array([99_000.0, 153_000.0]))
    assert (same_sign(99_000.0), same_sign(153_000.0)) == (0.0, 1.0)


def _frontier(cost: list[float], value: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"label": [f"#{i}" for i in range(len(cost))], "cost": cost, "value": value})


def test_frontier_labels_never_pile_up() -> None:
    """Was: twelve close points got twelve labels at the same offset, overlapping into a blob."""
    rng = np.random.default_rng(3)
    cluster = _frontier(list(100_000 + rng.normal(0, 150, 10)), list(60 + rng.normal(0, 0.05, 10)))
    points = pd.concat([cluster, _frontier([80_000, 130_000], [50, 70])], ignore_index=True)
    points["label"] = [f"#{i}" for i in range(12)]
    fig = _drawn(charts.frontier_chart(points))
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_text().startswith("#")]
    assert 2 <= len(labels) < 12     # some fit, the crowded rest is left out
    for a, b in itertools.combinations(_extents(fig, labels), 2):
        assert not a.overlaps(b)
    front = {f"#{i}" for i in np.flatnonzero(charts.pareto_mask(points["cost"].to_numpy(),
                                                               points["value"].to_numpy()))}
    assert front & {t.get_text() for t in labels}   # the frontier's labels go first
    spread = _frontier([100_000, 300_000, 500_000], [20, 40, 60])
    assert len([t for t in _drawn(charts.frontier_chart(spread)).axes[0].texts if t.get_text()[0] == "#"]) == 3


def test_a_frontier_of_close_values_starts_at_zero() -> None:
    """Was: two points at 58 and 62 on a 58-62 axis, a 7% difference drawn as the whole height."""
    fig = _drawn(charts.frontier_chart(_frontier([100_000, 104_000], [58.0, 62.0])))
    ax = fig.axes[0]
    assert ax.get_ylim()[0] <= 0 < 62 <= ax.get_ylim()[1]
    assert ax.get_xlim()[0] <= 0
    wide = _drawn(charts.frontier_chart(_frontier([10_000, 400_000], [5.0, 62.0]))).axes[0]
    assert wide.get_xlim()[0] > -50_000 and wide.get_ylim()[0] > -10   # a wide spread keeps its own axis


def test_sampled_designs_draw_their_points_and_grids_their_cells(tmp_path) -> None:
    """Was: a random design binned onto an 8x8 heatmap, most of its cells empty."""
    from click.testing import CliRunner
    from support.reports import synthetic_sweep

    from sim.cli import main

    for design, shown, absent in (("random", "points-map", "heatmap"), ("grid", "heatmap", "points-map")):
        folder = synthetic_sweep(tmp_path / design, points=30, replications=2, parameters=3, design=design)
        result = CliRunner().invoke(main, ["report", str(folder)])
        assert result.exit_code == 0, result.output
        names = " ".join(p.name for p in (folder / "report_files").glob("*.png"))
        assert shown in names and absent not in names


def test_the_points_map_puts_each_point_where_it_lies() -> None:
    rng = np.random.default_rng(1)
    points = pd.DataFrame({"a": rng.uniform(0, 1, 40), "b": rng.uniform(10, 20, 40),
                           "m": rng.normal(0, 1_000, 40)})
    fig = sweep_charts.points_map_chart(points, "a", "b", "m", metric_label="incremental profit")
    collection = fig.axes[0].collections[0]
    np.testing.assert_array_equal(collection.get_offsets(), points[["a", "b"]].to_numpy())
    np.testing.assert_array_equal(collection.get_array(), points["m"].to_numpy())


def test_the_clv_formula_note_speaks_of_late_arrivals_only_when_there_are_some(tmp_path) -> None:
    """Was: 'customers acquired late contribute a few months' for a run whose customers all came at the start."""
    from support.reports import small_run

    from sim.report.inputs import read_results
    from sim.report.run_page import run_page

    one_cohort = ("acquisition.0.initial_customers=1500", "acquisition.0.new_per_month=0",
                  "acquisition.1.new_per_month=0", "segments.regular.referrals_per_year.mean=0",
                  "segments.loyal.referrals_per_year.mean=0")
    for extra, said in (((), "so customers acquired late contribute a few months"),
                        (one_cohort, "all of them were acquired at the start, so each is counted for the whole "
                                     "horizon")):
        page = run_page(read_results(small_run(tmp_path / str(len(extra)), extra=extra)))
        note = next(chart.note for chart in page.charts if chart.key == "clv-formulas")
        assert said in note
        assert ("acquired late" in note) == (not extra)


def test_a_run_of_an_existing_base_alone_reports_without_the_clv_formulas(tmp_path) -> None:
    """Nobody acquired (the existing base only): the guides' formulas, about an acquired customer's CLV, are left
    out rather than divided by zero; the rest of the page is there."""
    from support.reports import small_run

    from sim.report.inputs import read_results
    from sim.report.run_page import run_page

    only_base = ("acquisition.0.new_per_month=0", "acquisition.1.new_per_month=0",
                 "segments.regular.referrals_per_year.mean=0", "segments.loyal.referrals_per_year.mean=0")
    page = run_page(read_results(small_run(tmp_path, extra=only_base)))
    keys = [chart.key for chart in page.charts]
    assert "clv-formulas" not in keys and "decision" in keys


def test_every_section_is_in_the_sticky_contents(tmp_path) -> None:
    """The page's contents bar links every section and stays at the top (tests/test_report_browser.py
    checks it in a browser)."""
    import re

    from click.testing import CliRunner
    from support.reports import synthetic_sweep

    from sim.cli import main

    folder = synthetic_sweep(tmp_path / "sweep", points=20, replications=2, parameters=3)
    assert CliRunner().invoke(main, ["report", str(folder)]).exit_code == 0
    html = (folder / "report.html").read_text()
    assert re.search(r"nav\.contents \{ position: sticky; top: 0;", html)
    contents = html[html.index('<nav class="contents"'):html.index("</nav>")]
    linked = set(re.findall(r'href="#([^"]+)"', contents))
    sections = set(re.findall(r'<section id="([^"]+)"', html))
    assert sections and sections <= linked and "top" in linked


def test_the_customer_table_is_shown_relative_to_where_the_report_is_written(tmp_path, monkeypatch) -> None:
    """Was: the assumptions table of the shipped existing-base report showed the machine's absolute path."""
    from sim.report.text import flatten

    monkeypatch.chdir(tmp_path)
    inside = {"existing_customers": {"file": str(tmp_path / "scenarios" / "data" / "base.parquet"), "segment": "s"}}
    outside = {"existing_customers": {"file": "/elsewhere/base.parquet", "segment": "s"}}
    assert ("existing_customers", "existing_customers.file", "scenarios/data/base.parquet") in flatten(inside)
    assert ("existing_customers", "existing_customers.file", "/elsewhere/base.parquet") in flatten(outside)
