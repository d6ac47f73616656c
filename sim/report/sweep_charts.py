"""Charts of parameter sweeps: tornado, Sobol indices, a two-parameter heatmap (grids) or points map (sampled
designs) and a pairs plot.

Each takes the sweep's data (sensitivity.json parts, or the per-point table of
:func:`sim.report.analysis.point_statistics`) and returns a Figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from sim.experiments.ranking import short_key
from sim.report.style import (
    BASELINE,
    COMPACT,
    CURRENCY,
    PROGRAM,
    TOTAL,
    compact,
    money_axis,
    new_figure,
    sentence,
    styled,
)

#: The most cells a heatmap axis gets; continuous parameters are cut into this many quantile bins.
HEATMAP_BINS = 8
#: The most parameters a pairs plot shows (the most influential ones).
PAIRS_MAX_PARAMETERS = 4


def colour_scale(values: np.ndarray) -> Normalize:
    """A linear colour scale over the values; when they have both signs, white is zero and each side spans
    its own values (a loss of 482k does not wash out the differences between gains of 99k and 153k)."""
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    if low < 0 < high:
        return TwoSlopeNorm(vcenter=0.0, vmin=low, vmax=high)
    return Normalize(low, high)


def short(key: str) -> str:
    """The last two names of a dotted key (:func:`sim.experiments.ranking.short_key`)."""
    return short_key(key)


@styled
def tornado_chart(oat: dict, *, metric_label: str, money: bool = True) -> Figure:
    """One-at-a-time sensitivity: the metric with each parameter at its low and high value, the others
    at the centre; bars from the centre value, widest swing on top, 95% intervals as whiskers.

    ``oat`` is sensitivity.json's ``oat``: ``center`` {mean, ci_low, ci_high} and ``parameters``, each
    with ``parameter``, ``low_value``, ``high_value``, ``low`` and ``high`` ({mean, ci_low, ci_high}).
    """
    center = float(oat["center"]["mean"])
    rows = sorted(oat["parameters"], key=lambda p: abs(_mean(p["high"]) - _mean(p["low"])))
    fig, ax = new_figure(1.6 + 0.45 * len(rows))
    for y, row in enumerate(rows):
        for side, colour in (("low", "#56B4E9"), ("high", PROGRAM)):
            value = _mean(row[side])
            ax.barh(y, value - center, left=center, height=0.6, color=colour,
                    label=f"{side} setting" if y == 0 else None)
            low, high = row[side].get("ci_low"), row[side].get("ci_high")
            end = value
            if low is not None and high is not None:
                ax.plot([low, high], [y, y], color="#333333", lw=0.9)
                end = high if value >= center else low
            ax.annotate(_format(row[f"{side}_value"]), (end, y), xytext=(4 if value >= center else -4, 0),
                        textcoords="offset points", va="center", ha="left" if value >= center else "right",
                        fontsize=7.5)
    ax.axvline(center, color=TOTAL, lw=1)
    ax.annotate(f"all at the scenario's values: {compact(center)}", (center, 1.0), xycoords=("data", "axes fraction"),
                xytext=(4, -2), textcoords="offset points", va="top", fontsize=7.5, color=TOTAL)
    ax.set_ylim(-0.6, len(rows) - 0.1)
    ax.set_yticks(range(len(rows)), [short(r["parameter"]) for r in rows], fontsize=8)
    if money:
        money_axis(ax.xaxis, metric_label)
    else:
        ax.set_xlabel(metric_label)
    ax.margins(x=0.15)
    ax.grid(axis="y", visible=False)
    ax.set_title("One parameter at a time at its low and high value")
    # Below the axes, not inside them: inside, the legend covers the lowest bar whatever corner it takes.
    fig.legend(*ax.get_legend_handles_labels(), loc="outside upper right", ncols=2)
    return fig


def _mean(estimate: dict) -> float:
    value = estimate.get("mean")
    return float("nan") if value is None else float(value)


def _format(value: object) -> str:
    """A parameter value as a label: 1,000; 0.25; 1.5e-05; text as it is."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    number = float(value)
    return f"{number:,.0f}" if number == int(number) and abs(number) < 1e12 else f"{number:.4g}"


