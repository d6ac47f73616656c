"""Compiled per-customer loops (numba) for the engine without a program, draw for draw as :mod:`sim.draws`.

Without a policy each customer's life is a short sequential loop (purchase, order value, dropout coin, next
purchase) that vectorised numpy can only run as many passes over a pool of customers, each pass reading
and writing every column. Here the loop runs once per customer, in registers. Every draw is the one
:mod:`sim.rng` and :mod:`sim.keyed_gamma` give for the same (customer, purpose, counter): the same SplitMix64
words, and the same arithmetic in the same order, with the C library's ``log``, ``log1p``, ``exp``,
``cos`` and ``pow`` that numpy also calls on this kind of machine (``tests/test_kernels.py`` checks bit
equality with the numpy draws), so a scenario run here and its program run by :mod:`sim.engine` pair
exactly. No fast-math: the compiler may not reassociate or fuse floating-point operations.

The functions release the GIL: :mod:`sim.lifetimes` runs the loop of one slice of customers in two threads
while numpy draws the next slice's traits and books the previous one. :meth:`MeanOneGamma.draw
<sim.keyed_gamma.MeanOneGamma.draw>` uses :func:`table_gamma` as well, in both engines.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sim.keyed_gamma import _FALLBACK, _POWER, _UNIFORM, CELL_BITS, CELLS, DRAW_SHIFT

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_ONE, _TWO, _THREE = np.uint64(1), np.uint64(2), np.uint64(3)
_TOP = np.uint64(64 - CELL_BITS)
_FRACTION_MASK = np.uint64((1 << 52) - 1)
_DRAW_SHIFT = np.uint64(DRAW_SHIFT)
_TWO_PI = 2.0 * np.pi
_OPTIONS = {"nogil": True, "cache": True, "error_model": "numpy"}


@numba.njit(**_OPTIONS)
def mix64(z):
    """SplitMix64's output function (as :func:`sim.rng.mix64`)."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@numba.njit(**_OPTIONS)
def word(key, step, counter):
    """The ``counter``-th word of the stream of increment ``step`` (as :func:`sim.rng.words`)."""
    return mix64(key + counter * step + step)


@numba.njit(**_OPTIONS)
def to_unit(bits):
    """As :func:`sim.rng.to_unit`: the top 53 bits of a word, as a uniform in [0, 1)."""
    return np.float64(bits >> _S11) * 2.0**-53


@numba.njit(**_OPTIONS)
def fraction(bits):
    """As ``sim.keyed_gamma._fraction``: the low 52 bits of a word, as a uniform in [0, 1)."""
    return np.float64(bits & _FRACTION_MASK) * 2.0**-52


@numba.njit(**_OPTIONS)
def uniform(key, step, counter):
    """As :func:`sim.rng.uniform`: the ``counter``-th uniform of the stream."""
    return to_unit(word(key, step, counter))


@numba.njit(**_OPTIONS)
def exponential(key, step, counter):
    """As :func:`sim.rng.exponential`: -ln(1 - U)."""
    return -math.log(1.0 - uniform(key, step, counter))


@numba.njit(**_OPTIONS)
def marsaglia_tsang(key, step, shape, offset):
    """As :func:`sim.rng.gamma` for one customer: a standard Gamma(shape) on counters from ``offset``."""
    boosted = shape + 1.0 if shape < 1.0 else shape
    d = boosted - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    attempt = np.uint64(0)
    while True:
        base = offset + (_ONE + _THREE * attempt)
        radius = math.sqrt(-2.0 * math.log1p(-uniform(key, step, base)))
        normal = radius * math.cos(_TWO_PI * uniform(key, step, base + _ONE))
        v = math.pow(1.0 + c * normal, 3.0)
        accept_u = uniform(key, step, base + _TWO)
        if v > 0 and math.log1p(-accept_u) < 0.5 * (normal * normal) + d - d * v + d * math.log(v):
            result = d * v
            break
        attempt += _ONE
    if shape < 1.0:
        result *= math.pow(1.0 - uniform(key, step, offset), 1.0 / shape)
    return result


@numba.njit(**_OPTIONS)
def _propose(kind, left, width, v):
    step = v if kind == _UNIFORM else -math.log1p(-v)
    if kind == _POWER:
        return left * math.exp(-width * step)
    return left + width * step


