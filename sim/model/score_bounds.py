"""Bounds of the firm's scores of customers (:mod:`sim.model.scoring`), compiled: one pass over the
customers, no temporaries, the C library's ``log`` and ``exp``.

:func:`score_bounds` says what the bounds are. The segments' laws go to the compiled passes as rows of
numbers (:func:`segment_table`), with the degenerate cases the exact scores treat apart
(:func:`sim.model.scoring.score_customers`). Times in years, money in the scenario's currency.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sim.model.population import SegmentLaws
from sim.random.compiled import OPTIONS

#: Forecast window of ``top_predicted_clv`` scoring, in years.
SCORING_WINDOW = 1.0
#: Segments with no heterogeneity in a trait are scored as if its cv were this (the closed forms need a mix).
SCORING_MIN_CV = 0.1
#: Dropout hazards below this (per year) are scored as no dropout.
NEGLIGIBLE_HAZARD = 1e-18
#: Terms of the alternating series that bounds the BG/NBD expected purchases (rough, cheap, tight pass).
SERIES_TERMS = (4, 6, 12)
#: Pieces of [t_x, T] over which the Pareto/NBD dead-since-t_x integral is bounded in the tight pass.
INTEGRAL_PIECES = 2

#: Precisions of the bounds (:func:`score_bounds`, :data:`PASSES`).
ROUGH, CHEAP, TIGHT = 0, 1, 2
#: How a pass of bounds treats the bounds already held: replaces them, or intersects them (:func:`_bound_pass`).
FRESH, SHARPEN = 0, 1
#: Columns of a segment's row in :func:`segment_table`: its kind, the BG/NBD or Pareto/NBD parameters (r,
#: alpha per year; a, b; s, beta per year) and the Gamma-Gamma order value (kind, mean, p, q, gamma).
KIND, R, ALPHA, A, B, S, BETA, VALUE_KIND, VALUE_MEAN, VALUE_P, VALUE_Q, VALUE_GAMMA = range(12)
#: Segment kinds: the closed forms' degenerate cases of :func:`_special_case`, then the two models.
NO_PURCHASES, NEVER_DROP, ONE_REPEAT, BGNBD, PARETONBD = range(5)
#: Order value kinds of :func:`_expected_order_value`: the segment mean, the customer's observed mean, Gamma-Gamma.
SAME_MEAN, OWN_MEAN, GAMMA_GAMMA = range(3)


def score_bounds(laws: list[SegmentLaws], segment: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                 spend: np.ndarray, *, target: str, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the exact scores of eligible customers, without hypergeometric functions
    (compiled: one pass over the customers, the C library's ``log`` and ``exp``).

    BG/NBD: P(alive) = 1 / (1 + a / (b+x-1) e^y), y = (r+x) ln((alpha+T) / (alpha+t_x)) (1 for x = 0); the
    expected purchases of an alive customer, E[(1 - e^(-lambda p w)) / p] over the posterior
    lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x) (independent given alive), lie between consecutive partial
    sums of its alternating Taylor series in lambda p w, whose terms are posterior moments. Pareto/NBD:
    P(alive) = 1 / (1 + s I / L) with L = (alpha+T)^-(r+x) (beta+T)^-s and I = int_{t_x}^T g,
    g(y) = (alpha+y)^-(r+x) (beta+y)^-(s+1); g is decreasing and log-convex, so I lies between the integrals
    of ln g's tangents and of its chords; the expected purchases of an alive customer are
    (r+x) / (alpha+T) int_0^w ((beta+T) / (beta+T+v))^s dv.

    ``precision`` "rough": no logarithm or exponential. e^y between (1 + y_low/64)^64 and
    (1 - y_high/64)^-64 (six squarings), y_low and y_high from 2 (u-1) / (u+1) <= ln u <= (u-1) / sqrt(u);
    I between the integral of the tangent at T (its e^(c span) - 1 bounded below by three Taylor terms) and
    (T - t_x) g(t_x); the Pareto/NBD window integral between two and three terms of its alternating Taylor
    series; :data:`SERIES_TERMS` terms of the BG/NBD series. "cheap": P(alive) of BG/NBD to rounding, I
    between the tangent at T and the chord over [t_x, T]. "tight": more series terms, and I between the
    midpoint tangents and the chords over :data:`INTEGRAL_PIECES` pieces of [t_x, T].
    """
    lower, upper = np.empty(len(segment)), np.empty(len(segment))
    PASSES[precision](segment_table(laws), target == "at_risk", 0.0, segment, x, t_x, T, spend, None, lower, upper,
                      FRESH)
    return lower, upper