@styled
def sobol_chart(sobol: dict) -> Figure:
    """First-order (S1) and total (ST) Sobol indices per parameter with their confidence half-widths.

    ``sobol`` is sensitivity.json's ``sobol``: ``parameters``, ``S1``, ``S1_conf``, ``ST``, ``ST_conf``.
    S1 is the share of the metric's variance a parameter explains alone, ST including its interactions.
    """
    table = pd.DataFrame({key: sobol[key] for key in ("parameters", "S1", "S1_conf", "ST", "ST_conf")})
    table = table.sort_values("ST", kind="stable")
    fig, ax = new_figure(1.6 + 0.45 * len(table))
    y = np.arange(len(table))
    ax.barh(y + 0.2, table["ST"], 0.38, xerr=table["ST_conf"], color=PROGRAM, label="total (ST)",
            error_kw={"elinewidth": 0.9, "capsize": 2})
    ax.barh(y - 0.2, table["S1"], 0.38, xerr=table["S1_conf"], color="#56B4E9", label="first order (S1)",
            error_kw={"elinewidth": 0.9, "capsize": 2})
    ax.set_yticks(y, [short(p) for p in table["parameters"]], fontsize=8)
    ax.set_xlim(min(0.0, float(table[["S1", "ST"]].min().min()) - 0.05), 1.05)
    ax.set_xlabel("Share of the metric's variance")
    ax.grid(axis="y", visible=False)
    ax.set_title("Sobol sensitivity indices")
    ax.legend(loc="lower right")
    return fig


