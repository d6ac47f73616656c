"""The existing customers' formulas that decide a draw, compiled (numba): P(alive) given a history under BG/NBD and
Pareto/NBD, which each customer's alive coin is compared with, and the departure time of a gone Pareto/NBD
customer (``docs/model.md``, "Existing customers").

**One implementation.** For the reason :mod:`sim.random.compiled` gives for the draws: numpy evaluates ``log``,
``exp`` and ``power`` over arrays with its own SIMD routines on CPUs with AVX-512, which differ from the C
library's by an ulp, so who starts alive (a coin against P(alive)) and when a gone customer left could differ
from one machine to another. Here every transcendental function is the C library's, called by compiled
scalar code (numba, no fast-math, no vector math library), on every machine.

Pareto/NBD's P(alive) also needs Gauss' hypergeometric function 2F1: it is :func:`scipy.special.hyp2f1`,
compiled scalar C code with no SIMD variants, evaluated on
exactly the arguments :mod:`sim.model.theory` gives it; only the logarithms and exponentials around it
are computed in the compiled loop.

:mod:`sim.model.theory` keeps the vectorised forms for validation and the ``calibrate`` table (they decide no
draw); ``tests/test_existing_customers.py`` checks that both agree to 1e-12 relative. Times in the unit of
``alpha`` and ``beta`` (years in the engines); every array is float64 and of one length.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sim.random import compiled
from sim.random.compiled import OPTIONS

_LOG2 = math.log(2.0)


@numba.njit(**OPTIONS)
def _bgnbd_alive(x, t_x, T, r, alpha, a, b):
    out = np.empty(len(x))
    log_a = math.log(a)
    for i in range(len(x)):
        if x[i] > 0.0:   # the log-odds of "dead" (theory._bgnbd_log_odds_dead), through the logistic
            log_odds = log_a - math.log(b + x[i] - 1.0) + (r + x[i]) * (
                math.log(alpha + T[i]) - math.log(alpha + t_x[i]))
            out[i] = 1.0 / (1.0 + math.exp(log_odds))
        else:
            out[i] = 1.0
    return out


def bgnbd_probability_alive(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, r: float, alpha: float, a: float,
                            b: float) -> np.ndarray:
    """P(alive at T | x, t_x, T) under BG/NBD, as :func:`sim.model.theory.bgnbd_probability_alive`:
    ``1 / (1 + 1{x>0} a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``, the logistic of the log-odds."""
    return _bgnbd_alive(*_columns(x, t_x, T), float(r), float(alpha), float(a), float(b))


@numba.njit(**OPTIONS)
def _log_g(y, h, rx, alpha, s, beta, hi, diff, euler):
    """ln G(y) of :func:`sim.model.theory._paretonbd_log_parts`, ``h`` the 2F1 at y."""
    log_h = math.log(h) + (math.log1p(-(diff / (hi + y))) if euler else 0.0)
    return -rx * math.log(alpha + y) - s * math.log(beta + y) + log_h


@numba.njit(**OPTIONS)
def _logaddexp(u, v):
    """ln(e^u + e^v), as numpy's ``logaddexp`` writes it."""
    if u == v:
        return u + _LOG2
    gap = u - v
    if gap > 0.0:
        return u + math.log1p(math.exp(-gap))
    return v + math.log1p(math.exp(gap))


@numba.njit(**OPTIONS)
def _paretonbd_alive(x, t_x, T, r, alpha, s, beta, h_tx, h_T):
    out = np.empty(len(x))
    hi, diff, euler = max(alpha, beta), abs(alpha - beta), alpha < beta
    for i in range(len(x)):
        rx = r + x[i]
        log_alive = -rx * math.log(alpha + T[i]) - s * math.log(beta + T[i])
        lg_tx = _log_g(t_x[i], h_tx[i], rx, alpha, s, beta, hi, diff, euler)
        lg_T = _log_g(T[i], h_T[i], rx, alpha, s, beta, hi, diff, euler)
        # t_x == T: log1p(-1) = -inf, the dead-before-T term is exactly 0
        log_dead = math.log(s / (r + s + x[i])) + lg_tx + math.log1p(-math.exp(min(lg_T - lg_tx, 0.0)))
        out[i] = math.exp(min(log_alive - _logaddexp(log_alive, log_dead), 0.0))
    return out


def paretonbd_probability_alive(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, r: float, alpha: float, s: float,
                                beta: float) -> np.ndarray:
    """P(alive at T | x, t_x, T) under Pareto/NBD, as :func:`sim.model.theory.paretonbd_probability_alive`:
    the share of the history's likelihood due to "still alive at T", with the same Euler-transformed 2F1."""
    x, t_x, T = _columns(x, t_x, T)
    r, alpha, s, beta = float(r), float(alpha), float(s), float(beta)
    values = _paretonbd_hyp2f1(np.concatenate([x, x]), np.concatenate([t_x, T]), r, alpha, s, beta)
    return _paretonbd_alive(x, t_x, T, r, alpha, s, beta, values[:len(x)], values[len(x):])


def _paretonbd_hyp2f1(x: np.ndarray, y: np.ndarray, r: float, alpha: float, s: float, beta: float) -> np.ndarray:
    """H(y) of :func:`sim.model.theory._paretonbd_log_parts` for each (x, y), on exactly the arguments theory gives
    :func:`hyp2f1`, point by point: a call costs well under a microsecond, less than finding the distinct
    pairs by sorting would. (scipy.special is imported here, not with this module: only a Pareto/NBD base read
    from a customer table needs it.)"""
    from scipy.special import hyp2f1

    rsx = r + s + x
    upper = r + x if alpha >= beta else np.full_like(x, s + 1.0)
    return hyp2f1(1.0, upper, rsx + 1.0, abs(alpha - beta) / (max(alpha, beta) + y))


#: Most pieces of the hull of a departure time's log-density (:func:`_departure`).
HULL_PIECES = 64
#: The hull of each piece lies at most this far above the log-density (acceptance at least e^-0.1 = 0.905).
HULL_GAP = 0.1


@numba.njit(**OPTIONS)
def _log_density(tau, rx, alpha, s1, beta):
    return -rx * math.log(alpha + tau) - s1 * math.log(beta + tau)


@numba.njit(**OPTIONS)
def _departure(key, step, x, t_x, T, r, alpha, s, beta, attempts, knots, logs, masses):
    """One gone customer's departure time and the attempts it took (see :func:`pareto_departures`).

    ``knots``, ``logs`` and ``masses`` are scratch space of :data:`HULL_PIECES` + 1 entries. The counters come
    from the attempt's index: a uint64 counter carried across attempts made a loop like this one about 17
    times slower (measured, numba 0.68)."""
    if not T > t_x:
        return t_x, 0
    rx, s1 = r + x, s + 1.0
    low = min(alpha, beta)
    span = math.log((low + T) / (low + t_x))
    ratio = math.log1p(math.sqrt(8.0 * HULL_GAP / (rx + s1)))
    pieces = min(HULL_PIECES, max(1, int(math.ceil(span / ratio))))
    # knots at equal steps of ln(low + tau): the log-density's curvature falls as (low + tau)^-2
    knots[0], knots[pieces] = t_x, T
    for j in range(1, pieces):
        knots[j] = (low + t_x) * math.exp(span * j / pieces) - low
    for j in range(pieces + 1):
        logs[j] = _log_density(knots[j], rx, alpha, s1, beta)
    top, total = logs[0], 0.0
    for j in range(pieces):   # the mass under the chord's exponential, relative to the density at t_x
        width = knots[j + 1] - knots[j]
        rise = logs[j + 1] - logs[j]
        total += math.exp(logs[j] - top) * width * (math.expm1(rise) / rise if rise != 0.0 else 1.0)
        masses[j] = total
    for attempt in range(attempts):
        counter = np.uint64(2 * attempt)
        pick = compiled.uniform(key, step, counter) * total
        j = 0
        while j < pieces - 1 and masses[j] <= pick:
            j += 1
        below = masses[j - 1] if j > 0 else 0.0
        v = min(max((pick - below) / (masses[j] - below), 0.0), 1.0)   # uniform within the piece
        width = knots[j + 1] - knots[j]
        rise = logs[j + 1] - logs[j]
        if rise != 0.0:   # inverse of the chord's exponential on the piece
            offset = width * math.log1p(v * math.expm1(rise)) / rise
        else:
            offset = width * v
        tau = min(max(knots[j] + offset, knots[j]), knots[j + 1])
        hull = logs[j] + rise * (tau - knots[j]) / width
        if compiled.uniform(key, step, counter + np.uint64(1)) < math.exp(
                min(_log_density(tau, rx, alpha, s1, beta) - hull, 0.0)):
            return tau, attempt + 1
    return t_x, attempts


@numba.njit(**OPTIONS)
def _departures(keys, step, x, t_x, T, r, alpha, s, beta, attempts):
    out = np.empty(len(keys))
    used = np.empty(len(keys), dtype=np.int64)
    knots, logs, masses = np.empty(HULL_PIECES + 1), np.empty(HULL_PIECES + 1), np.empty(HULL_PIECES + 1)
    for i in range(len(keys)):
        out[i], used[i] = _departure(keys[i], step, x[i], t_x[i], T[i], r, alpha, s, beta, attempts, knots, logs,
                                     masses)
    return out, used


def pareto_departures(keys: np.ndarray, step: np.uint64, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, r: float,
                      alpha: float, s: float, beta: float, attempts: int) -> tuple[np.ndarray, np.ndarray]:
    """When gone Pareto/NBD customers left, and how many attempts each took: tau in (t_x, T) with density
    proportional to f(tau) = (alpha + tau)^-(r+x) (beta + tau)^-(s+1), exactly, by rejection under a hull.

    ln f is convex, so the chords between knots t_x = k_0 < ... < k_m = T lie above it: their exponentials are
    a hat, sampled in closed form (a piece by its mass, then the inverse of an exponential within it).
    Knots at equal steps of ln(min(alpha, beta) + tau), as many as keep every chord within :data:`HULL_GAP`
    of ln f (its curvature is at most (r + x + s + 1) / (min(alpha, beta) + tau)^2), at most
    :data:`HULL_PIECES`: at least 90% of proposals are accepted for any history, against under 2% for the
    Pareto proposal this replaced on some histories. Attempt j takes uniforms 2j (the point under the hat)
    and 2j + 1 (acceptance) of the customer's stream of increment ``step``; after ``attempts`` refusals the
    mode t_x would be taken (probability below 0.1^attempts)."""
    x, t_x, T = _columns(x, t_x, T)
    return _departures(np.ascontiguousarray(keys, dtype=np.uint64), np.uint64(step), x, t_x, T, float(r),
                       float(alpha), float(s), float(beta), int(attempts))


def _columns(*columns: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(column, dtype=np.float64) for column in columns]
