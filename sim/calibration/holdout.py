"""The holdout check: what the fitted model predicts after the calibration end, against what happened.

Two views, as in Fader, Hardie & Lee (2005, Marketing Science 24(2), figures 2-4):

- **conditional expectations**: for every customer, E[Y(t) | x, t_x, T], the repeat purchases expected in
  the holdout period of length t given its calibration history, summed and compared with the actual
  holdout repeat purchases, in total and by the number of calibration-period repeat purchases;
- **tracking**: cumulative repeat purchases of the cohort, week by week from the start of the log, actual
  against the model's unconditional E[X(t)] summed over customers from each one's first purchase.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.calibration.log import Purchases, to_date, to_day
from sim.calibration.models import conditional_expected_purchases, expected_repeat_purchases
from sim.calibration.summary import DAYS_PER_WEEK, CustomerSummary

#: Calibration-period repeat purchases from which customers are pooled in the table ("7+").
TABLE_TOP = 7


@dataclass(frozen=True)
class Prediction:
    """A model applied to some customers of the summary: ``mask`` selects them."""

    model: str
    params: dict[str, float]
    mask: np.ndarray


@dataclass(frozen=True)
class HoldoutCheck:
    """Predicted against actual repeat purchases after the calibration end.

    Attributes
    ----------
    weeks : float
        Length of the holdout period.
    actual, predicted : float
        Total repeat purchases of the cohort in the holdout period.
    by_repeat_purchases : DataFrame
        One row per number of calibration-period repeat purchases (the last row pools ``TABLE_TOP`` and
        more): ``calibration_repeat_purchases`` (a label), ``customers``, ``actual`` and ``predicted``
        (mean holdout repeat purchases per customer).
    by_segment : DataFrame or None
        With segments: one row per segment, ``segment``, ``customers``, ``actual`` and ``predicted`` (mean
        holdout repeat purchases per customer).
    tracking : DataFrame
        Week by week: ``week`` (weeks since the first date of the log), ``date``, ``actual`` and
        ``predicted`` cumulative repeat purchases.
    """

    weeks: float
    actual: float
    predicted: float
    by_repeat_purchases: pd.DataFrame
    by_segment: pd.DataFrame | None
    tracking: pd.DataFrame


def holdout_check(summary: CustomerSummary, purchases: Purchases, predictions: Sequence[Prediction], *,
                  segment_names: np.ndarray | None = None) -> HoldoutCheck:
    """Compare the predictions with the holdout period of ``summary`` (its calibration end to the log end).

    ``segment_names`` (one per customer), if given, adds the comparison segment by segment.
    """
    expected = np.zeros(summary.size)
    for prediction in predictions:
        part = summary.subset(prediction.mask)
        expected[prediction.mask] = conditional_expected_purchases(
            prediction.model, prediction.params, summary.holdout_weeks, part)
    bucket = np.minimum(summary.x, TABLE_TOP)
    table = _means_by("bucket", bucket, summary.holdout, expected)
    table.insert(0, "calibration_repeat_purchases",
                 [f"{b}+" if b == TABLE_TOP else str(b) for b in table.pop("bucket")])
    by_segment = None if segment_names is None else _means_by("segment", segment_names, summary.holdout, expected)
    return HoldoutCheck(weeks=summary.holdout_weeks, actual=float(summary.holdout.sum()),
                        predicted=float(expected.sum()), by_repeat_purchases=table, by_segment=by_segment,
                        tracking=tracking(summary, purchases, predictions))


def _means_by(name: str, key: np.ndarray, actual: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({name: key, "actual": actual, "predicted": predicted})
    return frame.groupby(name).agg(customers=("actual", "size"), actual=("actual", "mean"),
                                   predicted=("predicted", "mean")).reset_index()


def tracking(summary: CustomerSummary, purchases: Purchases, predictions: Sequence[Prediction]) -> pd.DataFrame:
    """Cumulative repeat purchases of the cohort at weekly dates from the log's first date to its end.

    A purchase dated D counts at every date from D on; a customer who first bought on day d is expected to
    have made E[X((D - d) / 7)] repeat purchases by date D.
    """
    start, end = to_day(purchases.first_date), purchases.period_end(summary.log_end)
    points = np.arange(start + 7, end + 1, 7)
    if points.size == 0 or points[-1] != end:
        points = np.r_[points, end]
    in_cohort = np.zeros(purchases.customers, dtype=bool)
    in_cohort[summary.customer] = True
    is_repeat = np.r_[False, purchases.customer[1:] == purchases.customer[:-1]]
    repeat_days = np.sort(purchases.day[is_repeat & in_cohort[purchases.customer]])
    actual = np.searchsorted(repeat_days, points, side="right")
    predicted = np.zeros(points.size)
    for prediction in predictions:
        # Exact first-purchase times are binned to the hour: E[X(t)] hardly moves within one.
        days, counts = np.unique(np.round(summary.first_day[prediction.mask] * 24) / 24, return_counts=True)
        ages = np.maximum(points[None, :] - days[:, None], 0) / DAYS_PER_WEEK
        predicted += (counts[:, None] * expected_repeat_purchases(prediction.model, prediction.params, ages)).sum(0)
    return pd.DataFrame({"week": (points - start) / DAYS_PER_WEEK,
                         "date": [to_date(int(np.floor(d))) for d in points], "actual": actual, "predicted": predicted})


def tracking_figure(tracking_table: pd.DataFrame, calibration_end: dt.date, *, title: str = "", ax=None):
    """Chart of cumulative repeat purchases, actual against predicted, with the calibration end marked.

    Takes the ``tracking`` table of :class:`HoldoutCheck`; draws on ``ax`` if given. Returns the Figure
    (never shown: save it with ``figure.savefig``).
    """
    from matplotlib.figure import Figure

    if ax is None:
        figure = Figure(figsize=(8, 4.5), layout="constrained")
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    dates = pd.to_datetime(tracking_table["date"])
    ax.plot(dates, tracking_table["actual"], color="black", label="actual")
    ax.plot(dates, tracking_table["predicted"], color="tab:blue", linestyle="--", label="predicted")
    ax.axvline(pd.Timestamp(calibration_end), color="grey", linestyle=":", label="calibration end")
    ax.set_xlabel("date (weekly)")
    ax.set_ylabel("cumulative repeat purchases")
    ax.set_title(title or "Cumulative repeat purchases: predicted vs actual")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return figure