@numba.njit(inline="always", **OPTIONS)
def _bound_pass(table, precision, at_risk, slack, segment, x, t_x, T, spend, who, lower, upper, mode):
    """Bounds of the scores of the customers ``who[i]`` (``i`` if ``who`` is None), widened by the relative
    ``slack``: written into ``lower[i]``, ``upper[i]`` (``mode`` :data:`FRESH`), or intersected with the
    bounds they hold (:data:`SHARPEN`). NaN bounds are taken as infinite."""
    for i in range(lower.size):
        j = i if who is None else who[i]
        low, high = _customer_bounds(_law(table, segment[j]), precision, at_risk, x[j], t_x[j], T[j], spend[j])
        lower[i], upper[i] = _kept(lower[i], upper[i], low, high, slack, mode)


@numba.njit(inline="always", **OPTIONS)
def _kept(held_low, held_high, low, high, slack, mode):
    """Bounds ``low``, ``high`` widened by the relative ``slack``, replacing (``mode`` :data:`FRESH`) or
    intersecting (:data:`SHARPEN`) those held, ``held_low`` and ``held_high``; NaN bounds are taken as
    infinite. (Numbers in, numbers out: a function handed the arrays would count references to them, with
    two atomic instructions per array and customer.)"""
    low, high = low - slack * abs(low), high + slack * abs(high)
    if mode == FRESH:
        held_low, held_high = -math.inf, math.inf
    if low > held_low:
        held_low = low
    if high < held_high:
        held_high = high
    return held_low, held_high


@numba.njit(inline="always", **OPTIONS)
def _law(table, row):
    """Row ``row`` of :func:`segment_table` as a tuple of its numbers (a view of the row would be
    reference-counted, atomically, once per customer)."""
    return (table[row, 0], table[row, 1], table[row, 2], table[row, 3], table[row, 4], table[row, 5],
            table[row, 6], table[row, 7], table[row, 8], table[row, 9], table[row, 10], table[row, 11])


@numba.njit(**OPTIONS)
def rough_observed_pass(table, at_risk, slack, t, segment, made, first, last, spend, who, lower, upper, below):
    """:func:`rough_pass` of the customers ``who[i]`` (``i`` if ``who`` is None) from what a round at ``t``
    reads of them where they are (:class:`sim.model.scoring.Observed`): purchases ``made`` so far (the first
    included), the times of the ``first`` and ``last`` purchases (the last read only after a purchase), repeat
    ``spend``. Their repeats, recency and age are those of :meth:`~sim.model.scoring.Observed.history`, to the
    bit, so the bounds are :func:`rough_pass`'s of the gathered history; nothing is gathered.

    ``below`` (-inf: none) spares most customers the rough bounds when it lies under the threshold they are
    wanted for: a ``top_predicted_clv`` customer whose :func:`quick_upper` bound, widened by the slack, falls
    under ``below`` gets that bound as its upper bound and 0 as its lower bound (those scores are not
    negative). Valid bounds either way: which customers they leave undecided may change, not the choice."""
    quick_on = below > -math.inf and not at_risk
    rough = np.empty(lower.size if quick_on else 0, np.int64)   # the customers who need the rough bounds
    count = 0
    if quick_on:   # the quick bounds of everybody first: a loop without a branch, which runs ~5x faster than
        for i in range(lower.size):   # the rough bounds, and loses that if it must choose per customer
            j = i if who is None else who[i]
            purchases = np.int64(made[j])
            repeats = purchases - 1 if purchases > 1 else np.int64(0)
            quick = quick_upper(_law(table, segment[j]), repeats, t - first[j], spend[j])
            quick += slack * abs(quick)
            lower[i], upper[i] = 0.0, quick
            rough[count] = i
            count += not quick < below
    for at in range(count if quick_on else lower.size):
        i = rough[at] if quick_on else at
        j = i if who is None else who[i]
        purchases = np.int64(made[j])
        repeats = purchases - 1 if purchases > 1 else np.int64(0)
        recency = last[j] - first[j] if purchases > 0 else 0.0
        low, high = _customer_bounds(_law(table, segment[j]), ROUGH, at_risk, repeats, recency, t - first[j],
                                     spend[j])
        lower[i], upper[i] = _kept(lower[i], upper[i], low, high, slack, FRESH)


