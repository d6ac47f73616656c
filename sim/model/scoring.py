"""The firm's scoring of customers for targeted offers, from what it can observe (``docs/levers.md``).

Times in years, money in the scenario's currency. A customer's observable history is ``repeats`` x,
``recency`` t_x (time of the last purchase since arrival; 0 without a repeat purchase), ``age`` T and
``repeat_spend`` (list value of the repeat orders). The scores are the BG/NBD or Pareto/NBD and Gamma-Gamma
conditional expectations (:mod:`sim.model.theory`): ``top_predicted_clv`` is the expected repeat purchases in the
next :data:`SCORING_WINDOW` times the expected order value; ``at_risk`` is 1 - P(alive) for past-valuable
customers (a repeat purchase and repeat spend at or above the median of the repeaters'), -inf for others.

Exact scores need a Gauss hypergeometric function per customer, about a microsecond each, and a round
scores everybody acquired so far. :func:`select_targets` therefore brackets every score between cheap
bounds, keeps aside the customers whose bounds settle whether they are in the top share, tightens the
bounds of the others, and computes exact scores only for the few the tight bounds leave undecided (about
1% of the share). The selection is the one exact scores of everybody would give.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from sim.model import theory
from sim.model.population import SegmentLaws

#: Forecast window of ``top_predicted_clv`` scoring, in years.
SCORING_WINDOW = 1.0
#: Segments with no heterogeneity in a trait are scored as if its cv were this (the closed forms need a mix).
SCORING_MIN_CV = 0.1
#: Dropout hazards below this (per year) are scored as no dropout.
NEGLIGIBLE_HAZARD = 1e-18
#: Relative slack of the bounds against rounding (they are exact up to a few ulps).
BOUND_SLACK = 1e-9
#: Terms of the alternating series that bounds the BG/NBD expected purchases (cheap pass, tight pass).
SERIES_TERMS = (2, 10)
#: Pieces of [t_x, T] over which the Pareto/NBD dead-since-t_x integral is bounded in the tight pass.
INTEGRAL_PIECES = 2


def select_targets(laws: list[SegmentLaws], segment: np.ndarray, repeats: np.ndarray, recency: np.ndarray,
                   age: np.ndarray, repeat_spend: np.ndarray, *, target: str, share: float,
                   keys: np.ndarray | None = None) -> np.ndarray:
    """Indices of the customers who get a targeted offer: the ``share`` with the highest
    :func:`score_customers` score among those with a score (ties broken deterministically: by the customers'
    ``keys``, the lower first, if given, so that the choice does not depend on the order the customers come
    in; else by their positions).

    Passes of :func:`score_bounds` narrow the customers down: those whose lower bound beats the (k+1)-th
    highest upper bound are in, those whose upper bound falls short of the k-th highest lower bound are
    out (k the places left). The first pass bounds everybody: a rough upper bound for all, and the cheap
    bounds for the top of its ranking (twice the places: the others' lower bound is 0); the second
    tightens the bounds of the undecided. Exact scores decide among the rest.
    """
    history = (segment, repeats, recency, age, repeat_spend)
    undecided = _eligible(target, repeats, repeat_spend)
    places = round(share * undecided.size)
    chosen = []
    for precision in ("cheap", "tight"):
        if places == 0 or places >= undecided.size:
            break
        columns = [column[undecided] for column in history]
        if precision == "cheap" and target == "top_predicted_clv":   # (equal histories share their fate)
            lower, upper = _first_bounds(laws, columns, places)
        else:
            lower, upper = score_bounds(laws, *columns, target=target, precision=precision)
        sure, maybe = _narrow(lower, upper, places)
        chosen.append(undecided[sure])
        places -= sure.size
        undecided = undecided[maybe]
    if 0 < places < undecided.size:
        exact = _scores(laws, *(column[undecided] for column in history), target=target)
        if keys is None:
            undecided = undecided[np.argpartition(-exact, places - 1)[:places]]
        else:
            undecided = undecided[np.lexsort((keys[undecided], -exact))[:places]]
    if places:
        chosen.append(undecided)
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def _first_bounds(laws: list[SegmentLaws], history: list[np.ndarray], places: int) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of everybody's ``top_predicted_clv`` score: the rough upper bound for all, the cheap bounds for
    the top 2 x places + 1024 of its ranking (and those tied with the last), a lower bound of 0 for the rest."""
    lower, upper = score_bounds(laws, *history, target="top_predicted_clv", precision="rough")
    nth = min(2 * places + 1024, upper.size) - 1
    top = np.flatnonzero(upper >= -np.partition(-upper, nth)[nth])
    lower[top], cheap_upper = score_bounds(laws, *(column[top] for column in history), target="top_predicted_clv",
                                           precision="cheap")
    upper[top] = np.minimum(upper[top], cheap_upper)
    return lower, upper


def _narrow(lower: np.ndarray, upper: np.ndarray, places: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions surely among the top ``places`` scores, and those that may be (0 < places < len)."""
    lower = lower - BOUND_SLACK * np.abs(lower)
    upper = upper + BOUND_SLACK * np.abs(upper)
    n = len(lower)
    kth_lower = np.partition(lower, n - places)[n - places]          # at least `places` scores reach it
    next_upper = np.partition(upper, n - places - 1)[n - places - 1]  # fewer than `places` others exceed it
    sure = lower > next_upper
    return np.flatnonzero(sure), np.flatnonzero(~sure & (upper >= kth_lower))


def _eligible(target: str, repeats: np.ndarray, repeat_spend: np.ndarray) -> np.ndarray:
    """Who has a score: everybody for ``top_predicted_clv``, the past-valuable for ``at_risk``."""
    if target != "at_risk":
        return np.arange(len(repeats))
    repeaters = repeats > 0
    if not repeaters.any():
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(repeaters & (repeat_spend >= np.median(repeat_spend[repeaters])))


def score_customers(laws: list[SegmentLaws], segment: np.ndarray, repeats: np.ndarray, recency: np.ndarray,
                    age: np.ndarray, repeat_spend: np.ndarray, *, target: str) -> np.ndarray:
    """The firm's exact score of each customer (higher = more deserving of the offer); -inf for the
    customers ``at_risk`` does not consider (see the module docstring)."""
    score = np.full(len(segment), -np.inf)
    eligible = _eligible(target, repeats, repeat_spend)
    score[eligible] = _scores(laws, segment[eligible], repeats[eligible], recency[eligible], age[eligible],
                              repeat_spend[eligible], target=target)
    return score


def _scores(laws: list[SegmentLaws], segment: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
            spend: np.ndarray, *, target: str) -> np.ndarray:
    """Exact scores of eligible customers."""
    score = np.empty(len(segment))
    for chosen, law in _by_segment(laws, segment):
        cx, ct_x, cT = x[chosen], t_x[chosen], T[chosen]
        special = _special_case(law, cx, cT, spend[chosen], target)
        if special is not None:
            score[chosen] = special
            continue
        r, alpha = _gamma_parameters(law.purchase_rate)
        if law.dropout is not None:
            a, b = _beta_parameters(law.dropout)
            if target == "at_risk":
                score[chosen] = 1.0 - theory.bgnbd_probability_alive(cx, ct_x, cT, r, alpha, a, b)
                continue
            purchases = theory.bgnbd_conditional_expected_purchases(SCORING_WINDOW, cx, ct_x, cT, r, alpha, a, b)
        else:
            s, beta = _gamma_parameters(law.hazard)
            if target == "at_risk":
                score[chosen] = 1.0 - theory.paretonbd_probability_alive(cx, ct_x, cT, r, alpha, s, beta)
                continue
            purchases = theory.paretonbd_conditional_expected_purchases(SCORING_WINDOW, cx, ct_x, cT, r, alpha,
                                                                        s, beta)
        score[chosen] = purchases * _expected_order_value(law, cx, spend[chosen])
    return score


def score_bounds(laws: list[SegmentLaws], segment: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                 spend: np.ndarray, *, target: str, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the exact scores of eligible customers, without hypergeometric functions.

    ``precision``: "rough" (``top_predicted_clv`` only) is an upper bound without any logarithm and a lower
    bound of 0: P(alive) at most 1 (BG/NBD) or the cheap Pareto/NBD bound below, and the purchases of an
    alive customer at most (r+x)/(alpha+T) x window (those of a customer who cannot drop out). "cheap" and
    "tight" are the bounds below, with few and with more terms or pieces.

    BG/NBD: P(alive) is closed-form; the expected purchases of an alive customer, E[(1 - e^(-lambda p w)) / p]
    over the posterior lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x) (independent given alive), lie
    between consecutive partial sums of its alternating Taylor series in lambda p w, whose terms are
    posterior moments. Pareto/NBD: P(alive) = 1 / (1 + s I / L) with L = (alpha+T)^-(r+x) (beta+T)^-s and
    I = int_{t_x}^T g, g(y) = (alpha+y)^-(r+x) (beta+y)^-(s+1); g is decreasing and log-convex, so I lies
    between (T - t_x) g(T) and (T - t_x) g(t_x), and, tighter, between the integrals of ln g's midpoint
    tangents and of its chords over pieces of [t_x, T].
    """
    lower, upper = np.empty(len(segment)), np.empty(len(segment))
    for chosen, law in _by_segment(laws, segment):
        cx, ct_x, cT = x[chosen], t_x[chosen], T[chosen]
        special = _special_case(law, cx, cT, spend[chosen], target)
        if special is not None:
            lower[chosen] = upper[chosen] = special
            continue
        r, alpha = _gamma_parameters(law.purchase_rate)
        if precision == "rough":
            bound = (r + cx) / (alpha + cT) * SCORING_WINDOW * _expected_order_value(law, cx, spend[chosen])
            if law.hazard is not None:
                s, beta = _gamma_parameters(law.hazard)
                bound /= 1.0 + s * (cT - ct_x) / (beta + cT)
            lower[chosen], upper[chosen] = 0.0, bound
            continue
        if law.dropout is not None:
            a, b = _beta_parameters(law.dropout)
            alive = _bgnbd_alive(cx, ct_x, cT, r, alpha, a, b)
            if target == "at_risk":
                lower[chosen] = upper[chosen] = 1.0 - alive
                continue
            low, high = _bgnbd_alive_purchase_bounds(cx, cT, r, alpha, a, b, SERIES_TERMS[precision == "tight"])
            value = alive * _expected_order_value(law, cx, spend[chosen])
            lower[chosen], upper[chosen] = low * value, high * value
            continue
        s, beta = _gamma_parameters(law.hazard)
        odds_low, odds_high = _paretonbd_dead_odds_bounds(cx, ct_x, cT, r, alpha, s, beta, precision == "tight")
        alive_low, alive_high = 1.0 / (1.0 + odds_high), 1.0 / (1.0 + odds_low)
        if target == "at_risk":
            lower[chosen], upper[chosen] = 1.0 - alive_high, 1.0 - alive_low
            continue
        level = ((r + cx) * (beta + cT) / (alpha + cT)
                 * theory._expm1_ratio(np.log1p(SCORING_WINDOW / (beta + cT)), np.asarray(s - 1.0)))
        value = level * _expected_order_value(law, cx, spend[chosen])
        lower[chosen], upper[chosen] = alive_low * value, alive_high * value
    return lower, upper


def _bgnbd_alive(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, r: float, alpha: float, a: float,
                 b: float) -> np.ndarray:
    """BG/NBD P(alive), as :func:`sim.model.theory.bgnbd_probability_alive` (up to rounding) with fewer logs:
    1 / (1 + a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x)) for x > 0, 1 for x = 0."""
    repeats = np.maximum(x, 1)
    log_odds = np.log(a / (b + repeats - 1.0)) + (r + repeats) * np.log((alpha + T) / (alpha + t_x))
    return np.where(x > 0, special.expit(-log_odds), 1.0)


def _bgnbd_alive_purchase_bounds(x: np.ndarray, T: np.ndarray, r: float, alpha: float, a: float, b: float,
                                 terms: int) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the expected purchases in the window of an alive BG/NBD customer: partial sums of
    sum_j (-1)^(j+1) E[lambda^j] E[p^(j-1)] w^j / j!, upper after an odd number of terms, lower after an
    even one (the Taylor remainder of 1 - e^-y alternates in sign for y >= 0)."""
    n, rate, w = r + x, alpha + T, SCORING_WINDOW
    term = n / rate * w
    total, upper, lower, magnitude = term.copy(), term.copy(), np.zeros_like(term), term.copy()
    for j in range(2, terms + 1):
        term = term * ((n + j - 1) / rate * w * (a + j - 2) / ((a + b + x + j - 2) * j))
        magnitude += term
        if j % 2:
            total += term
            np.minimum(upper, total, out=upper)
        else:
            total -= term
            np.maximum(lower, total, out=lower)
    rounding = magnitude * 1e-14     # the cancellation error of the partial sums
    return lower - rounding, upper + rounding


def _paretonbd_dead_odds_bounds(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, r: float, alpha: float,
                                s: float, beta: float, tight: bool) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of s I / L, the odds of "dropped out since t_x" against "alive at T" (see score_bounds)."""
    span = T - t_x

    def log_g_over_alive(y: np.ndarray) -> np.ndarray:   # ln g(y) - ln L
        return (r + x) * np.log((alpha + T) / (alpha + y)) + s * np.log((beta + T) / (beta + y)) - np.log(beta + y)

    if not tight:
        with np.errstate(over="ignore"):
            return s * span / (beta + T), s * span * np.exp(log_g_over_alive(t_x))
    low, high = np.zeros_like(span), np.zeros_like(span)
    piece = span / INTEGRAL_PIECES
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # empty pieces (t_x = T) add 0
        log_piece = np.log(piece)
        for index in range(INTEGRAL_PIECES):
            start = t_x + index * piece
            end, middle = start + piece, start + piece / 2
            at_start = log_g_over_alive(start)
            drop = at_start - log_g_over_alive(end)                      # >= 0: g falls
            chord = np.where(drop > 1e-12, np.log(-np.expm1(-drop) / drop), 0.0)
            high += np.exp(log_piece + at_start + chord)
            half = piece / 2 * ((r + x) / (alpha + middle) + (s + 1.0) / (beta + middle))  # |slope| x half piece
            tangent = np.where(half > 1e-8, half + np.log(-np.expm1(-2.0 * half) / (2.0 * half)), 0.0)  # ln sinh(h)/h
            low += np.exp(log_piece + log_g_over_alive(middle) + tangent)
    return s * low, s * high


def _special_case(law: SegmentLaws, x: np.ndarray, T: np.ndarray, spend: np.ndarray, target: str) -> np.ndarray | None:
    """Exact scores of segments whose closed forms degenerate (no purchases, certain or no dropout). A purchase
    rate whose Gamma rate parameter overflows counts as none, and a dropout hazard below
    :data:`NEGLIGIBLE_HAZARD` as none (P(alive) is 1 to double precision; the Pareto/NBD 2F1 overflows)."""
    r, alpha = _gamma_parameters(law.purchase_rate) if law.purchase_rate.mean else (0.0, np.inf)
    if not np.isfinite(alpha):  # nobody in the segment ever buys again
        return np.zeros(len(x))
    never_drop = ((law.hazard is not None and law.hazard.mean < NEGLIGIBLE_HAZARD)
                  or (law.dropout is not None and law.dropout.mean == 0))
    if never_drop:  # the gamma-Poisson posterior mean
        if target == "at_risk":
            return np.zeros(len(x))
        return (r + x) / (alpha + T) * SCORING_WINDOW * _expected_order_value(law, x, spend)
    if law.dropout is not None and law.dropout.mean == 1:  # gone right after the first repeat purchase
        if target == "at_risk":
            return np.where(x > 0, 1.0, 0.0)
        # only those without a repeat purchase yet can still make one (exactly one)
        one_more = -np.expm1(r * np.log((alpha + T) / (alpha + T + SCORING_WINDOW)))
        return np.where(x > 0, 0.0, one_more) * _expected_order_value(law, x, spend)
    return None


def _by_segment(laws: list[SegmentLaws], segment: np.ndarray):
    """(positions, law) of every segment with customers."""
    if len(laws) == 1:
        if len(segment):
            yield np.arange(len(segment)), laws[0]
        return
    for index, law in enumerate(laws):
        chosen = np.flatnonzero(segment == index)
        if chosen.size:
            yield chosen, law


def _expected_order_value(law: SegmentLaws, x: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """E[the customer's mean order value | x repeat orders of total list value ``spend``] (Gamma-Gamma)."""
    law = law.spend
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.where(x > 0, spend / np.maximum(x, 1), law.mean)
    if law.q is None:           # every customer has the same mean
        return np.full(len(x), law.mean)
    if law.p is None:           # no within-customer variation: the observed mean is the customer's mean
        return observed
    gamma = law.mean * (law.q - 1.0) / law.p
    return theory.gamma_gamma_conditional_mean_spend(law.p, law.q, gamma, x, observed)


def _gamma_parameters(law) -> tuple[float, float]:
    """(shape, rate per year) of a Gamma law, with at most 1/SCORING_MIN_CV**2 as shape."""
    shape = min(law.shape or np.inf, SCORING_MIN_CV**-2)
    return shape, shape / law.mean


def _beta_parameters(law) -> tuple[float, float]:
    """(a, b) of a Beta law, with at least the spread of cv SCORING_MIN_CV."""
    if law.a is not None:
        concentration = min(law.a + law.b, (1.0 - law.mean) / (SCORING_MIN_CV**2 * law.mean) - 1.0)
    else:
        concentration = (1.0 - law.mean) / (SCORING_MIN_CV**2 * law.mean) - 1.0
    concentration = max(concentration, 1e-3)
    return law.mean * concentration, (1.0 - law.mean) * concentration
