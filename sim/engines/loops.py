"""The engine without a program as compiled per-customer loops (numba), and the model formulas they share.

Without a policy each customer's life is a short sequential loop (purchase, order value, dropout coin, next
purchase) that vectorised numpy can only run as many passes over a pool of customers, each pass reading
and writing every column. Here the loop runs once per customer, in registers, drawing with the compiled
draws of :mod:`sim.random.compiled` that the calendar engine calls too, so a scenario run here and its
program run by :mod:`sim.engines.calendar` pair exactly. Time in years, money in the scenario's currency.

The functions release the GIL: :mod:`sim.engines.lifetimes` runs the loop of one slice of customers in two
threads while numpy draws the next slice's traits and books the previous one.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sim.model.calendar import month_of, months_of
from sim.random import compiled
from sim.random.compiled import OPTIONS, exponential, gamma_cell, gamma_exact, uniform

_ONE = np.uint64(1)


@numba.njit(**OPTIONS)
def tenure_growth(log_growth, tenure):
    """How much more an order is worth after ``tenure`` years than at arrival: (1 + g)^tenure, written
    exp(ln(1 + g) tenure) (``docs/model.md``: spend growth with tenure)."""
    if log_growth == 0.0:
        return 1.0
    return math.exp(log_growth * tenure)


@numba.njit(**OPTIONS)
def order_value(variate, scale, growth):
    """An order's value from its mean-one Gamma ``variate``: times the customer's mean ``scale`` and its
    ``growth`` with tenure (:func:`tenure_growth`, which the loops compute once per order and divide by
    again for CLV's growth part).

    The variate of order ``count`` of the customer keyed ``key`` (stream increment ``step``) is drawn in the
    loop from its segment's Gamma table row ``row``, the table's columns read there (passing the table to a
    function would cost reference counting at every order, :data:`~sim.random.compiled.INLINED`)::

        cell, index, v, u = gamma_cell(key, step, count, row)
        variate = width[index] * v + left[index]
        if u >= squeeze[index]:
            variate = gamma_exact(tables, shapes, key, step, cell, index, row, v, u)
    """
    value = variate * scale
    return value * growth


@numba.njit(**OPTIONS)
def grow_order_values(values, log_growth, segment, t, arrival):
    """Spend growth with tenure, in place: order i at ``t[i]`` of a customer arrived at ``arrival[i]`` is
    worth :func:`tenure_growth` times its value at arrival (what :func:`lives` computes per order)."""
    for i in range(len(values)):
        values[i] *= tenure_growth(log_growth[segment[i]], t[i] - arrival[i])
    return values


@numba.njit(**OPTIONS)
def lives(customers, state, order_values, economics, accounts, log):
    """Every customer from its pending purchase ``t`` (number ``made``) to its exit, and its exit.

    A new customer (``made`` 0) makes its acquisition purchase at ``t``; an existing one (``made`` > 0,
    :mod:`sim.model.existing`) only if ``t`` is before its end, and all its purchases are repeat purchases.

    ``customers`` = (key, segment, cohort, parent cohort, spend mean, purchase rate, dropout chance, arrival,
    end): the customers' columns, read only. ``state`` = (death, t, made, revenue, present), updated in place
    per customer: ``t``, ``made`` (purchases made), ``revenue`` (list price), ``present`` (contribution
    discounted to the scenario start) and ``death`` (set to the purchase time where the dropout coin after a
    repeat purchase falls). ``order_values`` = (Gamma tables, their shapes, ln(1 + growth) by segment, the
    stream increments of inter-purchase times, dropout coins and order values); segment s draws order values
    from table row s. ``economics`` = ((margin rate, cost per order, delta, horizon), month starts).
    ``accounts`` = (sums, cohort_sums): ``sums[k, month]`` receives purchases (k=0), acquisition purchases
    (1), list-price revenue (2), discounted contribution (3) and dropouts (4) by month;
    ``cohort_sums[k, cohort]`` repeat purchases (0), list-price revenue (1), CLV (2: contribution discounted
    to the acquisition), network value (3: the CLV of customers referred by the cohort, by parent cohort, -1
    for none), customers active at the horizon (4) and CLV's growth part (5: the margin on what orders gained
    by spend growth with tenure, discounted to the acquisition). ``log`` = (offsets, times, values): with non-empty
    times, purchase j of customer i (counting from ``made``) is logged at ``offsets[i] + j``.
    """
    key, segment, cohort, parent, spend_mean, rate, dropout_p, arrival, end = customers
    death, t, made, revenue, present = state
    tables, shapes, log_growth, steps = order_values
    (margin_rate, cost_per_order, delta, horizon), month_start = economics[0], economics[1]
    sums, cohort_sums = accounts
    offsets, log_time, log_value = log
    n = len(key)
    logging = len(log_time) > 0
    interpurchase, dropout, order_step = steps[0], steps[1], steps[2]
    left, width, squeeze = tables[0], tables[1], tables[2]
    for i in range(n):
        k, s, when, count = key[i], segment[i], t[i], made[i]
        own_rate, chance, scale = np.float64(rate[i]), np.float64(dropout_p[i]), np.float64(spend_mean[i])
        grow, born, stop = log_growth[s], arrival[i], end[i]
        total, worth = revenue[i], present[i]
        grown = 0.0   # the discounted margin on spend growth with tenure
        first = count
        # an existing customer (count > 0 already) may have its next purchase beyond its end: none then
        while count == 0 or when < stop:
            gap = exponential(k, interpurchase, count)   # first: its logarithm runs while the order is worked out
            cell, index, v, u = gamma_cell(k, order_step, count, np.intp(s))   # the order value (:func:`order_value`)
            variate = width[index] * v + left[index]
            if u >= squeeze[index]:
                variate = gamma_exact(tables, shapes, k, order_step, cell, index, np.intp(s), v, u)
            growth = tenure_growth(grow, when - born)
            value = order_value(variate, scale, growth)
            discount = math.exp(-delta * when)   # once, for the contribution and CLV's growth part
            contribution = (margin_rate * value - cost_per_order) * discount
            month = month_of(when, month_start)
            sums[0, month] += 1.0
            if count == 0:
                sums[1, month] += 1.0
            sums[2, month] += value
            sums[3, month] += contribution
            total += value
            worth += contribution
            if grow != 0.0:
                grown += margin_rate * (value - value / growth) * discount
            if logging:
                log_time[offsets[i] + count] = when
                log_value[offsets[i] + count] = value
            following = gap / own_rate + when
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
        # every purchase but an acquisition purchase is a repeat purchase
        cohort_sums[0, group] += np.float64(count - first) - (1.0 if first == 0 else 0.0)
        cohort_sums[1, group] += total
        cohort_sums[2, group] += clv
        cohort_sums[5, group] += grown / math.exp(-delta * born)
        if parent[i] >= 0:
            cohort_sums[3, parent[i]] += clv
        if death[i] < horizon:
            sums[4, month_of(death[i], month_start)] += 1.0
        else:
            cohort_sums[4, group] += 1.0


@numba.njit(**OPTIONS)
def referrals(key, arrival, end, rate, step, offsets, times):
    """Organic referrals over whole lives, as :meth:`sim.engines.draws.Draws.referral_after` draws them: referral j
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
    """Loads the compiled loops and draws (compiling them, the first time on a machine, into
    ``__pycache__``) by calling them on no customers with the engines' column types, so that processes
    forked afterwards inherit them."""
    f64, u64, f32 = np.empty(0), np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.float32)
    i32, i64, u8 = np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint8)
    tables = (f64, f64, f64, np.empty(0, dtype=np.int8), f64, f64, f64)
    starts = np.array([0.0, np.inf])
    lives((u64, u8, i32, i32, f32, f32, f32, f64, f64), (f64, f64, u64, f64, f64),
          (tables, f64, f64, np.zeros(3, dtype=np.uint64)), ((0.0, 0.0, 0.0, 0.0), starts),
          (np.zeros((5, 1)), np.zeros((6, 1))), (i64, f64, f64))
    referrals(u64, f64, f64, f32, np.uint64(1), i64, f64)
    grow_order_values(f64, f64, u8, f64, f64)
    months_of(f64, starts)
    compiled.warm_up()
