"""Charts of runs and comparisons: each function takes data (tables, dicts) and returns a Figure.

No chart shows or saves itself; :mod:`sim.report.build` saves them. Money axes are in the scenario's
currency; intervals are t-based 95% intervals over replications unless a chart says otherwise.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from sim.accounting.derived import pareto_mask, payback_months
from sim.report.analysis import mean_interval
from sim.report.style import (
    BASELINE,
    COMPACT,
    FRONTIER,
    GAIN,
    LOSS,
    PROGRAM,
    TOTAL,
    arm_colours,
    colours,
    compact,
    money_axis,
    new_figure,
    number,
    styled,
    tick,
)


def _own_axes(ax, height: float = 4.2):
    if ax is not None:
        return ax.figure, ax
    return new_figure(height)


@styled
def frontier_chart(points: pd.DataFrame, *, value_label: str = "CLV per customer",
                   cost_label: str = "Program cost", front: np.ndarray | None = None,
                   title: str = "Value against program cost: the efficient frontier", ax=None) -> Figure:
    """Each scenario or sweep point by program cost (x) and value (y); the non-dominated ones joined.

    ``points`` has columns ``label``, ``cost``, ``value`` and optionally ``cost_low``, ``cost_high``,
    ``value_low``, ``value_high`` (95% intervals, drawn as error bars for up to 30 points). ``front`` is a
    mask of the frontier points; by default :func:`sim.accounting.derived.pareto_mask`. The frontier
    line has gid ``frontier``.
    """
    fig, ax = _own_axes(ax)
    cost, value = points["cost"].to_numpy(float), points["value"].to_numpy(float)
    mask = pareto_mask(cost, value) if front is None else np.asarray(front, dtype=bool)
    if {"value_low", "value_high"} <= set(points.columns) and len(points) <= 30:
        y_err = _error_bars(points, "value")
        x_err = _error_bars(points, "cost") if {"cost_low", "cost_high"} <= set(points.columns) else None
        ax.errorbar(cost, value, yerr=y_err, xerr=x_err, fmt="none", ecolor="#B0B0B0", elinewidth=1, zorder=1)
    size = 46 if len(points) <= 30 else 18
    ax.scatter(cost[~mask], value[~mask], s=size, color=BASELINE, alpha=0.7, zorder=2,
               label="dominated" if (~mask).any() else None)
    ax.scatter(cost[mask], value[mask], s=size * 1.4, color=FRONTIER, label="efficient frontier", zorder=3)
    order = np.argsort(cost[mask], kind="stable")
    ax.plot(cost[mask][order], value[mask][order], color=FRONTIER, lw=1.4, gid="frontier", zorder=2)
    money_axis(ax.xaxis, cost_label)
    money_axis(ax.yaxis, value_label)
    if len(points) <= FEW_POINTS:
        for axis, values in ((ax.xaxis, cost), (ax.yaxis, value)):
            _from_zero_when_close(ax, axis, values)
    ax.set_title(title)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside upper right", ncols=2)   # off the points' labels
    candidates = np.arange(len(points)) if len(points) <= 12 else np.flatnonzero(mask)[:15]
    ordered = sorted(candidates, key=lambda i: (not mask[i], cost[i]))   # the frontier's labels first
    _place_labels(fig, ax, [(str(points["label"].iloc[i]), cost[i], value[i]) for i in ordered])
    return fig


#: With at most :data:`FEW_POINTS` points (scenarios side by side, not a cloud of sweep points), an axis whose
#: values spread over less than :data:`CLOSE_SPREAD` of their size starts at zero: two points at 58 and 62 on
#: a 58-62 axis look worlds apart.
FEW_POINTS = 3
CLOSE_SPREAD = 0.25
#: Where a point's label may go, tried in turn, in points from the point: right above, right below, left.
LABEL_OFFSETS = ((6, 5, "left", "bottom"), (6, -5, "left", "top"), (-6, 5, "right", "bottom"),
                 (-6, -5, "right", "top"))


def _from_zero_when_close(ax, axis, values: np.ndarray) -> None:
    """Include zero on ``axis`` when all ``values`` have one sign and differ by little against their size."""
    finite = values[np.isfinite(values)]
    if len(finite) < 2 and not (len(finite) == 1 and finite[0] != 0):
        return
    low, high = float(finite.min()), float(finite.max())
    if (low > 0 or high < 0) and high - low < CLOSE_SPREAD * max(abs(low), abs(high)):
        ax.autoscale_view()
        bottom, top = axis.get_view_interval()
        room = 0.05 * max(abs(bottom), abs(top))
        set_limits = ax.set_xlim if axis is ax.xaxis else ax.set_ylim
        set_limits((0.0, top + room) if low > 0 else (bottom - room, 0.0))


def _place_labels(fig, ax, labels: list[tuple[str, float, float]]) -> None:
    """Label points where the label covers no other label (trying :data:`LABEL_OFFSETS` in turn); a label
    that finds no free place is left out (the tables name every point) rather than piled on the others."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not labels:
        return
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()   # the layout first, so that the labels' places are final
    renderer = canvas.get_renderer()
    taken: list = []
    for text, x, y in labels:
        for dx, dy, horizontal, vertical in LABEL_OFFSETS:
            note = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=8, color=TOTAL,
                               ha=horizontal, va=vertical, annotation_clip=True)
            note.set_in_layout(False)
            box = note.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in taken) and ax.bbox.contains(box.x0, box.y0) \
                    and ax.bbox.contains(box.x1, box.y1):
                taken.append(box)
                break
            note.remove()


