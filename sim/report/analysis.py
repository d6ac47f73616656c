"""The numbers behind the charts: paired incremental profit, its decomposition, CLV by channel, retention,
the marketing guides' CLV formulas, efficient frontiers and per-point statistics of sweeps.

Every interval is a t-based 95% interval over replications (Law & Kelton, ch. 9); differences between a
scenario and its baseline are paired replication by replication (common random numbers). The waterfall
decomposition and the formulas are written out in docs/report.md.
"""

from __future__ import annotations

import math
import warnings
from itertools import permutations

import numpy as np
import pandas as pd

from sim.accounting.estimates import half_width
from sim.accounting.metrics import ATTRIBUTABLE_PROGRAM_COSTS
from sim.input.errors import InputError, Problem

#: Program costs and acquisition cost as they appear in the waterfall, in this order.
COST_STEPS = (
    ("reward_cost", "rewards"), ("discount_cost", "discounts"), ("tier_benefit_cost", "tier benefits"),
    ("referral_bonus_cost", "referral bonuses"), ("message_cost", "messages"), ("member_cost", "member costs"),
    ("program_fixed_cost", "fixed costs"), ("acquisition_cost", "acquisition cost"),
)
#: The factors of contribution = customers x active months per customer x purchases per active month x
#: contribution per purchase, with the waterfall's names for their effects.
FACTORS = (
    ("customers", "more customers (referrals)"),
    ("retention", "retention effect"),
    ("frequency", "frequency effect"),
    ("spend", "spend effect"),
)