@numba.njit(inline="always", **OPTIONS)
def quick_upper(law, x, T, spend):
    """An upper bound of a customer's ``top_predicted_clv`` score (``law`` a row of :func:`segment_table`,
    :func:`_law`) for two divisions: (r + x) w / (alpha + T), the expected purchases in the window at the
    posterior mean rate with no dropout, times the expected order value. Every kind's score is at most that:
    P(alive) <= 1, and 1 - e^-y <= y bounds the BG/NBD expected purchases of the alive, int_0^w (B / (B +
    v))^s dv <= w the Pareto/NBD ones, 1 - (1 + z)^-r <= r z those of one repeat (x = 0), and a segment
    without purchases (alpha inf) scores 0."""
    return (law[R] + x) * SCORING_WINDOW / (law[ALPHA] + T) * _order_value(law, x, spend)


@numba.njit(**OPTIONS)
def rough_pass(table, at_risk, slack, segment, x, t_x, T, spend, who, lower, upper, mode):
    """:func:`_bound_pass` with "rough" bounds (compiled for them: the precision's branches folded away)."""
    _bound_pass(table, ROUGH, at_risk, slack, segment, x, t_x, T, spend, who, lower, upper, mode)


@numba.njit(**OPTIONS)
def cheap_pass(table, at_risk, slack, segment, x, t_x, T, spend, who, lower, upper, mode):
    """:func:`_bound_pass` with "cheap" bounds."""
    _bound_pass(table, CHEAP, at_risk, slack, segment, x, t_x, T, spend, who, lower, upper, mode)


@numba.njit(**OPTIONS)
def tight_pass(table, at_risk, slack, segment, x, t_x, T, spend, who, lower, upper, mode):
    """:func:`_bound_pass` with "tight" bounds."""
    _bound_pass(table, TIGHT, at_risk, slack, segment, x, t_x, T, spend, who, lower, upper, mode)


