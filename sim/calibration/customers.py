"""The customer table of ``calibrate --customers``: one row per customer of the calibration cohort, with its
history and what the fitted models expect of it from the calibration end on.

Per customer, from the summary (:mod:`sim.calibration.summary`) and the fits of its segment:

- ``p_alive``: P(alive at T | x, t_x, T), BG/NBD (Fader, Hardie & Lee 2005, eq. 11) or Pareto/NBD
  (Schmittlein, Morrison & Colombo 1987);
- ``expected_purchases_12m``: E[Y(t) | x, t_x, T] for t = one year (365.25 days), the models' conditional
  expectations (:mod:`sim.model.theory`);
- ``expected_order_value``: the Gamma-Gamma conditional mean spend E[M | x, m_x] (Fader, Hardie & Lee 2005,
  "RFM and CLV", eq. 5); the population mean for customers without a repeat purchase;
- ``expected_residual_purchases_discounted``: DERT, the discounted expected residual transactions
  int_0^inf e^(-delta t) dE[Y(t) | x, t_x, T] = int_0^inf e^(-u) E[Y(u / delta) | ...] du with delta the
  continuous discount rate (ln(1 + annual rate) per year). E[Y(t)] grows without bound but slowly (like a
  small power or a log of t), which Gauss-Laguerre rules integrate poorly (1e-5 with 40 nodes); with
  u = -4 ln v the integral is int_0^1 4 v^3 E[Y(-4 ln v / delta)] dv, smooth enough that
  :data:`QUADRATURE_NODES` Gauss-Legendre nodes on (0, 1) give about 1e-11. For Pareto/NBD it agrees with
  the closed form of Fader, Hardie & Lee (2005, "RFM and CLV", eq. 2) (``tests/test_calibrate.py``);
- ``expected_residual_clv``: DERT x expected order value x margin rate: the discounted margin the customer
  is still expected to bring, before costs to serve.

Times in the history columns are in weeks (the models' unit), dates are calendar dates, money is the log's.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from sim.calibration.log import Purchases
from sim.calibration.models import BGNBD
from sim.calibration.pipeline import Calibration, SegmentFit
from sim.calibration.summary import CompressedHistories
from sim.model import theory
from sim.schema.units import DAYS_PER_YEAR, WEEKS_PER_YEAR

#: Gauss-Legendre nodes of the DERT integral after u = -4 ln v (see the module docstring).
QUADRATURE_NODES = 32
#: Parquet metadata key under which the table records what produced it (model, parameters, dates).
METADATA_KEY = b"loyalty_sim.customers"


def customer_table(calibration: Calibration, purchases: Purchases, *, margin: float = 1.0,
                   annual_discount_rate: float = 0.10) -> pd.DataFrame:
    """One row per customer of the calibration cohort (see the module docstring for the columns).

    ``margin`` is the margin rate applied to expected spend for the residual CLV (1.0: revenue);
    ``annual_discount_rate`` discounts continuously, as the simulator does.
    """
    summary = calibration.summary
    delta = np.log1p(annual_discount_rate) / WEEKS_PER_YEAR          # per week
    p_alive = np.empty(summary.size)
    purchases_12m = np.empty(summary.size)
    dert = np.empty(summary.size)
    order_value = np.empty(summary.size)
    segment = np.empty(summary.size, dtype=object)
    for part in calibration.segments:
        chosen = np.flatnonzero(part.mask)
        histories = CompressedHistories.of(summary.subset(part.mask))
        alive, next_year, discounted = _behaviour(calibration.chosen, part, histories, delta)
        p_alive[chosen], purchases_12m[chosen], dert[chosen] = (
            alive[histories.index], next_year[histories.index], discounted[histories.index])
        p, q, gamma = (part.spend.params[k] for k in ("p", "q", "gamma"))
        x, spend = summary.x[chosen], summary.mean_spend[chosen]
        order_value[chosen] = np.where(
            x > 0, theory.gamma_gamma_conditional_mean_spend(p, q, gamma, x=np.maximum(x, 1), mean_spend=spend),
            theory.gamma_gamma_mean_spend(p, q, gamma))
        segment[chosen] = part.name
    end_day = purchases.period_end(summary.calibration_end)
    last_day, spend_12m = _recent(purchases, summary.customer, end_day)
    return pd.DataFrame({
        "customer_id": _ids(purchases)[summary.customer],
        "segment": segment,
        "first_purchase_date": _dates(summary.first_day),
        "last_purchase_date": _dates(last_day),
        "repeat_purchases": summary.x.astype(np.int64),
        "recency_weeks": summary.t_x,
        "age_weeks": summary.T,
        "mean_repeat_spend": summary.mean_spend,
        "spend_12m": spend_12m,
        "p_alive": p_alive,
        "expected_purchases_12m": purchases_12m,
        "expected_order_value": order_value,
        "expected_residual_purchases_discounted": dert,
        "expected_residual_clv": dert * order_value * margin,
    })


def _behaviour(model: str, part: SegmentFit, h: CompressedHistories, delta: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(alive), E[purchases in the next year] and DERT of each distinct history of a segment."""
    params = part.behaviour.params
    if model == BGNBD:
        alive = theory.bgnbd_probability_alive(h.x, h.t_x, h.T, **params)
        expected = theory.bgnbd_conditional_expected_purchases
    else:
        alive = theory.paretonbd_probability_alive(h.x, h.t_x, h.T, **params)
        expected = theory.paretonbd_conditional_expected_purchases
    next_year = expected(WEEKS_PER_YEAR, h.x, h.t_x, h.T, **params)
    nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
    v, weights = (nodes + 1.0) / 2.0, weights / 2.0          # Gauss-Legendre on (0, 1)
    times = (-4.0 * np.log(v) / delta)[:, None]             # every node for every history at once
    dert = (weights * 4.0 * v**3) @ np.asarray(expected(times, h.x, h.t_x, h.T, **params))
    return np.asarray(alive, dtype=float), np.asarray(next_year, dtype=float), dert


