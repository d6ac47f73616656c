"""Closed-form expectations of the buy-till-you-die (BTYD) models, for checking the simulator.

**Unit-agnostic**: times (``t``, ``t_x``, ``T``, ``horizon``) must be in the time unit that ``alpha``
and ``beta`` are in (rates are per that unit); money is in the unit of ``gamma`` / ``order_value``.
Counts are *repeat* purchases: the acquisition purchase at time 0 is not counted.

All functions broadcast over numpy arrays (scalar inputs give numpy scalars) and raise ValueError
for non-positive model parameters. Common parameters:

t : array_like
    Length of the prediction period: (0, t] for a new customer, (T, T+t] given a history.
x, t_x, T : array_like
    Customer summary: ``x`` repeat purchases, the last at ``t_x`` (0 if ``x == 0``), ``T`` the time
    since the first purchase (the customer's age), all measured from the first purchase.
r, alpha : float
    Purchase rate while alive ~ Gamma(shape r, rate alpha); alpha is in time units.
a, b : float
    BG/NBD: probability of dropping out right after each repeat purchase ~ Beta(a, b).
s, beta : float
    Pareto/NBD: exponential dropout hazard ~ Gamma(shape s, rate beta); beta is in time units.
p, q, gamma : float
    Gamma-Gamma: a transaction's value ~ Gamma(p, rate nu), nu ~ Gamma(q, rate gamma) (money units).

References
----------
.. [FHL05a] Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy
   way: an alternative to the Pareto/NBD model. *Marketing Science* 24(2), 275-284.
.. [SMC87] Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987). Counting your customers: who
   are they and what will they do next? *Management Science* 33(1), 1-24.
.. [FH05] Fader, P. S. & Hardie, B. G. S. (2005). A note on deriving the Pareto/NBD model and
   related expressions; (2006) Deriving an expression for P(X(t)=x) under the Pareto/NBD model.
.. [FHL05b] Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: using iso-value curves
   for customer base analysis. *Journal of Marketing Research* 42(4), 415-430.
.. [CJ99] Colombo, R. & Jiang, W. (1999). A stochastic RFM model. *Journal of Interactive
   Marketing* 13(3), 2-12.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, expit, gammaln, hyp2f1

ArrayLike = npt.ArrayLike
Floats = npt.NDArray[np.float64]
FloatOrArray = float | Floats
_A_STEP = 1e-5  # half-width of the interpolation bracket around the removable singularity a == 1
_LN2 = float(np.log(2.0))


def _arr(v: ArrayLike) -> Floats:
    return np.asarray(v, dtype=np.float64)


def _out(v: Floats) -> FloatOrArray:
    return v[()]  # 0-d array -> numpy scalar, anything else unchanged


def _positive(**params: ArrayLike) -> None:
    for name, value in params.items():
        if not np.all(_arr(value) > 0):
            raise ValueError(f"{name} must be > 0, got {value!r}")


def _expm1_ratio(u: Floats, k: Floats) -> Floats:
    """(1 - exp(-k u)) / k, with its k -> 0 limit u; accurate for small |k u|."""
    k, u = np.broadcast_arrays(k, u)
    safe_k = np.where(k == 0, 1.0, k)
    with np.errstate(invalid="ignore"):
        ratio = -np.expm1(-safe_k * u) / safe_k
    return np.where(k == 0, u, ratio)


def _log1mexp(u: Floats) -> Floats:
    """ln(1 - e^u) for u <= 0 (-inf at 0), precise near 0 too (Maechler 2012): ln(-expm1(u)) above -ln 2,
    where 1 - e^u would cancel, log1p(-e^u) below."""
    with np.errstate(divide="ignore"):
        return np.where(u > -_LN2, np.log(-np.expm1(np.minimum(u, 0.0))), np.log1p(-np.exp(u)))


def _around_a_one(f: Callable[[float], Floats], a: float) -> Floats:
    """``f(a)``; within _A_STEP of the removable singularity a == 1, linear interpolation across it."""
    if abs(a - 1.0) >= _A_STEP:
        return f(a)
    lo, hi = f(1.0 - _A_STEP), f(1.0 + _A_STEP)
    return lo + (a - 1.0 + _A_STEP) / (2 * _A_STEP) * (hi - lo)


# --------------------------------------------------------------------------------------------- BG/NBD


def _bgnbd_log_odds_dead(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, r: float, alpha: float, a: float, b: float
) -> Floats:
    """log[a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)]; -inf where x == 0 (no chance to have died)."""
    x, t_x, T = np.broadcast_arrays(_arr(x), _arr(t_x), _arr(T))
    rep = x > 0
    xs = np.where(rep, x, 1.0)
    lo = np.log(a) - np.log(b + xs - 1) + (r + xs) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(rep, lo, -np.inf)


def bgnbd_probability_alive(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, r: float, alpha: float, a: float, b: float
) -> FloatOrArray:
    """P(customer still alive at T | x, t_x, T) under the BG/NBD model, [FHL05a].

    ``1 / (1 + 1{x>0} a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``, computed as a logistic of the
    log-odds so it neither overflows nor underflows for large ``x``. Equals 1 when ``x == 0``
    (BG/NBD customers can only drop out right after a repeat purchase). Dimensionless.
    """
    _positive(r=r, alpha=alpha, a=a, b=b)
    return _out(expit(-_bgnbd_log_odds_dead(x, t_x, T, r, alpha, a, b)))


def bgnbd_probability_dead(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, r: float, alpha: float, a: float, b: float
) -> FloatOrArray:
    """P(customer dropped out by T | x, t_x, T) under BG/NBD: 1 - :func:`bgnbd_probability_alive`, as the
    logistic of the log-odds of "dead", so that a small probability keeps its relative precision (one minus
    a P(alive) near 1 keeps only the digits P(alive) lacks). 0 when ``x == 0``."""
    _positive(r=r, alpha=alpha, a=a, b=b)
    return _out(expit(_bgnbd_log_odds_dead(x, t_x, T, r, alpha, a, b)))


def _bgnbd_bracket(
    t: ArrayLike, x: ArrayLike, T: ArrayLike, r: float, alpha: float, a: float, b: float
) -> Floats:
    """(a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)].

    Euler's transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns the 2F1 with
    large parameters (divergent like (1-z)^(a-1-r-x) as z -> 1) into
    (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose upper parameters do not grow with x.

    That 2F1 is positive but where a + b + x - 1 < 0 (no repeat purchase yet, a + b < 1: the original
    2F1's lower parameter is negative and the series can sum to a negative value, while the bracket stays
    positive). There the bracket is 1 - (1-z)^(a-1) F >= 1, taken directly (no cancellation to avoid), not
    through the logarithm of F. a + b + x - 1 == 0 (a + b == 1, no repeat purchase) is a removable
    singularity, bridged as a == 1 is: linear interpolation in b across it, for those within _A_STEP of it.
    """
    t, x, T = np.broadcast_arrays(_arr(t), _arr(x), _arr(T))
    near = np.abs(a + b + x - 1.0) < _A_STEP
    if not near.any() or 1.0 - a - _A_STEP <= 0.0:
        return _bgnbd_bracket_at(t, x, T, r, alpha, a, b)
    out = np.array(_bgnbd_bracket_at(t, np.where(near, 1.0, x), T, r, alpha, a, b), dtype=np.float64)
    lo, hi = (_bgnbd_bracket_at(t[near], x[near], T[near], r, alpha, a, 1.0 - a + step)   # (x == 0 for them all)
              for step in (-_A_STEP, _A_STEP))
    out[near] = lo + (a + b - 1.0 + _A_STEP) / (2 * _A_STEP) * (hi - lo)
    return out


def _bgnbd_bracket_at(t: Floats, x: Floats, T: Floats, r: float, alpha: float, a: float, b: float) -> Floats:
    """:func:`_bgnbd_bracket` of arrays of one shape, away from a + b + x - 1 == 0."""
    z = t / (alpha + T + t)
    c = a + b + x - 1
    hyp = _distinct_hyp2f1(a + b - 1 - r, a - 1, c, z)
    positive = hyp > 0
    log_scale = (a - 1) * np.log1p(-z)   # ln (1-z)^(a-1)
    log_term = log_scale + np.log(np.where(positive, hyp, 1.0))
    with np.errstate(over="ignore", invalid="ignore"):   # (1-z)^(a-1) F of the others: unused
        direct = 1.0 - np.exp(log_scale) * hyp
    return c / (a - 1) * np.where(positive, -np.expm1(log_term), direct)


def _distinct_hyp2f1(a: float, b: float, c: Floats, z: Floats) -> Floats:
    """``hyp2f1(a, b, c, z)`` evaluated once per distinct (c, z): customer histories repeat the same
    repeat count and age many times (whole days), and the function costs microseconds."""
    c, z = np.broadcast_arrays(c, z)
    if c.size < 64:
        return hyp2f1(a, b, c, z)
    c_values, c_code = np.unique(c.ravel(), return_inverse=True)
    z_values, z_code = np.unique(z.ravel(), return_inverse=True)
    keys, inverse = np.unique(c_code.ravel() * z_values.size + z_code.ravel(), return_inverse=True)
    values = hyp2f1(a, b, c_values[keys // z_values.size], z_values[keys % z_values.size])
    return values[inverse.ravel()].reshape(c.shape)


def bgnbd_expected_repeat_purchases(
    t: ArrayLike, r: float, alpha: float, a: float, b: float
) -> FloatOrArray:
    """E[X(t)]: expected repeat purchases in (0, t] of a customer acquired at 0, BG/NBD [FHL05a] eq. (9).

    ``(a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]``, evaluated in the
    Euler-transformed form of ``_bgnbd_bracket``. ``a == 1`` is a removable singularity, bridged by
    linear interpolation over a = 1 -+ 1e-5 (error ~1e-10).

    Returns
    -------
    Expected number of repeat purchases (a count). The CDNOW maximum-likelihood estimates (weeks,
    r=0.24259, alpha=4.41360, a=0.79292, b=2.42591) give 0.0532, 0.1506, 1.0437 and 1.8580 at
    t = 1, 3, 32, 78; the rounded published r=0.243, alpha=4.414, a=0.793, b=2.426 give 0.0533,
    0.1509, 1.0452, 1.8605.
    """
    _positive(r=r, alpha=alpha, a=a, b=b)
    return _out(_around_a_one(lambda aa: _bgnbd_bracket(t, 0.0, 0.0, r, alpha, aa, b), a))


def bgnbd_conditional_expected_purchases(
    t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, r: float, alpha: float, a: float, b: float
) -> FloatOrArray:
    """E[Y(t) | x, t_x, T]: expected repeat purchases in (T, T+t] given the history, [FHL05a] eq. (10).

    ``(a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
    * P(alive | x, t_x, T)``, with the 2F1 Euler-transformed so that its upper parameters do not
    grow with ``x`` (stable and fast for large ``x``). Times in the unit of ``alpha``; returns a count.
    """
    _positive(r=r, alpha=alpha, a=a, b=b)
    bracket = _around_a_one(lambda aa: _bgnbd_bracket(t, x, T, r, alpha, aa, b), a)
    return _out(bracket * expit(-_bgnbd_log_odds_dead(x, t_x, T, r, alpha, a, b)))


def bgnbd_log_likelihood(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, r: float, alpha: float, a: float, b: float
) -> FloatOrArray:
    """Per-customer log-likelihood of (x, t_x, T) under the BG/NBD model, [FHL05a].

    ``ln Gamma(r+x) - ln Gamma(r) + r ln alpha + ln B(a, b+x) - ln B(a, b)
    + ln[(alpha+T)^-(r+x) + 1{x>0} a/(b+x-1) (alpha+t_x)^-(r+x)]``. Times in the unit of ``alpha``
    (the value depends on that unit through the density of t_x). CDNOW (weeks) summed: -9582.4.
    """
    _positive(r=r, alpha=alpha, a=a, b=b)
    x, t_x, T = np.broadcast_arrays(_arr(x), _arr(t_x), _arr(T))
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    log_alive = -(r + x) * np.log(alpha + T)
    log_dead = log_alive + _bgnbd_log_odds_dead(x, t_x, T, r, alpha, a, b)
    return _out(base + np.logaddexp(log_alive, log_dead))


# ------------------------------------------------------------------------------------------ Pareto/NBD


def paretonbd_expected_repeat_purchases(
    t: ArrayLike, r: float, alpha: float, s: float, beta: float
) -> FloatOrArray:
    """E[X(t)] for a customer acquired at 0 under the Pareto/NBD model, [SMC87], [FH05].

    ``r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]``, with the s == 1 limit
    ``r beta / alpha ln(1 + t/beta)``. ``t``, ``alpha`` and ``beta`` in one time unit. Returns a count.
    """
    _positive(r=r, alpha=alpha, s=s, beta=beta)
    return _out(r * beta / alpha * _expm1_ratio(np.log1p(_arr(t) / beta), _arr(s - 1.0)))


def _paretonbd_log_parts(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, r: float, alpha: float, s: float, beta: float
) -> tuple[Floats, Floats, Floats, Floats]:
    """(ln Gamma(r+x) alpha^r beta^s / Gamma(r), ln of the alive-at-T term, ln of the whole bracket, ln of
    its dead-before-T term).

    The likelihood is ``A1 [(alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0]`` ([FH05]), with
    ``s/(r+s+x) A0 = s int_{t_x}^T (alpha+y)^-(r+x) (beta+y)^-(s+1) dy = s/(r+s+x) [G(t_x) - G(T)]``
    and, after Euler's transformation of the published 2F1(r+s+x, s+1 | r+x; r+s+x+1; z),
    ``G(y) = (alpha+y)^-(r+x) (beta+y)^-s H(y)`` with, for z = |alpha-beta| / (max(alpha,beta)+y),
    ``H = 2F1(1, r+x; r+s+x+1; z)`` if alpha >= beta (bounded by (r+s+x)/s) else
    ``H = (1-z) 2F1(1, s+1; r+s+x+1; z)``: upper parameters small, no overflow for large x.
    """
    x, t_x, T = np.broadcast_arrays(_arr(x), _arr(t_x), _arr(T))
    rsx = r + s + x
    upper = r + x if alpha >= beta else np.full_like(x, s + 1.0)
    hi, diff = max(alpha, beta), abs(alpha - beta)

    def log_h(y: Floats) -> Floats:
        z = diff / (hi + y)
        return np.log(hyp2f1(1.0, upper, rsx + 1.0, z)) + (0.0 if alpha >= beta else np.log1p(-z))

    log_a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    log_alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    h_tx = log_h(t_x)
    lg_tx = -(r + x) * np.log(alpha + t_x) - s * np.log(beta + t_x) + h_tx
    # ln G(T) - ln G(t_x) from the differences of its terms, not of two large logarithms: a customer who
    # bought just before T has a small P(dead) that keeps its relative precision
    span = T - t_x
    fall = -(r + x) * np.log1p(span / (alpha + t_x)) - s * np.log1p(span / (beta + t_x)) + (log_h(T) - h_tx)
    with np.errstate(divide="ignore"):  # t_x == T: the dead-before-T term is exactly 0
        log_dead = np.log(s / rsx) + lg_tx + _log1mexp(np.minimum(fall, 0.0))
    return log_a1, log_alive, np.logaddexp(log_alive, log_dead), log_dead


def paretonbd_log_likelihood(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, r: float, alpha: float, s: float, beta: float
) -> FloatOrArray:
    """Per-customer log-likelihood of (x, t_x, T) under the Pareto/NBD model, [FH05], [FHL05b].

    In log space with a bounded (Euler-transformed) 2F1, see ``_paretonbd_log_parts``. CDNOW (weeks)
    at r=0.553, alpha=10.578, s=0.606, beta=11.669 sums to -9595.0.
    """
    _positive(r=r, alpha=alpha, s=s, beta=beta)
    log_a1, _, log_bracket, _ = _paretonbd_log_parts(x, t_x, T, r, alpha, s, beta)
    return _out(log_a1 + log_bracket)


def paretonbd_probability_alive(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, r: float, alpha: float, s: float, beta: float
) -> FloatOrArray:
    """P(alive at T | x, t_x, T) under the Pareto/NBD model, [SMC87], [FH05].

    The share of the likelihood due to "still alive at T": ``(alpha+T)^-(r+x) (beta+T)^-s /
    [(alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0]``. Dimensionless, in (0, 1].
    """
    _positive(r=r, alpha=alpha, s=s, beta=beta)
    _, log_alive, log_bracket, _ = _paretonbd_log_parts(x, t_x, T, r, alpha, s, beta)
    return _out(np.exp(np.minimum(log_alive - log_bracket, 0.0)))


def paretonbd_probability_dead(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, r: float, alpha: float, s: float, beta: float
) -> FloatOrArray:
    """P(customer dropped out by T | x, t_x, T) under Pareto/NBD: 1 - :func:`paretonbd_probability_alive`,
    as the share of the likelihood due to "dropped out before T", so that a small probability keeps its
    relative precision. 0 when ``t_x == T``."""
    _positive(r=r, alpha=alpha, s=s, beta=beta)
    _, _, log_bracket, log_dead = _paretonbd_log_parts(x, t_x, T, r, alpha, s, beta)
    return _out(np.exp(np.minimum(log_dead - log_bracket, 0.0)))


def paretonbd_conditional_expected_purchases(
    t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, r: float, alpha: float, s: float, beta: float
) -> FloatOrArray:
    """E[Y(t) | x, t_x, T]: expected repeat purchases in (T, T+t], Pareto/NBD, [SMC87], [FH05].

    ``(r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)] P(alive | x, t_x, T)``,
    with the s == 1 limit ``(r+x)(beta+T)/(alpha+T) ln(1 + t/(beta+T)) P(alive)``. Returns a count.
    """
    _positive(r=r, alpha=alpha, s=s, beta=beta)
    t, x, t_x, T = np.broadcast_arrays(_arr(t), _arr(x), _arr(t_x), _arr(T))
    level = (r + x) * (beta + T) / (alpha + T) * _expm1_ratio(np.log1p(t / (beta + T)), _arr(s - 1.0))
    return _out(level * paretonbd_probability_alive(x, t_x, T, r, alpha, s, beta))


# ---------------------------------------------------------------------------------------- Gamma-Gamma


def gamma_gamma_mean_spend(p: float, q: float, gamma: float) -> float:
    """Population mean of customers' mean spend, E[p/nu] = ``p gamma / (q-1)`` [FHL05b], [CJ99].

    Finite only for q > 1 (ValueError otherwise). Money units of ``gamma``.
    """
    _positive(p=p, q=q, gamma=gamma)
    if q <= 1:
        raise ValueError(f"the mean spend is infinite unless q > 1, got q={q!r}")
    return p * gamma / (q - 1)


def gamma_gamma_conditional_mean_spend(
    p: float, q: float, gamma: float, x: ArrayLike, mean_spend: ArrayLike
) -> FloatOrArray:
    """E[customer's mean spend | x transactions averaging ``mean_spend``], [FHL05b], [CJ99].

    ``(gamma + x mean_spend) p / (p x + q - 1)``: a weighted average of the population mean and the
    observed mean; ``x == 0`` gives the population mean (q > 1 needed). Money units of ``gamma``.
    """
    _positive(p=p, q=q, gamma=gamma)
    x, m = np.broadcast_arrays(_arr(x), _arr(mean_spend))
    return _out((gamma + x * m) * p / (p * x + q - 1))


def gamma_gamma_log_likelihood(
    p: float, q: float, gamma: float, x: ArrayLike, mean_spend: ArrayLike
) -> FloatOrArray:
    """Per-customer log density of the observed mean spend ``mean_spend`` over ``x >= 1`` transactions.

    [FHL05b] appendix / [CJ99]: given nu, x * mean ~ Gamma(p x, rate=nu); integrating nu ~ Gamma(q,
    rate=gamma) gives ``ln Gamma(px+q) - ln Gamma(px) - ln Gamma(q) + q ln gamma + px ln x
    + (px-1) ln m - (px+q) ln(gamma + x m)``. Money in the unit of ``gamma``. CDNOW (946 repeat
    buyers, mean of their repeat transactions) at p=6.25, q=3.74, gamma=15.44 sums to -4055.9.
    """
    _positive(p=p, q=q, gamma=gamma)
    x, m = np.broadcast_arrays(_arr(x), _arr(mean_spend))
    px = p * x
    return _out(
        gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma) + px * np.log(x)
        + (px - 1) * np.log(m) - (px + q) * np.log(gamma + x * m)
    )


# ------------------------------------------------------------------------------------------------ CLV


def constant_rate_clv(
    margin_rate: ArrayLike,
    order_value: ArrayLike,
    purchase_rate: ArrayLike,
    dropout_hazard: ArrayLike,
    discount_rate_continuous: ArrayLike,
    horizon: ArrayLike,
) -> FloatOrArray:
    """Expected discounted margin of one customer with constant rates, acquisition purchase included.

    ``m v + m v lambda (1 - exp(-(mu+delta) T)) / (mu+delta)`` (limit ``m v + m v lambda T`` at
    mu + delta == 0): the acquisition purchase at time 0 plus ``int_0^T m v lambda e^-(mu+delta)t dt``
    (Poisson purchases at rate lambda while alive, exponential lifetime with hazard mu, continuous
    discounting at delta); cf. [FHL05b]. Rates per time unit, ``horizon`` (T) in that unit, ``inf``
    allowed when mu + delta > 0. Money units of ``order_value``.
    """
    m, v, lam = _arr(margin_rate), _arr(order_value), _arr(purchase_rate)
    k = _arr(dropout_hazard) + _arr(discount_rate_continuous)
    return _out(m * v * (1.0 + lam * _expm1_ratio(_arr(horizon), k)))


def constant_rate_clv_growth(
    margin_rate: ArrayLike,
    order_value: ArrayLike,
    purchase_rate: ArrayLike,
    dropout_hazard: ArrayLike,
    discount_rate_continuous: ArrayLike,
    log_growth: ArrayLike,
    horizon: ArrayLike,
) -> FloatOrArray:
    """Expected growth part of the CLV of one customer with constant rates (``docs/model.md``, "CLV in four
    parts"): the discounted margin on what spend growth with tenure adds to its orders,

    ``int_0^T m v ((1+g)^t - 1) lambda e^-(mu+delta)t dt = m v lambda [A(mu+delta-gamma) - A(mu+delta)]``

    with ``gamma = ln(1 + g)`` (``log_growth``) and ``A(k) = (1 - e^-kT) / k`` (limit T at k = 0); the
    acquisition purchase, at tenure 0, adds nothing. Same units as :func:`constant_rate_clv`.
    """
    m, v, lam, horizon = _arr(margin_rate), _arr(order_value), _arr(purchase_rate), _arr(horizon)
    k = _arr(dropout_hazard) + _arr(discount_rate_continuous)
    return _out(m * v * lam * (_expm1_ratio(horizon, k - _arr(log_growth)) - _expm1_ratio(horizon, k)))


def discounted_alive_years(dropout_hazard: ArrayLike, discount_rate_continuous: ArrayLike,
                           horizon: ArrayLike) -> FloatOrArray:
    """Expected years a customer with an exponential lifetime (hazard mu) is alive within the horizon T, each
    discounted to its acquisition at delta: ``int_0^T e^-(mu+delta)t dt = (1 - e^-(mu+delta)T) / (mu+delta)``
    (limit T at mu + delta = 0). Times the learning value, CLV's learning part (``docs/model.md``)."""
    return _out(_expm1_ratio(_arr(horizon), _arr(dropout_hazard) + _arr(discount_rate_continuous)))