@numba.njit(inline="always", **OPTIONS)
def _customer_bounds(law, precision, at_risk, x, t_x, T, spend):
    """(lower, upper) bound of one customer's score; ``law`` a row of :func:`segment_table` (:func:`_law`)."""
    kind, r, alpha, w = law[KIND], law[R], law[ALPHA], SCORING_WINDOW
    value = _order_value(law, x, spend)
    if kind == NO_PURCHASES:
        return 0.0, 0.0
    if kind == NEVER_DROP:
        score = 0.0 if at_risk else (r + x) / (alpha + T) * w * value
        return score, score
    if kind == ONE_REPEAT:   # gone right after the first repeat purchase
        if at_risk:
            score = 1.0 if x > 0 else 0.0
        else:
            score = 0.0 if x > 0 else -math.expm1(r * math.log((alpha + T) / (alpha + T + w))) * value
        return score, score
    if kind == BGNBD:   # the odds of "dead" are a / (b + x - 1) x power, 0 for x = 0
        a, b = law[A], law[B]
        rest = (b + x - 1.0) / a if x > 0 else 1.0
        if precision == ROUGH:       # 1 - P(alive) = 1 / (1 + rest / power), P(alive) = rest / (rest + power)
            power_low, power_high = _bgnbd_rough_power(x, t_x, T, r, alpha)
            if at_risk:
                return 1.0 / (1.0 + rest / power_low), 1.0 / (1.0 + rest / power_high)
            alive_low, alive_high = rest / (rest + power_high), rest / (rest + power_low)
        else:
            log_odds = _bgnbd_log_odds(x, t_x, T, r, alpha, a, b)
            if at_risk:
                dead = 1.0 / (1.0 + math.exp(-log_odds))
                return dead, dead
            alive_low = alive_high = 1.0 / (1.0 + math.exp(log_odds))
        low, high = _bgnbd_alive_purchase_bounds(x, T, r, alpha, a, b, SERIES_TERMS[precision])
        return low * alive_low * value, high * alive_high * value
    s, beta = law[S], law[BETA]
    if precision == ROUGH:
        odds_low, odds_high = _paretonbd_rough_dead_odds(x, t_x, T, r, alpha, s, beta)
    else:
        odds_low, odds_high = _paretonbd_dead_odds_bounds(x, t_x, T, r, alpha, s, beta, precision == TIGHT)
    if at_risk:
        return odds_low / (1.0 + odds_low), odds_high / (1.0 + odds_high)
    scale = (r + x) / (alpha + T) * value
    if precision == ROUGH:   # int_0^w (B / (B + v))^s dv, B = beta + T, between partial sums of its Taylor series
        step = s * w / (beta + T)
        return (scale * w * max(1.0 - step / 2.0, 0.0) / (1.0 + odds_high),
                scale * w * (1.0 - step / 2.0 + step * (s + 1.0) * w / (beta + T) / 6.0) / (1.0 + odds_low))
    decay = math.log1p(w / (beta + T))     # (beta + T) theory._expm1_ratio(decay, s - 1) is that integral
    level = scale * (beta + T) * (decay if s == 1.0 else -math.expm1(-(s - 1.0) * decay) / (s - 1.0))
    return level / (1.0 + odds_high), level / (1.0 + odds_low)


@numba.njit(inline="always", **OPTIONS)
def _exp_bounds(y_low, y_high):
    """Bounds of e^y for 0 <= y_low <= y <= y_high without exp: (1 + y_low / 64)^64 <= e^y <= (1 - y_high /
    64)^-64 (infinite from y_high = 64 on), each by six squarings (1 + y/64 <= e^(y/64) <= 1 / (1 - y/64))."""
    low = 1.0 + min(y_low, 4096.0) * (1.0 / 64.0)      # (finite: at most e^266)
    high = 1.0 / (1.0 - y_high * (1.0 / 64.0)) if y_high < 64.0 else math.inf
    for _ in range(6):
        low *= low
        high *= high
    return low, high


@numba.njit(inline="always", **OPTIONS)
def _bgnbd_rough_power(x, t_x, T, r, alpha):
    """Bounds of ((alpha + T) / (alpha + t_x))^(r + x) = e^y (0 for x = 0: BG/NBD customers without a repeat
    purchase cannot have dropped out) without logarithms: 2 (u - 1) / (u + 1) <= ln u <= (u - 1) / sqrt(u) for
    u >= 1 bound y, and :func:`_exp_bounds` e^y."""
    if x <= 0:
        return 0.0, 0.0
    span, n = T - t_x, r + x
    return _exp_bounds(2.0 * n * span / (2.0 * alpha + T + t_x), n * span / math.sqrt((alpha + T) * (alpha + t_x)))


@numba.njit(inline="always", **OPTIONS)
def _bgnbd_log_odds(x, t_x, T, r, alpha, a, b):
    """The BG/NBD log-odds of "dead", -inf for x = 0 (as :func:`sim.model.theory.bgnbd_probability_alive`, up
    to rounding)."""
    if x <= 0:
        return -math.inf
    return math.log(a / (b + x - 1.0)) + (r + x) * math.log((alpha + T) / (alpha + t_x))


