"""CLV in the four parts of the marketing texts (``docs/model.md``, "CLV in four parts"), by channel: the
numbers (from ``cohorts.parquet``) and their stacked bar chart.

The parts per customer: base (``clv_base``: the margin at the customer's starting spend level, less cost to
serve and attributable program costs), growth (``clv_growth``: the margin on what spend growth with tenure
added), network (``network_value``: the CLV of the customers it referred) and learning (``clv_learning``:
``economics.learning_value_per_customer_year`` times its discounted years alive).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.report.analysis import interval
from sim.report.style import PALETTE, arm_colours, money_axis, new_figure, styled

#: The parts, in stacking order, as cohorts.parquet names them, with their labels.
PARTS = (("clv_base", "base"), ("clv_growth", "growth"), ("network_value", "network"), ("clv_learning", "learning"))
#: The parts' colours (Okabe & Ito, as the other charts): blue, green, orange, sky blue.
COLOURS = (PALETTE[0], PALETTE[2], PALETTE[1], PALETTE[4])
#: What a cohort table needs for the chart (written by runs since the parts were added).
COLUMNS = ("customers", "clv_total", *(column for column, _ in PARTS))


def has_parts(cohorts: pd.DataFrame) -> bool:
    """Whether a cohort table carries the four parts (older result directories do not)."""
    return all(column in cohorts.columns for column in COLUMNS)


def parts_by_channel(cohorts_by_arm: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per arm and channel: each part per customer of the channel and ``clv_total``, the mean over
    replications of the customer-weighted means of the channel's cohorts, with the total's 95% interval."""
    names = [column for column, _ in PARTS] + ["clv_total"]
    rows = []
    for arm, cohorts in cohorts_by_arm.items():
        weighted = cohorts[["replication", "channel", "customers"]].copy()
        for name in names:
            weighted[name] = cohorts[name] * cohorts["customers"]
        sums = weighted.groupby(["replication", "channel"], sort=False)[["customers", *names]].sum()
        sums = sums[sums["customers"] > 0]
        per_customer = sums[names].div(sums["customers"], axis=0).reset_index()
        for channel, group in per_customer.groupby("channel"):   # in the order of the CLV-by-channel chart
            total = interval(group["clv_total"])
            rows.append({"arm": arm, "channel": channel, **{name: float(group[name].mean()) for name in names},
                         "total_low": total["ci_low"], "total_high": total["ci_high"]})
    return pd.DataFrame(rows)


@styled
def clv_parts_chart(table: pd.DataFrame, *, horizon_months: int) -> Figure:
    """Stacked bars of the four CLV parts per customer by channel, one bar per arm within a channel; a
    negative part (a base below zero, when attributable program costs exceed the margin) stacks downwards.
    A black dot marks each bar's total, with its 95% interval. ``table`` is :func:`parts_by_channel`."""
    fig, axis = new_figure(4.2)
    arms = list(dict.fromkeys(table["arm"]))
    channels = list(dict.fromkeys(table["channel"]))
    width = 0.8 / len(arms)
    edges = arm_colours(arms)
    positions, names = [], []
    for a, arm in enumerate(arms):
        rows = table[table["arm"] == arm].set_index("channel").reindex(channels)
        x = np.arange(len(channels)) - 0.4 + width * (a + 0.5)
        positions += list(x)
        names += [arm] * len(x)
        up, down = np.zeros(len(channels)), np.zeros(len(channels))
        for p, (column, label) in enumerate(PARTS):
            values = np.nan_to_num(rows[column].to_numpy(float))
            bottom = np.where(values >= 0, up, down)
            axis.bar(x, values, width * 0.92, bottom=bottom, color=COLOURS[p],
                     edgecolor=edges[a], linewidth=0.8 if len(arms) > 1 else 0,
                     label=label if a == 0 else None)
            up += np.maximum(values, 0)
            down += np.minimum(values, 0)
        total = rows["clv_total"].to_numpy(float)
        errors = np.vstack([total - rows["total_low"].to_numpy(float), rows["total_high"].to_numpy(float) - total])
        axis.errorbar(x, total, yerr=np.nan_to_num(errors), fmt="o", color="black", ms=3.5, elinewidth=0.9,
                      capsize=2, label="total (95% CI)" if a == 0 else None)
    if len(arms) == 1:
        axis.set_xticks(np.arange(len(channels)), channels)
    else:   # each bar named by its arm, the channels below
        axis.set_xticks(positions, names, fontsize=7)
        for c, channel in enumerate(channels):
            axis.text(c, -0.09, channel, ha="center", va="top", transform=axis.get_xaxis_transform())
    axis.grid(axis="x", visible=False)
    axis.axhline(0, color="#4D4D4D", lw=0.8)
    money_axis(axis.yaxis, "CLV per customer")
    axis.set_title(f"CLV in four parts by channel (to month {horizon_months})")
    fig.legend(*axis.get_legend_handles_labels(), loc="outside lower center", ncols=len(PARTS) + 1, fontsize=8)
    return fig