def mean_interval(values: np.ndarray, axis: int = 0, confidence: float = 0.95
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and t-based interval along ``axis``, ignoring NaNs; NaN bounds where fewer than two values."""
    data = np.asarray(values, dtype=float)
    count = np.sum(~np.isnan(data), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: their mean is NaN, as wanted
        mean = np.nanmean(data, axis=axis) if data.size else np.full(np.shape(count), np.nan)
        spread = np.nanstd(data, axis=axis, ddof=1) if data.size else mean
        half = half_width(spread / np.sqrt(count), count, confidence)
    half = np.where(count >= 2, half, np.nan)
    return mean, mean - half, mean + half


def interval(values: np.ndarray | pd.Series) -> dict[str, float]:
    """``{"mean", "ci_low", "ci_high"}`` of one-dimensional replication values."""
    mean, low, high = mean_interval(np.asarray(values, dtype=float))
    return {"mean": float(mean), "ci_low": float(low), "ci_high": float(high)}


def paired(program: pd.DataFrame, baseline: pd.DataFrame, column: str, source: str = "timeseries.parquet"
           ) -> tuple[np.ndarray, np.ndarray]:
    """``column`` of two timeseries tables as (replications x months) matrices, paired by replication."""
    mine = program.pivot_table(index="replication", columns="month", values=column, aggfunc="sum")
    theirs = baseline.pivot_table(index="replication", columns="month", values=column, aggfunc="sum")
    if not mine.index.equals(theirs.index) or not mine.columns.equals(theirs.columns):
        raise InputError([Problem(source, (), "the scenario and its baseline do not have the same replications "
                                              "and months, so they cannot be paired")])
    return mine.to_numpy(dtype=float), theirs.to_numpy(dtype=float)


def cumulative_incremental_profit(program: pd.DataFrame, baseline: pd.DataFrame) -> np.ndarray:
    """Per replication (rows) and month (columns): profit since the start minus the baseline's."""
    mine, theirs = paired(program, baseline, "profit")
    return np.cumsum(mine - theirs, axis=1)


def arm_totals(timeseries: pd.DataFrame) -> pd.DataFrame:
    """Per replication: the totals the decomposition needs (active months are month-end stocks summed)."""
    grouped = timeseries.groupby("replication")
    totals = grouped.sum(numeric_only=True)
    table = pd.DataFrame({
        "customers": totals["customers_acquired"],
        "active_months": totals["active_customers_end"],
        "purchases": totals["purchases"],
        "contribution": totals["gross_margin"] - totals["cost_to_serve"],
        "profit": totals["profit"],
    })
    for column, _label in COST_STEPS:
        table[column] = totals.get(column, 0.0)
    return table


def decompose_incremental_profit(program: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """Per replication: baseline profit, the effects that add up to the incremental profit, program profit.

    contribution (gross margin - cost to serve) = N x L x F x S with N customers acquired, L active
    customer-months per customer, F purchases per active customer-month, S contribution per purchase; its
    change is split exactly into the four factors' effects by the Shapley value (the average over every
    order of changing them one at a time). Then each cost's change is subtracted. Columns: ``baseline``,
    one per factor (``customers``, ``retention``, ``frequency``, ``spend``; or one ``contribution`` column
    when a factor is zero somewhere), one per cost (its change, negated), ``program``.
    """
    mine, theirs = arm_totals(program), arm_totals(baseline)
    if not mine.index.equals(theirs.index):
        raise InputError([Problem("timeseries.parquet", (), "the scenario and its baseline do not have the "
                                                            "same replications, so they cannot be paired")])
    table = pd.DataFrame({"baseline": theirs["profit"]})
    factors_before = _factors(theirs)
    factors_after = _factors(mine)
    if np.all(factors_before > 0) and np.all(factors_after > 0):
        effects = shapley_product(factors_before, factors_after)
        for (name, _label), effect in zip(FACTORS, effects):
            table[name] = effect
    else:
        table["contribution"] = mine["contribution"] - theirs["contribution"]
    for column, _label in COST_STEPS:
        table[column] = -(mine[column] - theirs[column])
    table["program"] = mine["profit"]
    return table


def _factors(totals: pd.DataFrame) -> np.ndarray:
    """(4, replications): N, L = active months / N, F = purchases / active months, S = contribution / purchases."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.vstack([
            totals["customers"].to_numpy(float),
            (totals["active_months"] / totals["customers"]).to_numpy(float),
            (totals["purchases"] / totals["active_months"]).to_numpy(float),
            (totals["contribution"] / totals["purchases"]).to_numpy(float),
        ])


def shapley_product(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Shapley split of prod(after) - prod(before) among the factors (rows); the effects add up exactly.

    Each factor's effect is the average, over every order of switching the factors from ``before`` to
    ``after`` one at a time, of the change it causes when switched (Shorrocks 2013, J. Econ. Inequality 11).
    """
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    effects = np.zeros_like(before)
    orders = list(permutations(range(len(before))))
    for order in orders:
        current = before.copy()
        value = np.prod(current, axis=0)
        for index in order:
            current[index] = after[index]
            new_value = np.prod(current, axis=0)
            effects[index] += new_value - value
            value = new_value
    return effects / len(orders)


def waterfall_steps(decomposition: pd.DataFrame, reference: str = "baseline", scenario: str = "program"
                    ) -> pd.DataFrame:
    """The bars of the waterfall: label, kind ('total' or 'step'), mean and interval over replications.

    Steps that are zero in every replication are left out; the means still add up exactly
    (baseline + steps = program, up to rounding of the floating-point sums). The totals are labelled
    with the ``reference``'s and the ``scenario``'s names.
    """
    labels = {"baseline": f"{reference} profit", "contribution": "contribution effect",
              "program": f"{scenario} profit",
              **dict(FACTORS), **{column: f"\u2212 {label}" for column, label in COST_STEPS}}
    rows = []
    for column in decomposition.columns:
        values = decomposition[column].to_numpy(float)
        kind = "total" if column in ("baseline", "program") else "step"
        if kind == "step" and not np.any(values):
            continue
        rows.append({"key": column, "label": labels[column], "kind": kind, **interval(values)})
    return pd.DataFrame(rows)


def channel_values(cohorts: pd.DataFrame) -> pd.DataFrame:
    """Per replication and channel: customers, CLV and CAC per customer, CLV / CAC (NaN without a CAC)."""
    weighted = cohorts.assign(clv_sum=cohorts["clv"] * cohorts["customers"],
                              cac_sum=cohorts["cac"] * cohorts["customers"])
    sums = weighted.groupby(["replication", "channel"])[["customers", "clv_sum", "cac_sum"]].sum()
    sums = sums[sums["customers"] > 0]
    table = pd.DataFrame({"customers": sums["customers"], "clv": sums["clv_sum"] / sums["customers"],
                          "cac": sums["cac_sum"] / sums["customers"]})
    table["ratio"] = np.where(table["cac"] > 0, table["clv"] / table["cac"].where(table["cac"] > 0), np.nan)
    return table.reset_index()


def channel_summary(cohorts_by_arm: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per arm (scenario) and channel: CLV, CAC and CLV / CAC with intervals over replications."""
    rows = []
    for arm, cohorts in cohorts_by_arm.items():
        values = channel_values(cohorts)
        for channel, group in values.groupby("channel", sort=False):
            clv, ratio = interval(group["clv"]), interval(group["ratio"])
            rows.append({"arm": arm, "channel": channel, "customers": float(group["customers"].mean()),
                         "clv": clv["mean"], "clv_low": clv["ci_low"], "clv_high": clv["ci_high"],
                         "cac": float(group["cac"].mean()), "ratio": ratio["mean"],
                         "ratio_low": ratio["ci_low"], "ratio_high": ratio["ci_high"]})
    return pd.DataFrame(rows)


def retention_curves(cohorts_by_arm: dict[str, pd.DataFrame], horizon_months: int) -> pd.DataFrame:
    """Share of each monthly cohort still active at the horizon, by segment and cohort age.

    Age is the months from the start of the acquisition month to the horizon; all replications and
    channels pooled (ratio of sums).
    """
    rows = []
    for arm, cohorts in cohorts_by_arm.items():
        sums = cohorts.groupby(["segment", "acquisition_month"])[["customers", "active_end"]].sum().reset_index()
        sums = sums[sums["customers"] > 0].sort_values(["segment", "acquisition_month"], ascending=[True, False])
        rows.append(pd.DataFrame({
            "arm": arm, "segment": sums["segment"],
            "age_months": horizon_months - sums["acquisition_month"].to_numpy(float),
            "share_active": sums["active_end"] / sums["customers"], "customers": sums["customers"],
        }))
    return pd.concat(rows, ignore_index=True)


def simple_clv(metrics: dict[str, float], timeseries: pd.DataFrame, annual_discount_rate: float) -> dict[str, float]:
    """The marketing guides' CLV formulas, fed with what the simulated customers did.

    Inputs (totals over the horizon, means over replications): customer-years = month-end active customers
    summed / 12; AOV = net revenue / purchases; frequency = purchases per customer-year; churn = customers
    dropped out per customer-year, lifespan = 1 / churn; cost to serve includes the program costs
    attributable to customers. Formulas: AOV x frequency x lifespan (revenue); margin x frequency x lifespan
    - cost to serve - CAC; m r / (1 + i - r) with m the yearly margin net of costs per customer, r = 1 - churn.
    """
    years = timeseries.groupby("replication")["active_customers_end"].sum().mean() / 12.0
    purchases, customers = metrics["purchases"], metrics["customers_acquired"]
    aov = metrics["net_revenue"] / purchases
    frequency = purchases / years
    churn = min(metrics["customers_dropped_out"] / years, 0.999)
    lifespan = 1.0 / churn if churn > 0 else math.inf
    serve_per_year = (metrics["cost_to_serve"] + sum(metrics.get(c) or 0.0 for c in ATTRIBUTABLE_PROGRAM_COSTS)) / years
    margin_per_year = metrics["gross_margin"] / years
    cac = metrics["acquisition_cost"] / customers
    retention = 1.0 - churn
    net_per_year = margin_per_year - serve_per_year
    return {
        "aov": aov, "frequency": frequency, "churn": churn, "lifespan": lifespan, "retention": retention,
        "margin_rate": metrics["gross_margin"] / metrics["net_revenue"], "cost_to_serve_per_year": serve_per_year,
        "margin_per_year": net_per_year, "cac": cac, "discount_rate": annual_discount_rate,
        "revenue_clv": aov * frequency * lifespan,
        "margin_clv_minus_cac": (margin_per_year - serve_per_year) * lifespan - cac,
        "retention_clv": net_per_year * retention / (1.0 + annual_discount_rate - retention),
        "simulated_clv": metrics["clv_per_customer"],
        "simulated_clv_minus_cac": metrics["clv_minus_cac_per_customer"],
    }


def point_statistics(results: pd.DataFrame, parameters: list[str], metrics: list[str]) -> pd.DataFrame:
    """Per sweep point: its parameter values, replications, and each metric's mean, ``:low`` and ``:high``."""
    grouped = results.groupby("point")
    table = grouped[parameters].first()
    table["replications"] = grouped.size()
    means, spreads, counts = (grouped[metrics].mean(), grouped[metrics].std(ddof=1), grouped[metrics].count())
    with np.errstate(invalid="ignore", divide="ignore"):
        half = half_width(spreads / np.sqrt(counts), counts)
    half = half.where(counts >= 2)
    for metric in metrics:
        table[metric] = means[metric]
        table[f"{metric}:low"] = means[metric] - half[metric]
        table[f"{metric}:high"] = means[metric] + half[metric]
    return table