def _error_bars(points: pd.DataFrame, column: str) -> np.ndarray:
    middle = points[column].to_numpy(float)
    low = np.nan_to_num(middle - points[f"{column}_low"].to_numpy(float))
    high = np.nan_to_num(points[f"{column}_high"].to_numpy(float) - middle)
    return np.vstack([np.maximum(low, 0), np.maximum(high, 0)])


@styled
def cumulative_profit_chart(cumulative: dict[str, np.ndarray], *, reference: str = "baseline",
                            ax=None) -> Figure:
    """Cumulative incremental profit by month end, per compared scenario, with a confidence fan.

    ``cumulative`` maps a label to a (replications x months) matrix of profit since the start minus the
    ``reference``'s, paired by replication. Dark band: 95% interval of the mean; light band: the range
    of single replications. The payback month (mean over replications, when every replication paid back)
    is a dashed vertical line with gid ``payback:<label>``.
    """
    fig, ax = _own_axes(ax, 4.4)
    notes = []
    for (label, matrix), colour in zip(cumulative.items(), colours(len(cumulative))):
        months = np.arange(1, matrix.shape[1] + 1)
        mean, low, high = mean_interval(matrix, axis=0)
        ax.fill_between(months, matrix.min(axis=0), matrix.max(axis=0), color=colour, alpha=0.10, lw=0)
        if np.isfinite(low).any():
            ax.fill_between(months, low, high, color=colour, alpha=0.30, lw=0)
        ax.plot(months, mean, color=colour, lw=2, label=label)
        paid_back = payback_months(matrix)
        if np.all(np.isfinite(paid_back)):
            month, month_low, month_high = (float(v) for v in mean_interval(paid_back))
            ax.axvline(month, color=colour, ls="--", lw=1.2, gid=f"payback:{label}")
            level = float(np.interp(month, months, mean))
            ax.plot([month], [level], marker="o", color=colour, ms=6)
            span = "" if not np.isfinite(month_low) or month_low == month_high else (
                f" (95% CI {month_low:.1f}–{month_high:.1f})")
            notes.append(f"{label}: pays back in month {month:.1f}{span}")
        else:
            never = int(np.sum(~np.isfinite(paid_back)))
            notes.append(f"{label}: no payback by month {matrix.shape[1]} in {never} of {len(paid_back)} "
                         "replications")
    ax.axhline(0, color=TOTAL, lw=0.9)
    ax.set_xlim(0.5, max(m.shape[1] for m in cumulative.values()) + 0.5)
    ax.set_xlabel("Month (cumulative to its end)")
    money_axis(ax.yaxis, f"Profit minus {reference}'s, cumulative")
    ax.set_title(f"Cumulative incremental profit against {reference}")
    ax.text(0.01, 0.98, "\n".join(notes), transform=ax.transAxes, va="top", fontsize=8.5,
            bbox={"facecolor": "white", "edgecolor": "#D0D0D0", "boxstyle": "round,pad=0.4"})
    handles, labels = ax.get_legend_handles_labels()
    if len(cumulative) > 1:
        ax.legend(handles, labels, loc="lower right")
    return fig