def _dates(days: np.ndarray) -> np.ndarray:
    """Calendar dates (``datetime.date`` objects) of day numbers since 1970-01-01."""
    return (np.datetime64("1970-01-01", "D") + np.floor(days).astype(np.int64)).astype(object)


def _ids(purchases: Purchases) -> np.ndarray:
    """The log's customer ids by code (the codes themselves for a log built in memory)."""
    return purchases.ids if purchases.ids is not None else np.arange(purchases.customers).astype(str)


def _recent(purchases: Purchases, customers: np.ndarray, end_day: float) -> tuple[np.ndarray, np.ndarray]:
    """Per customer of ``customers``: the day of its last purchase before ``end_day`` and its spend in the
    year before it (all purchases, the first included)."""
    before = (purchases.day < end_day) if purchases.exact else (purchases.day <= end_day)
    last = np.full(purchases.customers, -np.inf)
    np.maximum.at(last, purchases.customer[before], purchases.day[before])
    recent = before & (purchases.day > end_day - DAYS_PER_YEAR)
    spend = np.bincount(purchases.customer[recent], weights=purchases.amount[recent], minlength=purchases.customers)
    return last[customers], spend[customers]


def write_customer_table(table: pd.DataFrame, path: Path, calibration: Calibration, *, margin: float,
                         annual_discount_rate: float) -> None:
    """Write the table as Parquet, recording in its metadata the model, parameters and dates that produced
    it, so that a scenario can check it was fitted with the law it is used with."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    record = {
        "model": calibration.chosen,
        "calibration_end": calibration.summary.calibration_end.isoformat(),
        "segments": {part.name: {"behaviour": part.behaviour.params, "spend": part.spend.params}
                     for part in calibration.segments},
        "margin": margin, "annual_discount_rate": annual_discount_rate,
        "written": dt.date.today().isoformat(),
    }
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), METADATA_KEY: json.dumps(record)})
    pq.write_table(arrow, path)
