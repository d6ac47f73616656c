"""The firm's scoring of customers for targeted offers, from what it can observe (``docs/levers.md``).

Times in years, money in the scenario's currency. A customer's observable history is ``repeats`` x,
``recency`` t_x (time of the last purchase since arrival; 0 without a repeat purchase), ``age`` T and
``repeat_spend`` (list value of the repeat orders). The scores are the BG/NBD or Pareto/NBD and Gamma-Gamma
conditional expectations (:mod:`sim.model.theory`): ``top_predicted_clv`` is the expected repeat purchases in the
next :data:`SCORING_WINDOW` times the expected order value; ``at_risk`` is 1 - P(alive) for past-valuable
customers (a repeat purchase and repeat spend at or above the median of the repeaters'), -inf for others.

Exact scores need a Gauss hypergeometric function per customer, about a microsecond each, and a round
scores everybody acquired so far. :func:`select_targets` therefore brackets every score between rough
bounds (:func:`score_bounds`: no logarithm, one compiled pass over the customers), keeps aside the
customers whose bounds settle whether they are in the top share, bounds the others more tightly (cheap, then
tight bounds), and computes exact scores only for the few left undecided (about 1% of the share), once per
distinct history. The k-th highest bounds that settle it are found from an evenly spaced sample's order
statistics and a partition of the values near them only. The selection is the one exact scores of
everybody would give: the bounds decide only with a slack of :data:`BOUND_SLACK` against rounding, so
whether the C library's ``log`` and ``exp`` in the compiled bounds agree with numpy's to the last bit
does not matter.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numba
import numpy as np

from sim.model import theory
from sim.model.population import SegmentLaws
from sim.random.compiled import OPTIONS

if TYPE_CHECKING:
    from concurrent.futures import Executor

#: Forecast window of ``top_predicted_clv`` scoring, in years.
SCORING_WINDOW = 1.0
#: Segments with no heterogeneity in a trait are scored as if its cv were this (the closed forms need a mix).
SCORING_MIN_CV = 0.1
#: Dropout hazards below this (per year) are scored as no dropout.
NEGLIGIBLE_HAZARD = 1e-18
#: Relative slack of the bounds against rounding (theirs and the exact scores': a few hundred ulps at most).
BOUND_SLACK = 1e-9
#: Terms of the alternating series that bounds the BG/NBD expected purchases (rough, cheap, tight pass).
SERIES_TERMS = (4, 6, 12)
#: Pieces of [t_x, T] over which the Pareto/NBD dead-since-t_x integral is bounded in the tight pass.
INTEGRAL_PIECES = 2
#: Values sampled (evenly spaced) to bracket the k-th largest bound, and the bracket's half-width in standard
#: deviations of the sample quantile (:func:`_kth_largest`).
THRESHOLD_SAMPLE = 4096
BRACKET_SPREAD = 5.0
#: Customers left undecided from which exact scores are computed once per distinct history.
DISTINCT_FROM = 1024
#: Customers from which the first pass runs in two halves at once when given threads (below: one call).
PARALLEL_FROM = 50_000

#: Precisions of the bounds (:func:`score_bounds`, :data:`PASSES`).
ROUGH, CHEAP, TIGHT = 0, 1, 2
#: How a pass of bounds treats the bounds already held: replaces them, or intersects them (:func:`_bound_pass`).
FRESH, SHARPEN = 0, 1
#: Columns of a segment's row in :func:`_segment_table`: its kind, the BG/NBD or Pareto/NBD parameters (r,
#: alpha per year; a, b; s, beta per year) and the Gamma-Gamma order value (kind, mean, p, q, gamma).
KIND, R, ALPHA, A, B, S, BETA, VALUE_KIND, VALUE_MEAN, VALUE_P, VALUE_Q, VALUE_GAMMA = range(12)
#: Segment kinds: the closed forms' degenerate cases of :func:`_special_case`, then the two models.
NO_PURCHASES, NEVER_DROP, ONE_REPEAT, BGNBD, PARETONBD = range(5)
#: Order value kinds of :func:`_expected_order_value`: the segment mean, the customer's observed mean, Gamma-Gamma.
SAME_MEAN, OWN_MEAN, GAMMA_GAMMA = range(3)


def select_targets(laws: list[SegmentLaws], segment: np.ndarray, repeats: np.ndarray, recency: np.ndarray,
                   age: np.ndarray, repeat_spend: np.ndarray, *, target: str, share: float,
                   keys: np.ndarray | None = None, threads: Executor | None = None) -> np.ndarray:
    """Indices of the customers who get a targeted offer: the ``share`` with the highest
    :func:`score_customers` score among those with a score (ties broken deterministically: by the customers'
    ``keys``, the lower first, if given, so that the choice does not depend on the order the customers come
    in; else by their positions, the lower first). With ``threads`` (an executor of threads), the first
    pass, over everybody, runs in two halves at once (each customer's bounds are its own: the same choice).

    Passes of bounds (:func:`score_bounds`) narrow the customers down: those whose lower bound beats the
    (k+1)-th highest upper bound are in, those whose upper bound falls short of the k-th highest lower bound
    are out (k the places left). The rough bounds of everybody come first, then the cheap and the tight ones
    of those still undecided; exact scores decide among the rest.
    """
    history = (segment, repeats, recency, age, repeat_spend)
    undecided = _eligible(target, repeats, repeat_spend)
    places = round(share * undecided.size)
    if places == 0 or places >= undecided.size:
        return undecided[:places]
    table, at_risk = _segment_table(laws), target == "at_risk"
    who = None if undecided.size == len(segment) else undecided      # (everybody: no indirection)
    lower, upper = np.empty(undecided.size), np.empty(undecided.size)
    if threads is None or undecided.size < 2 * PARALLEL_FROM:
        _rough_pass(table, at_risk, BOUND_SLACK, *history, who, lower, upper, FRESH)
    else:
        half = undecided.size // 2
        halves = [threads.submit(_rough_pass, table, at_risk, BOUND_SLACK,
                                 *(history if who is not None else (column[cut] for column in history)),
                                 None if who is None else who[cut], lower[cut], upper[cut], FRESH)
                  for cut in (slice(0, half), slice(half, None))]
        for half_done in halves:
            half_done.result()
    chosen = []
    for sharper in (_cheap_pass, _tight_pass, None):
        sure, maybe = _split(lower, upper, _kth_largest(lower, places), _kth_largest(upper, places + 1))
        chosen.append(undecided[sure])
        places -= sure.size
        undecided, lower, upper = undecided[maybe], lower[maybe], upper[maybe]
        if places == 0 or places >= undecided.size or sharper is None:
            break
        sharper(table, at_risk, BOUND_SLACK, *history, undecided, lower, upper, SHARPEN)
    if 0 < places < undecided.size:
        exact = _distinct_scores(laws, [column[undecided] for column in history], target)
        tie_break = undecided if keys is None else keys[undecided]
        undecided = undecided[np.lexsort((tie_break, -exact))[:places]]
    if places:
        chosen.append(undecided)
    picked = np.zeros(len(segment), dtype=bool)      # (in order without sorting them)
    for part in chosen:
        picked[part] = True
    return np.flatnonzero(picked)


def _distinct_scores(laws: list[SegmentLaws], history: list[np.ndarray], target: str) -> np.ndarray:
    """Exact scores of eligible customers, computed once per distinct history when many are left: those tied
    at the threshold often share theirs (arrived together, no repeat purchase yet)."""
    if history[0].size < DISTINCT_FROM:
        return _scores(laws, *history, target=target)
    order = np.lexsort(history)
    new = np.zeros(order.size, dtype=bool)
    new[0] = True
    for column in history:
        ordered = column[order]
        new[1:] |= ordered[1:] != ordered[:-1]
    first = order[new]                                   # a customer of each distinct history
    score = np.empty(order.size)
    score[order] = _scores(laws, *(column[first] for column in history), target=target)[np.cumsum(new) - 1]
    return score


def _kth_largest(values: np.ndarray, k: int) -> float:
    """The k-th largest of ``values`` (1 <= k <= len), as ``np.partition`` would give it, partitioning only
    the values near it: the order statistics of an evenly spaced sample bracket it (:func:`_sample_bracket`),
    one pass counts the values above the bracket and gathers those in it, and if the count shows that the
    k-th largest is not in the bracket (the sample was unrepresentative) all values are partitioned."""
    n = values.size
    if n <= 4 * THRESHOLD_SAMPLE:
        return np.partition(values, n - k)[n - k]
    low, high = _sample_bracket(values, k)
    above, at_high, near, at_low = _bracket(values, low, high)
    if above < k <= above + at_high:
        return high
    rank = k - above - at_high           # of the k-th largest among those below ``high``
    if 0 < rank <= near.size:
        return np.partition(near, near.size - rank)[near.size - rank]
    if 0 < rank - near.size <= at_low:
        return low
    return np.partition(values, n - k)[n - k]


def _sample_bracket(values: np.ndarray, k: int) -> tuple[float, float]:
    """Likely bounds of the k-th largest of ``values`` (1 <= k <= len) from :data:`THRESHOLD_SAMPLE` evenly
    spaced ones: their order statistics :data:`BRACKET_SPREAD` standard deviations of the sample quantile
    either side of its rank (-inf, inf past the sample's ends). The sample is fixed by the values' order: no
    randomness enters."""
    n = values.size
    sample = np.sort(values[::max(n // THRESHOLD_SAMPLE, 1)])
    rank = sample.size * (1.0 - k / n)                   # of the k-th largest, in the ascending sample
    spread = BRACKET_SPREAD * math.sqrt(sample.size * (k / n) * (1.0 - k / n)) + 2.0
    low_rank, high_rank = math.floor(rank - spread), math.ceil(rank + spread)
    low = sample[low_rank] if low_rank >= 0 else -np.inf
    high = sample[high_rank] if high_rank < sample.size else np.inf
    return low, high


@numba.njit(**OPTIONS)
def _bracket(values, low, high):
    """How many ``values`` are above ``high`` and equal to it, those strictly between ``low`` and ``high``, and
    how many equal ``low`` (equal values are counted, not gathered: np.partition is slow on many ties)."""
    near = np.empty(values.size)
    above = count = 0
    for i in range(values.size):    # (stores without branches: few values are near)
        value = values[i]
        above += value > high
        near[count] = value
        count += (value <= high) & (value >= low)
    at_high = at_low = between = 0
    for value in near[:count]:
        if value == high:
            at_high += 1
        elif value == low:
            at_low += 1
        else:
            near[between] = value
            between += 1
    return above, at_high, near[:between], at_low


@numba.njit(**OPTIONS)
def _split(lower, upper, kth_lower, next_upper):
    """Positions surely among the top scores (lower bound above ``next_upper``, the (k+1)-th highest upper
    bound), and those that may be (upper bound at least ``kth_lower``, the k-th highest lower bound)."""
    sure, maybe = np.empty(lower.size, np.int64), np.empty(lower.size, np.int64)
    surely = maybes = 0
    for i in range(lower.size):     # (stores without branches: which way a customer goes is unpredictable)
        is_sure = lower[i] > next_upper
        sure[surely] = maybe[maybes] = i
        surely += is_sure
        maybes += (not is_sure) & (upper[i] >= kth_lower)
    return sure[:surely], maybe[:maybes]


def _eligible(target: str, repeats: np.ndarray, repeat_spend: np.ndarray) -> np.ndarray:
    """Who has a score: everybody for ``top_predicted_clv``, the past-valuable for ``at_risk``."""
    if target != "at_risk":
        return np.arange(len(repeats))
    repeaters = repeats > 0
    if not repeaters.any():
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(repeaters & (repeat_spend >= _median(repeat_spend[repeaters])))


def _median(values: np.ndarray) -> float:
    """``np.median(values)`` (the middle value, or the mean of the two middle ones), from one or two k-th
    largest values (:func:`_kth_largest`) instead of a partition of all."""
    n = values.size
    if np.isnan(values).any():
        return np.nan
    upper_middle = _kth_largest(values, n - n // 2)
    if n % 2:
        return upper_middle
    return (_kth_largest(values, n - n // 2 + 1) + upper_middle) / 2.0


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
    PASSES[precision](_segment_table(laws), target == "at_risk", 0.0, segment, x, t_x, T, spend, None, lower, upper,
                      FRESH)
    return lower, upper


@numba.njit(inline="always", **OPTIONS)
def _bound_pass(table, precision, at_risk, slack, segment, x, t_x, T, spend, who, lower, upper, mode):
    """Bounds of the scores of the customers ``who[i]`` (``i`` if ``who`` is None), widened by the relative
    ``slack``: written into ``lower[i]``, ``upper[i]`` (``mode`` :data:`FRESH`), or intersected with the
    bounds they hold (:data:`SHARPEN`). NaN bounds are taken as infinite."""
    for i in range(lower.size):
        j = i if who is None else who[i]
        low, high = _customer_bounds(table[segment[j]], precision, at_risk, x[j], t_x[j], T[j], spend[j])
        low, high = low - slack * abs(low), high + slack * abs(high)
        if mode == FRESH:
            lower[i], upper[i] = -math.inf, math.inf
        if low > lower[i]:
            lower[i] = low
        if high < upper[i]:
            upper[i] = high


@numba.njit(**OPTIONS)
def _rough_pass(table, at_risk, slack, segment, x, t_x, T, spend, who, lower, upper, mode):
    """:func:`_bound_pass` with "rough" bounds (compiled for them: the precision's branches folded away)."""
    _bound_pass(table, ROUGH, at_risk, slack, segment, x, t_x, T, spend, who, lower, upper, mode)


@numba.njit(**OPTIONS)
def _cheap_pass(table, at_risk, slack, segment, x, t_x, T, spend, who, lower, upper, mode):
    """:func:`_bound_pass` with "cheap" bounds."""
    _bound_pass(table, CHEAP, at_risk, slack, segment, x, t_x, T, spend, who, lower, upper, mode)


@numba.njit(**OPTIONS)
def _tight_pass(table, at_risk, slack, segment, x, t_x, T, spend, who, lower, upper, mode):
    """:func:`_bound_pass` with "tight" bounds."""
    _bound_pass(table, TIGHT, at_risk, slack, segment, x, t_x, T, spend, who, lower, upper, mode)


@numba.njit(inline="always", **OPTIONS)
def _customer_bounds(law, precision, at_risk, x, t_x, T, spend):
    """(lower, upper) bound of one customer's score; ``law`` a row of :func:`_segment_table`."""
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
PASSES = {"rough": _rough_pass, "cheap": _cheap_pass, "tight": _tight_pass}


def _segment_table(laws: list[SegmentLaws]) -> np.ndarray:
    """The segments' scoring laws as rows of numbers for the compiled bounds (columns :data:`KIND` ...), with
    the parameters and degenerate cases :func:`_scores` uses."""
    table = np.zeros((len(laws), 12))
    for row, law in zip(table, laws, strict=True):
        r, alpha = _gamma_parameters(law.purchase_rate) if law.purchase_rate.mean else (0.0, np.inf)
        row[R], row[ALPHA] = r, alpha
        if not np.isfinite(alpha):
            row[KIND] = NO_PURCHASES
        elif ((law.hazard is not None and law.hazard.mean < NEGLIGIBLE_HAZARD)
              or (law.dropout is not None and law.dropout.mean == 0)):
            row[KIND] = NEVER_DROP
        elif law.dropout is not None and law.dropout.mean == 1:
            row[KIND] = ONE_REPEAT
        elif law.dropout is not None:
            row[KIND], (row[A], row[B]) = BGNBD, _beta_parameters(law.dropout)
        else:
            row[KIND], (row[S], row[BETA]) = PARETONBD, _gamma_parameters(law.hazard)
        spend = law.spend
        row[VALUE_KIND] = SAME_MEAN if spend.q is None else OWN_MEAN if spend.p is None else GAMMA_GAMMA
        row[VALUE_MEAN] = spend.mean
        if row[VALUE_KIND] == GAMMA_GAMMA:
            row[VALUE_P], row[VALUE_Q], row[VALUE_GAMMA] = spend.p, spend.q, spend.mean * (spend.q - 1.0) / spend.p
    return table


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
