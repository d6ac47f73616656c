"""Laws of RFM segments: what the pooled model says about the customers of each segment.

Segments cut on calibration-period behaviour cannot be fitted on their own: the selection is on the very
data being fitted (the lowest segment holds customers with no repeat purchase, and a BG/NBD fitted to them
alone concludes that they hardly ever buy, although many buy again in the holdout period). What the pooled
model does give, exactly, is each customer's posterior law of its latent traits given its history; a
segment's customers are a mixture of those posteriors, and each segment's law here is the Gamma (rates,
spend level) or Beta (dropout probability) with the same mean and variance as that mixture. Averaged over
all customers, the posteriors give back the population law (law of total probability), so the segments
with their shares decompose the pooled fit rather than replace it.

Posterior moments need no new formula: for a trait with a Gamma(k, rate c) prior,
``E[trait^j | history] = Gamma(k+j) / (Gamma(k) c^j) * L(k+j) / L(k)``, where ``L(k)`` is the model's
marginal likelihood of the history with the shape parameter set to k (the prior density times trait^j is
Gamma(k+j) up to that constant); likewise ``E[p^j | history] = B(a+j, b) / B(a, b) * L(a+j) / L(a)`` for a
Beta(a, b) dropout probability. The likelihoods are those of :mod:`sim.model.theory`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import betaln, gammaln

from sim.calibration.mle import Estimates, Fit
from sim.calibration.models import BGNBD, PARAMETERS
from sim.calibration.summary import CompressedHistories, CustomerSummary
from sim.model import theory

_DELTA_STEP = 1e-5  # log-space step of the finite-difference Jacobian for the delta method


def segment_behaviour(model: str, fit: Fit, summary: CustomerSummary, groups: np.ndarray,
                      n: int) -> list[Estimates]:
    """Purchase-rate and dropout laws of each segment 0..n-1 (native parameters in weeks), with standard errors.

    ``groups`` gives every customer's segment. The standard errors carry the pooled fit's uncertainty
    (its covariance) through the moment matching by the delta method.
    """
    h = CompressedHistories.of(summary)
    members = [np.bincount(h.index[groups == g], minlength=h.x.size).astype(np.float64) for g in range(n)]

    def laws(log_params: np.ndarray) -> np.ndarray:
        params = dict(zip(PARAMETERS[model], np.exp(log_params)))
        moments = _behaviour_moments(model, params, h)
        return np.array([_behaviour_law(model, *(np.sum(m * w) / w.sum() for m in moments)) for w in members])

    return _with_delta_errors(laws, fit, PARAMETERS[model])


def segment_spend(fit: Fit, summary: CustomerSummary, groups: np.ndarray, n: int) -> list[Estimates]:
    """Gamma-Gamma laws (p, q, gamma) of each segment: the pooled p, and the Gamma matched to the segment's
    posterior laws of the spend rate nu (the prior for customers without a repeat purchase)."""
    repeat = (summary.x > 0) & (summary.mean_spend > 0)
    x, m = summary.x[repeat].astype(np.float64), summary.mean_spend[repeat]

    def laws(log_params: np.ndarray) -> np.ndarray:
        p, q, gamma = np.exp(log_params)
        prior = np.array([q / gamma, q * (q + 1) / gamma**2])
        moments = np.tile(prior[:, None], summary.size)
        base = theory.gamma_gamma_log_likelihood(p, q, gamma, x, m)
        for j in (1, 2):
            ratio = theory.gamma_gamma_log_likelihood(p, q + j, gamma, x, m) - base
            moments[j - 1, repeat] = np.exp(gammaln(q + j) - gammaln(q) - j * np.log(gamma) + ratio)
        rows = []
        for g in range(n):
            mean, second = moments[:, groups == g].mean(axis=1)
            shape, rate = _gamma_matching(mean, second)
            rows.append([p, shape, rate])
        return np.array(rows)

    return _with_delta_errors(laws, fit, PARAMETERS["Gamma-Gamma"])


def _behaviour_moments(model: str, params: dict[str, float], h: CompressedHistories) -> list[np.ndarray]:
    """Per history: E[rate], E[rate^2], E[d], E[d^2] for d the dropout probability (BG/NBD) or hazard."""
    likelihood = theory.bgnbd_log_likelihood if model == BGNBD else theory.paretonbd_log_likelihood
    shape_of_dropout = "a" if model == BGNBD else "s"

    def log_lik(**changed: float) -> np.ndarray:
        return np.asarray(likelihood(h.x, h.t_x, h.T, **{**params, **changed}))

    base = log_lik()
    r, alpha = params["r"], params["alpha"]
    moments = [np.exp(gammaln(r + j) - gammaln(r) - j * np.log(alpha) + log_lik(r=r + j) - base) for j in (1, 2)]
    k = params[shape_of_dropout]
    for j in (1, 2):
        if model == BGNBD:
            prior_moment = betaln(k + j, params["b"]) - betaln(k, params["b"])
        else:
            prior_moment = gammaln(k + j) - gammaln(k) - j * np.log(params["beta"])
        moments.append(np.exp(prior_moment + log_lik(**{shape_of_dropout: k + j}) - base))
    return moments


def _behaviour_law(model: str, rate_mean: float, rate_second: float, drop_mean: float,
                   drop_second: float) -> list[float]:
    r, alpha = _gamma_matching(rate_mean, rate_second)
    if model == BGNBD:
        variance = drop_second - drop_mean**2
        total = drop_mean * (1 - drop_mean) / variance - 1
        return [r, alpha, drop_mean * total, (1 - drop_mean) * total]
    return [r, alpha, *_gamma_matching(drop_mean, drop_second)]


def _gamma_matching(mean: float, second: float) -> tuple[float, float]:
    """Shape and rate of the Gamma with this mean and second moment."""
    variance = second - mean**2
    return mean**2 / variance, mean / variance


def _with_delta_errors(laws: Callable[[np.ndarray], np.ndarray], fit: Fit,
                       names: tuple[str, ...]) -> list[Estimates]:
    """Evaluate ``laws`` at the fit and propagate the fit's covariance through it (delta method)."""
    theta = np.log(np.array(list(fit.params.values())))
    values = laws(theta)
    jacobian = np.stack([(laws(theta + h) - laws(theta - h)) / (2 * _DELTA_STEP)
                         for h in np.eye(theta.size) * _DELTA_STEP], axis=-1)  # segment, param, pooled param
    covariance = np.einsum("spi,ij,sqj->spq", jacobian, fit.covariance_log, jacobian)
    errors = np.sqrt(np.maximum(np.diagonal(covariance, axis1=1, axis2=2), 0.0))
    return [Estimates(params=dict(zip(names, row.tolist())), std_errors=dict(zip(names, err.tolist())))
            for row, err in zip(values, errors)]
