"""Compiled per-customer loops (numba): the one implementation of every random draw, and the engine's loop.

**One implementation per draw.** Every draw that needs a transcendental function (the exponential
-ln(1 - U), the keyed Marsaglia-Tsang Gamma, the exact test of the Gamma table's cells) is computed here,
with the C library's ``log``, ``log1p``, ``exp``, ``cos`` and ``pow``, whoever asks for it: the engine's
compiled loop :func:`lives` calls the scalar functions, the vectorised engine calls the array functions
(:func:`exponentials`, :func:`gammas`, :func:`table_gamma`) through :mod:`sim.rng` and
:mod:`sim.keyed_gamma`, which loop over the same scalar functions. numpy is not used for these on purpose:
on CPUs with AVX-512 it evaluates ``log``/``exp`` with its own SIMD routines, which differ from the C
library's by an ulp, so two implementations would pair only on some machines. What numpy still computes
in the draws is exact integer arithmetic (SplitMix64) and exactly rounded conversions (a 53-bit integer
times 2^-53), identical in both by IEEE 754. The same goes for the model formula that changes an order's
value in both engines, the growth of spend with tenure (:func:`grow_order_values`).

No fast-math: the compiler may not reassociate or fuse floating-point operations. Intel's SVML is
switched off below (before numba is imported) so that a loop over customers is never vectorised with
vector ``log``/``exp`` routines that differ from the scalar ones.

The functions release the GIL: :mod:`sim.lifetimes` runs the loop of one slice of customers in two threads
while numpy draws the next slice's traits and books the previous one. The readable numpy definitions of
the draws are kept in :mod:`sim.rng` and :mod:`sim.keyed_gamma` as references (``*_reference``);
``tests/test_kernels.py`` checks them against these to a stated number of ulp.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("NUMBA_DISABLE_INTEL_SVML", "1")   # see the module docstring

import numba  # noqa: E402
import numpy as np  # noqa: E402

#: The Gamma table (:class:`sim.keyed_gamma.MeanOneGamma`): 2^CELL_BITS cells of equal probability.
CELL_BITS = 12
CELLS = 1 << CELL_BITS
#: Words of a Gamma draw's stream: draw k uses words k << DRAW_SHIFT onwards (2 per attempt).
DRAW_SHIFT = 20
#: How a table cell proposes: y = left + width * h(v) for a uniform v in [0, 1)
CELL_UNIFORM, CELL_EXPONENTIAL, CELL_POWER, CELL_FALLBACK = 0, 1, 2, 3

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
    """The ``counter``-th standard exponential of the stream: -ln(1 - U).

    1 - U is exact (U is a multiple of 2^-53), and ``log`` is about twice as fast as ``log1p``."""
    return -math.log(1.0 - uniform(key, step, counter))


@numba.njit(**_OPTIONS)
def marsaglia_tsang(key, step, shape, offset):
    """A standard Gamma(shape) variate on counters from ``offset`` of the stream (exact).

    Marsaglia & Tsang (2000), "A simple method for generating gamma variables", ACM TOMS 26(3): a normal by
    Box-Muller and an acceptance uniform per attempt, attempt j on counters offset + 3j + 1 .. + 3j + 3, so
    the draw stays keyed to the customer. For shape < 1, Gamma(shape + 1) x U^(1/shape), U on counter
    ``offset``. :func:`sim.rng.gamma_reference` writes the same out in numpy."""
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
def exponentials(keys, step, counters):
    """:func:`exponential` over arrays: draw ``counters[i]`` of ``keys[i]``'s stream of increment ``step``."""
    out = np.empty(len(keys))
    for i in range(len(keys)):
        out[i] = exponential(keys[i], step, counters[i])
    return out


@numba.njit(**_OPTIONS)
def gammas(keys, step, shape, offsets):
    """:func:`marsaglia_tsang` over arrays: a standard Gamma(shape) of ``keys[i]``'s stream from counter
    ``offsets[i]``."""
    out = np.empty(len(keys))
    for i in range(len(keys)):
        out[i] = marsaglia_tsang(keys[i], step, shape, offsets[i])
    return out


@numba.njit(**_OPTIONS)
def grow_order_values(values, log_growth, segment, t, arrival):
    """Spend growth with tenure, in place: order i at ``t[i]`` of a customer arrived at ``arrival[i]`` is
    worth ``exp(log_growth[segment[i]] * tenure)`` times its value at arrival (as in :func:`lives`)."""
    for i in range(len(values)):
        grow = log_growth[segment[i]]
        if grow != 0.0:
            values[i] *= math.exp(grow * (t[i] - arrival[i]))
    return values


@numba.njit(**_OPTIONS)
def _propose(kind, left, width, v):
    step = v if kind == CELL_UNIFORM else -math.log1p(-v)
    if kind == CELL_POWER:
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
    if cell_kind == CELL_FALLBACK:
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
    """Loads the compiled functions (compiling them, the first time on a machine, into ``__pycache__``) by
    calling them on no customers with the engines' column types, so that processes forked afterwards
    inherit them."""
    f64, u64, f32 = np.empty(0), np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.float32)
    tables = (f64, f64, f64, np.empty(0, dtype=np.int8), f64, f64, f64)
    i32, i64 = np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
    step = np.uint64(1)
    lives(u64, np.empty(0, dtype=np.uint8), i32, i32, f32, f32, f32, f64, f64, f64, f64, u64, f64, f64, tables, f64,
          f64, np.zeros(3, dtype=np.uint64), np.zeros(4), np.zeros(2), np.zeros((5, 1)), np.zeros((5, 1)),
          i64, f64, f64)
    exponentials(u64, step, u64)
    gammas(u64, step, 2.0, u64)
    table_gamma(tables, f64, u64, step, u64, np.empty(0, dtype=np.intp))
    grow_order_values(f64, f64, np.empty(0, dtype=np.uint8), f64, f64)