@numba.njit(inline="always", **OPTIONS)
def _paretonbd_rough_dead_odds(x, t_x, T, r, alpha, s, beta):
    """Bounds of s I / L (:func:`score_bounds`) without logarithms: I is at most (T - t_x) g(t_x), with
    g(t_x) / L = ((alpha + T) / (alpha + t_x))^(r + x) ((beta + T) / (beta + t_x))^s / (beta + t_x) = e^y /
    (beta + t_x), y bounded with ln u <= (u - 1) / sqrt(u) and e^y by :func:`_exp_bounds`; and at least the
    integral of ln g's tangent at T, g(T) (e^(c span) - 1) / c >= g(T) span (1 + c span / 2 + (c span)^2 / 6),
    c = (r + x) / (alpha + T) + (s + 1) / (beta + T)."""
    span = T - t_x
    if span <= 0.0:
        return 0.0, 0.0
    slope_span = ((r + x) / (alpha + T) + (s + 1.0) / (beta + T)) * span
    low = s * span / (beta + T) * (1.0 + slope_span * (0.5 + slope_span * (1.0 / 6.0)))
    y = ((r + x) * span / math.sqrt((alpha + T) * (alpha + t_x)) + s * span / math.sqrt((beta + T) * (beta + t_x)))
    return low, s * span / (beta + t_x) * _exp_bounds(0.0, y)[1]


@numba.njit(inline="always", **OPTIONS)
def _order_value(law, x, spend):
    """E[the customer's mean order value | x repeat orders of total list value ``spend``] (Gamma-Gamma), as
    :func:`_expected_order_value` up to rounding (x times the observed mean is ``spend``)."""
    mean = law[VALUE_MEAN]
    if law[VALUE_KIND] == SAME_MEAN:
        return mean
    if law[VALUE_KIND] == OWN_MEAN:
        return spend / x if x > 0 else mean
    p = law[VALUE_P]
    return (law[VALUE_GAMMA] + (spend if x > 0 else 0.0)) * p / (p * x + law[VALUE_Q] - 1.0)


@numba.njit(**OPTIONS)
def _bgnbd_alive_purchase_bounds(x, T, r, alpha, a, b, terms):
    """Bounds of the expected purchases in the window of an alive BG/NBD customer: partial sums of
    sum_j (-1)^(j+1) E[lambda^j] E[p^(j-1)] w^j / j!, upper after an odd number of terms, lower after an
    even one (the Taylor remainder of 1 - e^-y alternates in sign for y >= 0)."""
    n, per_rate = r + x, SCORING_WINDOW / (alpha + T)
    term = n * per_rate
    total, upper, lower, magnitude = term, term, 0.0, term
    for j in range(2, terms + 1):
        term = term * ((n + j - 1) * per_rate * (a + j - 2) / ((a + b + x + j - 2) * j))
        magnitude += term
        if j % 2:
            total += term
            upper = min(upper, total)
        else:
            total -= term
            lower = max(lower, total)
    rounding = magnitude * 1e-14     # the cancellation error of the partial sums
    return lower - rounding, upper + rounding


@numba.njit(**OPTIONS)
def _paretonbd_log_g_over_alive(y, x, T, r, alpha, s, beta):
    """ln g(y) - ln L (see :func:`score_bounds`)."""
    return (r + x) * math.log((alpha + T) / (alpha + y)) + s * math.log((beta + T) / (beta + y)) - math.log(beta + y)


