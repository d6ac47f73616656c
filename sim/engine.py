"""The fast engine: simpy owns the calendar, numpy owns the customers.

Time base: **years** from the scenario start (a month is exactly 1/12). simpy processes wake at calendar
dates (acquisition batches at month starts, month ends; policy events later). Between two calendar dates
every customer's rates are constant except for its own events, so :meth:`Engine.advance_to` moves the whole
population over the interval exactly, in rounds: every customer whose next event falls before the interval
end takes it together (vectorised), draws its next event time from its own keyed stream, and stays in the
round set only while it is still due. Work is proportional to events, not to customers x time steps, and
there is no discretisation: purchases form a Poisson process per customer (Fader, Hardie & Lee 2005).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from sim import rng
from sim.accounting import Ledger
from sim.population import (
    Population,
    SegmentLaws,
    draw_batch,
    draw_children,
    segment_laws,
)
from sim.rng import Purpose
from sim.scenario import REFERRAL_CHANNEL, Scenario

INF = np.inf


@dataclass
class ReplicationResult:
    """What one replication produces: small aggregated tables, never per-customer arrays (but transactions)."""

    replication: int
    totals: dict[str, float]
    monthly: dict[str, np.ndarray]
    cohorts: dict[str, np.ndarray]      # one entry per non-empty cohort
    events: int                         # purchases + referrals + dropouts simulated
    transactions: dict[str, np.ndarray] | None = None


class Engine:
    """Simulates one replication of a scenario without policy levers (SPEC "Model semantics")."""

    def __init__(self, scenario: Scenario, replication: int, *, record_transactions: bool = False) -> None:
        if scenario.policy is not None:
            raise NotImplementedError("policy levers are not simulated by this version of the engine")
        self.scenario = scenario
        self.replication = replication
        self.horizon = scenario.horizon_years
        self.months = scenario.horizon_months
        self.laws: list[SegmentLaws] = segment_laws(scenario)
        self.channels = [a.channel for a in scenario.acquisition] + [REFERRAL_CHANNEL]
        self.pop = Population(scenario.planned_customers())
        economics = scenario.economics
        self.ledger = Ledger(self.months, self.months * len(self.channels) * len(self.laws),
                             economics.gross_margin, economics.cost_to_serve_per_order,
                             economics.annual_discount_rate)
        self.spend_rng = rng.replication_generator(scenario.seed, replication, "order-values")
        self.within_shape = np.array([law.spend.p or 0.0 for law in self.laws])
        self.single_within_shape = bool(np.all(self.within_shape == self.within_shape[0]))
        self.growth = np.array([law.spend.growth_per_year for law in self.laws])
        self.has_referrals = any(law.referral_rate.mean > 0 for law in self.laws)
        self.has_per_purchase_dropout = any(law.dropout is not None for law in self.laws)
        self.now = 0.0
        self.events = 0
        self.transactions: list[tuple[np.ndarray, ...]] | None = [] if record_transactions else None

    # -- calendar ---------------------------------------------------------------------------------
    def run(self) -> ReplicationResult:
        env = simpy.Environment()
        env.process(self._acquisition_calendar(env))
        env.process(self._month_calendar(env))
        # A zero rate gives an infinite waiting time, a tiny one an overflow to infinity: both mean "never".
        with np.errstate(divide="ignore", over="ignore"):
            env.run()
        return self._result()

    def _acquisition_calendar(self, env: simpy.Environment):
        for month in range(self.months):
            yield env.timeout(month / 12.0 - env.now)
            self.advance_to(month / 12.0)
            self._acquire(month)

    def _month_calendar(self, env: simpy.Environment):
        for month in range(self.months):
            yield env.timeout((month + 1) / 12.0 - env.now)
            self.advance_to((month + 1) / 12.0)

    # -- arrivals ---------------------------------------------------------------------------------
    def _cohort(self, month: int, channel: int, segment: int) -> int:
        return (month * len(self.channels) + channel) * len(self.laws) + segment

    def _acquire(self, month: int) -> None:
        scenario = self.scenario
        names = list(scenario.segments)
        for channel_index, acq in enumerate(scenario.acquisition):
            mix = scenario.segment_mix(acq)
            batches = [(0, acq.initial_customers)] if month == 0 else []
            if month < scenario.acquisition_months(acq):
                batches.append((month + 1, acq.new_per_month))
            for batch, total in batches:
                counts = _allocate(total, [mix.get(n, 0.0) for n in names])
                for segment, count in enumerate(counts):
                    if count == 0:
                        continue
                    times = _arrival_times(batch, month, count)
                    seq = rng.batch_sequence(scenario.seed, self.replication, acq.channel, batch, names[segment])
                    traits = draw_batch(self.laws[segment], segment, count, seq)
                    cohort = self._cohort(month, channel_index, segment)
                    self._add_customers(traits, times, cohort, month, acq.cac, referred=False)

    def _add_customers(self, traits: dict[str, np.ndarray], times: np.ndarray, cohort: int, month: int,
                       cac: float, *, referred: bool) -> np.ndarray:
        count = len(times)
        keys = traits["key"]
        lifetime = rng.exponential(keys, Purpose.LIFETIME, 0) / traits["hazard"]
        first_referral = rng.exponential(keys, Purpose.REFERRAL_TIME, 0) / traits["referral_rate"]
        traits.update(
            cohort=np.full(count, cohort, dtype=np.int32),
            acquired_at=times,
            next_purchase=times,             # the acquisition purchase, taken in the next round
            death=times + lifetime,
            referral_due=times + first_referral,
            last_purchase=np.full(count, -INF),
            purchases=np.zeros(count, dtype=np.int32),
            referrals=np.zeros(count, dtype=np.int32),
        )
        self.ledger.record_arrivals(month, cohort, count, times, cac, referred)
        return self.pop.append(traits)

    # -- the interval advance ---------------------------------------------------------------------
    def advance_to(self, t_end: float) -> None:
        """Simulate every customer event in [now, t_end): purchases, dropouts, referrals (and their children)."""
        if t_end <= self.now:
            return
        month = min(int(self.now * 12.0 + 1e-9), self.months - 1)
        pop = self.pop
        self._purchase_rounds(np.flatnonzero(pop.view("next_purchase") < t_end), t_end, month)
        if self.has_referrals:
            referrers = np.flatnonzero(pop.view("referral_due") < t_end)
            while referrers.size:
                children = self._referral_rounds(referrers, t_end, month)
                self._purchase_rounds(children, t_end, month)
                # only the children just born can still refer before t_end
                referrers = children[pop.referral_due[children] < t_end]
        self.now = t_end

    def _purchase_rounds(self, ids: np.ndarray, t_end: float, month: int) -> None:
        pop = self.pop
        while ids.size:
            t = pop.next_purchase[ids]
            alive = t < pop.death[ids]
            if not alive.all():  # hazard dropout came first
                pop.next_purchase[ids[~alive]] = INF
                ids, t = ids[alive], t[alive]
                if not ids.size:
                    return
            made = pop.purchases[ids]
            repeat = made > 0
            value = self._order_values(ids, t)
            self.ledger.record_purchases(month, pop.cohort[ids], t, pop.acquired_at[ids], value, repeat)
            if self.transactions is not None:
                self.transactions.append((ids.copy(), t, value))
            pop.purchases[ids] = made + 1
            pop.last_purchase[ids] = t
            keys = pop.key[ids]
            next_time = t + rng.exponential(keys, Purpose.INTERPURCHASE, made) / pop.rate[ids]
            if self.has_per_purchase_dropout:
                drops = repeat & (rng.uniform(keys, Purpose.DROPOUT, made) < pop.dropout_p[ids])
                if drops.any():
                    pop.death[ids[drops]] = t[drops]
                    next_time[drops] = INF
            pop.next_purchase[ids] = next_time
            self.events += ids.size
            ids = ids[next_time < t_end]

    def _order_values(self, ids: np.ndarray, t: np.ndarray) -> np.ndarray:
        """List-price order values: own mean x Gamma(p, 1) / p (Gamma-Gamma) x (1 + growth)^tenure."""
        pop = self.pop
        value = pop.spend_mean[ids].astype(np.float64)
        shapes = self.within_shape
        if self.single_within_shape:
            if shapes[0] > 0:
                value *= self.spend_rng.standard_gamma(shapes[0], size=ids.size) / shapes[0]
        else:  # a scalar shape per segment: numpy's gamma is far slower with an array of shapes
            segment = pop.segment[ids]
            for index in np.flatnonzero(shapes > 0):
                chosen = np.flatnonzero(segment == index)
                value[chosen] *= self.spend_rng.standard_gamma(shapes[index], size=chosen.size) / shapes[index]
        if self.growth.any():
            value *= (1.0 + self.growth[pop.segment[ids]]) ** (t - pop.acquired_at[ids])
        return value

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
            next_time = t + rng.exponential(pop.key[ids], Purpose.REFERRAL_TIME, made + 1) / pop.referral_rate[ids]
            pop.referral_due[ids] = next_time
            self.events += ids.size
            ids = ids[next_time < t_end]
        parent = np.concatenate(parents) if parents else np.empty(0, dtype=np.int64)
        if not parent.size:  # every due referrer had dropped out
            return parent
        born = np.concatenate(times)
        keys = rng.child_keys(pop.key[parent], np.concatenate(numbers))
        target = np.array([law.referral_segment for law in self.laws])[pop.segment[parent]]
        children = []
        for segment in np.unique(target):
            chosen = target == segment
            traits = draw_children(self.laws[segment], int(segment), keys[chosen])
            cohort = self._cohort(month, len(self.channels) - 1, int(segment))
            children.append(self._add_customers(traits, born[chosen], cohort, month, 0.0, referred=True))
        return np.concatenate(children)

    # -- the end ----------------------------------------------------------------------------------
    def _result(self) -> ReplicationResult:
        pop, months = self.pop, self.months
        death = pop.view("death")
        dead = death < self.horizon
        self.events += int(np.count_nonzero(dead))
        cohort = pop.view("cohort")
        arrival_month = cohort // (len(self.channels) * len(self.laws))
        death_month = np.minimum((death[dead] * 12.0).astype(np.int64), months - 1)
        self.ledger.close(arrival_month, death_month, cohort, ~dead)
        return ReplicationResult(
            replication=self.replication,
            totals=self.ledger.totals(),
            monthly=self.ledger.monthly_table(),
            cohorts=self._cohort_table(),
            events=self.events,
            transactions=self._transaction_table(),
        )

    def _cohort_table(self) -> dict[str, np.ndarray]:
        sums = self.ledger.cohort
        present = np.flatnonzero(sums["customers"])
        customers = sums["customers"][present]
        per_month = len(self.channels) * len(self.laws)
        names = list(self.scenario.segments)
        return {
            "acquisition_month": present // per_month,
            "channel": np.array([self.channels[(i % per_month) // len(self.laws)] for i in present], dtype=object),
            "segment": np.array([names[i % len(self.laws)] for i in present], dtype=object),
            "customers": customers.astype(np.int64),
            "repeat_purchases": sums["repeat_purchases"][present].astype(np.int64),
            "net_revenue": sums["net_revenue"][present],
            "clv": (sums["clv"][present] - self.ledger.cohort_program_cost()[present]) / customers,
            "cac": sums["cac"][present] / customers,
            "active_end": sums["active_end"][present].astype(np.int64),
        }

    def _transaction_table(self) -> dict[str, np.ndarray] | None:
        if self.transactions is None:
            return None
        if not self.transactions:
            empty = np.empty(0)
            return {"customer_id": empty.astype(np.int64), "time": empty, "amount": empty}
        ids, times, values = (np.concatenate(parts) for parts in zip(*self.transactions))
        order = np.lexsort((times, ids))
        return {"customer_id": ids[order], "time": times[order], "amount": values[order]}


def _allocate(total: int, shares: list[float]) -> list[int]:
    """Split ``total`` customers by ``shares`` exactly (largest remainder), so counts never drift."""
    raw = np.array(shares) * total
    counts = np.floor(raw).astype(np.int64)
    short = total - int(counts.sum())
    if short:
        counts[np.argsort(-(raw - counts), kind="stable")[:short]] += 1
    return counts.tolist()


def _arrival_times(batch: int, month: int, count: int) -> np.ndarray:
    """Initial customers (batch 0) arrive at time 0; a month's new customers evenly over the month."""
    if batch == 0:
        return np.zeros(count)
    return (month + (np.arange(count) + 0.5) / count) / 12.0