@numba.njit(**_OPTIONS)
def _accept(squeeze, ref, log_coef, lin_coef, y, u):
    if u < squeeze:
        return True
    gap = y - ref
    log_term = log_coef * math.log1p(gap / ref) if log_coef != 0.0 else 0.0
    return y > 0.0 and math.log(u) <= log_term - lin_coef * gap


@numba.njit(**_OPTIONS)
def gamma_cell(key, step, counter, row):
    """Where the ``counter``-th mean-one Gamma of table ``row`` starts (as
    :meth:`sim.keyed_gamma.MeanOneGamma.draw`): the first word of the draw picks the cell ``index`` and the
    uniform ``v`` within it, the second the acceptance uniform ``u``. The variate is
    ``width[index] * v + left[index]`` if ``u < squeeze[index]``, else :func:`gamma_exact`.

    Only scalars cross this call: arrays passed to a compiled function that is not inlined cost reference
    counting, more than the draw itself, so the caller reads the table."""
    base = counter << _DRAW_SHIFT
    state = key + base * step + step
    first = mix64(state)
    v = fraction(first)
    u = to_unit(mix64(state + step))
    return base, np.intp(first >> _TOP) + row * CELLS, v, u


@numba.njit(**_OPTIONS)
def gamma_exact(tables, shapes, key, step, base, index, row, v, u):
    """The draws the squeeze did not settle (as ``MeanOneGamma._slow``): the exact test of the first
    attempt, then attempt j on words ``base + 2j`` and ``base + 2j + 1``; Marsaglia-Tsang for the shapes
    outside the table's range."""
    left, width, squeeze, kind, ref, log_coef, lin_coef = tables
    cell_kind = kind[index]
    if cell_kind == _FALLBACK:
        shape = shapes[row]
        return marsaglia_tsang(key, step, shape, base) / shape
    attempt = np.uint64(0)
    while True:
        y = _propose(cell_kind, left[index], width[index], v)
        if _accept(squeeze[index], ref[index], log_coef[index], lin_coef[index], y, u):
            return y
        attempt += _ONE
        v = fraction(word(key, step, base + _TWO * attempt))
        u = uniform(key, step, base + _TWO * attempt + _ONE)


@numba.njit(**_OPTIONS)
def table_gamma(tables, shapes, keys, step, counters, rows):
    """As :meth:`sim.keyed_gamma.MeanOneGamma.draw` over arrays: variate ``counters[i]`` of ``keys[i]``'s
    stream of increment ``step``, of the shape of table row ``rows[i]``. ``tables`` = (left, width,
    squeeze, kind, ref, log_coef, lin_coef)."""
    left, width, squeeze = tables[0], tables[1], tables[2]
    out = np.empty(len(keys))
    for i in range(len(keys)):
        base, index, v, u = gamma_cell(keys[i], step, counters[i], rows[i])
        out[i] = width[index] * v + left[index]
        if u >= squeeze[index]:
            out[i] = gamma_exact(tables, shapes, keys[i], step, base, index, rows[i], v, u)
    return out