@styled
def waterfall_chart(steps: pd.DataFrame, *, reference: str = "baseline", scenario: str = "program",
                    ax=None) -> Figure:
    """From the reference's profit, through each effect and cost, to the scenario's profit.

    ``steps`` (from :func:`sim.report.analysis.waterfall_steps`) has ``key``, ``label``, ``kind`` ('total'
    first and last, 'step' between), ``mean``, ``ci_low``, ``ci_high``. Each bar has the step's key as gid.
    When the totals dwarf the steps the value axis starts above zero (said on the chart).
    """
    fig, ax = _own_axes(ax, 4.8)
    values = steps["mean"].to_numpy(float)
    kinds = steps["kind"].tolist()
    levels, bottoms = [], []
    level = 0.0
    for value, kind in zip(values, kinds):
        if kind == "total":
            bottoms.append(0.0)
            level = value
        else:
            bottoms.append(level)
            level += value
        levels.append(level)
    tops = np.array(levels)
    low, high = min(tops.min(), min(bottoms[1:-1], default=tops.min())), tops.max()
    span = max(high - low, abs(high) * 1e-6, 1e-9)
    truncated = low > 0 and span < 0.5 * low
    floor = low - 0.35 * span if truncated else 0.0
    x = np.arange(len(steps))
    for i, (key, value, kind) in enumerate(zip(steps["key"], values, kinds)):
        if kind == "total":
            bottom, height, colour = floor, value - floor, TOTAL
        else:
            bottom, height, colour = bottoms[i], value, GAIN if value >= 0 else LOSS
        ax.bar(x[i], height, bottom=bottom, color=colour, width=0.62, gid=str(key))
        if kind == "step" and np.isfinite(steps["ci_low"].iloc[i]):
            top = bottom + height
            ax.errorbar(x[i], top, yerr=[[top - (bottom + steps["ci_low"].iloc[i])],
                                        [(bottom + steps["ci_high"].iloc[i]) - top]],
                        fmt="none", ecolor="#333333", elinewidth=0.9, capsize=3)
        text = compact(value) if kind == "total" else ("+" if value >= 0 else "−") + compact(abs(value))
        if kind == "total" and i == len(steps) - 1 and i > 0:
            change = value - values[0]
            text += f"\n({'+' if change >= 0 else '−'}{compact(abs(change))})"
        label_at = max(bottom, bottom + height)
        if kind == "step" and value >= 0 and np.isfinite(steps["ci_high"].iloc[i]):
            label_at = max(label_at, bottom + steps["ci_high"].iloc[i])   # above the whisker
        ax.annotate(text, (x[i], label_at), xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8)
        if i + 1 < len(steps):
            ax.plot([x[i] + 0.31, x[i + 1] - 0.31], [levels[i]] * 2, color="#9A9A9A", lw=0.8)
    ax.set_xticks(x, [textwrap.fill(label, 12) for label in steps["label"]], fontsize=8)
    money_axis(ax.yaxis, "Profit over the horizon")
    if truncated:
        ax.set_ylim(floor, high + 0.25 * span)
        ax.set_xlabel(f"value axis starts at {tick(floor)}, not zero", loc="right", fontsize=8,
                      color="#666666", style="italic")
    ax.grid(axis="x", visible=False)
    ax.set_title(f"Where the incremental profit comes from: {reference} → {scenario}", loc="left")
    return fig