@numba.njit(**OPTIONS)
def _paretonbd_dead_odds_bounds(x, t_x, T, r, alpha, s, beta, tight):
    """Bounds of s I / L, the odds of "dropped out since t_x" against "alive at T" (see score_bounds)."""
    span = T - t_x
    if span <= 0.0:    # no time to have dropped out unseen
        return 0.0, 0.0
    if not tight:   # ln g's chord over [t_x, T] and its tangent at T
        drop = _paretonbd_log_g_over_alive(t_x, x, T, r, alpha, s, beta) + math.log(beta + T)   # ln g(t_x) - ln g(T)
        chord = -math.expm1(-drop) / drop if drop > 1e-12 else 1.0
        slope = (r + x) / (alpha + T) + (s + 1.0) / (beta + T)    # -(ln g)'(T)
        tangent = math.expm1(min(slope * span, 700.0)) / slope   # (finite)
        return s * tangent / (beta + T), s * span * chord * math.exp(drop) / (beta + T)
    low = high = 0.0
    piece = span / INTEGRAL_PIECES
    log_piece = math.log(piece)
    at_end = _paretonbd_log_g_over_alive(t_x, x, T, r, alpha, s, beta)
    for index in range(INTEGRAL_PIECES):
        start = t_x + index * piece
        end, middle = start + piece, start + piece / 2
        at_start, at_end = at_end, _paretonbd_log_g_over_alive(end, x, T, r, alpha, s, beta)
        drop = at_start - at_end                                  # >= 0: g falls
        chord = math.log(-math.expm1(-drop) / drop) if drop > 1e-12 else 0.0
        high += math.exp(log_piece + at_start + chord)
        half = piece / 2 * ((r + x) / (alpha + middle) + (s + 1.0) / (beta + middle))  # |slope| x half piece
        tangent = half + math.log(-math.expm1(-2.0 * half) / (2.0 * half)) if half > 1e-8 else 0.0  # ln sinh(h)/h
        low += math.exp(log_piece + _paretonbd_log_g_over_alive(middle, x, T, r, alpha, s, beta) + tangent)
    return s * low, s * high


#: The compiled passes of bounds by precision.
PASSES = {"rough": rough_pass, "cheap": cheap_pass, "tight": tight_pass}


def segment_table(laws: list[SegmentLaws]) -> np.ndarray:
    """The segments' scoring laws as rows of numbers for the compiled bounds (columns :data:`KIND` ...), with
    the parameters and degenerate cases :func:`_scores` uses."""
    table = np.zeros((len(laws), 12))
    for row, law in zip(table, laws, strict=True):
        r, alpha = gamma_parameters(law.purchase_rate) if law.purchase_rate.mean else (0.0, np.inf)
        row[R], row[ALPHA] = r, alpha
        if not np.isfinite(alpha):
            row[KIND] = NO_PURCHASES
        elif ((law.hazard is not None and law.hazard.mean < NEGLIGIBLE_HAZARD)
              or (law.dropout is not None and law.dropout.mean == 0)):
            row[KIND] = NEVER_DROP
        elif law.dropout is not None and law.dropout.mean == 1:
            row[KIND] = ONE_REPEAT
        elif law.dropout is not None:
            row[KIND], (row[A], row[B]) = BGNBD, beta_parameters(law.dropout)
        else:
            row[KIND], (row[S], row[BETA]) = PARETONBD, gamma_parameters(law.hazard)
        spend = law.spend
        row[VALUE_KIND] = SAME_MEAN if spend.q is None else OWN_MEAN if spend.p is None else GAMMA_GAMMA
        row[VALUE_MEAN] = spend.mean
        if row[VALUE_KIND] == GAMMA_GAMMA:
            row[VALUE_P], row[VALUE_Q], row[VALUE_GAMMA] = spend.p, spend.q, spend.mean * (spend.q - 1.0) / spend.p
    return table


def gamma_parameters(law) -> tuple[float, float]:
    """(shape, rate per year) of a Gamma law, with at most 1/SCORING_MIN_CV**2 as shape."""
    shape = min(law.shape or np.inf, SCORING_MIN_CV**-2)
    return shape, shape / law.mean


def beta_parameters(law) -> tuple[float, float]:
    """(a, b) of a Beta law, with at least the spread of cv SCORING_MIN_CV."""
    if law.a is not None:
        concentration = min(law.a + law.b, (1.0 - law.mean) / (SCORING_MIN_CV**2 * law.mean) - 1.0)
    else:
        concentration = (1.0 - law.mean) / (SCORING_MIN_CV**2 * law.mean) - 1.0
    concentration = max(concentration, 1e-3)
    return law.mean * concentration, (1.0 - law.mean) * concentration
