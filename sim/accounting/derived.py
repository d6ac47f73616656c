"""Figures derived from replication results, each written once: payback month, prudent incremental
profit, ROI and the efficient (Pareto) front of cost against value. Used by the result files, the sweeps and the reports alike."""

from __future__ import annotations

import math

import numpy as np


def payback_months(cumulative: np.ndarray) -> np.ndarray:
    """Per row (replication) of cumulative incremental profit by month: the month (1-based) by whose end it
    turned non-negative for good; ``inf`` if it is negative at the horizon."""
    negative = np.atleast_2d(np.asarray(cumulative)) < 0
    months = negative.shape[1]
    any_negative = negative.any(axis=1)
    last_negative = months - 1 - np.argmax(negative[:, ::-1], axis=1)
    result = np.where(any_negative, last_negative + 2.0, 1.0)
    return np.where(any_negative & (last_negative == months - 1), np.inf, result)


def payback_month(monthly_difference: np.ndarray) -> float:
    """:func:`payback_months` of one replication's monthly incremental profit."""
    return float(payback_months(np.cumsum(monthly_difference)[None, :])[0])


def profit_net_of_liability(profit: np.ndarray, liability: np.ndarray, base_profit: np.ndarray,
                            base_liability: np.ndarray) -> np.ndarray:
    """Prudent incremental profit per replication: (profit - baseline profit) - (points liability at the
    horizon - the baseline's). Taken replication by replication, so that its interval is a paired one."""
    return (profit - base_profit) - (liability - base_liability)


def roi(incremental_profit: np.ndarray, program_cost: np.ndarray) -> np.ndarray:
    """Incremental profit per unit of program cost; NaN (undefined) where the program cost nothing."""
    incremental_profit = np.asarray(incremental_profit, dtype=float)
    program_cost = np.asarray(program_cost, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(program_cost > 0, incremental_profit / program_cost, np.nan)


def pareto_front(cost: np.ndarray, value: np.ndarray) -> list[int]:
    """Indices of the points not dominated by another (one with cost <= and value >=, one of them strictly),
    sorted by cost; of points equal in both, the first. Points with an undefined cost or value are left out."""
    cost = np.asarray(cost, dtype=float)
    value = np.asarray(value, dtype=float)
    usable = np.flatnonzero(np.isfinite(cost) & np.isfinite(value))
    order = usable[np.lexsort((-value[usable], cost[usable]))]   # by cost, then the best value first
    front: list[int] = []
    best = -math.inf
    for i in order:
        if value[i] > best:
            if front and cost[front[-1]] == cost[i]:
                continue
            front.append(int(i))
            best = value[i]
    return front


def pareto_mask(cost: np.ndarray, value: np.ndarray) -> np.ndarray:
    """:func:`pareto_front` as a mask over the points."""
    mask = np.zeros(len(np.asarray(cost)), dtype=bool)
    mask[pareto_front(cost, value)] = True
    return mask