@styled
def customers_chart(series: dict[str, pd.DataFrame], curves: pd.DataFrame) -> Figure:
    """Left: active customers (and members) at each month end per arm, 95% band. Right: the share of each
    monthly cohort still active at the horizon by cohort age, per segment (solid: first arm; dashed: others).

    ``series`` maps an arm's name to its timeseries table; ``curves`` is
    :func:`sim.report.analysis.retention_curves`.
    """
    fig, (left, right) = new_figure(4.2, ncols=2)
    for (arm, table), colour in zip(series.items(), arm_colours(list(series))):
        for column, style, suffix in (("active_customers_end", "-", "active"), ("members_end", ":", "members")):
            if column not in table or not table[column].any():
                continue
            matrix = table.pivot_table(index="replication", columns="month", values=column).to_numpy(float)
            months = np.arange(1, matrix.shape[1] + 1)
            mean, low, high = mean_interval(matrix, axis=0)
            if np.isfinite(low).any():
                left.fill_between(months, low, high, color=colour, alpha=0.25, lw=0)
            left.plot(months, mean, color=colour, ls=style, lw=1.8, label=f"{arm}: {suffix}")
    left.set_xlabel("Month")
    left.set_ylabel("Customers at month end")
    left.yaxis.set_major_formatter(COMPACT)
    left.set_title("Active customers")
    left.legend(loc="best", fontsize=7.5)
    arms = list(dict.fromkeys(curves["arm"]))
    segments = list(dict.fromkeys(curves["segment"]))
    for segment, colour in zip(segments, colours(len(segments))):
        for arm, style in zip(arms, ["-", "--", ":", "-."] * 4):
            rows = curves[(curves["segment"] == segment) & (curves["arm"] == arm)]
            label = segment if len(arms) == 1 else f"{segment} ({arm})"
            right.plot(rows["age_months"], rows["share_active"], color=colour, ls=style, lw=1.6, label=label)
    right.set_ylim(0, 1.02)
    right.yaxis.set_major_formatter(PercentFormatter(1.0))
    right.set_xlabel("Cohort age at the horizon (months since acquisition)")
    right.set_ylabel("Share of the cohort still active")
    right.set_title("Retention by cohort and segment")
    right.legend(loc="best", fontsize=7.5)
    return fig


@styled
def channel_clv_chart(table: pd.DataFrame, *, horizon_months: int) -> Figure:
    """CLV per customer (bars, 95% CI, CAC as a black tick) and CLV / CAC by channel, grouped by arm.

    ``table`` is :func:`sim.report.analysis.channel_summary`. Lines at CLV/CAC = 1 (break-even) and 3 (the
    rule of thumb of marketing guides).
    """
    fig, (left, right) = new_figure(4.2, ncols=2)
    arms = list(dict.fromkeys(table["arm"]))
    channels = list(dict.fromkeys(table["channel"]))
    width = 0.8 / len(arms)
    palette = arm_colours(arms)
    for a, arm in enumerate(arms):
        rows = table[table["arm"] == arm].set_index("channel").reindex(channels)
        x = np.arange(len(channels)) - 0.4 + width * (a + 0.5)
        clv = rows["clv"].to_numpy(float)
        errors = np.vstack([clv - rows["clv_low"].to_numpy(float), rows["clv_high"].to_numpy(float) - clv])
        left.bar(x, clv, width * 0.92, color=palette[a], label=arm,
                 yerr=np.nan_to_num(errors), error_kw={"elinewidth": 0.9, "capsize": 2})
        left.scatter(x, rows["cac"], marker="_", s=260 * width, color="black", zorder=3,
                     label="CAC" if a == 0 else None)
        ratio = rows["ratio"].to_numpy(float)
        right.bar(x, np.nan_to_num(ratio), width * 0.92, color=palette[a], label=arm)
        for xi, r in zip(x, ratio):
            if np.isfinite(r):
                right.annotate(f"{r:.1f}", (xi, r), xytext=(0, 2), textcoords="offset points", ha="center",
                               fontsize=7.5)
    for c, channel in enumerate(channels):
        if table.loc[table["channel"] == channel, "ratio"].isna().all():
            right.annotate("no CAC", (c, 0), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=7.5,
                           color="#666666")
    for axis in (left, right):
        axis.set_xticks(np.arange(len(channels)), channels)
        axis.grid(axis="x", visible=False)
    money_axis(left.yaxis, "CLV per customer")
    left.set_title(f"CLV by channel (to month {horizon_months})")
    fig.legend(*left.get_legend_handles_labels(), loc="outside lower center", ncols=len(arms) + 1, fontsize=8)
    right.axhline(1, color=LOSS, lw=1, ls="--")
    right.axhline(3, color=GAIN, lw=1, ls=":")
    right.text(1.0, 1, " 1", color=LOSS, fontsize=7.5, va="center", transform=right.get_yaxis_transform())
    right.text(1.0, 3, " 3", color=GAIN, fontsize=7.5, va="center", transform=right.get_yaxis_transform())
    right.set_ylabel("CLV / CAC")
    right.set_title("CLV / CAC by channel")
    return fig