@numba.njit(**_OPTIONS)
def lives(key, segment, cohort, parent, spend_mean, rate, dropout_p, arrival, end, death, t, made, revenue,
          present, tables, shapes, log_growth, steps, economics, month_start, sums, cohort_sums, offsets, log_time,
          log_value):
    """Every customer from its pending purchase ``t`` (number ``made``) to its exit, and its exit.

    Per customer, in place: ``t``, ``made`` (purchases made), ``revenue`` (list price), ``present`` (contribution
    discounted to the scenario start) and ``death`` (set to the purchase time where the dropout coin after
    a repeat purchase falls). Segment s draws order values from table row s; ``steps`` the
    stream increments (inter-purchase, dropout, order value); ``economics`` = (margin rate, cost per order,
    delta, horizon). ``sums[k, month]`` receives purchases (k=0), acquisition purchases (1), list-price
    revenue (2), discounted contribution (3) and dropouts (4) by month; ``cohort_sums[k, cohort]`` repeat
    purchases (0), list-price revenue (1), CLV (2: contribution discounted to the acquisition), network value
    (3: the CLV of customers referred by the cohort, by ``parent`` cohort, -1 for none) and customers active
    at the horizon (4). With a non-empty ``log_time``, purchase j of customer i (counting from ``made``) is
    logged at ``offsets[i] + j`` in ``log_time`` and ``log_value``.
    """
    n = len(key)
    logging = len(log_time) > 0
    months = len(month_start) - 1
    margin_rate, cost_per_order, delta, horizon = economics[0], economics[1], economics[2], economics[3]
    interpurchase, dropout, order_value = steps[0], steps[1], steps[2]
    left, width, squeeze = tables[0], tables[1], tables[2]
    for i in range(n):
        k, s, when, count = key[i], segment[i], t[i], made[i]
        own_rate, chance, scale = np.float64(rate[i]), np.float64(dropout_p[i]), np.float64(spend_mean[i])
        grow, born, stop = log_growth[s], arrival[i], end[i]
        total, worth = revenue[i], present[i]
        while True:
            row = np.intp(s)
            base, index, v, u = gamma_cell(k, order_value, count, row)
            value = width[index] * v + left[index]
            if u >= squeeze[index]:
                value = gamma_exact(tables, shapes, k, order_value, base, index, row, v, u)
            value *= scale
            if grow != 0.0:
                value *= math.exp(grow * (when - born))
            contribution = (margin_rate * value - cost_per_order) * math.exp(-delta * when)
            month = min(np.intp(when * 12.0), months - 1)
            if when < month_start[month]:
                month -= 1
            if when >= month_start[month + 1]:
                month += 1
            sums[0, month] += 1.0
            if count == 0:
                sums[1, month] += 1.0
            sums[2, month] += value
            sums[3, month] += contribution
            total += value
            worth += contribution
            if logging:
                log_time[offsets[i] + count] = when
                log_value[offsets[i] + count] = value
            following = exponential(k, interpurchase, count) / own_rate + when
            leaving = following >= stop
            if count > 0 and uniform(k, dropout, count) < chance:
                death[i] = when
                leaving = True
            count += _ONE
            when = following
            if leaving:
                break
        t[i], made[i], revenue[i], present[i] = when, count, total, worth
        group, clv = cohort[i], worth / math.exp(-delta * born)
        cohort_sums[0, group] += np.float64(count - _ONE)
        cohort_sums[1, group] += total
        cohort_sums[2, group] += clv
        if parent[i] >= 0:
            cohort_sums[3, parent[i]] += clv
        if death[i] < horizon:
            sums[4, min(np.intp(death[i] * 12.0), months - 1)] += 1.0
        else:
            cohort_sums[4, group] += 1.0


@numba.njit(**_OPTIONS)
def referrals(key, arrival, end, rate, step, offsets, times):
    """Organic referrals over whole lives, as :meth:`sim.draws.Draws.referral_after` draws them: referral j
    of customer i comes ``exponential(j) / rate[i]`` after the previous one (after ``arrival[i]`` for j = 0),
    if before ``end[i]``. Returns each customer's count; with a non-empty ``times``, also writes the times of
    customer i's referrals from ``offsets[i]`` on."""
    counts = np.zeros(len(key), dtype=np.int64)
    filling = len(times) > 0
    for i in range(len(key)):
        own_rate, stop, k = np.float64(rate[i]), end[i], key[i]
        when = arrival[i] + exponential(k, step, np.uint64(0)) / own_rate
        count = 0
        while when < stop:
            if filling:
                times[offsets[i] + count] = when
            count += 1
            when = when + exponential(k, step, np.uint64(count)) / own_rate
        counts[i] = count
    return counts


def warm_up() -> None:
    """Loads the compiled loop (compiling it, the first time on a machine, into ``__pycache__``) by calling
    it on no customers with the engine's column types, so that processes forked afterwards inherit it."""
    f64, u64, f32 = np.empty(0), np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.float32)
    tables = (f64, f64, f64, np.empty(0, dtype=np.int8), f64, f64, f64)
    i32 = np.empty(0, dtype=np.int32)
    lives(u64, np.empty(0, dtype=np.uint8), i32, i32, f32, f32, f32, f64, f64, f64, f64, u64, f64, f64, tables, f64,
          f64, np.zeros(3, dtype=np.uint64), np.zeros(4), np.zeros(2), np.zeros((5, 1)), np.zeros((5, 1)),
          np.empty(0, dtype=np.int64), f64, f64)
