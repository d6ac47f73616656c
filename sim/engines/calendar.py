"""The calendar engine, for scenarios with a program: simpy owns the calendar, numpy owns the customers.

Time base: **years** from the scenario start (a month is exactly 1/12). simpy processes wake at calendar
dates (acquisition batches at month starts, month ends; policy events later). Between two calendar dates
every customer's rates are constant except for its own events, so :meth:`Engine.advance_to` moves the whole
population over the interval exactly, in rounds: every customer whose next event falls before the interval
end takes it together (vectorised), draws its next event time from its own keyed stream, and stays in the
round set only while it is still due. Work is proportional to events, not to customers x time steps, and
there is no discretisation: purchases form a Poisson process per customer (Fader, Hardie & Lee 2005).
Scenarios without a program run on :mod:`sim.engines.lifetimes`, which needs no calendar; both make their draws
through :mod:`sim.engines.draws`, so a program without any response pairs with its baseline draw for draw.

The engine runs the program (``docs/levers.md``): the calendar gains discount
windows, targeted-offer rounds and month-end tier evaluations, and each customer gains its own deadlines
(an offer running out, a win-back offer going out, points expiring). A customer's next event is the
earlier of its next purchase and its deadline. When a purchase-rate multiplier changes, the pending
purchase time is moved by the time change t' = tau + (t - tau) m_old / m_new, which is exact for a
Poisson process with a piecewise-constant rate and draws no new random numbers, so the scenario and its
baseline stay paired draw for draw (common random numbers).
"""

from __future__ import annotations

import numpy as np
import simpy

from sim.accounting.ledger import Ledger
from sim.accounting.tables import ReplicationResult, replication_result, transaction_table
from sim.engines import loops
from sim.engines.allocator import keep_freed_memory
from sim.engines.draws import Draws
from sim.model.acquisition import arrival_times, channel_names, cohort_index, month_batches, shards
from sim.model.calendar import month_of, month_starts, months_of
from sim.model.population import Population, SegmentLaws, draw_batch, keeps_traits, segment_laws
from sim.random import streams as rng
from sim.random.streams import Purpose
from sim.schema import Scenario
from sim.schema.policy import MAX_POINTS_PER_PURCHASE
from sim.schema.units import DAYS_PER_YEAR

INF = np.inf


