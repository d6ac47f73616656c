"""The engine without a program: each customer simulated from its arrival to the horizon, in a pool.

Time base: **years** from the scenario start (a month is exactly 1/12). Without a policy nothing on the
calendar changes anybody's behaviour and customers do not interact, so a customer's whole life can be
simulated as soon as it is drawn. It is the model of the calendar engine (:mod:`sim.engine`, which a
program needs), with the same keyed draws (:mod:`sim.draws`) and the same months, so the two pair exactly.
Events still happen one by one in continuous time: no time step, no discretisation.

The pool holds up to :data:`SLOTS` customers as compact columns (:mod:`sim.allocator` keeps numpy's
temporaries of that size from costing page faults). Each round, every customer in the pool makes its
pending purchase (order value, accounting by month, dropout coin) and draws the next one. A customer
whose next purchase would come at or after its dropout or the horizon leaves: its sums go to the ledger,
the next customer of the queue takes its slot, and its referrals over its whole life are drawn a little
later together with other leavers' (the customers they bring join the front of the queue). Acquisition
batches join the pool slice by slice, so memory does not grow with the population, and work is
proportional to events.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from sim import rng
from sim.accounting import Ledger
from sim.allocator import keep_freed_memory
from sim.draws import Draws
from sim.engine import (
    ReplicationResult,
    arrival_times,
    cohort_table,
    month_batches,
    shards,
    transaction_table,
)
from sim.population import BatchTraits, segment_laws
from sim.scenario import REFERRAL_CHANNEL, Scenario

#: Customers simulated at once: enough that numpy's per-call overhead is small, few enough for the caches.
SLOTS = 1 << 16
#: The referrals of customers who left the pool are drawn once this many are waiting, or when the pool
#: would otherwise be empty.
REFERRER_BATCH = SLOTS

#: The pool's columns: name -> dtype. ``end`` is the earlier of the dropout and the horizon; ``t`` the
#: pending purchase; ``made`` purchases so far; ``present_value`` and ``revenue`` the sums so far.
POOL_COLUMNS: dict[str, type] = {
    "key": np.uint64, "ident": np.int64, "segment": np.uint8, "cohort": np.int32, "parent_cohort": np.int32,
    "arrival": np.float64, "t": np.float64, "end": np.float64, "death": np.float64, "made": np.uint64,
    "rate": np.float32, "dropout_p": np.float32, "spend_mean": np.float32, "referral_rate": np.float32,
    "present_value": np.float64, "revenue": np.float64,
}
#: What a customer waiting in the queue carries (the rest is set when it enters the pool).
ARRIVAL_COLUMNS = ("key", "ident", "segment", "cohort", "parent_cohort", "arrival", "rate", "dropout_p",
                   "spend_mean", "referral_rate", "hazard")


@dataclass
class _Batch:
    """An acquisition batch waiting to join the pool, drawn slice by slice."""

    traits: BatchTraits
    batch: int          # 0 = the initial customers
    month: int
    count: int
    cohort: int
    cac: float
    first_ident: int
    offset: int = 0     # of this block in its batch (batches above sim.engine.BLOCK are drawn in blocks)
    total: int = 0      # the batch's customers (arrival times are spread over the whole batch)
    taken: int = 0


class Lifetimes:
    """Simulates one replication of a scenario without a policy (SPEC "Model semantics")."""

    def __init__(self, scenario: Scenario, replication: int, *, record_transactions: bool = False,
                 shard: tuple[int, int] | None = None) -> None:
        """``shard=(k, n)``: only the acquisition blocks of shard ``k`` of ``n`` (:func:`sim.engine.shards`)
        and the customers they refer."""
        assert scenario.policy is None, "a program needs the calendar engine (sim.engine.Engine)"
        self.scenario, self.replication = scenario, replication
        self.batches = None if shard is None else shards(scenario, shard[1])[shard[0]]
        self.horizon, self.months = scenario.horizon_years, scenario.horizon_months
        self.laws = segment_laws(scenario)
        self.draws = Draws(self.laws)
        self.channels = [a.channel for a in scenario.acquisition] + [REFERRAL_CHANNEL]
        self.ledger = Ledger.for_scenario(scenario, len(self.channels), len(self.laws))
        self.has_referrals = any(law.referral_rate.mean > 0 for law in self.laws)
        self.has_per_purchase_dropout = any(law.dropout is not None for law in self.laws)
        # month k is [k/12, (k+1)/12) exactly as the calendar engine's month ends cut it
        self.month_start = np.append(np.arange(self.months) / 12.0, np.inf)
        self.columns = {name: np.empty(SLOTS, dtype=dtype) for name, dtype in POOL_COLUMNS.items()}
        self.size = 0
        self.queue: deque[_Batch | dict[str, np.ndarray]] = deque(self._batches())
        self.referrers: list[dict[str, np.ndarray]] = []   # who left the pool, their referrals not yet drawn
        self.waiting = 0
        self.next_ident = sum(batch.count for batch in self.queue)
        self.events = 0
        self.transactions: list[tuple[np.ndarray, ...]] | None = [] if record_transactions else None

    def _batches(self) -> list[_Batch]:
        """Every acquisition block of the scenario (of the shard) in calendar order, with its customers' ids."""
        scenario, names = self.scenario, list(self.scenario.segments)
        batches, ident = [], 0
        for month in range(self.months):
            for (channel, batch, segment, block), (offset, count, total) in month_batches(scenario, month):
                if self.batches is not None and (channel, batch, segment, block) not in self.batches:
                    continue
                acq = scenario.acquisition[channel]
                seq = rng.batch_sequence(scenario.seed, self.replication, acq.channel, batch, names[segment], block)
                cohort = self._cohort(month, channel, segment)
                batches.append(_Batch(BatchTraits(self.laws[segment], segment, seq), batch, month, count, cohort,
                                      acq.cac, ident, offset, total))
                ident += count
        return batches

    def _cohort(self, month: np.ndarray | int, channel: int, segment: np.ndarray | int) -> np.ndarray | int:
        return (month * len(self.channels) + channel) * len(self.laws) + segment

    def _month_index(self, t: np.ndarray) -> np.ndarray:
        """The 0-based month of each time (years): the k with k/12 <= t < (k+1)/12, the last month at most."""
        month = np.minimum((t * 12.0).astype(np.intp), self.months - 1)
        month -= t < self.month_start[month]
        month += t >= self.month_start[month + 1]
        return month

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> ReplicationResult:
        self.simulate()
        return ReplicationResult(
            replication=self.replication,
            totals=self.ledger.totals(),
            monthly=self.ledger.monthly_table(),
            cohorts=cohort_table(self.ledger, self.channels, list(self.scenario.segments)),
            events=self.events,
            transactions=transaction_table(self.transactions),
        )

    def simulate(self) -> Ledger:
        """Every customer to the horizon; returns the closed ledger (a shard's share of the totals)."""
        keep_freed_memory()
        # A zero rate gives an infinite waiting time, a tiny one an overflow to infinity: both mean "never".
        with np.errstate(divide="ignore", over="ignore"):
            self._refill(np.empty(0, dtype=np.intp))
            while self.size:
                self._round()
        self.ledger.close()
        return self.ledger

    def _round(self) -> None:
        """Every customer in the pool makes its pending purchase and draws its next one."""
        n = self.size
        pool = {name: column[:n] for name, column in self.columns.items()}
        key, made, t = pool["key"], pool["made"], pool["t"]
        value = self.draws.order_values(key, made, pool["segment"], pool["spend_mean"], t, pool["arrival"])
        ledger = self.ledger
        present = ledger.margin_rate * value
        present -= ledger.cost_per_order
        present *= ledger.discount(t)
        ledger.record_purchases_by_month(self._month_index(t), value, present, made == 0)
        pool["present_value"] += present
        pool["revenue"] += value
        if self.transactions is not None:
            self.transactions.append((pool["ident"].copy(), t.copy(), value))
        following = self.draws.next_purchase(key, made, t, pool["rate"])
        leaving = following >= pool["end"]
        if self.has_per_purchase_dropout:
            dropped = self.draws.drops(key, made, pool["dropout_p"])
            np.copyto(pool["death"], t, where=dropped)
            leaving |= dropped
        made += 1
        t[:] = following
        self.events += n
        gone = np.flatnonzero(leaving)
        if gone.size:
            self._leave(gone)
            self._refill(gone)

    # -- leaving the pool -------------------------------------------------------------------------
    def _leave(self, rows: np.ndarray) -> None:
        """Customers whose last purchase is done: their sums, final state and referrals."""
        columns, ledger = self.columns, self.ledger
        death, cohort = columns["death"][rows], columns["cohort"][rows]
        dead = death < self.horizon
        self.events += int(np.count_nonzero(dead))
        ledger.record_exits(np.minimum((death[dead] * 12.0).astype(np.int64), self.months - 1), cohort[~dead])
        clv = columns["present_value"][rows] / ledger.discount(columns["arrival"][rows])
        ledger.record_lives(cohort, columns["parent_cohort"][rows] if self.has_referrals else None,
                            columns["made"][rows] - 1, columns["revenue"][rows], clv)
        if self.has_referrals:
            referring = rows[columns["referral_rate"][rows] > 0]
            if referring.size:
                self.referrers.append({name: columns[name][referring] for name in
                                       ("key", "segment", "cohort", "arrival", "death", "referral_rate")})
                self.waiting += referring.size

    def _refer(self) -> None:
        """The organic referrals of the customers who left, over their whole lives, and the customers they
        bring, who join the front of the queue (done for many leavers at once: a few cost as much)."""
        left = {name: np.concatenate([part[name] for part in self.referrers]) for name in self.referrers[0]}
        self.referrers, self.waiting = [], 0
        index = np.arange(len(left["key"]))
        end = np.minimum(left["death"], self.horizon)
        key, rate = left["key"], left["referral_rate"]
        t = self.draws.referral_after(key, 0, left["arrival"], rate)
        number = np.zeros(index.size, dtype=np.int64)
        parents, times, numbers = [], [], []
        while True:
            due = np.flatnonzero(t < end)
            if not due.size:
                break
            index, end, key, rate, t, number = index[due], end[due], key[due], rate[due], t[due], number[due]
            parents.append(index)
            times.append(t)
            numbers.append(number)
            number = number + 1
            t = self.draws.referral_after(key, number, t, rate)
        if not parents:
            return
        parent, born = np.concatenate(parents), np.concatenate(times)
        self.events += parent.size
        for chosen, segment, traits in self.draws.children(left["key"][parent], np.concatenate(numbers),
                                                           left["segment"][parent]):
            month = self._month_index(born[chosen])
            cohort = self._cohort(month, len(self.channels) - 1, segment).astype(np.int32)
            self.ledger.record_referred_arrivals(month, cohort)
            traits.update(ident=np.arange(self.next_ident, self.next_ident + chosen.size), cohort=cohort,
                          parent_cohort=left["cohort"][parent[chosen]], arrival=born[chosen])
            self.next_ident += chosen.size
            self.queue.appendleft(traits)

    # -- joining the pool -------------------------------------------------------------------------
    def _refill(self, holes: np.ndarray) -> None:
        """Customers from the queue into the free ``holes`` and the unused slots; then close the gaps
        that remain by moving the last customers into them."""
        if self.waiting >= REFERRER_BATCH or (self.waiting and not self.queue and holes.size == self.size):
            self._refer()
        newcomers = self._dequeue(holes.size + SLOTS - self.size)
        count = len(newcomers["key"]) if newcomers else 0
        appended = max(0, count - holes.size)
        rows = np.concatenate([holes[:count], np.arange(self.size, self.size + appended)])
        self.size += appended
        if count:
            self._place(rows, newcomers)
        remaining = holes[count:]
        if remaining.size:
            self._close_gaps(remaining)

    def _dequeue(self, wanted: int) -> dict[str, np.ndarray] | None:
        """Up to ``wanted`` customers from the front of the queue, as one set of columns."""
        parts = []
        while wanted and self.queue:
            item = self.queue[0]
            if isinstance(item, _Batch):
                part = self._take(item, min(wanted, item.count - item.taken))
                if item.taken == item.count:
                    self.queue.popleft()
            elif len(item["key"]) <= wanted:
                part = self.queue.popleft()
            else:
                part = {name: column[:wanted] for name, column in item.items()}
                self.queue[0] = {name: column[wanted:] for name, column in item.items()}
            parts.append(part)
            wanted -= len(part["key"])
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return {name: np.concatenate([part[name] for part in parts]) for name in ARRIVAL_COLUMNS}

    def _take(self, batch: _Batch, count: int) -> dict[str, np.ndarray]:
        """The next ``count`` customers of an acquisition batch, their arrivals on the ledger."""
        start = batch.taken
        times = arrival_times(batch.batch, batch.month, batch.total, batch.offset + start,
                              batch.offset + start + count)
        traits = batch.traits.take(count)
        batch.taken += count
        self.ledger.record_arrivals(batch.month, batch.cohort, count, times, batch.cac, referred=False)
        traits.update(ident=np.arange(batch.first_ident + start, batch.first_ident + start + count),
                      cohort=np.full(count, batch.cohort, dtype=np.int32),
                      parent_cohort=np.full(count, -1, dtype=np.int32), arrival=times)
        return traits

    def _place(self, rows: np.ndarray, newcomers: dict[str, np.ndarray]) -> None:
        """Newcomers into pool ``rows``: their acquisition purchase is pending at arrival."""
        columns = self.columns
        for name in ARRIVAL_COLUMNS[:-1]:
            columns[name][rows] = newcomers[name]
        arrival = newcomers["arrival"]
        death = self.draws.lifetime_end(newcomers["key"], arrival, newcomers["hazard"])
        columns["death"][rows] = death
        columns["end"][rows] = np.minimum(death, self.horizon)
        columns["t"][rows] = arrival
        columns["made"][rows] = 0
        columns["present_value"][rows] = 0.0
        columns["revenue"][rows] = 0.0

    def _close_gaps(self, holes: np.ndarray) -> None:
        """Shrink the pool by ``holes.size``: the last customers move into the holes below the new size."""
        size = self.size - holes.size
        tail = np.arange(size, self.size)
        is_hole = np.zeros(self.size - size, dtype=bool)
        is_hole[holes[holes >= size] - size] = True
        movers, targets = tail[~is_hole], holes[holes < size]
        for column in self.columns.values():
            column[targets] = column[movers]
        self.size = size
