"""A program's per-customer dynamics as compiled loops (numba): each customer's life under the policy.

When no targeted-offer round ranks customers against each other, a program's customers do not interact:
membership, points earned and redeemed, the goal gradient, points expiry, the tier a member's own trailing
12-month spend reaches at a month end, its membership and tier costs, the blanket windows with their
pull-forward dips (a calendar known in advance, the same for everyone), and a win-back offer (its
deadline, message, coupon, and the reactivation of the dropped-out with a new lifetime) are each
customer's own events. This loop takes each customer from its arrival to the horizon in time order with the
formulas and the keyed draws of the calendar engine (:mod:`sim.engines.calendar`): the same events in the
same per-customer order, so the two engines agree up to the order of floating-point sums. The rate factors
that depend only on a customer's traits, membership and tier (membership and tier, goal-gradient strength,
dropout multiplier) are computed vectorised by :class:`sim.model.program.Program` before the loop, the one
implementation of each response.

Time in years, money in the scenario's currency. The loop releases the GIL (:mod:`sim.engines.program_lifetimes`
runs it in threads, one part of a slice each, and adds the parts' sums in a fixed order).
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np
from numba.typed import List as TypedList

from sim.engines.loops import order_value, tenure_growth
from sim.model.calendar import month_of
from sim.random.compiled import INLINED, OPTIONS, exponential, gamma_cell, gamma_exact, uniform

_ONE = np.uint64(1)
_ZERO = np.uint64(0)
INF = math.inf
#: A non-member's membership factor of the purchase rate, goal-gradient strength and dropout multiplier.
NEUTRAL = (1.0, 0.0, 1.0)

#: Rows of the monthly sums of :func:`program_lives`.
MONTHLY = ("purchases", "acquisition_purchases", "gross_revenue", "npv_profit", "customers_dropped_out",
           "reward_cost", "points_earned", "points_redeemed", "points_expired", "points_change", "member_cost",
           "member_dropouts", "deadlines", "tier_benefit_cost", "discount_cost", "message_cost",
           "customers_reactivated", "member_reactivations")
#: Rows of the cohort sums of :func:`program_lives`.
COHORT = ("repeat_purchases", "net_revenue", "clv", "network_value", "active_end", "program", "clv_growth",
          "alive_years")
#: The member sums of :func:`program_lives` (``Ledger.member``).
MEMBER = ("member_purchases", "member_repeat_purchases", "member_gross_revenue")


#: Compiled entry points by function and argument layout (:func:`call`).
_ENTRIES: dict = {}
_COMPILING = threading.Lock()


def _layout(value) -> object:
    """What decides which compiled version of a function an argument calls: an array's dtype, dimensions
    and contiguity, a tuple's members', a typed list's element type, a scalar's Python type."""
    if isinstance(value, np.ndarray):
        return value.dtype.num, value.ndim, value.flags.c_contiguous, value.flags.f_contiguous
    if isinstance(value, tuple):
        return tuple(_layout(member) for member in value)
    if isinstance(value, TypedList):   # (not numba.typed.List: the module looks it up anew at every access, 5 us)
        return value._dtype
    return type(value)


def call(function, *args):
    """``function(*args)`` for a compiled function called with nested tuples of arrays, many times: numba's
    dispatcher types such tuples in Python at every call (about half a millisecond for
    :func:`program_lives`'s); this looks the compiled version up by the arguments' :func:`_layout` instead
    (typed, and compiled or loaded if need be, once per layout)."""
    layout = (function, _layout(args))
    entry = _ENTRIES.get(layout)
    if entry is None:
        with _COMPILING:   # the parts' threads ask at once the first time: one compiles or loads it
            entry = _ENTRIES.get(layout)
            if entry is None:
                entry = _ENTRIES[layout] = function.compile(tuple(function.typeof_pyval(arg) for arg in args))
    return entry(*args)


@numba.njit(**OPTIONS)
def _multiplier(base, gradient, points, threshold, offered, uplift, full_price):
    """The purchase-rate multiplier at ``points``, as the calendar engine computes it: the membership (and
    tier) factor ``base`` times the goal gradient 1 + g x progress (``gradient`` is 0 for those it does not
    move), times the ``uplift`` of a discount if one is ``offered``, else the ``full_price`` factor (dips,
    habituation).

    Without a goal gradient the balance is not read (1 + 0 x progress is 1 exactly): the next purchase time
    then does not wait for the points this purchase earns, which would chain a division from each purchase
    to the next one (the loop's purchases of most customers overlap in the processor instead)."""
    mult = base
    if gradient != 0.0 and threshold > 0:   # (else 1 + 0 x progress is 1 exactly)
        mult = base * (1.0 + gradient * min(points / threshold, 1.0))
    if offered:
        return mult * uplift
    return mult * full_price


@numba.njit(**OPTIONS)
def _moved(pending, at, mult, new):
    """A pending purchase time after the purchase rate's multiplier changes from ``mult`` to ``new`` at ``at``
    (the time change: the remaining wait scaled by ``mult / new``)."""
    if new != mult:
        return at + (pending - at) * (mult / new)
    return pending


@numba.njit(**OPTIONS)
def _offer(window_open, depth_at, held, coupon_at):
    """The index in the depths of the deepest discount available, as the calendar engine takes it: the
    deepest open blanket window's and a held coupon's, the deeper of the two; -1 when neither (full price)."""
    index = depth_at if window_open else -1
    if held and coupon_at > index:
        index = coupon_at
    return index


@numba.njit(**OPTIONS)
def _deadline(offer_until, winback_at, points, last, expiry):
    """The earliest of a held coupon running out, a win-back offer going out and points expiring."""
    deadline = offer_until if offer_until > -INF else INF
    deadline = min(deadline, winback_at)
    if points > 0:
        deadline = min(deadline, last + expiry)
    return deadline


@numba.njit(**INLINED)
def _interval_start(barriers, t):
    """The last of the calendar engine's advance times (``barriers``, sorted) at or before ``t``: the start
    of the interval it simulates ``t`` in."""
    lo, hi = 0, len(barriers)
    while lo < hi:
        mid = (lo + hi) // 2
        if barriers[mid] <= t:
            lo = mid + 1
        else:
            hi = mid
    return barriers[lo - 1] if lo > 0 else -INF


@numba.njit(**OPTIONS)
def spell_referrals(key, start, end, rate, first, fresh, step, offsets, times, numbers):
    """Organic referrals over alive spells, as the calendar engine draws them: a customer's rows are its
    spells in order (``fresh`` marks its first); in the first spell referral j comes ``exponential(j) /
    rate`` after the previous one (after the arrival for j = 0), in a later spell the first comes
    ``exponential(first) / rate`` after the spell's start (the win-back) and the count goes on from the
    earlier spells' referrals; referrals at or after ``end`` (the spell's end, capped at the horizon) do not
    happen. Returns each row's count; with a non-empty ``times``, also writes the times and numbers of row
    i's referrals from ``offsets[i]`` on."""
    counts = np.zeros(len(key), dtype=np.int64)
    filling = len(times) > 0
    made = 0
    for i in range(len(key)):
        if fresh[i]:
            made = 0
        own_rate, stop, k = np.float64(rate[i]), end[i], key[i]
        when = start[i] + exponential(k, step, np.uint64(first[i] if first[i] >= 0 else made)) / own_rate
        count = 0
        while when < stop:
            if filling:
                times[offsets[i] + count] = when
                numbers[offsets[i] + count] = made
            count += 1
            made += 1
            when = when + exponential(k, step, np.uint64(made)) / own_rate
        counts[i] = count
    return counts


@numba.njit(**OPTIONS)
def round_referrals(key, arrival, rate, death, first_end, spell, spells, floor, cutoff, horizon, step, next_at):
    """The organic referrals of a part's customers in [``floor``, ``cutoff``), over their alive spells as
    they stand (:func:`program_lives`'s ``state`` after a call up to ``cutoff``), drawn as
    :func:`spell_referrals` draws them: a customer's first spell from its arrival to its first end (its
    dropout without a reactivation), then those its reactivations began (``spells``: owner, start,
    reactivations before, end, as arrays), the open one up to its dropout; none after the cutoff or the
    horizon. Those who may refer: a positive rate, arrived before the cutoff, alive after the floor or won
    back. Returns each referral's referrer (its index in the part), number and time.

    ``next_at`` (-inf at first), per customer, is written where its draws stopped: the first referral time
    at or after the cutoff in its open spell (the first without a reactivation). Its draws are redone from
    its arrival (for the referral numbers) only when that time falls before the next cutoff, or when a
    reactivation began its open spell since the last call; otherwise it refers nobody in the round, and
    nothing is drawn (most customers at most rounds: one logarithm each saved, a few for each spell of the
    won back). It is inf for a customer who refers nobody any more without a reactivation (no referral rate,
    or gone before the floor): the pass reads nothing else of a customer whose ``next_at`` is at or after the
    cutoff."""
    owner, starts, before, ends = spells
    order = np.argsort(owner, kind="mergesort")   # each customer's later spells, in the order they began
    owners = owner[order]   # (read in order: no load waits on another's at every customer)
    spelled = len(order)
    size = max(64, len(key) // 64)
    parent, number, born = np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size)
    count, at = 0, 0
    for i in range(len(key)):
        while at < spelled and owners[at] < i:
            at += 1
        later = at < spelled and owners[at] == i
        if not later and next_at[i] >= cutoff:   # no referral before the cutoff (or none any more)
            continue
        if later and starts[spell[i]] < floor and next_at[i] >= min(death[i], cutoff, horizon):
            continue   # its open spell began before the last call, which left its next referral there
        if not (rate[i] > 0 and arrival[i] < cutoff and (death[i] > floor or later)):
            if not later and (not rate[i] > 0 or not death[i] > floor):   # for good, but for a reactivation
                next_at[i] = INF
            continue
        if not later and next_at[i] >= min(death[i], cutoff, horizon):   # its next referral comes later
            continue
        k, own_rate, made = key[i], np.float64(rate[i]), 0
        j = at - 1
        while True:   # the first spell (j = at - 1), then the later ones
            if j < at:
                start, end, first = arrival[i], first_end[i] if spell[i] >= 0 else death[i], made
            else:
                record = order[j]
                start, first = starts[record], 1_000_000 + before[record]
                end = death[i] if record == spell[i] else ends[record]
            stop = min(end, cutoff, horizon)
            when = start + exponential(k, step, np.uint64(first)) / own_rate
            while when < stop:
                if when >= floor:
                    if count == size:   # room for twice as many
                        size *= 2
                        parent, number, born = _grown(parent, size), _grown(number, size), _grown(born, size)
                    parent[count], number[count], born[count] = i, made, when
                    count += 1
                made += 1
                when = when + exponential(k, step, np.uint64(made)) / own_rate
            j += 1
            if j >= spelled or owners[j] != i:
                break
        next_at[i] = when   # (that of its open spell, the last)
    return parent[:count].copy(), number[:count].copy(), born[:count].copy()


@numba.njit(**OPTIONS)
def _grown(values, size):
    """``values`` in a new array of ``size`` (at least as long)."""
    grown = np.empty(size, values.dtype)
    grown[:len(values)] = values
    return grown


@numba.njit(**OPTIONS)
def program_lives(customers, program, calendar, offers, state, order_values, economics, accounts, until, arrivals,
                  targeted):
    """Every customer of the slice from where it stands (its arrival, the first time) up to ``until`` or
    the horizon under a program, the chosen of the targeted-offer round where they stopped given its offer
    first (``targeted``, below).

    ``customers`` = (key, segment, cohort, parent cohort, spend mean, purchase rate, arrival, member,
    redeemer, base multiplier, goal-gradient strength, dropout chance, dropout multiplier, arrival discount,
    hazard, opening state): read only. ``base``, ``goal-gradient strength`` and ``dropout multiplier`` are
    by member (in the customers' order) and tier (index 0: no tier): the membership and tier factor of the
    purchase rate, the goal-gradient strength (0 for members it does not move) and the multiplier of the
    dropout hazard and of the per-purchase dropout ``chance`` (the customer's own, float32; the product
    capped at 1); a non-member's are 1, 0 and 1. ``hazard``
    is the customer's own dropout hazard (float32, as the calendar engine holds it), which a reactivated
    customer's new lifetime is drawn with. ``program`` = (reward threshold (0: no points), reward cost
    per reward, points per unit spent, earn multiplier by tier, points cap per purchase, expiry after
    inactivity (years, inf: none), member cost per year, benefit cost per year by tier, tier thresholds on
    trailing 12-month spend). ``calendar`` = (change times, whether a blanket window is open after each,
    the index of its depth in ``depths``, the dip factor by change and segment, ``depths`` (from 0 up), the
    uplift by segment and depth, the habituation factor by discounted purchases made): the blanket windows
    and their pull-forward dips, the same for everyone, as changes in time order. ``offers`` = (win-back
    delay (years, inf: no win-back offer), the index of its depth in ``depths``, its validity (years), its
    message cost, the reactivation chance, the stream increment of reactivation draws, the calendar
    engine's advance times (sorted)).

    ``state`` = (death, made, points, first end, spells, resume), each customer's, read where it stands
    and written where it stops: ``death`` enters as the hazard lifetime and leaves as the dropout time;
    ``made`` and ``points`` the purchases and the balance; ``first end`` (inf until known) the end of the
    first alive spell as far as referrals go (below); ``spells`` = (owner, start, reactivations before,
    end) typed lists, to which each reactivation appends the customer's index in the slice, the new
    spell's start and the reactivations before it (its end, as far as referrals go, is written when the
    spell closes). ``resume`` = (started, pending purchase, rate multiplier, last purchase, tier, 12-month
    ring (by member, 12 float32 each, with tiers), trailing 12-month spend, next calendar change,
    discounted purchases, next month end to close, coupon valid until, its depth's index, win-back offer
    at, open spell's record, repeat spend): what a stopped customer resumes from (``started``: 0 not yet
    begun, 1 stopped before ``until``, 2 finished); its open spell's start and reactivations so far come
    from its record (the arrival and none without one), its deadline from its coupon, win-back offer and
    points. A call to the horizon (``until`` inf) is a customer's last and leaves ``resume`` but for
    ``started`` and the spell's record as it found it. The opening state = (pending purchase at rate 1,
    purchases made, last purchase, points, tier, spend of each of the 11 months before the start; empty
    arrays for customers who are all new) is that of existing customers (:mod:`sim.model.existing`: their
    pending purchase moves to the program's rate at the start, a lifetime of -inf means gone before the
    start); a new customer has made none and makes its acquisition purchase at arrival. ``order_values``
    and ``economics`` as :func:`sim.engines.loops.lives`. ``accounts`` = (monthly sums by :data:`MONTHLY`,
    cohort sums by :data:`COHORT`, member sums by :data:`MEMBER`).

    Events of a customer are taken in time order: a month end before anything at or after it (the calendar
    engine simulates up to a month end, then closes the month), a purchase before a deadline at the same
    time. Month ends matter to members only (their costs, their tier), while they are alive or a win-back
    offer may still revive them; those before a member's next event are taken in one go (up to a calendar
    change before one of them or a change of tier), and its whole months of membership are counted by tier
    and month and charged once at the end of the call (the same amounts, added in another order). Without
    tiers a month end changes nothing but a member's cost, and is no event: each alive spell of a member is
    charged when it closes (a win-back revives the member, or its life is over), in one go
    (``charge_spell``, the same amounts again). A spell's referrals end where the calendar engine
    stops drawing them: at its dropout, or at the start of the interval in which a win-back revives the
    customer (the engine draws the referrals due in an interval after its purchases and deadlines, and a
    revival restarts them).
    Everything before ``until`` happens; a customer stops at its first event at or after it (a targeted
    offer round is there), but for an acquisition purchase at ``until`` if ``arrivals`` (the round at the
    start sees the customers arriving then buy first, in the windows opening then). Its exit (final dropout, active at
    the end) is booked when it reaches the horizon, or as soon as it is gone for good (no purchase pending, no
    win-back offer to come, no month end to close, no deadline before the horizon): no round can change it
    then, and later calls pass it by.

    ``targeted`` = (chosen, t, depth index, validity, message): the customers ``chosen`` (positions in the
    slice, ascending; empty: none) at the targeted-offer round at ``t`` where the last call stopped them.
    Each alive one is given the offer as it resumes, before anything else: a coupon of the depth at the
    index in ``depths``, valid ``validity`` years (a held one keeps the better terms), its pending purchase
    moved by the time change to the new rate, as the calendar engine's round does. ``message`` = (cost per
    chosen customer, month of ``t``, discount factor of ``t`` from the start): every chosen customer's
    message cost, alive or not, on the month and its cohort as the ledger's ``record_cost`` books it.
    """
    key, segment, cohort, parent, spend_mean, rate, arrival, member, redeemer, base, gradient, chance, \
        drop_factor, arrival_discount, hazard, opening = customers
    start_at, history, last_at, points_at, tier_at, ring_at = opening
    opened = len(history) > 0   # else new customers only: no opening state
    threshold, reward_money, earn, tier_earn, cap, expiry, member_cost, benefit, tier_min = program
    change_time, change_open, change_depth, change_dip, depths, uplifts, habituation = calendar
    delay, winback_at_depth, valid, message_cost, comeback, revive_step, barriers = offers
    changes, worn = len(change_time), len(habituation) - 1
    death, made, balance, first_end, spells, resume = state
    owners, spell_starts, spell_lives, spell_ends = spells
    started, pending_at, mult_at, last_of, tier_of, rings, spend_of, change_of, discounted_of, closing_of, \
        offer_until_of, coupon_of, winback_of, spell_of, repeat_of = resume
    tables, shapes, log_growth, steps = order_values
    left, width, squeeze = tables[0], tables[1], tables[2]
    (margin_rate, cost_per_order, delta, horizon), month_start = economics[0], economics[1]
    sums, cohort_sums, member_sums = accounts
    months = len(month_start) - 1
    interpurchase, dropout, order_step = steps[0], steps[1], steps[2]
    points_on = threshold > 0
    winback_on = delay < INF
    tiers = len(tier_min)
    benefits = tiers > 0 and benefit.max() > 0
    charging = member_cost > 0 or benefits
    # without tiers a member's month ends change nothing but its cost: each alive spell is charged in one go
    # when it closes (``charge_spell``, the same amounts), and month ends are no events
    by_spell = charging and tiers == 0
    whole = np.empty(months)                  # the discount factor of a whole month's membership, at its middle
    span = np.empty(months)                   # a whole month's length, as a member's years in it are computed
    charged = np.zeros(months + 1)            # charged[m]: the sum of span x whole over the months before m
    edge = np.empty(months + 1)               # edge[m] = m / 12: month m's start and month m - 1's end
    for m in range(months + 1):
        edge[m] = m / 12.0
    for m in range(months):
        whole[m] = math.exp(-delta * ((edge[m] + edge[m + 1]) / 2.0))
        span[m] = edge[m + 1] - edge[m]
        charged[m + 1] = charged[m] + span[m] * whole[m]
    # the whole months of membership (alive throughout) by tier and month, charged at the end of the call: a
    # charge booked at every month end of every member cost a fifth of a points program's loop
    whole_months = np.zeros((tiers + 1, months + 1), dtype=np.int64)   # as differences: +1 at a run's first, -1 after

    # A member's factors and charges, as closures over the arrays: numba inlines them and, unlike a function
    # handed the arrays, counts no reference to them (atomically, once per member and month charged).
    def factors(row, tier):
        """A customer's membership and tier factor of the purchase rate, goal-gradient strength and dropout
        multiplier at ``tier``: from its ``row`` of the members' arrays, a non-member's (``row`` -1) otherwise."""
        return (base[row, tier], gradient[row, tier], drop_factor[row, tier]) if row >= 0 else NEUTRAL

    def charge_month(month, years, factor, tier):
        """``years`` of membership at ``tier`` in ``month``, discounted by ``factor``, on the month: the member
        cost and, with tier benefits, the tier's benefit cost. Returns their total."""
        total = 0.0
        if member_cost > 0:
            amount = years * member_cost
            sums[10, month] += amount
            sums[3, month] -= factor * amount
            total += amount
        if benefits:
            amount = years * benefit[tier]
            sums[13, month] += amount
            sums[3, month] -= factor * amount
            total += amount
        return total

    def charge(month, years, factor, tier, born_factor, group, up):
        """``years`` of one member's membership at ``tier`` in ``month``, discounted by ``factor``: on the month
        (``charge_month``) and as its cohort's program cost."""
        total = charge_month(month, years, factor, tier)
        cohort_sums[5, group] += factor / born_factor * total
        if up >= 0:
            cohort_sums[3, up] -= factor / born_factor * total

    def count_whole(first, stop, tier, born_factor, group, up):
        """Whole months ``first`` to ``stop`` (excluded) of one member's membership at ``tier``: counted in
        ``whole_months`` (charged at the end of the call), and their cohort's program cost booked
        (``charged``: the sums of ``charge``'s ``years`` x ``factor`` of whole months), as ``charge`` books it."""
        whole_months[tier, first] += 1
        whole_months[tier, stop] -= 1
        share = (charged[stop] - charged[first]) * (member_cost + (benefit[tier] if benefits else 0.0)) / born_factor
        cohort_sums[5, group] += share
        if up >= 0:
            cohort_sums[3, up] -= share

    def charge_spell(spell_start, lifetime, born_factor, group, up):
        """One alive spell's membership, from ``spell_start`` to ``lifetime`` (cut at the horizon), charged
        month by month as the month ends would charge it (a program without tiers, whose month ends change
        nothing else): its whole months counted and booked in one run (``count_whole``), its first and last
        months by their alive parts (``charge``). Only its first and last months are looked at: those between
        lie wholly inside the spell (a spell of years cost a twentieth of a points program's loop month by
        month)."""
        first, stop = -1, -1
        month = month_of(spell_start, month_start)
        if not (month < months and lifetime > edge[month]):
            return
        after = months   # the first month the spell does not reach (its start at or after ``lifetime``)
        if lifetime < edge[months]:
            after = month_of(lifetime, month_start)
            if lifetime > edge[after]:
                after += 1
        while month < after:
            start, end = edge[month], edge[month + 1]
            if spell_start <= start and lifetime >= end:
                if first < 0:
                    first = month
                stop = month + 1
            else:
                begin, finish = max(spell_start, start), min(lifetime, end)
                charge(month, max(0.0, finish - begin), math.exp(-delta * ((begin + finish) / 2.0)), 0, born_factor,
                       group, up)
            month += 1
            if month < after - 1:   # the months before the last one start after the spell's start (month_of)
                if first < 0:       # and end before its end: whole
                    first = month
                month = stop = after - 1
        if first >= 0:
            count_whole(first, stop, 0, born_factor, group, up)

    chosen_ids, offer_t, offer_depth, offer_valid, chosen_message = targeted
    chosen_cost, chosen_month, chosen_from_start = chosen_message
    cursor = 0   # the next of the chosen (ascending)
    row = -1   # the customer's row in the members' arrays (by tier, ring)
    for i in range(len(key)):
        if member[i]:
            row += 1
        chosen = cursor < len(chosen_ids) and chosen_ids[cursor] == i
        if chosen:
            cursor += 1
            if chosen_cost > 0:   # every chosen customer's, alive or not, as the ledger's record_cost books it
                sums[15, chosen_month] += chosen_cost
                sums[3, chosen_month] -= chosen_from_start * chosen_cost
                share = chosen_from_start / arrival_discount[i] * chosen_cost   # to its acquisition
                cohort_sums[5, cohort[i]] += share
                if parent[i] >= 0:
                    cohort_sums[3, parent[i]] -= share
        if started[i] == 2:   # finished
            continue
        k, s, group, up = key[i], segment[i], cohort[i], parent[i]
        own_rate, scale = np.float64(rate[i]), np.float64(spend_mean[i])
        grow, born, lifetime = log_growth[s], arrival[i], death[i]
        is_member, redeems = member[i], redeemer[i]
        rewarding = points_on and is_member
        born_factor = arrival_discount[i]
        ringed = tiers > 0 and is_member
        resumed = started[i] == 1
        if not resumed:
            started[i] = 1
            tier, count, points, last = np.intp(0), _ZERO, np.int64(0), -INF   # a new customer
            if ringed:   # its net spend by month over the trailing 12 months, indexed in its row (a view of
                for slot in range(12):   # the row would be reference-counted)
                    rings[row, slot] = 0.0
            spend_12m = 0.0
            if opened:   # an existing customer
                tier, count, points, last = np.intp(tier_at[i]), history[i], np.int64(points_at[i]), last_at[i]
                if ringed and ring_at[i] != 0:   # months -11 .. -1 in slots 1 .. 11 (month -12's slot is month 0's)
                    for slot in range(1, 12):
                        rings[row, slot] = ring_at[i]
                        spend_12m += np.float64(ring_at[i])
            boost, strength, drop = factors(row if is_member else -1, tier)
            change = np.searchsorted(change_time, born)   # the calendar's next change (those at arrival first)
            discounted = 0
            mult = 1.0
            offer_until, coupon_at = -INF, 0   # a held coupon: valid until, the index of its depth
            spell_start, lives, spell = born, 0, -1   # the alive spell: its start, reactivations so far, its record
            repeat_spend = repeat_of[i]
            winback_at = INF
            if winback_on:
                winback_at = born + delay if count == 0 else max(last + delay, 0.0)
            if count == 0:
                pending = born              # the acquisition purchase, at arrival
                deadline = winback_at
            else:   # an existing customer: its pending purchase at the program's rate, what is overdue due at once
                dip = change_dip[change - 1, s] if change > 0 else 1.0
                index = _offer(change > 0 and change_open[change - 1], change_depth[change - 1] if change > 0 else 0,
                               False, 0)
                mult = _multiplier(boost, strength, points, threshold, index >= 0, uplifts[s, max(index, 0)],
                                   dip * habituation[0])
                pending = start_at[i] / mult
                deadline = max(_deadline(offer_until, winback_at, points, last, expiry), 0.0)
            closing = month_of(born, month_start) if is_member and tiers > 0 else months
            first_end[i] = INF
        else:
            tier = np.intp(tier_of[i])
            boost, strength, drop = factors(row if is_member else -1, tier)
            spend_12m = spend_of[i]
            count = made[i]
            points = balance[i]
            last = last_of[i]
            change = change_of[i]
            discounted = discounted_of[i]
            mult = mult_at[i]
            offer_until, coupon_at = offer_until_of[i], np.intp(coupon_of[i])
            spell = spell_of[i]   # its alive spell: the first (from arrival) or that of its last reactivation
            if spell < 0:
                spell_start, lives = born, 0
            else:
                spell_start, lives = spell_starts[spell], min(spell_lives[spell] + 1, 255)
            repeat_spend = repeat_of[i]
            winback_at = winback_of[i]
            pending = pending_at[i]
            closing = closing_of[i]
        offered, depth_at, dip = False, 0, 1.0
        if change > 0:
            offered, depth_at, dip = change_open[change - 1], change_depth[change - 1], change_dip[change - 1, s]
        if resumed:
            if chosen and lifetime > offer_t:   # the round's offer reaches the alive only
                coupon_at, offer_until = _give(offer_until, coupon_at, offer_t, offer_depth, offer_valid)
                if pending < INF and count > 0:   # its pending purchase moved to the new rate (time change)
                    index = _offer(offered, depth_at, offer_until > offer_t, coupon_at)
                    new = _multiplier(boost, strength, points, threshold, index >= 0, uplifts[s, max(index, 0)],
                                      dip * habituation[min(discounted, worn)])
                    pending, mult = _moved(pending, offer_t, mult, new), new
            # its deadline as the last event left it (every one after the start lies at or after 0)
            deadline = max(_deadline(offer_until, winback_at, points, last, expiry), 0.0)
        finished = False
        while True:
            when = min(pending, deadline)
            revivable = winback_at < INF   # dropped out, a win-back offer can still bring it back
            if change < changes and change_time[change] <= when and (change_time[change] < until or (
                    arrivals and change_time[change] == until)) and (
                    pending < INF or revivable) and not (
                    closing < months and edge[closing + 1] <= change_time[change]):
                at = change_time[change]   # windows opened or closed, dips began or ended: a time change
                offered, depth_at, dip = change_open[change], change_depth[change], change_dip[change, s]
                change += 1
                if pending < INF and count > 0:
                    index = _offer(offered, depth_at, offer_until > at, coupon_at)
                    new = _multiplier(boost, strength, points, threshold, index >= 0, uplifts[s, max(index, 0)],
                                      dip * habituation[min(discounted, worn)])
                    pending, mult = _moved(pending, at, mult, new), new
                continue
            if closing < months and edge[closing + 1] <= when and edge[closing + 1] < until:
                # the month ends before ``when`` in one go, up to a calendar change before one of them or a
                # change of tier (either changes what comes next)
                first, stop = -1, -1   # the whole months of membership among them (consecutive)
                began = closing
                while closing < months and edge[closing + 1] <= when and edge[closing + 1] < until:
                    start, end = edge[closing], edge[closing + 1]
                    if closing > began and change < changes and change_time[change] < end:
                        break   # the loop takes the change first if it is due
                    if not lifetime > start:
                        if not revivable:   # gone: its month ends change nothing any more
                            closing = months
                            break
                    elif charging:
                        if spell_start <= start and lifetime >= end:   # whole: charged at the end of the call
                            if first < 0:
                                first = closing
                            stop = closing + 1
                        else:   # this month's membership, discounted at its middle
                            begin, finish = max(spell_start, start), min(lifetime, end)
                            charge(closing, max(0.0, finish - begin), math.exp(-delta * ((begin + finish) / 2.0)),
                                   tier, born_factor, group, up)
                    closing += 1
                    if tiers > 0:   # the highest tier the trailing 12 months reach, until the next month end
                        reached = 0
                        for minimum in tier_min:
                            if spend_12m >= minimum:
                                reached += 1
                        leaving = closing % 12
                        spend_12m -= rings[row, leaving]   # a member's (month ends are members')
                        rings[row, leaving] = 0.0
                        if reached != tier:
                            if first >= 0:   # the whole months so far, at the tier they had
                                count_whole(first, stop, tier, born_factor, group, up)
                                first = -1
                            old_drop = drop
                            tier = reached
                            boost, strength, drop = factors(row, tier)
                            if pending < INF and count > 0:
                                index = _offer(offered, depth_at, offer_until > end, coupon_at)
                                new = _multiplier(boost, strength, points, threshold, index >= 0,
                                                  uplifts[s, max(index, 0)], dip * habituation[min(discounted, worn)])
                                pending, mult = _moved(pending, end, mult, new), new
                            if lifetime > end and lifetime < INF:   # the hazard's time change
                                lifetime = end + (lifetime - end) * (old_drop / drop)
                            break
                if first >= 0:
                    count_whole(first, stop, tier, born_factor, group, up)
                continue
            if pending == INF and not revivable and closing >= months and lifetime < INF and not deadline < horizon:
                finished = True   # gone for good: no round changes anything any more
                break
            if until < horizon and not when < until and not (
                    arrivals and count == 0 and when == until and pending <= deadline):
                break   # stopped before a round at ``until``
            if not when < horizon:
                finished = True
                break
            month = month_of(when, month_start)
            from_start = math.exp(-delta * when)
            from_acquisition = from_start / born_factor
            if pending <= deadline:
                if not when < lifetime:   # the hazard lifetime ended first: no further purchase
                    pending = INF
                    continue
                # the waiting time to the next purchase at rate 1, drawn first: its logarithm then runs while
                # the processor works out the order (it depends on neither)
                gap = exponential(k, interpurchase, count)
                cell, at_cell, v, u = gamma_cell(k, order_step, count, np.intp(s))   # the order value (:func:`order_value`)
                variate = width[at_cell] * v + left[at_cell]
                if u >= squeeze[at_cell]:
                    variate = gamma_exact(tables, shapes, k, order_step, cell, at_cell, np.intp(s), v, u)
                growth = tenure_growth(grow, when - born)
                value = order_value(variate, scale, growth)
                contribution = margin_rate * value - cost_per_order
                sums[0, month] += 1.0
                if count == 0:
                    sums[1, month] += 1.0
                else:
                    cohort_sums[0, group] += 1.0
                    repeat_spend += value
                sums[2, month] += value
                sums[3, month] += from_start * contribution
                cohort_sums[1, group] += value
                cohort_sums[2, group] += from_acquisition * contribution
                if grow != 0.0:   # CLV's growth part: the margin on what spend growth with tenure added
                    cohort_sums[6, group] += from_acquisition * margin_rate * (value - value / growth)
                if up >= 0:
                    cohort_sums[3, up] += from_acquisition * contribution
                if is_member:
                    member_sums[0] += 1.0
                    if count > 0:
                        member_sums[1] += 1.0
                    member_sums[2] += value
                # the deeper of an open blanket window and a held coupon (used up now)
                depth = depths[depth_at] if offered else 0.0
                if offer_until > when:
                    depth = max(depth, depths[coupon_at])
                    offer_until = -INF
                paid = value * (1.0 - depth)
                if depth > 0:
                    cut = value - paid
                    sums[14, month] += cut
                    sums[3, month] -= from_start * cut
                    cohort_sums[5, group] += from_acquisition * cut
                    cohort_sums[1, group] -= cut
                    if up >= 0:
                        cohort_sums[3, up] -= from_acquisition * cut
                    discounted += 1
                if rewarding:
                    rewards = points // threshold if redeems else np.int64(0)
                    redeemed = rewards * threshold
                    earned = np.int64(min(np.floor(paid * earn * tier_earn[tier]), np.float64(cap)))   # capped before int64
                    points = points - redeemed + earned
                    if rewards > 0:
                        amount = rewards * reward_money
                        sums[5, month] += amount
                        sums[3, month] -= from_start * amount
                        cohort_sums[5, group] += from_acquisition * amount
                        if up >= 0:
                            cohort_sums[3, up] -= from_acquisition * amount
                    sums[6, month] += earned
                    sums[7, month] += redeemed
                    sums[9, month] += earned - redeemed
                if ringed:
                    paid32 = np.float32(paid)
                    rings[row, month % 12] = np.float32(rings[row, month % 12] + paid32)
                    spend_12m += np.float64(paid32)
                last = when
                if winback_on:
                    winback_at = when + delay
                mult = _multiplier(boost, strength, points, threshold, offered, uplifts[s, depth_at],
                                   dip * habituation[min(discounted, worn)])
                pending = gap / (own_rate * mult) + when
                if count > 0 and uniform(k, dropout, count) < min(1.0, np.float64(chance[i]) * drop):
                    lifetime = when
                    pending = INF
                count += _ONE
                deadline = _deadline(offer_until, winback_at, points, last, expiry)
            else:   # its own deadlines: points expiring, a coupon running out, a win-back offer going out
                if points > 0 and last + expiry <= when:
                    sums[8, month] += points
                    sums[9, month] -= points
                    points = np.int64(0)
                if offer_until <= when:
                    offer_until = -INF
                back = False
                if winback_at <= when:   # once per inactivity spell, alive or not: the firm cannot tell
                    winback_at = INF
                    if message_cost > 0:
                        sums[15, month] += message_cost
                        sums[3, month] -= from_start * message_cost
                        cohort_sums[5, group] += from_acquisition * message_cost
                        if up >= 0:
                            cohort_sums[3, up] -= from_acquisition * message_cost
                    gone = lifetime <= when
                    if gone and uniform(k, revive_step, np.uint64(3 * lives)) < comeback:
                        back = True
                        sums[16, month] += 1.0
                        if is_member:
                            sums[17, month] += 1.0
                        if lifetime > -INF:   # its earlier dropout is counted now (the final one at the end)
                            earlier = month_of(lifetime, month_start)
                            sums[4, earlier] += 1.0
                            if is_member:
                                sums[11, earlier] += 1.0
                            if by_spell and is_member:   # the closed spell, whole
                                charge_spell(spell_start, lifetime, born_factor, group, up)
                            elif charging and is_member:   # the closed spell's part of this month
                                begin = max(spell_start, month / 12.0)
                                charge(month, max(0.0, lifetime - begin), math.exp(-delta * ((begin + lifetime) / 2.0)),
                                       tier, born_factor, group, up)
                        # the closed spell's discounted alive years (CLV's learning part)
                        cohort_sums[7, group] += _alive_years(spell_start, lifetime, born, delta, horizon)
                        # the closed spell's referrals end at its dropout or where this interval starts
                        ended = min(lifetime, _interval_start(barriers, when))
                        if spell < 0:
                            first_end[i] = ended
                        else:
                            spell_ends[spell] = ended
                        spell = len(owners)
                        owners.append(i)
                        spell_starts.append(when)
                        spell_lives.append(lives)
                        spell_ends.append(INF)
                        spell_start = when
                        lifetime = when + exponential(k, revive_step, np.uint64(3 * lives + 2)) / (
                            np.float64(hazard[i]) * drop)
                        lives = min(lives + 1, 255)
                    if not gone or back:   # a single-use coupon; a held one keeps the better terms
                        coupon_at, offer_until = _give(offer_until, coupon_at, when, winback_at_depth, valid)
                index = _offer(offered, depth_at, offer_until > when, coupon_at)
                new = _multiplier(boost, strength, points, threshold, index >= 0, uplifts[s, max(index, 0)],
                                  dip * habituation[min(discounted, worn)])
                if back:   # buying again: its next purchase at the rate it has now
                    mult = new
                    pending = when + exponential(k, revive_step, np.uint64(3 * lives + 1)) / (own_rate * mult)
                elif pending < INF and count > 0:   # the pending purchase moves by the time change
                    pending, mult = _moved(pending, when, mult, new), new
                deadline = _deadline(offer_until, winback_at, points, last, expiry)
                sums[12, month] += 1.0
        death[i], made[i], balance[i], spell_of[i] = lifetime, count, points, spell
        if until < INF:   # what it resumes from, and what a round scores it by (a call to the horizon is the last)
            tier_of[i], spend_of[i], last_of[i], change_of[i], discounted_of[i] = tier, spend_12m, last, change, \
                discounted
            mult_at[i], offer_until_of[i], coupon_of[i], winback_of[i] = mult, offer_until, coupon_at, winback_at
            repeat_of[i], pending_at[i], closing_of[i] = repeat_spend, pending, closing
        if not finished:
            continue
        started[i] = 2
        if by_spell and is_member:   # its last alive spell
            charge_spell(spell_start, lifetime, born_factor, group, up)
        cohort_sums[7, group] += _alive_years(spell_start, lifetime, born, delta, horizon)
        if spell < 0:
            first_end[i] = lifetime
        else:
            spell_ends[spell] = lifetime
        if lifetime == -INF:   # an existing customer gone before the start: no dropout in the horizon
            pass
        elif lifetime < horizon:
            gone_in = month_of(lifetime, month_start)
            sums[4, gone_in] += 1.0
            if is_member:
                sums[11, gone_in] += 1.0
        else:
            cohort_sums[4, group] += 1.0
    for level in range(tiers + 1):   # the whole months of membership, discounted at their middles
        held = 0
        for m in range(months):
            held += whole_months[level, m]
            if held > 0:
                charge_month(m, held * span[m], whole[m], level)


@numba.njit(**OPTIONS)
def _alive_years(begin, end, born, delta, horizon):
    """Alive from ``begin`` to ``end`` (cut at the horizon; nothing if it ends first), in years discounted to
    the acquisition at ``born``: the integral of exp(-delta (t - born)), as :meth:`Ledger.record_alive_years`
    books it for the other engines."""
    alive = max(min(end, horizon) - begin, 0.0)
    if alive == 0.0:
        return 0.0
    if delta == 0.0:
        return alive
    return -math.expm1(-delta * alive) / delta * math.exp(-delta * (begin - born))


@numba.njit(**OPTIONS)
def _give(offer_until, coupon_at, t, depth_at, valid):
    """A single-use coupon of the depth at index ``depth_at`` given at ``t``, valid for ``valid`` years; a
    held one keeps the better terms of the two. Returns the coupon's depth index and validity."""
    until = t + valid
    if offer_until > t:
        return max(coupon_at, depth_at), max(offer_until, until)
    return depth_at, until


@numba.njit(**OPTIONS)
def empty_spells():
    """Empty typed lists for the spell records of :func:`program_lives`: owner, start, reactivations
    before, end. Made compiled, and so cached on disk, because ``typed.List.empty_list`` called from Python
    compiles its constructor afresh in every process (about 0.17 s)."""
    return (numba.typed.List.empty_list(numba.int64), numba.typed.List.empty_list(numba.float64),
            numba.typed.List.empty_list(numba.int64), numba.typed.List.empty_list(numba.float64))


@numba.njit(**OPTIONS)
def spell_records(owners, starts, lives, ends):
    """The spell records of :func:`program_lives` (typed lists) as arrays: owner, start, reactivations
    before, end."""
    count = len(owners)
    owner, start, before, end = np.empty(count, np.int64), np.empty(count), np.empty(count, np.int64), np.empty(count)
    for j in range(count):
        owner[j], start[j], before[j], end[j] = owners[j], starts[j], lives[j], ends[j]
    return owner, start, before, end


@numba.njit(**OPTIONS)
def extend_spells(owners, starts, lives, ends, owner, start, before, end):
    """Appends spell records (arrays: owner, start, reactivations before, end) to the typed lists of
    :func:`program_lives`."""
    for j in range(len(owner)):
        owners.append(owner[j])
        starts.append(start[j])
        lives.append(before[j])
        ends.append(end[j])
