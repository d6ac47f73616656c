"""A program's per-customer dynamics as compiled loops (numba): each customer's life under the policy.

When no targeted-offer round ranks customers against each other and no win-back offer goes out, a program's
customers do not interact: membership, points earned and redeemed, the goal gradient, points expiry, the
tier a member's own trailing 12-month spend reaches at a month end, its membership and tier costs, and the
blanket windows with their pull-forward dips (a calendar known in advance, the same for everyone) are each
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

import numba
import numpy as np

from sim.engines.loops import draw_order_value, tenure_growth
from sim.model.calendar import month_of
from sim.random.compiled import OPTIONS, exponential, uniform

_ONE = np.uint64(1)
INF = math.inf

#: Rows of the monthly sums of :func:`program_lives`.
MONTHLY = ("purchases", "acquisition_purchases", "gross_revenue", "npv_profit", "customers_dropped_out",
           "reward_cost", "points_earned", "points_redeemed", "points_expired", "points_change", "member_cost",
           "member_dropouts", "deadlines", "tier_benefit_cost", "discount_cost")
#: Rows of the cohort sums of :func:`program_lives`.
COHORT = ("repeat_purchases", "net_revenue", "clv", "network_value", "active_end", "program", "clv_growth")
#: The member sums of :func:`program_lives` (``Ledger.member``).
MEMBER = ("member_purchases", "member_repeat_purchases", "member_gross_revenue")


@numba.njit(**OPTIONS)
def _multiplier(base, gradient, points, threshold, offered, uplift, full_price):
    """The purchase-rate multiplier at ``points``, as the calendar engine computes it: the membership (and
    tier) factor ``base`` times the goal gradient 1 + g x progress (``gradient`` is 0 for those it does not
    move), times the ``uplift`` of a discount if one is ``offered``, else the ``full_price`` factor (dips,
    habituation)."""
    progress = min(points / threshold, 1.0) if threshold > 0 else 0.0
    mult = base * (1.0 + gradient * progress)
    if offered:
        return mult * uplift
    return mult * full_price


@numba.njit(**OPTIONS)
def program_lives(customers, program, calendar, state, order_values, economics, accounts):
    """Every customer of the slice from its arrival to the horizon under a program.

    ``customers`` = (key, segment, cohort, parent cohort, spend mean, purchase rate, arrival, member,
    redeemer, base multiplier, goal-gradient strength, dropout chance, dropout multiplier, arrival discount,
    opening state): read only. The last five are by customer and tier (index 0: no tier): the membership and tier factor of
    the purchase rate, the goal-gradient strength (0 for customers it does not move), the per-purchase
    dropout chance and the hazard's multiplier. ``program`` = (reward threshold (0: no points), reward cost
    per reward, points per unit spent, earn multiplier by tier, points cap per purchase, expiry after
    inactivity (years, inf: none), member cost per year, benefit cost per year by tier, tier thresholds on
    trailing 12-month spend). ``calendar`` = (change times, whether a blanket window is open after each,
    the index of its depth in ``depths``, the dip factor by change and segment, ``depths`` (from 0 up), the
    uplift by segment and depth, the habituation factor by discounted purchases made): the blanket windows
    and their pull-forward dips, the same for everyone, as changes in time order. ``state`` = (death, made, points): ``death`` enters as the hazard lifetime
    and leaves as the dropout time; ``made`` and ``points`` leave as the purchases and the balance at the
    horizon. The opening state = (pending purchase at rate 1, purchases made, last purchase, points,
    tier, spend of each of the 11 months before the start) is that of existing customers
    (:mod:`sim.model.existing`: their pending purchase moves to the program's rate at the start, a
    lifetime of -inf means gone before the start); a new customer has made none and makes its acquisition
    purchase at arrival. ``order_values`` and ``economics`` as :func:`sim.engines.loops.lives`. ``accounts`` = (monthly
    sums by :data:`MONTHLY`, cohort sums by :data:`COHORT`, member sums by :data:`MEMBER`).

    Events of a customer are taken in time order: a month end before anything at or after it (the calendar
    engine simulates up to a month end, then closes the month), a purchase before a deadline at the same
    time. Month ends matter to members only (their costs, their tier), while they are alive.
    """
    key, segment, cohort, parent, spend_mean, rate, arrival, member, redeemer, base, gradient, chance, \
        drop_factor, arrival_discount, opening = customers
    start_at, history, last_at, points_at, tier_at, ring_at = opening
    threshold, reward_money, earn, tier_earn, cap, expiry, member_cost, benefit, tier_min = program
    change_time, change_open, change_depth, change_dip, depths, uplifts, habituation = calendar
    changes, worn = len(change_time), len(habituation) - 1
    death, made, balance = state
    tables, shapes, log_growth, steps = order_values
    (margin_rate, cost_per_order, delta, horizon), month_start = economics[0], economics[1]
    sums, cohort_sums, member_sums = accounts
    months = len(month_start) - 1
    interpurchase, dropout, order_step = steps[0], steps[1], steps[2]
    points_on = threshold > 0
    tiers = len(tier_min)
    charging = member_cost > 0 or (tiers > 0 and benefit.max() > 0)
    ring = np.zeros(12, dtype=np.float32)     # net spend by month over the trailing 12 months
    whole = np.empty(months)                  # the discount factor of a whole month's membership, at its middle
    for m in range(months):
        whole[m] = math.exp(-delta * ((m / 12.0 + (m + 1) / 12.0) / 2.0))
    for i in range(len(key)):
        k, s, group, up = key[i], segment[i], cohort[i], parent[i]
        own_rate, scale = np.float64(rate[i]), np.float64(spend_mean[i])
        grow, born, lifetime = log_growth[s], arrival[i], death[i]
        is_member, redeems = member[i], redeemer[i]
        rewarding = points_on and is_member
        born_factor = arrival_discount[i]
        tier = np.intp(tier_at[i])
        ring[:] = 0.0
        spend_12m = 0.0
        if ring_at[i] != 0:   # months -11 .. -1 in slots 1 .. 11 (month -12's slot is month 0's)
            for slot in range(1, 12):
                ring[slot] = ring_at[i]
                spend_12m += np.float64(ring_at[i])
        count = history[i]
        points = np.int64(points_at[i])
        last = last_at[i]
        change = np.searchsorted(change_time, born)   # the calendar's next change (those at arrival first)
        offered, depth_at, dip = False, 0, 1.0
        if change > 0:
            offered, depth_at, dip = change_open[change - 1], change_depth[change - 1], change_dip[change - 1, s]
        discounted = 0
        mult = 1.0
        deadline = INF
        if count == 0:
            pending = born              # the acquisition purchase, at arrival
        else:   # an existing customer: its pending purchase at the program's rate, what is overdue due at once
            mult = _multiplier(base[i, tier], gradient[i, tier], points, threshold, offered,
                               uplifts[s, depth_at], dip * habituation[0])
            pending = start_at[i] / mult
            if points > 0:
                deadline = max(last + expiry, 0.0)
        closing = month_of(born, month_start) if is_member and (charging or tiers) else months
        while True:
            when = min(pending, deadline)
            if change < changes and change_time[change] <= when and pending < INF and not (
                    closing < months and (closing + 1) / 12.0 <= change_time[change]):
                at = change_time[change]   # windows opened or closed, dips began or ended: a time change
                offered, depth_at, dip = change_open[change], change_depth[change], change_dip[change, s]
                change += 1
                if pending < INF and count > 0:
                    new = _multiplier(base[i, tier], gradient[i, tier], points, threshold, offered,
                                      uplifts[s, depth_at], dip * habituation[min(discounted, worn)])
                    if new != mult:
                        pending = at + (pending - at) * (mult / new)
                    mult = new
                continue
            if closing < months and (closing + 1) / 12.0 <= when:
                start, end = closing / 12.0, (closing + 1) / 12.0
                if not lifetime > start:   # gone: its month ends change nothing any more
                    closing = months
                    continue
                if charging:   # this month's membership, discounted at its middle
                    begin, finish = max(born, start), min(lifetime, end)
                    years = max(0.0, finish - begin)
                    if begin == start and finish == end:
                        factor = whole[closing]
                    else:
                        factor = math.exp(-delta * ((begin + finish) / 2.0))
                    total = 0.0
                    if member_cost > 0:
                        amount = years * member_cost
                        sums[10, closing] += amount
                        sums[3, closing] -= factor * amount
                        total += amount
                    if tiers > 0 and benefit.max() > 0:
                        amount = years * benefit[tier]
                        sums[13, closing] += amount
                        sums[3, closing] -= factor * amount
                        total += amount
                    cohort_sums[5, group] += factor / born_factor * total
                    if up >= 0:
                        cohort_sums[3, up] -= factor / born_factor * total
                if tiers > 0:   # the highest tier the trailing 12 months reach, until the next month end
                    reached = 0
                    for minimum in tier_min:
                        if spend_12m >= minimum:
                            reached += 1
                    if reached != tier:
                        old_drop = drop_factor[i, tier]
                        tier = reached
                        if pending < INF and count > 0:
                            new = _multiplier(base[i, tier], gradient[i, tier], points, threshold, offered,
                                              uplifts[s, depth_at], dip * habituation[min(discounted, worn)])
                            if new != mult:
                                pending = end + (pending - end) * (mult / new)
                            mult = new
                        if lifetime > end and lifetime < INF:   # the hazard's time change
                            lifetime = end + (lifetime - end) * (old_drop / drop_factor[i, tier])
                    leaving = (closing + 1) % 12
                    spend_12m -= ring[leaving]
                    ring[leaving] = 0.0
                closing += 1
                continue
            if not when < horizon:
                break
            month = month_of(when, month_start)
            if pending <= deadline:
                if not when < lifetime:   # the hazard lifetime ended first: no further purchase
                    pending = INF
                    continue
                value = draw_order_value(tables, shapes, k, order_step, count, np.intp(s), scale, grow, when - born)
                from_start = math.exp(-delta * when)
                from_acquisition = from_start / born_factor
                contribution = margin_rate * value - cost_per_order
                sums[0, month] += 1.0
                if count == 0:
                    sums[1, month] += 1.0
                else:
                    cohort_sums[0, group] += 1.0
                sums[2, month] += value
                sums[3, month] += from_start * contribution
                cohort_sums[1, group] += value
                cohort_sums[2, group] += from_acquisition * contribution
                if grow != 0.0:   # CLV's growth part: the margin on what spend growth with tenure added
                    cohort_sums[6, group] += from_acquisition * margin_rate * (value - value / tenure_growth(grow, when - born))
                if up >= 0:
                    cohort_sums[3, up] += from_acquisition * contribution
                if is_member:
                    member_sums[0] += 1.0
                    if count > 0:
                        member_sums[1] += 1.0
                    member_sums[2] += value
                depth = depths[depth_at] if offered else 0.0
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
                    earned = np.int64(min(math.floor(paid * earn * tier_earn[tier]), cap))
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
                if tiers > 0:
                    paid32 = np.float32(paid)
                    ring[month % 12] = np.float32(ring[month % 12] + paid32)
                    spend_12m += np.float64(paid32)
                last = when
                mult = _multiplier(base[i, tier], gradient[i, tier], points, threshold, offered,
                                   uplifts[s, depth_at], dip * habituation[min(discounted, worn)])
                pending = exponential(k, interpurchase, count) / (own_rate * mult) + when
                if count > 0 and uniform(k, dropout, count) < chance[i, tier]:
                    lifetime = when
                    pending = INF
                count += _ONE
                deadline = last + expiry if points > 0 else INF
            else:   # points expiring after ``expiry`` without a purchase
                if points > 0 and last + expiry <= when:
                    sums[8, month] += points
                    sums[9, month] -= points
                    points = np.int64(0)
                if pending < INF and count > 0:   # the pending purchase moves by the time change
                    new = _multiplier(base[i, tier], gradient[i, tier], points, threshold, offered,
                                      uplifts[s, depth_at], dip * habituation[min(discounted, worn)])
                    if new != mult:
                        pending = when + (pending - when) * (mult / new)
                    mult = new
                deadline = last + expiry if points > 0 else INF
                sums[12, month] += 1.0
        death[i], made[i], balance[i] = lifetime, count, points
        if lifetime == -INF:   # an existing customer gone before the start: no dropout in the horizon
            pass
        elif lifetime < horizon:
            gone = month_of(lifetime, month_start)
            sums[4, gone] += 1.0
            if is_member:
                sums[11, gone] += 1.0
        else:
            cohort_sums[4, group] += 1.0
