"""Calibration from a transaction log to fitted segments: summary, fits, model choice, segments, holdout.

:func:`calibrate` is the whole of ``loyalty-sim calibrate`` but the printing and the files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim.calibration.holdout import HoldoutCheck, Prediction, holdout_check, tracking
from sim.calibration.log import Purchases
from sim.calibration.mle import Estimates, Fit, FitError
from sim.calibration.models import BGNBD, FITTERS, PARETO_NBD, PURCHASE_MODELS, fit_gamma_gamma
from sim.calibration.rfm import rfm_segments
from sim.calibration.segments import segment_behaviour, segment_spend
from sim.calibration.summary import CustomerSummary, summarize
from sim.input.errors import InputError, Problem

#: The smallest cohort worth fitting four parameters to.
MIN_CUSTOMERS = 30


@dataclass(frozen=True)
class SegmentFit:
    """One calibrated segment: its share of the cohort, purchase/dropout law and spend law.

    For the single pooled segment the laws are the fits themselves; for RFM segments they are derived from
    the pooled fits and the segment's histories (:mod:`sim.calibration.segments`).
    """

    name: str
    customers: int
    share: float
    behaviour: Estimates
    spend: Estimates
    mask: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Calibration:
    """Everything ``calibrate`` found.

    Attributes
    ----------
    summary : the calibration cohort's histories.
    candidates : the pooled purchase/dropout fits tried, by model name (a FitError where one failed).
    chosen : name of the model kept (BG/NBD or Pareto/NBD).
    spend : pooled Gamma-Gamma fit.
    segments : the segments written out (one, the pooled fit, unless RFM segments were asked for).
    holdout : the holdout check of the chosen model, or None without a holdout period.
    tracking : cumulative repeat purchases week by week, actual and predicted (see
        :func:`sim.calibration.holdout.tracking`), over the whole log.
    log_customers : customers in the whole log (those who first bought after the calibration end are not
        in the summary).
    """

    source: str
    summary: CustomerSummary
    candidates: dict[str, Fit | FitError]
    chosen: str
    spend: Fit
    segments: list[SegmentFit]
    holdout: HoldoutCheck | None
    tracking: pd.DataFrame = field(repr=False)
    log_customers: int = 0


def calibrate(purchases: Purchases, calibration_end: dt.date | None = None, *, model: str = "auto",
              segments: int = 1, segment_name: str = "calibrated") -> Calibration:
    """Fit BG/NBD and/or Pareto/NBD and Gamma-Gamma to a log; optionally RFM segments; check on the holdout.

    Parameters
    ----------
    purchases : the merged log (:func:`sim.calibration.log.read_log`).
    calibration_end : last day of the calibration period (default: the log's last day, no holdout check).
    model : ``auto`` (both, keep the higher likelihood: the same number of parameters, so the lower AIC),
        ``bgnbd`` or ``paretonbd``.
    segments : 1, or the number of RFM segments, each with its own laws of the chosen model derived from its
        customers' histories and the pooled fit (:mod:`sim.calibration.segments`).
    segment_name : name of the single segment; RFM segments are ``rfm_1`` (lowest scores) ... ``rfm_n``.

    Raises
    ------
    InputError
        A calibration end outside the log, a cohort too small, or a fit that does not converge.
    """
    end = purchases.last_date if calibration_end is None else calibration_end
    summary = _summary(purchases, end)
    candidates = _fit_candidates(purchases.source, summary, model)
    fitted = {name: fit for name, fit in candidates.items() if isinstance(fit, Fit)}
    chosen = max(fitted, key=lambda name: fitted[name].log_likelihood)
    spend = _guard(purchases.source, lambda: fit_gamma_gamma(summary))
    everyone = np.ones(summary.size, dtype=bool)
    parts = [SegmentFit(segment_name, summary.size, 1.0, fitted[chosen], spend, everyone)]
    names = None
    if segments > 1:
        groups = _rfm_groups(purchases.source, summary, segments)
        parts = _rfm_segments(summary, groups, segments, fitted[chosen], spend)
        names = np.array([part.name for part in parts])[groups]
    predictions = [Prediction(chosen, fitted[chosen].params, everyone)]
    holdout = None
    if end < purchases.last_date:
        holdout = holdout_check(summary, purchases, predictions, segment_names=names)
    track = holdout.tracking if holdout else tracking(summary, purchases, predictions)
    return Calibration(purchases.source, summary, candidates, chosen, spend, parts, holdout, track,
                       purchases.customers)


def _fit_candidates(source: str, summary: CustomerSummary, model: str) -> dict[str, Fit | FitError]:
    """Every purchase model asked for, fitted, or the reason it could not be; an error if none fits."""
    names = list(PURCHASE_MODELS.values()) if model == "auto" else [PURCHASE_MODELS[model]]
    candidates: dict[str, Fit | FitError] = {}
    for name in names:
        try:
            candidates[name] = FITTERS[name](summary)
        except FitError as exc:
            candidates[name] = exc
    if not any(isinstance(fit, Fit) for fit in candidates.values()):
        raise InputError([Problem(source, (), str(exc)) for exc in candidates.values()])
    return candidates


def _summary(purchases: Purchases, end: dt.date) -> CustomerSummary:
    source = purchases.source
    if end < purchases.first_date:
        raise InputError([Problem(source, (), f"the calibration end {end} is before the first transaction "
                                  f"({purchases.first_date})")])
    if end > purchases.last_date:
        raise InputError([Problem(source, (), f"the calibration end {end} is after the last transaction "
                                  f"({purchases.last_date}): the log cannot say what happened in between")])
    summary = summarize(purchases, end)
    if summary.size < MIN_CUSTOMERS:
        raise InputError([Problem(source, (), f"the log is too short to fit: {summary.size} customer(s) made "
                                  f"their first purchase by {end}; at least {MIN_CUSTOMERS} are needed")])
    if int(summary.age_days.max()) == 0:
        raise InputError([Problem(source, (), f"the log is too short to fit: every customer's first purchase "
                                  f"is on the calibration end {end}")])
    return summary


def _guard(source: str, action):
    try:
        return action()
    except FitError as exc:
        raise InputError([Problem(source, (), str(exc))]) from None


def _rfm_groups(source: str, summary: CustomerSummary, n: int) -> np.ndarray:
    try:
        return rfm_segments(summary, n)
    except ValueError as exc:
        raise InputError([Problem(source, (), str(exc))]) from None


def _rfm_segments(summary: CustomerSummary, groups: np.ndarray, n: int, behaviour: Fit,
                  spend: Fit) -> list[SegmentFit]:
    behaviours = segment_behaviour(behaviour.model, behaviour, summary, groups, n)
    spends = segment_spend(spend, summary, groups, n)
    parts = []
    for g in range(n):
        mask = groups == g
        customers = int(mask.sum())
        parts.append(SegmentFit(f"rfm_{g + 1}", customers, customers / summary.size, behaviours[g], spends[g], mask))
    return parts


__all__ = ["BGNBD", "PARETO_NBD", "Calibration", "SegmentFit", "calibrate"]
