"""The engine without a program: each customer simulated from its arrival to the horizon.

Time base: **years** from the scenario start (a month is exactly 1/12). Without a policy nothing on the
calendar changes anybody's behaviour and customers do not interact, so a customer's whole life can be
simulated as soon as it is drawn. It is the model of the calendar engine (:mod:`sim.engines.calendar`, which a
program needs), with the same keyed draws (:mod:`sim.engines.draws`, compiled in :mod:`sim.random.compiled`) and the same
months, so the two pair exactly. Events still happen one by one in continuous time: no time step, no
discretisation.

Customers are taken from a queue :data:`SLOTS` at a time into compact columns. Their traits and lifetimes
are drawn vectorised; then a compiled loop takes each one from its acquisition purchase to its exit
(order value, accounting by month, dropout coin, next purchase), and its sums go to the ledger. The
referrals of customers who left are drawn over their whole lives, many leavers at once; the customers they
bring join the front of the queue. Acquisition batches join slice by slice, so memory does not grow with
the population, and work is proportional to events.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from sim.accounting.ledger import Ledger
from sim.accounting.tables import ReplicationResult, replication_result, transaction_table
from sim.engines import loops
from sim.engines.allocator import keep_freed_memory
from sim.engines.draws import Draws
from sim.engines.parts import PartExecutor
from sim.model.acquisition import arrival_times, channel_names, cohort_index, month_batches, shards
from sim.model.calendar import month_starts, months_of
from sim.model.population import BatchTraits, DrawnBatch, acquisition_traits, keeps_traits, segment_laws
from sim.random import streams as rng
from sim.random.streams import Purpose
from sim.schema import Scenario

#: Customers taken from the queue at once: enough that numpy's per-call overhead is small, few enough
#: for the caches.
SLOTS = 1 << 16
#: The referrals of customers who left are drawn once this many are waiting, or when the queue is empty.
REFERRER_BATCH = SLOTS
#: The loop of a slice runs in this many parts, each in a thread (numpy's work for the slices before and
#: after runs meanwhile in the main thread; the operating system shares the cores out), or one after the
#: other in the main thread while a process pool's other workers keep every core busy (:mod:`sim.engines.parts`).
PARTS = 2
#: Slices handed to the threads ahead of the one the main thread books: the main thread's work varies
#: from slice to slice (referrals are drawn every so often), and a slice waiting in line keeps the threads busy
#: meanwhile. Each slice in flight has its own set of columns.
AHEAD = 3
_NONE_INT = np.empty(0, dtype=np.int64)
_NONE_FLOAT = np.empty(0)

#: The columns: name -> dtype. ``lifetime`` is the dropout time under the hazard (inf without one),
#: ``end`` the earlier of it and the horizon, ``death`` the dropout time; ``t`` the pending purchase;
#: ``made`` purchases so far; ``present_value`` and ``revenue`` the sums so far; ``start`` the first pending
#: purchase and ``history`` the purchases made before it (the arrival and 0, but for existing customers).
COLUMNS: dict[str, type] = {
    "key": np.uint64, "ident": np.int64, "segment": np.uint8, "cohort": np.int32, "parent_cohort": np.int32,
    "arrival": np.float64, "start": np.float64, "history": np.uint64, "t": np.float64, "lifetime": np.float64, "end": np.float64, "death": np.float64,
    "made": np.uint64,
    "rate": np.float32, "dropout_p": np.float32, "spend_mean": np.float32, "referral_rate": np.float32,
    "present_value": np.float64, "revenue": np.float64,
}
#: What a customer waiting in the queue carries (the rest is set when its life is simulated).
ARRIVAL_COLUMNS = ("key", "ident", "segment", "cohort", "parent_cohort", "arrival", "start", "history", "rate",
                   "dropout_p", "spend_mean", "referral_rate", "hazard")


@dataclass
class _Batch:
    """An acquisition batch waiting in the queue, drawn slice by slice."""

    traits: BatchTraits | DrawnBatch
    batch: int          # 0 = the initial customers
    month: int
    count: int
    cohort: int
    cac: float
    first_ident: int
    offset: int = 0     # of this block in its batch (batches above sim.model.acquisition.BLOCK are drawn in blocks)
    total: int = 0      # the batch's customers (arrival times are spread over the whole batch)
    taken: int = 0


class Lifetimes:
    """Simulates one replication of a scenario without a policy (``docs/model.md``)."""

    #: The columns of a slice (a subclass adds its own).
    columns_spec: dict[str, type] = COLUMNS

    def __init__(self, scenario: Scenario, replication: int, *, record_transactions: bool = False,
                 shard: tuple[int, int] | None = None) -> None:
        """``shard=(k, n)``: only the acquisition blocks of shard ``k`` of ``n`` (:func:`sim.model.acquisition.shards`)
        and the customers they refer."""
        assert scenario.policy is None or self.columns_spec is not COLUMNS, \
            "a program needs sim.engines.program_lifetimes or the calendar engine (sim.engines.calendar.Engine)"
        self.scenario, self.replication = scenario, replication
        self.batches = None if shard is None else shards(scenario, shard[1])[shard[0]]
        self.horizon, self.months = scenario.horizon_years, scenario.horizon_months
        self.laws = segment_laws(scenario)
        self.draws = Draws(self.laws)
        self.channels = channel_names(scenario)
        self.ledger = Ledger.for_scenario(scenario, len(self.channels), len(self.laws))
        self.has_referrals = any(law.referral_rate.mean > 0 for law in self.laws)
        self.month_start = month_starts(self.months)
        self.columns = {name: np.empty(SLOTS, dtype=dtype) for name, dtype in self.columns_spec.items()}
        noise = self.draws.order_noise
        self.order_values = (  # how the compiled loop draws order values: segment s from table row s
            (noise.left, noise.width, noise.squeeze, noise.kind, noise.ref, noise.log_coef, noise.lin_coef),
            noise.shapes, self.draws.log_growth,
            np.array([rng.increment(p) for p in (Purpose.INTERPURCHASE, Purpose.DROPOUT, Purpose.ORDER_VALUE)]),
        )
        self.economics = (
            (self.ledger.margin_rate, self.ledger.cost_per_order, self.ledger.delta, self.horizon), self.month_start)
        self.queue: deque[_Batch | dict[str, np.ndarray]] = deque(self._batches())
        self.referrers: list[dict[str, np.ndarray]] = []   # who left, their referrals not yet drawn
        self.waiting = 0
        self.next_ident = sum(batch.count for batch in self.queue)
        if scenario.existing_customers is not None and (shard is None or shard[0] == 0):   # the base: first shard
            self.queue.appendleft(self._existing())
        self.events = 0
        self.transactions: list[tuple[np.ndarray, ...]] | None = [] if record_transactions else None

    def _batches(self) -> list[_Batch]:
        """Every acquisition block of the scenario (of the shard) in calendar order, with its customers' ids."""
        scenario, names = self.scenario, list(self.scenario.segments)
        keep = keeps_traits(scenario)   # a small run: its batches' traits kept for the next in this process
        batches, ident = [], 0
        for month in range(self.months):
            for (channel, batch, segment, block), (offset, count, total) in month_batches(scenario, month):
                if self.batches is not None and (channel, batch, segment, block) not in self.batches:
                    continue
                acq = scenario.acquisition[channel]
                traits = acquisition_traits(self.laws[segment], segment, count, (
                    scenario.seed, self.replication, acq.channel, batch, names[segment], block), keep)
                cohort = self._cohort(month, channel, segment)
                batches.append(_Batch(traits, batch, month, count, cohort, acq.cac, ident, offset, total))
                ident += count
        return batches

    def _existing(self) -> dict[str, np.ndarray]:
        """The existing customers (:mod:`sim.model.existing`) on the ledger; those still active at the start
        wait in the queue with their next purchase pending and their purchase count going on."""
        from sim.model.existing import opening_base

        channel, parts = len(self.scenario.acquisition), []
        for segment, base, traits in opening_base(self.scenario, self.replication, self.laws, self.draws):
            cohort = self._cohort(0, channel, segment)
            alive = np.flatnonzero(traits["alive"])
            self.ledger.record_existing(cohort, base.size, alive.size)
            waiting = {name: traits[name][alive] for name in ("key", "segment", "rate", "dropout_p", "spend_mean",
                                                              "referral_rate", "hazard")}
            waiting.update(ident=np.arange(self.next_ident, self.next_ident + alive.size),
                           cohort=np.full(alive.size, cohort, dtype=np.int32),
                           parent_cohort=np.full(alive.size, -1, dtype=np.int32), arrival=np.zeros(alive.size),
                           start=traits["pending"][alive], history=traits["made"][alive].astype(np.uint64))
            self.next_ident += alive.size
            parts.append(waiting)
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def _cohort(self, month: np.ndarray | int, channel: int, segment: np.ndarray | int) -> np.ndarray | int:
        return cohort_index(month, channel, segment, len(self.channels), len(self.laws))

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> ReplicationResult:
        self.simulate()
        return replication_result(self.scenario, self.replication, self.ledger, self.events,
                                  transaction_table(self.transactions))

    def simulate(self) -> Ledger:
        """Every customer to the horizon; returns the closed ledger (a shard's share of the totals).

        Slices of customers go through three steps: entering (traits and lifetimes, numpy), living (the
        compiled loop, which releases the GIL) and leaving (ledger and referrals, numpy). The loop of a
        slice runs in :data:`PARTS` threads while the main thread prepares the next and books the ones
        before, with up to :data:`AHEAD` slices handed to the threads ahead of the one it books, each in a
        set of columns of its own. What each slice and part holds does not depend on
        the timing, and the parts' sums are added in order, so the numbers are those of running the steps
        one after the other (as with ``--transactions``).
        """
        keep_freed_memory()
        free = [self.columns] + [{name: np.empty(SLOTS, dtype=dtype) for name, dtype in self.columns_spec.items()}
                                 for _ in range(AHEAD)]
        threaded = self.transactions is None
        flight: deque[tuple] = deque()   # (parts' futures or sums, slice, its columns) of the slices handed out
        # A zero rate gives an infinite waiting time, a tiny one an overflow to infinity: both mean "never".
        with PartExecutor(PARTS) as threads, np.errstate(divide="ignore", over="ignore"):
            while True:
                if self.waiting and (self.waiting >= REFERRER_BATCH or (not self.queue and not flight)):
                    self._refer()
                newcomers = self._dequeue(SLOTS)
                if newcomers is None and not flight:
                    break
                if newcomers is not None:
                    columns = free.pop()
                    group = self._enter(newcomers, columns)
                    flight.append((self._start(group, threads if threaded else None), group, columns))
                if len(flight) > AHEAD or newcomers is None:
                    parts, group, columns = flight.popleft()
                    self._leave(parts, group)
                    free.append(columns)
        self.ledger.close()
        return self.ledger

    def _enter(self, newcomers: dict[str, np.ndarray], columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Up to :data:`SLOTS` customers from the queue into ``columns``: traits and lifetimes; their
        acquisition purchase is pending at arrival."""
        n = len(newcomers["key"])
        group = {name: column[:n] for name, column in columns.items()}
        for name in ARRIVAL_COLUMNS[:-1]:
            group[name][:] = newcomers[name]
        group["lifetime"][:] = self.draws.lifetime_end(newcomers["key"], newcomers["arrival"], newcomers["hazard"])
        np.minimum(group["lifetime"], self.horizon, out=group["end"])
        return group

    def _start(self, group: dict[str, np.ndarray], threads: Executor | None) -> list:
        """The lives of ``group`` in :data:`PARTS` parts, in ``threads`` if given: their futures, or (without
        threads) their monthly and cohort sums."""
        n = len(group["key"])
        parts = self._split(group, [n * part // PARTS for part in range(PARTS + 1)])
        return [self._live(part) if threads is None else threads.submit(self._live, part) for part in parts]

    def _split(self, group: dict[str, np.ndarray], cuts: list[int]) -> list[dict[str, np.ndarray]]:
        """``group``'s customers cut at the positions ``cuts``: views of its columns, part by part."""
        return [{name: column[a:b] for name, column in group.items()} for a, b in pairwise(cuts)]

    def _live(self, group: dict[str, np.ndarray], offsets: np.ndarray = _NONE_INT,
              log_time: np.ndarray = _NONE_FLOAT, log_value: np.ndarray = _NONE_FLOAT) -> tuple[np.ndarray, np.ndarray]:
        """The compiled loop (:func:`sim.engines.loops.lives`) takes the customers of ``group`` from their arrival
        to their exit; returns its monthly and cohort sums. ``death`` comes back where a dropout coin fell."""
        group["death"][:] = group["lifetime"]
        group["t"][:] = group["start"]
        group["made"][:] = group["history"]
        group["present_value"][:] = 0.0
        group["revenue"][:] = 0.0
        sums, cohort_sums = self._zero_sums()
        customers = tuple(group[name] for name in ("key", "segment", "cohort", "parent_cohort", "spend_mean", "rate",
                                                   "dropout_p", "arrival", "end"))
        state = tuple(group[name] for name in ("death", "t", "made", "revenue", "present_value"))
        loops.lives(customers, state, self.order_values, self.economics, (sums, cohort_sums),
                    (offsets, log_time, log_value))
        return sums, cohort_sums

    def _zero_sums(self) -> tuple[np.ndarray, np.ndarray]:
        """Empty monthly and cohort sums of :func:`sim.engines.loops.lives` (five and six quantities)."""
        return np.zeros((5, self.months)), np.zeros((6, len(self.ledger.cohort["customers"])))

    def _log(self, group: dict[str, np.ndarray]) -> None:
        """``--transactions``: the same lives again, now that each one's number of purchases is known,
        logging every purchase (from the first in the horizon: an existing customer's count goes on from its
        history, so its log starts that many entries earlier)."""
        history = group["history"].astype(np.int64)
        made = group["made"].astype(np.int64) - history
        offsets = _starts(made)
        log_time, log_value = np.empty(int(made.sum())), np.empty(int(made.sum()))
        self._live({name: column.copy() for name, column in group.items()}, offsets - history, log_time, log_value)
        self.transactions.append((np.repeat(group["ident"], made), log_time, log_value))

    # -- leaving ----------------------------------------------------------------------------------
    def _leave(self, parts: list, columns: dict[str, np.ndarray]) -> None:
        """Customers whose lives are done (waiting for their loops if they run in threads): their sums go
        to the ledger, and those who refer wait for their referrals to be drawn."""
        sums, cohort_sums = self._zero_sums()
        for part in parts:   # in a fixed order, so the sums do not depend on which thread finished first
            monthly, by_cohort = part.result() if isinstance(part, Future) else part
            sums += monthly
            cohort_sums += by_cohort
        if self.transactions is not None:
            self._log(columns)
        self.ledger.record_lives(sums, cohort_sums)
        self.ledger.record_alive_years(columns["cohort"], columns["arrival"], columns["arrival"], columns["death"])
        self.events += int(sums[0].sum() + sums[4].sum())   # purchases and dropouts
        if self.has_referrals:
            referring = np.flatnonzero(columns["referral_rate"] > 0)
            if referring.size:
                self.referrers.append(rows_of(columns, ("key", "segment", "cohort", "arrival", "death", "referral_rate"),
                                              referring))
                self.waiting += referring.size

    def _refer(self) -> None:
        """The organic referrals of the customers who left, over their whole lives, and the customers they
        bring, who join the front of the queue (done for many leavers at once: a few cost as much)."""
        left = {name: np.concatenate([part[name] for part in self.referrers]) for name in self.referrers[0]}
        self.referrers, self.waiting = [], 0
        self._bring(left, *self._referral_times(left))

    def _bring(self, left: dict[str, np.ndarray], parent: np.ndarray, number: np.ndarray, born: np.ndarray) -> None:
        """The customers referred by the rows ``parent`` of ``left`` (their referrers' ``key``, ``segment``,
        ``cohort``, ...), each its referrer's referral ``number``, born at ``born``: their traits drawn, on the
        ledger, and at the front of the queue."""
        if not parent.size:
            return
        # customer by customer, then in the order of the rounds: every first referral, every second, ...
        order = np.argsort(number, kind="stable")
        parent, number, born = parent[order], number[order], born[order]
        self.events += parent.size
        for chosen, segment, traits in self.draws.children(left["key"][parent], number, left["segment"][parent]):
            month = months_of(np.ascontiguousarray(born[chosen]), self.month_start)
            cohort = self._cohort(month, len(self.channels) - 1, segment).astype(np.int32)
            self._referred(month, cohort, born[chosen], {name: column[parent[chosen]] for name, column in left.items()})
            traits.update(ident=np.arange(self.next_ident, self.next_ident + chosen.size), cohort=cohort,
                          parent_cohort=left["cohort"][parent[chosen]], arrival=born[chosen], start=born[chosen],
                          history=np.zeros(chosen.size, dtype=np.uint64))
            self.next_ident += chosen.size
            self.queue.appendleft(traits)

    def _referral_times(self, left: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The referrals of the customers ``left`` over their whole lives: the row of each one's referrer, its
        number and its time, customer by customer."""
        key, arrival, rate = left["key"], left["arrival"], left["referral_rate"]
        end = np.minimum(left["death"], self.horizon)
        step = rng.increment(Purpose.REFERRAL_TIME)
        counts = loops.referrals(key, arrival, end, rate, step, _NONE_INT, _NONE_FLOAT)
        parent = np.repeat(np.arange(counts.size), counts)
        offsets = _starts(counts)
        number = np.arange(parent.size) - offsets[parent]
        born = np.empty(parent.size)
        some = np.flatnonzero(counts)   # most refer nobody: the times of those who do, drawn again
        loops.referrals(key[some], arrival[some], end[some], rate[some], step, offsets[some], born)
        return parent, number, born

    def _referred(self, month: np.ndarray, cohort: np.ndarray, born: np.ndarray,
                  parents: dict[str, np.ndarray]) -> None:
        """Referred customers born at ``born`` into ``cohort`` (by month) on the ledger; ``parents`` holds
        their referrers' columns (a program pays bonuses by them)."""
        self.ledger.record_referred_arrivals(month, cohort)

    # -- joining ------------------------------------------------------------------------------------
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
                      parent_cohort=np.full(count, -1, dtype=np.int32), arrival=times, start=times,
                      history=np.zeros(count, dtype=np.uint64))
        return traits


def rows_of(columns: dict[str, np.ndarray], names: tuple[str, ...], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Copies of the ``rows`` (increasing positions) of the columns ``names``: a plain copy when they are all
    of them (most slices: everybody refers), which costs a tenth of gathering them."""
    if rows.size == len(columns[names[0]]):
        return {name: columns[name].copy() for name in names}
    return {name: columns[name][rows] for name in names}


def _starts(counts: np.ndarray) -> np.ndarray:
    """Where each customer's entries start when ``counts[i]`` entries are laid out customer by customer."""
    return np.concatenate([[0], np.cumsum(counts[:-1])]).astype(np.int64)
