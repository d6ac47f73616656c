"""The customer-by-customer summary the buy-till-you-die models are fitted to ("RFM" in their sense).

For a calibration period that ends on ``calibration_end`` (inclusive), each customer whose first purchase
falls in it is described by (Fader, Hardie & Lee 2005, Marketing Science 24(2), section 2):

- ``x``: repeat purchases in the period (purchases after the first; same-day purchases are merged);
- ``t_x``: time from the first purchase to the last repeat purchase (0 when ``x == 0``);
- ``T``: time from the first purchase to the calibration end (the customer's age);
- ``mean_spend``: the mean amount of the repeat purchases (0 when ``x == 0``), for the Gamma-Gamma model;

and, for the holdout check, ``holdout``: its repeat purchases after the calibration end. Times are in
**weeks**, the unit of the published CDNOW estimates: whole days divided by 7 for a log of dates (where the
period ends at the calibration end date itself, as published), exact for a simulated log (where it ends at
the end of that day); see :meth:`sim.calibration.log.Purchases.period_end`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from sim.calibration.log import Purchases

DAYS_PER_WEEK = 7.0


@dataclass(frozen=True)
class CustomerSummary:
    """One entry per customer of the calibration cohort (first purchase on or before ``calibration_end``).

    Attributes
    ----------
    customer : int64 array
        The customer's code in :class:`Purchases`.
    x : int64 array
        Repeat purchases in the calibration period.
    tx_days, age_days : float64 arrays
        ``t_x`` and ``T`` in days (see the module docstring).
    first_day : float64 array
        Time of the first purchase, days since 1970-01-01.
    first_spend, mean_spend : float64 arrays
        Amount of the first purchase; mean amount of the repeat purchases (0 if none).
    holdout : int64 array
        Repeat purchases after the calibration end, up to ``log_end``.
    calibration_end, log_end : datetime.date
        Last day of the calibration period; last day of the log.
    """

    customer: np.ndarray
    x: np.ndarray
    tx_days: np.ndarray
    age_days: np.ndarray
    first_day: np.ndarray
    first_spend: np.ndarray
    mean_spend: np.ndarray
    holdout: np.ndarray
    calibration_end: dt.date
    log_end: dt.date

    @property
    def size(self) -> int:
        """Number of customers."""
        return int(self.x.size)

    @property
    def t_x(self) -> np.ndarray:
        """Time of the last repeat purchase, weeks after the first purchase."""
        return self.tx_days / DAYS_PER_WEEK

    @property
    def T(self) -> np.ndarray:
        """Age at the calibration end, in weeks."""
        return self.age_days / DAYS_PER_WEEK

    @property
    def holdout_weeks(self) -> float:
        """Length of the holdout period (calibration end, log end], in weeks."""
        return (self.log_end - self.calibration_end).days / DAYS_PER_WEEK

    @property
    def monetary(self) -> np.ndarray:
        """Mean amount of all the customer's calibration purchases, the first included (RFM's M)."""
        return (self.first_spend + self.x * self.mean_spend) / (self.x + 1)

    def subset(self, mask: np.ndarray) -> CustomerSummary:
        """The customers selected by the boolean ``mask``."""
        arrays = {name: getattr(self, name)[mask] for name in _ARRAYS}
        return CustomerSummary(**arrays, calibration_end=self.calibration_end, log_end=self.log_end)


_ARRAYS = ("customer", "x", "tx_days", "age_days", "first_day", "first_spend", "mean_spend", "holdout")


def summarize(purchases: Purchases, calibration_end: dt.date) -> CustomerSummary:
    """Summarise every customer whose first purchase is on or before ``calibration_end``.

    Vectorised over the sorted purchases (one pass of ``bincount``): linear in the size of the log.
    """
    end = purchases.period_end(calibration_end)
    customer, day, amount = purchases.customer, purchases.day, purchases.amount
    n = purchases.customers
    starts = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
    first_day = day[starts]
    in_period = (day < end) if purchases.exact else (day <= end)
    purchases_in_period = np.bincount(customer[in_period], minlength=n)
    spend_in_period = np.bincount(customer[in_period], weights=amount[in_period], minlength=n)
    total = np.diff(np.r_[starts, day.size])
    cohort = in_period[starts]
    last = starts + np.maximum(purchases_in_period, 1) - 1  # rows are sorted by day within a customer
    x = (purchases_in_period - 1)[cohort]
    first_spend = amount[starts][cohort]
    repeat_spend = spend_in_period[cohort] - first_spend
    mean_spend = np.divide(repeat_spend, x, out=np.zeros(x.size), where=x > 0)
    return CustomerSummary(
        customer=np.flatnonzero(cohort),
        x=x.astype(np.int64),
        tx_days=np.where(x > 0, (day[last] - first_day)[cohort], 0.0),
        age_days=end - first_day[cohort],
        first_day=first_day[cohort],
        first_spend=first_spend,
        mean_spend=np.maximum(mean_spend, 0.0),  # rounding in the subtraction can leave -1e-15
        holdout=(total - purchases_in_period)[cohort].astype(np.int64),
        calibration_end=calibration_end,
        log_end=purchases.last_date,
    )


@dataclass(frozen=True)
class CompressedHistories:
    """Distinct (x, t_x, T) triples with their counts: the BTYD likelihoods depend on nothing else.

    Logs in whole days repeat the same triples many times (every customer with no repeat purchase who
    joined on the same day), so fitting on the distinct ones is exact and much faster.
    """

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    weight: np.ndarray
    index: np.ndarray  # for every customer, the row of its triple

    @classmethod
    def of(cls, summary: CustomerSummary) -> CompressedHistories:
        """Compress a summary (times in weeks, weights = number of customers)."""
        whole_days = np.all(summary.age_days == np.round(summary.age_days))
        if whole_days:  # one integer key per triple: much faster than unique rows
            span = int(summary.age_days.max()) + 1 if summary.size else 1
            key = (summary.x * span + summary.tx_days.astype(np.int64)) * span + summary.age_days.astype(np.int64)
        else:
            key = np.stack([summary.x.astype(np.float64), summary.tx_days, summary.age_days], axis=1)
        _, first, inverse, counts = np.unique(key, axis=None if whole_days else 0, return_index=True,
                                              return_inverse=True, return_counts=True)
        inverse = inverse.ravel()
        return cls(x=summary.x[first].astype(np.float64), t_x=summary.t_x[first], T=summary.T[first],
                   weight=counts.astype(np.float64), index=inverse)