def cells(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Cell index of each value and the cells' labels: the distinct values, or quantile bins."""
    distinct = pd.unique(values)
    if len(distinct) <= 12:
        try:
            order = sorted(distinct)
        except TypeError:
            order = list(distinct)
        lookup = {value: i for i, value in enumerate(order)}
        return values.map(lookup).to_numpy(int), [_format(v) for v in order]
    bins = pd.qcut(values.astype(float), HEATMAP_BINS, duplicates="drop")
    labels = [f"{compact(b.left)}–{compact(b.right)}" for b in bins.cat.categories]
    return bins.cat.codes.to_numpy(int), labels


@styled
def heatmap_chart(points: pd.DataFrame, x: str, y: str, metric: str, *, metric_label: str,
                  money: bool = True) -> Figure:
    """Mean of ``metric`` over the points in each cell of two parameters (the others averaged over).

    ``points`` has one row per sweep point: columns ``x``, ``y`` and ``metric`` (the point's mean).
    Parameters with up to 12 distinct values get a cell per value, others 8 quantile bins. The scale is
    centred at zero when the metric has both signs.
    """
    x_cells, x_labels = cells(points[x])
    y_cells, y_labels = cells(points[y])
    grid = np.full((len(y_labels), len(x_labels)), np.nan)
    frame = pd.DataFrame({"x": x_cells, "y": y_cells, "v": points[metric].to_numpy(float)})
    for (xi, yi), value in frame.groupby(["x", "y"])["v"].mean().items():
        grid[yi, xi] = value
    norm = colour_scale(grid)
    fig, ax = new_figure(1.8 + 0.45 * len(y_labels))
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="RdBu", norm=norm)
    if grid.size <= 144:
        for (yi, xi), value in np.ndenumerate(grid):
            if np.isfinite(value):
                shade = norm(value)
                ax.text(xi, yi, compact(value), ha="center", va="center", fontsize=7.5,
                        color="white" if abs(shade - 0.5) > 0.3 else "black")
    ax.set_xticks(range(len(x_labels)), x_labels, rotation=30 if len(x_labels) > 5 else 0, fontsize=8)
    ax.set_yticks(range(len(y_labels)), y_labels, fontsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(False)
    _colour_bar(fig, ax, image, metric_label, money)
    ax.set_title(f"{sentence(metric_label)}: mean per cell")
    return fig


@styled
def points_map_chart(points: pd.DataFrame, x: str, y: str, metric: str, *, metric_label: str,
                     money: bool = True) -> Figure:
    """Each sweep point where it lies in two parameters, coloured by its mean ``metric``: for sampled
    designs (random, Latin hypercube, Sobol), whose points scatter over the plane and would leave most
    cells of a binned heatmap empty. The scale is white at zero when the metric has both signs."""
    x_values, x_ticks = _numeric(points[x])
    y_values, y_ticks = _numeric(points[y])
    value = points[metric].to_numpy(float)
    norm = colour_scale(value)
    fig, ax = new_figure(4.6)
    marker = 36 if len(points) <= 100 else 16
    image = ax.scatter(x_values, y_values, c=value, cmap="RdBu", norm=norm, s=marker, edgecolors="#555555",
                       linewidths=0.4)
    if x_ticks:
        ax.set_xticks(range(len(x_ticks)), x_ticks)
    if y_ticks:
        ax.set_yticks(range(len(y_ticks)), y_ticks)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    _colour_bar(fig, ax, image, metric_label, money)
    ax.set_title(f"{sentence(metric_label)} of each point")
    return fig


def _colour_bar(fig: Figure, ax, image, metric_label: str, money: bool) -> None:
    """The colour bar of a map of the metric (heatmap or points map): its label, with the currency for money,
    and compact tick labels."""
    bar = fig.colorbar(image, ax=ax, shrink=0.9)
    bar.set_label(f"{metric_label} ({CURRENCY})" if money else metric_label)
    bar.formatter = COMPACT


def _numeric(values: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """Numbers to plot, and tick labels when the parameter takes non-numeric values."""
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(float), None
    categories = list(dict.fromkeys(values))
    return values.map({v: i for i, v in enumerate(categories)}).to_numpy(float), [str(c) for c in categories]


@styled
def pairs_chart(points: pd.DataFrame, parameters: list[str], metric: str, *, metric_label: str) -> Figure:
    """Pairs plot of the sweep points: the metric against each parameter on the diagonal, and each pair
    of parameters (below it) coloured by the metric; at most :data:`PAIRS_MAX_PARAMETERS` parameters."""
    parameters = parameters[:PAIRS_MAX_PARAMETERS]
    n = len(parameters)
    size = min(2.3, 8.0 / n)
    fig, axes = new_figure(size * n + 0.6, width=size * n + 1.2, nrows=n, ncols=n, squeeze=False)
    value = points[metric].to_numpy(float)
    coordinates = [_numeric(points[key]) for key in parameters]
    # points at the same place (a grid design) show their mean, as in the heatmap
    means = {(i, j): pd.DataFrame({"x": coordinates[j][0], "y": coordinates[i][0], "v": value})
             .groupby(["x", "y"])["v"].mean() for i in range(n) for j in range(i)}
    norm = colour_scale(np.concatenate([m.to_numpy() for m in means.values()]) if means else value)
    marker = 14 if len(points) > 60 else 24
    scatter = None
    for i, row_key in enumerate(parameters):
        row_ticks = coordinates[i][1]
        for j, column_key in enumerate(parameters):
            ax = axes[i][j]
            column_values, column_ticks = coordinates[j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.scatter(column_values, value, s=marker, color=PROGRAM, alpha=0.7, lw=0)
                ax.axhline(0, color=BASELINE, lw=0.8)
                ax.yaxis.set_major_formatter(COMPACT)
                ax.set_ylabel(metric_label if j == 0 else "", fontsize=7.5)
                ax.tick_params(axis="y", labelleft=True)
            else:
                where = means[i, j]
                scatter = ax.scatter(where.index.get_level_values("x"), where.index.get_level_values("y"),
                                     c=where.to_numpy(), cmap="RdBu", norm=norm, s=marker * 1.6, lw=0)
                if row_ticks:
                    ax.set_yticks(range(len(row_ticks)), row_ticks)
                if j == 0:
                    ax.set_ylabel(short(row_key), fontsize=7.5)
                else:
                    ax.tick_params(axis="y", labelleft=False)
            if column_ticks:
                ax.set_xticks(range(len(column_ticks)), column_ticks)
            ax.tick_params(labelsize=7)
            if i == n - 1 or i == j:
                ax.set_xlabel(short(column_key), fontsize=7.5)
    if scatter is not None:
        holder = axes[0][n - 1]   # empty corner above the diagonal
        bar = fig.colorbar(scatter, cax=holder.inset_axes([0.05, 0.55, 0.9, 0.1]), orientation="horizontal")
        bar.set_label(f"{metric_label} ({CURRENCY})", fontsize=8)
        bar.formatter = COMPACT
        bar.ax.tick_params(labelsize=7)
    fig.suptitle(f"Sweep points: {metric_label} against the parameters", x=0.02, ha="left",
                 fontweight="bold", fontsize=11)
    return fig


@styled
def metric_by_parameter_chart(points: pd.DataFrame, parameter: str, metric: str, *, metric_label: str) -> Figure:
    """The metric's mean (with 95% interval when ``metric:low``/``:high`` are given) at each point
    against a single swept parameter: for sweeps of one parameter, where a heatmap has no second axis."""
    fig, ax = new_figure(4.0)
    x, ticks = _numeric(points[parameter])
    order = np.argsort(x, kind="stable")
    mean = points[metric].to_numpy(float)[order]
    if f"{metric}:low" in points:
        lows, highs = points[f"{metric}:low"].to_numpy(float)[order], points[f"{metric}:high"].to_numpy(float)[order]
        ax.fill_between(x[order], lows, highs, color=PROGRAM, alpha=0.2, lw=0)
    ax.plot(x[order], mean, "o-", color=PROGRAM, ms=4)
    ax.axhline(0, color=BASELINE, lw=0.8)
    if ticks:
        ax.set_xticks(range(len(ticks)), ticks)
    ax.set_xlabel(parameter)
    money_axis(ax.yaxis, metric_label)
    ax.set_title(f"{metric_label} against {short(parameter)}")
    return fig