class Engine:
    """Simulates one replication of a scenario with a policy (``docs/model.md``, ``docs/levers.md``)."""

    def __init__(self, scenario: Scenario, replication: int, *, record_transactions: bool = False,
                 shard: tuple[int, int] | None = None) -> None:
        """``shard=(k, n)``: simulate only the acquisition batches of shard ``k`` of ``n`` (see :func:`shards`)
        and the customers they refer; :func:`merge_shards` adds the shards up to the whole replication."""
        self.scenario = scenario
        self.replication = replication
        self.shard = shard
        self.batches = None if shard is None else shards(scenario, shard[1])[shard[0]]
        self.horizon = scenario.horizon_years
        self.months = scenario.horizon_months
        self.laws: list[SegmentLaws] = segment_laws(scenario)
        self.channels = channel_names(scenario)
        self.month_starts = month_starts(scenario.horizon_months)
        assert scenario.policy is not None, "scenarios without a program run on sim.engines.lifetimes"
        from sim.model.program import Program  # scipy's import is only paid by runs with a program

        self.program = Program(scenario, self.laws)
        self.draws = Draws(self.laws)
        planned = scenario.planned_customers() if self.batches is None else sum(self.batches.values())
        self.has_base = scenario.existing_customers is not None and (shard is None or shard[0] == 0)  # first shard
        extra = self.program.columns() + (("first_purchase",) if scenario.existing_customers is not None else ())
        self.pop = Population(planned, extra=extra)
        self.ledger = Ledger.for_scenario(scenario, len(self.channels), len(self.laws))
        self.has_referrals = any(law.referral_rate.mean > 0 for law in self.laws)
        self.has_per_purchase_dropout = any(law.dropout is not None for law in self.laws)
        self.now = 0.0
        self.events = 0
        self.transactions: list[tuple[np.ndarray, ...]] | None = [] if record_transactions else None
        # the program's calendar state: open blanket windows and running pull-forward dips
        self.open_windows: list = []
        self.dips: list = []
        self.blanket_depth = 0.0
        self.dip_factor = np.ones(len(self.laws))

    # -- calendar ---------------------------------------------------------------------------------
    def run(self) -> ReplicationResult:
        self.simulate()
        return self._result()

    def simulate(self) -> Ledger:
        """Run the calendar to the horizon; returns the closed ledger (a shard's share of the totals)."""
        keep_freed_memory()
        if self.has_base:
            with np.errstate(divide="ignore", over="ignore"):
                self._add_existing()
        env = simpy.Environment()
        env.process(self._acquisition_calendar(env))
        env.process(self._month_calendar(env))
        for window in self.program.windows:
            env.process(self._window_calendar(env, window))
        for target_round in self.program.target_rounds:
            env.process(self._target_calendar(env, target_round))
        # A zero rate gives an infinite waiting time, a tiny one an overflow to infinity: both mean "never".
        with np.errstate(divide="ignore", over="ignore"):
            env.run()
        self._close()
        return self.ledger

    def _acquisition_calendar(self, env: simpy.Environment):
        for month in range(self.months):
            yield env.timeout(month / 12.0 - env.now)
            self.advance_to(month / 12.0)
            self._acquire(month)

    def _month_calendar(self, env: simpy.Environment):
        for month in range(self.months):
            yield env.timeout((month + 1) / 12.0 - env.now)
            self.advance_to((month + 1) / 12.0)
            self._month_end(month)

    # -- arrivals ---------------------------------------------------------------------------------
    def _month_of(self, t: float) -> int:
        """The 0-based month a calendar date (years) opens (a month start belongs to its month)."""
        return int(month_of(t, self.month_starts))

    def _cohort(self, month: int, channel: int, segment: int) -> int:
        return cohort_index(month, channel, segment, len(self.channels), len(self.laws))

    def _acquire(self, month: int) -> None:
        scenario = self.scenario
        names = list(scenario.segments)
        keep = keeps_traits(scenario)
        for (channel_index, batch, segment, block), (offset, count, total) in month_batches(scenario, month):
            if self.batches is not None and (channel_index, batch, segment, block) not in self.batches:
                continue
            acq = scenario.acquisition[channel_index]
            times = arrival_times(batch, month, total, offset, offset + count)
            traits = draw_batch(self.laws[segment], segment, count,
                                (scenario.seed, self.replication, acq.channel, batch, names[segment], block),
                                keep=keep)
            cohort = self._cohort(month, channel_index, segment)
            self._add_customers(traits, times, cohort, month, acq.cac, referred=False)

    def _add_customers(self, traits: dict[str, np.ndarray], times: np.ndarray, cohort: int, month: int,
                       cac: float, *, referred: bool, parents: np.ndarray | None = None) -> np.ndarray:
        count = len(times)
        keys = traits["key"]
        bonus = None
        program = self.program
        segment = int(traits["segment"][0])
        member = program.joins(keys, segment, traits["rate"])
        members = int(np.count_nonzero(member))
        traits["member"] = member
        if program.points is not None:
            traits["redeemer"] = rng.uniform(keys, Purpose.REDEEMER, 0) < program.points.redeemer_share
        hazard = traits["hazard"] * self._arrival_dropout(member, 0, traits, segment)
        # the referral rate as the population holds it (float32), as sim.engines.lifetimes draws with it
        referral_rate = traits["referral_rate"].astype(np.float32)
        if program.referral is not None:
            referral_rate = (referral_rate * program.referral_factor(member, traits["spend_mean"])).astype(np.float32)
            if parents is not None:
                paid = program.referral.referrer_bonus + program.referral.referee_bonus
                bonus = np.where(self.pop.member[parents], paid, 0.0)
        if program.winback is not None:
            traits["winback_at"] = times + program.winback_delay
        if "first_purchase" in self.pop.columns:
            traits["first_purchase"] = times
        traits["spell_start"] = times
        traits["arrival_discount"] = self.ledger.discount(times)
        traits["parent_cohort"] = (np.full(count, -1, dtype=np.int32) if parents is None
                                   else self.pop.cohort[parents])
        traits.update(
            cohort=np.full(count, cohort, dtype=np.int32),
            acquired_at=times,
            next_purchase=times,             # the acquisition purchase, taken in the next round
            death=self.draws.lifetime_end(keys, times, hazard),
            referral_rate=referral_rate,
            referral_due=self.draws.referral_after(keys, 0, times, referral_rate),
            last_purchase=np.full(count, -INF),
            purchases=np.zeros(count, dtype=np.int32),
            referrals=np.zeros(count, dtype=np.int32),
        )
        self.ledger.record_arrivals(month, cohort, count, times, cac, referred, referral_bonus=bonus,
                                    members=members)
        ids = self.pop.append(traits)
        self.pop.mult[ids] = self._rate_multiplier(ids, times)
        self._refresh_deadline(ids)
        return ids

    def _add_existing(self) -> None:
        """The firm's existing customers at time 0 (:mod:`sim.model.existing`), with their history: the next
        purchase of the active ones pending (no purchase at time 0), their purchase count going on (every
        purchase a repeat purchase), their last purchase (win-back timing, points expiry), their trailing
        12-month spend (tiers from month 0), their repeat purchases and spend (the firm's scoring) and,
        if the table gives it, their points balance (members of a program already running)."""
        from sim.model.existing import opening_base

        for segment, base, traits in opening_base(self.scenario, self.replication, self.laws, self.draws):
            self._add_base(segment, base, traits)

    def _add_base(self, segment: int, base, traits: dict[str, np.ndarray]) -> None:
        """The existing customers of one segment (see :meth:`_add_existing`)."""
        scenario, program, keys = self.scenario, self.program, traits["key"]
        alive, pending = traits.pop("alive"), traits.pop("pending")
        made, first, last = traits.pop("made"), traits.pop("first_purchase"), traits.pop("last_purchase")
        count, zero = base.size, np.zeros(base.size)
        member = program.joins(keys, segment, traits["rate"])
        if program.points is not None:
            traits["redeemer"] = rng.uniform(keys, Purpose.REDEEMER, 0) < program.points.redeemer_share
            if base.points_balance is not None:   # a balance means a member of the program already running
                member |= base.points_balance > 0
                traits["points"] = base.points_balance * member
        traits["member"] = member
        referral_rate = traits["referral_rate"].astype(np.float32)
        if program.referral is not None:
            referral_rate = (referral_rate * program.referral_factor(member, traits["spend_mean"])).astype(np.float32)
        tier = np.zeros(count, dtype=np.int8)
        if len(program.tier_min):   # members start at the tier their trailing year reaches
            for minimum in program.tier_min:
                tier += base.spend_12m >= minimum
            tier *= member
            # the year before the start spread evenly over its months -11 .. -1 (month -12's slot is month 0's),
            # which leave the trailing window month by month
            traits["spend12"] = np.zeros((12, count), dtype=np.float32)
            traits["spend12"][1:] = (base.spend_12m / 12.0).astype(np.float32)
            traits["spend_12m"] = traits["spend12"][1:].astype(np.float64).sum(axis=0)
        traits["tier"] = tier
        hazard = traits["hazard"] * self._arrival_dropout(member, tier, traits, segment)
        if program.winback is not None:
            traits["winback_at"] = np.maximum(last + program.winback_delay, 0.0)
        cohort = self._cohort(0, len(scenario.acquisition), segment)
        traits.update(
            cohort=np.full(count, cohort, dtype=np.int32), parent_cohort=np.full(count, -1, dtype=np.int32),
            acquired_at=zero, first_purchase=first, spell_start=zero, arrival_discount=np.ones(count),
            next_purchase=pending,
            death=np.where(alive, self.draws.lifetime_end(keys, zero, hazard), -INF),   # -inf: gone before
            referral_rate=referral_rate, referral_due=self.draws.referral_after(keys, 0, zero, referral_rate),
            last_purchase=last, purchases=made.astype(np.int32), referrals=np.zeros(count, dtype=np.int32),
            repeat_spend=base.repeat_purchases * base.mean_repeat_spend,
        )
        self.ledger.record_existing(cohort, count, int(np.count_nonzero(alive)),
                                    members=int(np.count_nonzero(member & alive)))
        ids = self.pop.append(traits)
        mult = self._rate_multiplier(ids, 0.0)
        self.pop.mult[ids] = mult
        self.pop.next_purchase[ids] = pending / mult   # the same exponential draw, at the program's rate
        self._refresh_deadline(ids)
        self.pop.deadline[ids] = np.maximum(self.pop.deadline[ids], 0.0)   # what is overdue falls due at once

    # -- the interval advance ---------------------------------------------------------------------
    def advance_to(self, t_end: float) -> None:
        """Simulate every customer event in [now, t_end): purchases, dropouts, referrals (and their children)."""
        if t_end <= self.now:
            return
        month = self._month_of(self.now)
        pop = self.pop
        due = np.minimum(pop.view("next_purchase"), pop.view("deadline")) < t_end
        self._purchase_rounds(np.flatnonzero(due), t_end, month)
        if self.has_referrals:
            referrers = np.flatnonzero(pop.view("referral_due") < t_end)
            while referrers.size:
                children = self._referral_rounds(referrers, t_end, month)
                self._purchase_rounds(children, t_end, month)
                # only the children just born can still refer before t_end
                referrers = children[pop.referral_due[children] < t_end]
        self.now = t_end

    def _still_alive(self, ids: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The customers (and purchase times) whose hazard lifetime has not ended before the purchase;
        the others will never buy again."""
        alive = t < self.pop.death[ids]
        if alive.all():
            return ids, t
        self.pop.next_purchase[ids[~alive]] = INF
        return ids[alive], t[alive]

    def _referral_rounds(self, ids: np.ndarray, t_end: float, month: int) -> np.ndarray:
        """Organic referrals due before ``t_end``; returns the indices of the customers they brought."""
        pop = self.pop
        parents, times, numbers = [], [], []
        while ids.size:
            t = pop.referral_due[ids]
            alive = t < pop.death[ids]
            pop.referral_due[ids[~alive]] = INF
            ids, t = ids[alive], t[alive]
            made = pop.referrals[ids]
            parents.append(ids)
            times.append(t)
            numbers.append(made)
            pop.referrals[ids] = made + 1
            next_time = self.draws.referral_after(pop.key[ids], made + 1, t, pop.referral_rate[ids])
            pop.referral_due[ids] = next_time
            self.events += ids.size
            ids = ids[next_time < t_end]
        parent = np.concatenate(parents) if parents else np.empty(0, dtype=np.int64)
        if not parent.size:  # every due referrer had dropped out
            return parent
        born = np.concatenate(times)
        children = []
        for chosen, segment, traits in self.draws.children(pop.key[parent], np.concatenate(numbers),
                                                           pop.segment[parent]):
            cohort = self._cohort(month, len(self.channels) - 1, segment)
            children.append(self._add_customers(traits, born[chosen], cohort, month, 0.0, referred=True,
                                                parents=parent[chosen]))
        return np.concatenate(children)

    # -- the program: customers' rounds with deadlines --------------------------------------------
    def _purchase_rounds(self, ids: np.ndarray, t_end: float, month: int) -> None:
        """Rounds when a policy acts: each due customer takes the earlier of its purchase and its deadline."""
        pop = self.pop
        while ids.size:
            t_buy = pop.next_purchase[ids]
            t_own = pop.deadline[ids]
            buy = t_buy <= t_own
            if buy.any():
                self._program_purchases(ids[buy], t_buy[buy], month)
            if not buy.all():
                self._deadlines(ids[~buy], t_own[~buy], month)
            ids = ids[np.minimum(pop.next_purchase[ids], pop.deadline[ids]) < t_end]

    def _program_purchases(self, ids: np.ndarray, t: np.ndarray, month: int) -> None:
        """Purchases at ``t``: order values, discounts, points, the customers' new rates and deadlines.

        Each column is read once and what changes is written once; the rate multiplier and deadline are
        computed from these values (after a purchase nobody holds an offer any more: it was just used).
        """
        pop, program, ledger = self.pop, self.program, self.ledger
        ids, t = self._still_alive(ids, t)
        if not ids.size:
            return
        made, keys, segment = pop.purchases[ids], pop.key[ids], pop.segment[ids]
        repeat = made > 0
        acquired_at, cohort, parent = pop.acquired_at[ids], pop.cohort[ids], pop.parent_cohort[ids]
        member, tier = pop.member[ids], pop.tier[ids]
        value = self.draws.order_values(keys, made, segment, pop.spend_mean[ids], t, acquired_at)
        factors = ledger.factors(t, acquired_at, pop.arrival_discount[ids])
        growth = None
        if self.draws.has_growth:   # the growth each value includes, by the same compiled formula
            growth = loops.grow_order_values(np.ones(ids.size), self.draws.log_growth,
                                             np.ascontiguousarray(segment, dtype=np.uint8), t, acquired_at)
        ledger.record_purchases(month, cohort, t, acquired_at, value, repeat, parent=parent, member=member,
                                factors=factors, growth=growth)
        # discounts: the deeper of an open blanket window and a held personal offer (used up now)
        offer_until = pop.offer_until[ids]
        held = np.flatnonzero(offer_until > t)
        depth = np.full(ids.size, self.blanket_depth)
        if held.size:
            depth[held] = np.maximum(depth[held], pop.offer_depth[ids[held]])
            offer_until[held] = -INF
            pop.offer_until[ids[held]] = -INF
        discounted = depth > 0
        paid = value * (1.0 - depth)
        times_discounted = pop.discounted[ids]
        if discounted.any():
            ledger.record_cost("discount_cost", month, cohort, t, acquired_at, value - paid, parent=parent,
                               factors=factors)
            times_discounted += discounted
            pop.discounted[ids] = times_discounted
        earned = redeemed = np.zeros(ids.size)
        balance = redeemer = None
        if program.points is not None:
            balance, redeemer = pop.points[ids], pop.redeemer[ids]
            if member.any():
                points = program.points
                rewards = balance // points.reward_threshold * (member & redeemer)
                redeemed = rewards * points.reward_threshold
                earned = np.minimum(np.floor(paid * points.earn_per_currency * program.tier_earn[tier]),
                                    MAX_POINTS_PER_PURCHASE)
                earned = (earned * member).astype(np.int64)
                balance = balance - redeemed + earned
                pop.points[ids] = balance
                if rewards.any():
                    ledger.record_cost("reward_cost", month, cohort, t, acquired_at,
                                       rewards * (points.reward_value * points.reward_cost_ratio), parent=parent,
                                       factors=factors)
                ledger.record_points(month, earned=int(earned.sum()), redeemed=int(redeemed.sum()))
        if self.transactions is not None:
            self.transactions.append((ids.copy(), t, value, value - paid, earned, redeemed))
        if len(program.tier_min):
            paid32 = paid.astype(np.float32)   # the total holds exactly the ring's float32 values
            ring = pop.spend12[month % 12]
            ring[ids] += paid32
            pop.spend_12m[ids] += paid32
        pop.repeat_spend[ids] += value * repeat
        pop.purchases[ids] = made + 1
        pop.last_purchase[ids] = t
        winback_at = None
        if program.winback is not None:
            winback_at = t + program.winback_delay
            pop.winback_at[ids] = winback_at
        offered = bool(self.open_windows)
        mult = self._multiplier(ids, member, tier, balance, redeemer, segment, times_discounted, offered,
                                self.blanket_depth)
        pop.mult[ids] = mult
        next_time = self.draws.next_purchase(keys, made, t, pop.rate[ids] * mult)
        if self.has_per_purchase_dropout:
            chance = np.minimum(1.0, pop.dropout_p[ids] * self._dropout_multiplier(ids))
            drops = self.draws.drops(keys, made, chance)
            if drops.any():
                pop.death[ids[drops]] = t[drops]
                next_time[drops] = INF
        pop.next_purchase[ids] = next_time
        pop.deadline[ids] = self._deadline_of(offer_until, winback_at, balance, t)
        self.events += ids.size

    def _deadlines(self, ids: np.ndarray, t: np.ndarray, month: int) -> None:
        """Customers' own deadlines at ``t``: points expiring, an offer running out, a win-back offer."""
        pop, program, ledger = self.pop, self.program, self.ledger
        if program.expiry is not None:
            expiring = (pop.points[ids] > 0) & (pop.last_purchase[ids] + program.expiry <= t)
            if expiring.any():
                gone = ids[expiring]
                ledger.record_points(month, expired=int(pop.points[gone].sum()))
                pop.points[gone] = 0
        ended = pop.offer_until[ids] <= t
        pop.offer_until[ids[ended]] = -INF
        revived = np.empty(0, dtype=ids.dtype)
        revived_t = np.empty(0)
        if program.winback is not None:
            sending = pop.winback_at[ids] <= t
            if sending.any():
                revived, revived_t = self._send_winback(ids[sending], t[sending], month)
        # rates changed (progress reset, offer gone or given): move the pending purchases (time change)
        self._rescale(ids, t)
        if revived.size:
            mult = self._rate_multiplier(revived, revived_t)
            pop.mult[revived] = mult
            pop.next_purchase[revived] = revived_t + rng.exponential(
                pop.key[revived], Purpose.REACTIVATION, 3 * pop.lives[revived].astype(np.int64) + 1,
            ) / (pop.rate[revived] * mult)
        self._refresh_deadline(ids)
        self.events += ids.size

    def _send_winback(self, ids: np.ndarray, t: np.ndarray, month: int) -> tuple[np.ndarray, np.ndarray]:
        """Win-back offers to customers inactive for ``inactive_days``; returns the reactivated ones."""
        pop, offer = self.pop, self.program.winback
        pop.winback_at[ids] = INF  # once per inactivity spell
        cohort, acquired_at, parent = pop.cohort[ids], pop.acquired_at[ids], pop.parent_cohort[ids]
        if offer.message_cost:
            self.ledger.record_cost("message_cost", month, cohort, t, acquired_at,
                                    np.full(ids.size, offer.message_cost), parent=parent)
        dead = pop.death[ids] <= t
        lives = pop.lives[ids].astype(np.int64)
        back = dead & (rng.uniform(pop.key[ids], Purpose.REACTIVATION, 3 * lives)
                       < self.scenario.response.winback_reactivation)
        revived, revived_t = ids[back], t[back]
        if revived.size:
            earlier = np.full(revived.size, -1, dtype=np.int64)   # -1: gone before the start (none counted)
            counted = pop.death[revived] > -INF
            earlier[counted] = self._months_of_deaths(pop.death[revived[counted]])
            self.ledger.record_reactivations(month, earlier, pop.member[revived])
            self.ledger.record_alive_years(pop.cohort[revived], pop.acquired_at[revived], pop.spell_start[revived],
                                           pop.death[revived])   # the spell that ended
            if self._charges_membership:   # the closed spell's part of this month: month end sees the new one
                closed = pop.member[revived] & (pop.death[revived] > -INF)   # gone before the start: no spell
                members, died = revived[closed], pop.death[revived[closed]]
                begin = np.maximum(pop.spell_start[members], month / 12.0)
                self._charge_membership(members, month, np.maximum(0.0, died - begin), (begin + died) / 2.0)
            pop.spell_start[revived] = revived_t
            lifetime = rng.exponential(pop.key[revived], Purpose.REACTIVATION, 3 * lives[back] + 2)
            hazard = pop.hazard[revived] * self._dropout_multiplier(revived)
            pop.death[revived] = revived_t + lifetime / hazard
            pop.lives[revived] = np.minimum(lives[back] + 1, 255)
            pop.referral_due[revived] = revived_t + rng.exponential(
                pop.key[revived], Purpose.REFERRAL_TIME, 1_000_000 + lives[back]) / pop.referral_rate[revived]
        receiving = ~dead | back
        self._give_offer(ids[receiving], t[receiving], offer.depth, offer.valid_days)
        return revived, revived_t

    def _give_offer(self, ids: np.ndarray, t: np.ndarray | float, depth: float, valid_days: float) -> None:
        """A single-use coupon, valid for ``valid_days``; a held one keeps the better terms of the two."""
        pop = self.pop
        held = pop.offer_until[ids] > t
        until = t + valid_days / DAYS_PER_YEAR
        pop.offer_depth[ids] = np.where(held, np.maximum(pop.offer_depth[ids], depth), depth)
        pop.offer_until[ids] = np.where(held, np.maximum(pop.offer_until[ids], until), until)

    def _rate_multiplier(self, ids: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        """Each customer's purchase-rate multiplier at ``t`` (docs/levers.md, "How multipliers combine")."""
        pop, program = self.pop, self.program
        points = program.points is not None
        held = pop.offer_until[ids] > t
        offered = True if self.open_windows else held
        depth = np.maximum(self.blanket_depth if self.open_windows else 0.0,
                           np.where(held, pop.offer_depth[ids], 0.0))
        return self._multiplier(ids, pop.member[ids], pop.tier[ids], pop.points[ids] if points else None,
                                pop.redeemer[ids] if points else None, pop.segment[ids], pop.discounted[ids],
                                offered, depth)

    def _multiplier(self, ids: np.ndarray | slice, member: np.ndarray, tier: np.ndarray,
                    points: np.ndarray | None, redeemer: np.ndarray | None, segment: np.ndarray,
                    discounted: np.ndarray, offered: np.ndarray | bool, depth: np.ndarray | float) -> np.ndarray:
        """The purchase-rate multiplier of customers ``ids`` (a slice: all) in these states: membership and
        tier, progress to the next reward (goal gradient), and an offer of ``depth`` (personal or a window)
        or else full price (dips and habituation after ``discounted`` discounted purchases)."""
        program, pop = self.program, self.pop
        rate, spend_mean = pop.rate[ids], pop.spend_mean[ids]
        inputs = program.inputs(tier, rate, spend_mean, segment) if program.uses_value_curves else None
        mult = program.member_rate(member, tier, rate, spend_mean, segment, inputs)
        if program.has_goal_gradient:  # redeeming members only
            progress = np.minimum(points / program.points.reward_threshold, 1.0)
            gradient = program.goal_gradient(tier, rate, spend_mean, segment, inputs)
            mult *= 1.0 + gradient * progress * (member & redeemer)
        if offered is True:
            mult *= program.uplift(segment, depth)
            return mult
        full_price = self.dip_factor[segment]
        if program.habituation:  # max(floor, (1 - h)^n) by table: n beyond the floor reads the last entry
            table = program.habituation_table
            full_price = full_price * table[np.minimum(discounted, len(table) - 1)]
        mult *= full_price if offered is False else np.where(offered, program.uplift(segment, depth), full_price)
        return mult

    def _arrival_dropout(self, member: np.ndarray, tier: np.ndarray | int, traits: dict[str, np.ndarray],
                         segment: int) -> np.ndarray:
        """The dropout multiplier of arriving customers from their traits as the population holds them
        (float32), so that a member's multiplier is one number at arrival and at every later change."""
        rate, spend_mean = traits["rate"].astype(np.float32), traits["spend_mean"].astype(np.float32)
        return self.program.member_dropout(member, tier, rate, spend_mean, segment)

    def _dropout_multiplier(self, ids: np.ndarray) -> np.ndarray:
        """The dropout multiplier of customers ``ids`` from their membership and tier."""
        pop = self.pop
        return self.program.member_dropout(pop.member[ids], pop.tier[ids], pop.rate[ids], pop.spend_mean[ids],
                                           pop.segment[ids])

    def _rescale(self, ids: np.ndarray, t: np.ndarray | float) -> None:
        """New rate multipliers at ``t`` of customers with a pending Poisson purchase, which moves by the
        exact time change (the dropped-out have none; the acquisition purchase is at arrival whatever the
        rate). Whoever starts buying again later gets its multiplier computed then."""
        pop = self.pop
        pending = pop.next_purchase[ids]
        live = np.isfinite(pending) & (pop.purchases[ids] > 0)
        if not live.all():
            ids, pending = ids[live], pending[live]
            if isinstance(t, np.ndarray):
                t = t[live]
        new = self._rate_multiplier(ids, t)
        old = pop.mult[ids]
        changed = new != old
        if changed.any():
            start = t[changed] if isinstance(t, np.ndarray) else t
            pop.next_purchase[ids[changed]] = start + (pending[changed] - start) * (old[changed] / new[changed])
        pop.mult[ids] = new

    def _refresh_deadline(self, ids: np.ndarray) -> None:
        """The earliest of each customer's own deadlines."""
        pop, program = self.pop, self.program
        pop.deadline[ids] = self._deadline_of(
            pop.offer_until[ids], pop.winback_at[ids] if program.winback is not None else None,
            pop.points[ids] if program.expiry is not None else None, pop.last_purchase[ids])

    def _deadline_of(self, offer_until: np.ndarray, winback_at: np.ndarray | None, points: np.ndarray | None,
                     last_purchase: np.ndarray) -> np.ndarray:
        """The earliest of an offer running out, a win-back offer going out and points expiring."""
        program = self.program
        deadline = np.where(offer_until > -INF, offer_until, INF)
        if program.winback is not None:
            np.minimum(deadline, winback_at, out=deadline)
        if program.expiry is not None:
            np.minimum(deadline, np.where(points > 0, last_purchase + program.expiry, INF), out=deadline)
        return deadline

    # -- the program: calendar events -------------------------------------------------------------
    def _window_calendar(self, env: simpy.Environment, window):
        """A blanket discount window: open, close, then the pull-forward dip of each segment."""
        yield env.timeout(window.start - env.now)
        self.advance_to(window.start)
        self.open_windows.append(window)
        self._calendar_change(window.start)
        if window.end >= self.horizon:
            return
        yield env.timeout(window.end - env.now)
        self.advance_to(window.end)
        self.open_windows.remove(window)
        self.dips.append(window)
        self._calendar_change(window.end)
        for dip_end in sorted(set(window.dip_end[window.dip_end > window.end].tolist())):
            if dip_end >= self.horizon:
                return
            yield env.timeout(dip_end - env.now)
            self.advance_to(dip_end)
            self._calendar_change(dip_end)
        self.dips.remove(window)

    def _calendar_change(self, t: float) -> None:
        """Blanket windows or dips changed at ``t``: recompute everybody's rate and move pending purchases
        (as :meth:`_rescale` does, over whole columns rather than gathered customers)."""
        self.blanket_depth = max((w.depth for w in self.open_windows), default=0.0)
        factor = np.ones(len(self.laws))
        for window in self.dips:
            factor *= np.where(window.dip_end > t, window.dip_factor, 1.0)
        self.dip_factor = factor
        pop, points = self.pop, self.program.points is not None
        pending, old = pop.view("next_purchase"), pop.view("mult")
        live = np.isfinite(pending) & (pop.view("purchases") > 0)
        held = pop.view("offer_until") > t
        offered = True if self.open_windows else held
        depth = np.maximum(self.blanket_depth if self.open_windows else 0.0,
                           np.where(held, pop.view("offer_depth"), 0.0))
        new = self._multiplier(slice(0, pop.size), pop.view("member"), pop.view("tier"),
                               pop.view("points") if points else None, pop.view("redeemer") if points else None,
                               pop.view("segment"), pop.view("discounted"), offered, depth)
        changed = live & (new != old)
        with np.errstate(invalid="ignore"):  # the dropped-out (pending = inf) are not changed
            np.copyto(pending, t + (pending - t) * (old / new), where=changed)
        np.copyto(old, new, where=live)

    def _target_calendar(self, env: simpy.Environment, target_round):
        """A targeted-offer round: score every customer from its observable history, send to the top share."""
        t, offer = target_round.time, target_round.offer
        yield env.timeout(t - env.now)
        self.advance_to(t)
        from sim.model.scoring import Observed, select_observed

        pop = self.pop
        month = self._month_of(t)
        # customers arriving right now make their acquisition purchase before the firm's round
        arriving = np.flatnonzero((pop.view("purchases") == 0) & (pop.view("next_purchase") == t))
        if arriving.size:
            self._program_purchases(arriving, np.full(arriving.size, t), month)
        scored = np.flatnonzero(pop.view("acquired_at") <= t)   # every customer acquired so far
        if not scored.size:
            return
        first = pop.first_purchase if "first_purchase" in pop.columns else pop.acquired_at
        observed = Observed(pop.segment, pop.purchases, first, pop.last_purchase, pop.repeat_spend, pop.key, scored)
        chosen, = select_observed(self.laws, [observed], t, target=offer.target, share=offer.share)
        count = chosen.size
        if not count:
            return
        if offer.message_cost:
            self.ledger.record_cost("message_cost", month, pop.cohort[chosen], np.full(count, t),
                                    pop.acquired_at[chosen], np.full(count, offer.message_cost),
                                    parent=pop.parent_cohort[chosen])
        alive = chosen[pop.death[chosen] > t]
        self._give_offer(alive, t, offer.depth, offer.valid_days)
        self._rescale(alive, t)
        self._refresh_deadline(alive)
        self.events += count

    def _month_end(self, month: int) -> None:
        """Month-end accounting of the program: member and tier costs, fixed cost, tiers, points stocks."""
        pop, program, ledger = self.pop, self.program, self.ledger
        start, end = month / 12.0, (month + 1) / 12.0
        member = pop.view("member")
        costs = program.policy.costs
        tiers = len(program.tier_min)
        if self._charges_membership:
            ids = np.flatnonzero(member & (pop.view("death") > start))  # members active at some time in the month
            begin = np.maximum(pop.spell_start[ids], start)
            finish = np.minimum(pop.death[ids], end)
            self._charge_membership(ids, month, np.maximum(0.0, finish - begin), (begin + finish) / 2.0)
        if costs.fixed_per_month and (self.shard is None or self.shard[0] == 0):   # once, not per shard
            ledger.record_fixed_cost("program_fixed_cost", month, costs.fixed_per_month, (start + end) / 2.0)
        if tiers:
            self._evaluate_tiers(np.flatnonzero(member), month, end)
        if program.points is not None:
            outstanding = int(pop.view("points").sum())
            ledger.set_stock("points_outstanding", month, outstanding)
            ledger.set_stock("points_liability", month, outstanding * self._liability_per_point())

    @property
    def _charges_membership(self) -> bool:
        program = self.program
        return bool(program.policy.costs.per_member_per_year or (len(program.tier_min)
                                                                 and program.tier_benefit.any()))

    def _charge_membership(self, ids: np.ndarray, month: int, years: np.ndarray, middle: np.ndarray) -> None:
        """Member cost and tier benefit cost of ``years`` of membership of each of ``ids`` in ``month``,
        discounted at ``middle``."""
        pop, program = self.pop, self.program
        factors = self.ledger.factors(middle, pop.acquired_at[ids], pop.arrival_discount[ids])
        amounts = {}
        if program.policy.costs.per_member_per_year:
            amounts["member_cost"] = years * program.policy.costs.per_member_per_year
        if len(program.tier_min) and program.tier_benefit.any():
            amounts["tier_benefit_cost"] = years * program.tier_benefit[pop.tier[ids]]
        self.ledger.record_costs(amounts, month, pop.cohort[ids], factors, parent=pop.parent_cohort[ids])

    def _evaluate_tiers(self, members: np.ndarray, month: int, t: float) -> None:
        """Members hold the highest tier their trailing 12-month net spend reaches, until the next month end."""
        pop, program = self.pop, self.program
        spend = pop.spend_12m[members]
        tier = np.zeros(members.size, dtype=np.int8)
        for minimum in program.tier_min:    # the number of thresholds reached (they rise with the tier)
            tier += spend >= minimum
        changed = members[tier != pop.tier[members]]
        if changed.size:
            old_dropout = self._dropout_multiplier(changed)
            pop.tier[changed] = tier[tier != pop.tier[members]]
            self._rescale(changed, t)
            living = changed[pop.death[changed] > t]
            if living.size:  # hazard dropout: the same time change on the pending lifetime
                with np.errstate(divide="ignore", invalid="ignore"):  # a multiplier 0 means no dropout
                    ratio = old_dropout[pop.death[changed] > t] / self._dropout_multiplier(living)
                finite = np.isfinite(pop.death[living])
                moved = living[finite]
                pop.death[moved] = t + (pop.death[moved] - t) * ratio[finite]
        # the month that leaves the trailing window
        leaving = pop.columns["spend12"][(month + 1) % 12, : pop.size]
        pop.columns["spend_12m"][: pop.size] -= leaving
        leaving[:] = 0.0

    def _liability_per_point(self) -> float:
        """Cost of an outstanding point net of expected breakage, estimated as the non-redeemers' share."""
        return self.program.liability_per_point()

    def _months_of_deaths(self, death: np.ndarray) -> np.ndarray:
        """The months in which dropouts at ``death`` (years, before the horizon) are counted."""
        return months_of(np.ascontiguousarray(death, dtype=np.float64), self.month_starts)

    # -- the end ----------------------------------------------------------------------------------
    def _close(self) -> None:
        pop = self.pop
        death = pop.view("death")
        dead = death < self.horizon
        alive_end_cohorts = pop.view("cohort")[~dead]
        dead &= death > -INF   # existing customers gone before the start left no dropout in the horizon
        self.events += int(np.count_nonzero(dead))
        death_month = self._months_of_deaths(death[dead])
        self.ledger.record_exits(death_month, alive_end_cohorts)
        self.ledger.record_alive_years(pop.view("cohort"), pop.view("acquired_at"), pop.view("spell_start"), death)
        self.ledger.close(death_month[pop.view("member")[dead]])

    def _result(self) -> ReplicationResult:
        return replication_result(self.scenario, self.replication, self.ledger, self.events,
                                  transaction_table(self.transactions))
