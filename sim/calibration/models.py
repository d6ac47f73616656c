"""The three models fitted by ``loyalty-sim calibrate``: BG/NBD, Pareto/NBD and Gamma-Gamma.

Maximum likelihood (:func:`sim.calibration.mle.maximize`) of the log-likelihoods of :mod:`sim.model.theory`, summed
fast by :mod:`sim.calibration.likelihoods` (analytic gradients for BG/NBD and Gamma-Gamma, finite
differences for Pareto/NBD); predictions with the closed forms of :mod:`sim.model.theory`. Times are in weeks,
money in the log's unit.

References
----------
Fader, Hardie & Lee (2005), "Counting your customers" the easy way, Marketing Science 24(2) (BG/NBD);
Schmittlein, Morrison & Colombo (1987), Management Science 33(1), and Fader & Hardie (2005), A note on
deriving the Pareto/NBD model (Pareto/NBD); Fader, Hardie & Lee (2005), RFM and CLV, JMR 42(4), and
Colombo & Jiang (1999) (Gamma-Gamma).
"""

from __future__ import annotations

import numpy as np

from sim.calibration import likelihoods
from sim.calibration.mle import Fit, FitError, maximize
from sim.calibration.summary import CompressedHistories, CustomerSummary
from sim.model import theory

BGNBD, PARETO_NBD, GAMMA_GAMMA = "BG/NBD", "Pareto/NBD", "Gamma-Gamma"
#: Purchase and dropout models by their command-line name.
PURCHASE_MODELS = {"bgnbd": BGNBD, "paretonbd": PARETO_NBD}
PARAMETERS = {BGNBD: ("r", "alpha", "a", "b"), PARETO_NBD: ("r", "alpha", "s", "beta"),
              GAMMA_GAMMA: ("p", "q", "gamma")}
#: Fewer customers with repeat purchases than this cannot pin down a model's parameters.
MIN_REPEAT_BUYERS = 10


def fit_bgnbd(summary: CustomerSummary) -> Fit:
    """Maximum-likelihood BG/NBD (r, alpha in weeks, a, b) on the calibration summary."""
    _check_repeat_buyers(BGNBD, summary)
    data = likelihoods.Histories.of(CompressedHistories.of(summary))
    return maximize(BGNBD, PARAMETERS[BGNBD], np.array([1.0, _mean_interpurchase_weeks(summary), 1.0, 3.0]),
                    observations=summary.size, value_and_gradient=lambda v: likelihoods.bgnbd(data, *v))


def fit_paretonbd(summary: CustomerSummary) -> Fit:
    """Maximum-likelihood Pareto/NBD (r, alpha in weeks, s, beta in weeks) on the calibration summary."""
    _check_repeat_buyers(PARETO_NBD, summary)
    data = likelihoods.PairedHistories.of(CompressedHistories.of(summary))
    start = np.array([1.0, _mean_interpurchase_weeks(summary), 1.0, float(np.mean(summary.T))])
    return maximize(PARETO_NBD, PARAMETERS[PARETO_NBD], start, observations=summary.size,
                    log_likelihood=lambda v: likelihoods.paretonbd(data, *v))


def fit_gamma_gamma(summary: CustomerSummary) -> Fit:
    """Maximum-likelihood Gamma-Gamma (p, q, gamma in money) on the repeat buyers' mean repeat spend.

    Customers whose repeat purchases are all of amount 0 carry no information on spend levels in this
    model (its density is 0 at 0) and are left out.
    """
    keep = (summary.x > 0) & (summary.mean_spend > 0)
    x, m = summary.x[keep], summary.mean_spend[keep]
    if x.size < MIN_REPEAT_BUYERS:
        raise FitError(f"{GAMMA_GAMMA}: only {x.size} customers with repeat purchases of positive amount; at "
                       f"least {MIN_REPEAT_BUYERS} are needed to fit the spend model")
    if np.ptp(m) <= 1e-9 * np.max(m):
        raise FitError(f"{GAMMA_GAMMA}: every repeat buyer spends the same on average ({m[0]:g}); the spend "
                       "model needs variation between customers")
    start = np.array([2.0, 3.0, float(np.mean(m))])  # q = 3, gamma = mean: E[spend] = p gamma / (q-1) = mean
    data = likelihoods.Spends.of(x, m)
    return maximize(GAMMA_GAMMA, PARAMETERS[GAMMA_GAMMA], start, observations=int(x.size),
                    value_and_gradient=lambda v: likelihoods.gamma_gamma(data, *v))


FITTERS = {BGNBD: fit_bgnbd, PARETO_NBD: fit_paretonbd}


def _check_repeat_buyers(model: str, summary: CustomerSummary) -> None:
    buyers = int(np.count_nonzero(summary.x))
    if buyers < MIN_REPEAT_BUYERS:
        raise FitError(f"{model}: only {buyers} of {summary.size} customers made a repeat purchase in the "
                       f"calibration period; at least {MIN_REPEAT_BUYERS} are needed (a longer calibration "
                       "period or a longer log)")


def _mean_interpurchase_weeks(summary: CustomerSummary) -> float:
    """A starting value for alpha: weeks per repeat purchase over the whole cohort."""
    return float(max(np.sum(summary.T), 1.0) / max(np.sum(summary.x), 1))


# ----------------------------------------------------------------------------------------- predictions


def expected_repeat_purchases(model: str, params: dict[str, float], t_weeks: np.ndarray) -> np.ndarray:
    """E[X(t)], repeat purchases of a new customer within ``t_weeks`` of its first purchase."""
    if model == BGNBD:
        return np.asarray(theory.bgnbd_expected_repeat_purchases(t_weeks, **params))
    return np.asarray(theory.paretonbd_expected_repeat_purchases(t_weeks, **params))


def conditional_expected_purchases(model: str, params: dict[str, float], t_weeks: float,
                                   summary: CustomerSummary) -> np.ndarray:
    """E[Y(t) | x, t_x, T] per customer: repeat purchases in the ``t_weeks`` after the calibration end."""
    h = CompressedHistories.of(summary)
    if model == BGNBD:
        per_history = theory.bgnbd_conditional_expected_purchases(t_weeks, h.x, h.t_x, h.T, **params)
    else:
        per_history = theory.paretonbd_conditional_expected_purchases(t_weeks, h.x, h.t_x, h.T, **params)
    return np.asarray(per_history)[h.index]