@styled
def points_chart(timeseries: pd.DataFrame) -> Figure:
    """Points earned, redeemed and expired each month (left) and the outstanding balance with its
    liability at the firm's cost, net of expected breakage (right); means over replications."""
    means = timeseries.groupby("month")[["points_earned", "points_redeemed", "points_expired",
                                         "points_outstanding", "points_liability"]].mean()
    months = means.index.to_numpy() + 1
    fig, (left, right) = new_figure(4.0, ncols=2)
    for column, colour in (("points_earned", PROGRAM), ("points_redeemed", GAIN), ("points_expired", LOSS)):
        left.plot(months, means[column], color=colour, lw=1.8, label=column.removeprefix("points_"))
    left.set_xlabel("Month")
    left.set_ylabel("Points per month")
    left.yaxis.set_major_formatter(COMPACT)
    left.set_title("Points flows")
    left.legend(loc="best")
    right.plot(months, means["points_outstanding"], color=PROGRAM, lw=1.8, label="outstanding points")
    right.set_xlabel("Month (end)")
    right.set_ylabel("Outstanding points")
    right.yaxis.set_major_formatter(COMPACT)
    right.set_title("Outstanding points and liability")
    outstanding, liability = means["points_outstanding"].to_numpy(), means["points_liability"].to_numpy()
    held = outstanding > 0
    per_point = liability[held] / outstanding[held]
    if held.any() and np.allclose(per_point, per_point[0], rtol=1e-6):
        # liability = outstanding x a constant (docs/levers.md 2.2): one line, read on either scale
        scale = float(per_point[0])
        liability_axis = right.secondary_yaxis("right", functions=(lambda v: v * scale, lambda v: v / scale))
        money_axis(liability_axis.yaxis, "Liability")
        right.text(0.03, 0.97, f"liability: {scale:.4g} per point", transform=right.transAxes, va="top",
                   fontsize=8, color=TOTAL)
    else:
        twin = right.twinx()
        twin.plot(months, liability, color=LOSS, lw=1.6, ls="--", label="liability")
        money_axis(twin.yaxis, "Liability")
        twin.grid(False)
        twin.spines["right"].set_visible(True)
        right.legend(loc="upper left")
    return fig


@styled
def member_comparison_chart(member: dict) -> Figure:
    """The naive member-vs-non-member comparison next to the program's true (paired) effect.

    ``member`` is summary.json's ``member_comparison``: its ``repeat_purchases_per_member``,
    ``repeat_purchases_per_non_member``, ``naive_effect_per_member``,
    ``incremental_repeat_purchases_per_member`` ({mean, ci_low, ci_high}) and ``overstatement_factor``.
    """
    fig, (left, right) = new_figure(3.8, ncols=2)
    _interval_bars(left, ["members", "non-members"],
                   [member["repeat_purchases_per_member"], member["repeat_purchases_per_non_member"]],
                   [PROGRAM, BASELINE])
    left.set_ylabel("Repeat purchases per customer")
    left.set_title("What the dashboard shows")
    _interval_bars(right, ["naive: members −\nnon-members", "true: members vs\nthe same customers\nwithout program"],
                   [member["naive_effect_per_member"], member["incremental_repeat_purchases_per_member"]],
                   [LOSS, GAIN])
    right.set_ylabel("Extra repeat purchases per member")
    factor = member.get("overstatement_factor")
    right.set_title("Naive against true effect")
    if factor:
        right.text(0.97, 0.97, f"the naive comparison\noverstates the effect ×{factor:.1f}", transform=right.transAxes,
                   ha="right", va="top", fontsize=8.5, color=TOTAL)
    return fig


def _interval_bars(ax, labels: list[str], estimates: list[dict], palette: list[str]) -> None:
    means = np.array([e["mean"] if e["mean"] is not None else np.nan for e in estimates], dtype=float)
    lows = np.array([e.get("ci_low") if e.get("ci_low") is not None else np.nan for e in estimates], dtype=float)
    highs = np.array([e.get("ci_high") if e.get("ci_high") is not None else np.nan for e in estimates], dtype=float)
    errors = np.nan_to_num(np.vstack([means - lows, highs - means]))
    ax.bar(labels, means, color=palette, width=0.55, yerr=errors, error_kw={"capsize": 4, "elinewidth": 1})
    for i, value in enumerate(means):
        ax.annotate(f"{value:.2f}", (i, value), xytext=(10, 3), textcoords="offset points", fontsize=8)
    ax.grid(axis="x", visible=False)


#: The guides' formulas and the simulation's figures, as drawn by :func:`clv_formulas_chart`.
FORMULA_ROWS = (
    ("revenue_clv", "AOV × frequency × lifespan\n(revenue, undiscounted)"),
    ("margin_clv_minus_cac", "margin × frequency × lifespan\n− cost to serve − CAC"),
    ("retention_clv", "retention formula\nm·r / (1 + i − r)"),
    ("simulated_clv", "simulated CLV to the horizon\n(discounted, before CAC)"),
    ("simulated_clv_minus_cac", "simulated CLV − CAC"),
)


@styled
def clv_formulas_chart(formulas: dict[str, dict[str, float]], *, horizon_months: int) -> Figure:
    """The marketing guides' CLV formulas next to the simulated CLV of the same customers.

    ``formulas`` maps an arm (scenario) to :func:`sim.report.analysis.simple_clv` of its customers.
    """
    fig, ax = new_figure(3.2 + 0.35 * len(formulas) * len(FORMULA_ROWS) / 2)
    arms = list(formulas)
    height = 0.8 / len(arms)
    y = np.arange(len(FORMULA_ROWS))[::-1]
    for a, (arm, colour) in enumerate(zip(arms, arm_colours(arms))):
        values = np.array([formulas[arm][key] for key, _label in FORMULA_ROWS], dtype=float)
        positions = y + 0.4 - height * (a + 0.5)
        ax.barh(positions, values, height * 0.9, color=colour, label=arm if len(arms) > 1 else None)
        for position, value in zip(positions, values):
            ax.annotate(number(value), (max(value, 0), position), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=8)
    ax.set_yticks(y, [label.replace("the horizon", f"month {horizon_months}") for _k, label in FORMULA_ROWS],
                  fontsize=8)
    for simulated in ax.get_yticklabels()[-2:]:
        simulated.set_fontweight("bold")
    ax.axvline(0, color=TOTAL, lw=0.8)
    money_axis(ax.xaxis, "Value per customer")
    ax.grid(axis="y", visible=False)
    ax.set_title("Marketing-guide CLV formulas against the simulation")
    if len(arms) > 1:
        ax.legend(loc="lower right")
    ax.margins(x=0.12)
    return fig


@styled
def differences_chart(differences: pd.DataFrame, *, metric_label: str, reference: str,
                      confidence: float = 0.95, ax=None) -> Figure:
    """Paired differences against ``reference`` with their intervals, one row per compared scenario.

    ``differences`` has ``label``, ``mean``, ``ci_low`` and ``ci_high``; rows whose interval excludes zero
    are coloured by sign, the others grey.
    """
    fig, ax = _own_axes(ax, 1.6 + 0.5 * len(differences))
    y = np.arange(len(differences))[::-1]
    for yi, (_, row) in zip(y, differences.iterrows()):
        low, high = row["ci_low"], row["ci_high"]
        sure = np.isfinite(low) and (low > 0 or high < 0)
        colour = (GAIN if row["mean"] > 0 else LOSS) if sure else BASELINE
        if np.isfinite(low):
            ax.plot([low, high], [yi, yi], color=colour, lw=2.5, solid_capstyle="butt")
        ax.plot([row["mean"]], [yi], "o", color=colour, ms=8)
        ax.annotate(compact(row["mean"]), (row["mean"], yi), xytext=(0, 8), textcoords="offset points",
                    ha="center", fontsize=8)
    ax.axvline(0, color=TOTAL, lw=0.9)
    ax.set_yticks(y, differences["label"])
    ax.set_ylim(-0.7, len(differences) - 0.3)
    money_axis(ax.xaxis, f"{metric_label} minus {reference}'s")
    level = f"{confidence:.1%}".replace(".0%", "%")
    ax.set_title(f"{metric_label}: paired difference against {reference} ({level} CI)")
    ax.grid(axis="y", visible=False)
    return fig
