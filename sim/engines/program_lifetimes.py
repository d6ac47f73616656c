"""The engine of a program whose customers live apart: each customer's life under the policy, compiled.

A program without targeted-offer rounds leaves every customer to its own events: membership, points earned
and redeemed, the goal gradient, points expiry, tiers on the trailing 12 months evaluated at its month ends,
membership and tier costs by month, blanket windows with their dips and habituation (a calendar known in
advance), win-back offers with their coupons and reactivations, dropout, referrals over every alive spell
and their bonuses; existing customers start from their history. Such a scenario runs as
the engine without a program does (:mod:`sim.engines.lifetimes`: slices of customers from a queue, the
loop of a slice in threads, the parts' sums added in a fixed order, referred customers queued), with the
program's loop :func:`sim.engines.program_loops.program_lives`. Its draws are those of the calendar engine
(:mod:`sim.engines.calendar`) for the same customer, purpose and counter, taken in the same per-customer
order, so both engines give the same numbers up to the order of floating-point sums, and the scenario
still pairs with its baseline draw for draw (common random numbers). :func:`compiled_program_gap` says which
scenarios it runs; the others run on the calendar engine.
"""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np

from sim.accounting.ledger import Ledger
from sim.engines import program_loops
from sim.engines.choice import compiled_program_gap
from sim.engines.lifetimes import ARRIVAL_COLUMNS, COLUMNS, SLOTS, Lifetimes, _Batch, rows_of
from sim.model.calendar import months_of
from sim.random import streams as rng
from sim.random.streams import Purpose
from sim.schema import Scenario
from sim.schema.policy import MAX_POINTS_PER_PURCHASE
from sim.schema.units import DAYS_PER_YEAR

#: The columns of :mod:`sim.engines.lifetimes` the program's loop has no use for: its sums are booked by month
#: and cohort as it goes, and ``death`` holds the hazard lifetime until a dropout comes first.
UNUSED_COLUMNS = ("t", "lifetime", "end", "present_value", "revenue")
#: The columns of a slice: those of :mod:`sim.engines.lifetimes` it uses and the program's per-customer state
#: (30 bytes; for the slice only, nothing is kept per customer once its life is booked, but for targeted-offer
#: rounds). ``hazard`` draws a reactivated customer's new lifetime; ``first_end`` is where its first alive
#: spell's referrals end.
PROGRAM_COLUMNS: dict[str, type] = {
    **{name: dtype for name, dtype in COLUMNS.items() if name not in UNUSED_COLUMNS}, "member": np.bool_,
    "redeemer": np.bool_, "points": np.int64, "arrival_discount": np.float64, "hazard": np.float32,
    "first_end": np.float64,
}
#: The opening state of existing customers (:func:`~sim.engines.program_loops.program_lives`'s ``opening``):
#: columns, and what :meth:`ProgramLifetimes._enter` adds for them; new customers go without (:data:`NONE`).
OPENING = ("start", "history", "last_at", "points_at", "tier_at", "ring_at")
#: The opening state of customers who are all new: empty.
NONE = {"start": np.empty(0), "history": np.empty(0, dtype=np.uint64), "last_at": np.empty(0),
        "points_at": np.empty(0, dtype=np.int64), "tier_at": np.empty(0, dtype=np.int8),
        "ring_at": np.empty(0, dtype=np.float32)}
#: No targeted offer to give (:func:`~sim.engines.program_loops.program_lives`'s ``targeted``).
NO_OFFER = (np.empty(0, dtype=np.int64), 0.0, 0, 0.0, (0.0, 0, 1.0))
#: Per member (in the customers' order) and tier (index 0: no tier), kept beside the columns: the
#: purchase-rate factor of membership and tier, the goal-gradient strength, and the multiplier of the dropout
#: hazard and of the per-purchase dropout chance (a non-member's are 1, 0 and 1).
BY_TIER = ("base", "gradient", "drop_factor")


def fast_engine_class(scenario: Scenario, record_transactions: bool = False) -> type:
    """Which fast engine runs ``scenario``: :class:`~sim.engines.lifetimes.Lifetimes` without a program,
    :class:`ProgramLifetimes` for a program :func:`compiled_program_gap` accepts (but for its transaction
    log), the calendar engine (:class:`~sim.engines.calendar.Engine`) otherwise."""
    if scenario.policy is None:
        return Lifetimes
    if not record_transactions and compiled_program_gap(scenario) is None:
        return ProgramLifetimes
    from sim.engines.calendar import Engine

    return Engine


def calendar_table(program, segments: int, horizon: float) -> tuple:
    """The blanket windows and their pull-forward dips as :func:`~sim.engines.program_loops.program_lives`
    reads them: every change before the horizon in the order the calendar engine makes them (a window
    opens, closes, a segment's dip ends), each with the state after it: whether a window is open, the
    index of the deepest open window's depth in the depths (0 when none is open), the dip factor of each
    segment; then the depths (0, the windows' and the personal offers'), the uplift of each segment at each
    depth and the habituation factors."""
    events = []   # (time, order, window, what)
    for order, window in enumerate(program.windows):
        events.append((window.start, order, window, "open"))
        if window.end >= horizon:
            continue
        events.append((window.end, order, window, "close"))
        for dip_end in sorted(set(window.dip_end[window.dip_end > window.end].tolist())):
            if dip_end >= horizon:
                break
            events.append((dip_end, order, window, "dip"))
    events.sort(key=lambda event: (event[0], event[1]))
    offers = {discount.depth for discount in program.policy.discounts if discount.kind != "blanket"}
    depths = np.array(sorted({0.0} | {window.depth for window in program.windows} | offers))
    uplifts = np.array([[float(program.uplift(np.array([segment]), depth)[0]) for depth in depths]
                        for segment in range(segments)]).reshape(segments, len(depths))
    times, opened, depth_at, dips = [], [], [], []
    open_windows, dipping = [], []
    for t, _, window, what in events:
        if what == "open":
            open_windows.append(window)
        elif what == "close":
            open_windows.remove(window)
            dipping.append(window)
        blanket = max((w.depth for w in open_windows), default=0.0)
        factor = np.ones(segments)
        for w in dipping:
            factor *= np.where(w.dip_end > t, w.dip_factor, 1.0)
        times.append(t)
        opened.append(bool(open_windows))
        depth_at.append(int(np.searchsorted(depths, blanket)))
        dips.append(factor)
    habituation = program.habituation_table if program.habituation else np.ones(1)
    return (np.array(times, dtype=np.float64), np.array(opened, dtype=np.bool_), np.array(depth_at, dtype=np.int64),
            np.array(dips, dtype=np.float64).reshape(len(times), segments), depths, uplifts,
            np.ascontiguousarray(habituation, dtype=np.float64))


def offer_table(program, scenario: Scenario, calendar: tuple) -> tuple:
    """The win-back offer as :func:`~sim.engines.program_loops.program_lives` reads it: its delay (years; inf
    without one), the index of its depth in the calendar's depths, its validity (years), its message cost,
    the reactivation chance, the stream increment of reactivation draws, and the times the calendar engine
    advances to (month starts, window changes, targeted-offer rounds), where its intervals start."""
    winback = program.winback
    depths = calendar[4]
    barriers = np.unique(np.concatenate([np.arange(scenario.horizon_months + 1) / 12.0, calendar[0],
                                         np.array([r.time for r in program.target_rounds], dtype=np.float64)]))
    if winback is None:
        return (np.inf, 0, 0.0, 0.0, 0.0, rng.increment(Purpose.REACTIVATION), barriers)
    return (float(program.winback_delay), int(np.searchsorted(depths, winback.depth)),
            winback.valid_days / DAYS_PER_YEAR, float(winback.message_cost),
            float(scenario.response.winback_reactivation), rng.increment(Purpose.REACTIVATION), barriers)


#: What a customer stopped before a targeted-offer round resumes from: :func:`~sim.engines.program_loops.program_lives`'s
#: ``resume``, in its order (``ring``: 12 float32 a member, with tiers).
RESUME: dict[str, type] = {
    "started": np.int8, "pending": np.float64, "mult": np.float64, "last": np.float64, "tier": np.int8,
    "ring": np.float32, "spend_12m": np.float64, "change": np.int32, "discounted": np.int32, "closing": np.int16,
    "offer_until": np.float64, "coupon": np.int16, "winback_at": np.float64, "spell": np.int32,
    "repeat_spend": np.float64,
}


def resume_state(member: np.ndarray, repeat_spend: np.ndarray | None = None, tiers: bool = True) -> dict[str, np.ndarray]:
    """The ``resume`` state of customers not yet begun (``member``: whether each is a member), with their
    repeat spend so far (existing customers: from their history); the 12-month ring of the members only, for
    a program with ``tiers``."""
    members = int(np.count_nonzero(member)) if tiers else 0
    state = {name: np.zeros((members, 12) if name == "ring" else len(member), dtype=dtype)
             for name, dtype in RESUME.items()}
    if repeat_spend is not None:
        state["repeat_spend"][:] = repeat_spend
    return state


def spell_lists() -> tuple:
    """Empty records of the alive spells reactivations begin: owner, start, reactivations before, end."""
    return program_loops.empty_spells()


def spell_arrays(spells: tuple) -> tuple[np.ndarray, ...]:
    """The records of :func:`spell_lists` as arrays."""
    return program_loops.spell_records(*spells)


def opening_of(part: dict, name: str) -> np.ndarray:
    """The column ``name`` of a part's customers; for the opening state (:data:`OPENING`) and the first
    purchase, which customers who are all new go without, theirs if it has none."""
    if name in part:
        return part[name]
    if name in ("start", "first_purchase"):   # at arrival
        return part["arrival"]
    n = len(part["key"])
    return {"history": np.zeros(n, dtype=np.uint64), "last_at": np.full(n, -np.inf),
            "points_at": np.zeros(n, dtype=np.int64), "tier_at": np.zeros(n, dtype=np.int8),
            "ring_at": np.zeros(n, dtype=np.float32)}[name]


def merge_parts(parts: list[dict]) -> dict:
    """One part of the population holding the customers of ``parts`` in order, with their state to resume
    from; their spell records follow each other, their owners and the customers' open records renumbered."""
    if len(parts) == 1:
        return parts[0]
    floor = parts[0]["floor"]
    assert all(part["floor"] == floor for part in parts), "parts merge once their referrals are drawn alike"
    if len({name in part for part in parts for name in OPENING}) > 1:   # new and existing customers
        parts = [{**part, **{name: opening_of(part, name) for name in (*OPENING, "first_purchase")}}
                 for part in parts]
    merged = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]
              if name not in ("resume", "spells", "floor")}
    merged["resume"] = {name: np.concatenate([part["resume"][name] for part in parts]) for name in RESUME}
    merged["floor"] = floor
    records = [spell_arrays(part["spells"]) for part in parts]
    customers = np.cumsum([0] + [len(part["key"]) for part in parts[:-1]])
    spells = np.cumsum([0] + [len(record[0]) for record in records[:-1]])
    spell = merged["resume"]["spell"]
    for part, first_customer, first_spell in zip(parts, customers, spells, strict=True):
        mine = spell[first_customer:first_customer + len(part["key"])]
        mine[mine >= 0] += first_spell
    owner = np.concatenate([record[0] + first for record, first in zip(records, customers, strict=True)])
    merged["spells"] = spell_lists()
    program_loops.extend_spells(*merged["spells"], owner, *(np.concatenate([record[k] for record in records])
                                                            for k in (1, 2, 3)))
    return merged


def balanced_cuts(group: dict, horizon: float, parts: int) -> list[int]:
    """Where to cut ``group``'s customers into ``parts`` parts of about as much work each (one per thread):
    a customer's work is taken as 10 + its expected purchases before the horizon, x / (1 + x p) with x its
    purchase rate times its time until its hazard lifetime or the horizon and p its per-purchase dropout
    chance; the 10 is what stopping and resuming it at every round costs, in purchases, with quarterly
    rounds (every lever of ``make bench``: about 1.7 us a customer, 160 ns a purchase). Cut by count, a
    group of a frequent segment after a rare one kept one thread waiting for the other a third of the
    time. The cuts change only the order in which the parts' sums are added."""
    n = len(group["key"])
    alive = np.minimum(group["death"], horizon) - group["arrival"]
    expected = np.maximum(group["rate"] * np.maximum(alive, 0.0), 0.0)
    work = np.cumsum(10.0 + expected / (1.0 + expected * group["dropout_p"]))
    cuts = (np.searchsorted(work, work[-1] * np.arange(1, parts) / parts, side="right") if n
            else np.zeros(parts - 1, np.int64))   # (equal work: the cuts by count)
    return sorted({0, n, *(int(cut) for cut in cuts)})


class ProgramLifetimes(Lifetimes):
    """Simulates one replication of a scenario whose program :func:`compiled_program_gap` accepts."""

    columns_spec = PROGRAM_COLUMNS

    def __init__(self, scenario: Scenario, replication: int, *, record_transactions: bool = False,
                 shard: tuple[int, int] | None = None) -> None:
        gap = compiled_program_gap(scenario)
        assert gap is None, f"run on the calendar engine: {gap}"
        assert not record_transactions, "the transaction log of a program is written by the calendar engine"
        self.base: list = []   # the existing customers, if any (:meth:`_existing`)
        super().__init__(scenario, replication, shard=shard)
        if self.base:   # they are simulated apart, before the queue
            self.queue.popleft()
        from sim.model.program import Program  # scipy's import is only paid by runs with a program

        self.shard = shard
        self.program = Program(scenario, self.laws)
        points = self.program.points
        program = self.program
        self.rules = (  # program_lives's program constants
            *((points.reward_threshold, points.reward_value * points.reward_cost_ratio, points.earn_per_currency)
              if points is not None else (0, 0.0, 0.0)),
            program.tier_earn.astype(np.float64), MAX_POINTS_PER_PURCHASE,
            np.inf if program.expiry is None else program.expiry, float(scenario.policy.costs.per_member_per_year),
            program.tier_benefit.astype(np.float64), program.tier_min.astype(np.float64))
        self.calendar = calendar_table(program, len(self.laws), self.horizon)
        self.offers = offer_table(program, scenario, self.calendar)
        self.winback = program.winback is not None
        self.points_change = np.zeros(self.months)
        self.member_dropouts = np.zeros(self.months)

    def simulate(self) -> Ledger:
        """Every customer to the horizon, then the program's month-end figures: fixed cost, points stocks and
        members at each month's end."""
        if self.program.target_rounds:
            ledger = self._simulate_rounds()
        else:
            if self.base:   # a zero hazard is an infinite lifetime, as in the queue's slices
                with np.errstate(divide="ignore", over="ignore"):
                    self._enter_base()
            ledger = super().simulate()
        program, costs = self.program, self.scenario.policy.costs
        if costs.fixed_per_month and (self.shard is None or self.shard[0] == 0):   # once, not per shard
            for month in range(self.months):
                start, end = month / 12.0, (month + 1) / 12.0
                ledger.record_fixed_cost("program_fixed_cost", month, costs.fixed_per_month, (start + end) / 2.0)
        if program.points is not None:
            outstanding = np.cumsum(self.points_change)
            for month in range(self.months):
                ledger.set_stock("points_outstanding", month, int(outstanding[month]))
                ledger.set_stock("points_liability", month, int(outstanding[month]) * program.liability_per_point())
        ledger.close(np.repeat(np.arange(self.months), self.member_dropouts.astype(np.int64)))
        return ledger

    def _enter(self, newcomers: dict[str, np.ndarray], columns: dict[str, np.ndarray],
               opening: dict[str, np.ndarray] | None = None, member: np.ndarray | None = None,
               rows: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Customers from the queue into ``columns``, as the calendar engine adds them: membership and
        redeemers drawn, the hazard and dropout chance under the membership's multiplier, the rate factors
        of membership and the goal gradient (from the columns' float32 traits, as the calendar engine holds
        them). ``opening``: the existing customers' state at the start (:meth:`_enter_base`), else new
        customers. ``member`` and ``rows``: their membership (:meth:`_members`), already booked, and the
        rows for the members' factors (:data:`BY_TIER`), as :meth:`_join` gives them to enter slices in
        threads; else drawn, booked and allocated here."""
        n = len(newcomers["key"])
        group = {name: column[:n] for name, column in columns.items()}
        for name in ARRIVAL_COLUMNS[:-1]:
            if name in group:
                group[name][:] = newcomers[name]
        if opening is None:   # new customers: their first purchase pending at arrival, none before
            assert np.array_equal(newcomers["start"], newcomers["arrival"]) and not newcomers["history"].any()
            for name in OPENING:
                group.pop(name, None)
        program, keys = self.program, newcomers["key"]
        raw_spend = newcomers["spend_mean"]
        if member is None:
            member = self._members(newcomers, opening)
            if opening is None:
                self._book_members(newcomers["arrival"], member)
        group["member"][:] = member
        member = group["member"]
        redeemer = group["redeemer"]
        if program.points is not None:
            redeemer[:] = rng.uniform(keys, Purpose.REDEEMER, 0) < program.points.redeemer_share
        else:
            redeemer[:] = False
        tier_at = np.zeros(n, dtype=np.int8)
        if opening is not None:   # a points balance means a member of the program already running; tiers from the trailing year
            balance = opening["points_balance"]
            points_at = (np.zeros(n, dtype=np.int64) if program.points is None or balance is None
                         else (balance * member).astype(np.int64))
            ring_at = np.zeros(n, dtype=np.float32)
            if len(program.tier_min):
                for minimum in program.tier_min:
                    tier_at += opening["spend_12m"] >= minimum
                tier_at *= member
                ring_at = (opening["spend_12m"] / 12.0).astype(np.float32)
            group.update(last_at=opening["last_purchase"], points_at=points_at, tier_at=tier_at, ring_at=ring_at)
        # the responses of members, computed for members only (a non-member's factors are 1, its strength 0)
        joined = np.flatnonzero(member)
        yes = np.ones(joined.size, dtype=np.bool_)
        if program.referral is not None:   # members refer more under a referral program
            group["referral_rate"][:] = (newcomers["referral_rate"].astype(np.float32)
                                         * program.referral_factor(member, raw_spend)).astype(np.float32)
        tiers = len(program.tier_min) + 1   # the members' factors by tier, in the customers' order
        if rows is None:
            rows = {name: np.empty((joined.size, tiers)) for name in BY_TIER}
        base, gradient, drop_factor = (rows[name] for name in BY_TIER)
        assert base.shape == (joined.size, tiers), (base.shape, joined.size)
        rate, spend, segment = group["rate"][joined], group["spend_mean"][joined], group["segment"][joined]
        redeeming = redeemer[joined]
        by_tier = program.inputs_by_tier(rate, spend, segment) if program.uses_value_curves else [None] * tiers
        for tier, inputs in enumerate(by_tier):   # (one tier for all: the same numbers as an array of it)
            base[:, tier] = program.member_rate(yes, tier, rate, spend, segment, inputs)
            if program.has_goal_gradient:
                strength = program.goal_gradient(tier, rate, spend, segment, inputs)
                gradient[:, tier] = np.where(redeeming, strength, 0.0)
            else:
                gradient[:, tier] = 0.0
            drop_factor[:, tier] = program.member_dropout(yes, tier, rate, spend, segment, inputs)
        group.update(base=base, gradient=gradient, drop_factor=drop_factor)
        hazard = newcomers["hazard"].astype(np.float64)   # times the membership's multiplier at its tier
        hazard[joined] *= drop_factor[np.arange(joined.size), tier_at[joined]]
        group["death"][:] = self.draws.lifetime_end(keys, newcomers["arrival"], hazard)   # the hazard lifetime
        if opening is not None:
            group["death"][~opening["alive"]] = -np.inf   # gone before the start
        group["arrival_discount"][:] = self.ledger.discount(group["arrival"])
        group["hazard"][:] = newcomers["hazard"]
        if opening is not None:
            self.points_change[0] += float(group["points_at"].sum())
        return group

    def _members(self, newcomers: dict[str, np.ndarray], opening: dict[str, np.ndarray] | None = None
                 ) -> np.ndarray:
        """Which of ``newcomers`` are members: the enrollment draw against the join probability of their
        segment and purchase rate; an existing customer (``opening``) holding points is one already."""
        program, keys, segments, raw_rate = self.program, newcomers["key"], newcomers["segment"], newcomers["rate"]
        n = len(keys)
        member = np.empty(n, dtype=np.bool_)
        counts = np.bincount(segments, minlength=len(self.laws))
        for segment in np.flatnonzero(counts):   # (a slice of one segment needs no mask)
            at = slice(None) if counts[segment] == n else segments == segment
            member[at] = program.joins(keys[at], int(segment), raw_rate[at])
        if opening is not None and program.points is not None and opening["points_balance"] is not None:
            member |= opening["points_balance"] > 0
        return member

    def _book_members(self, arrival: np.ndarray, member: np.ndarray) -> None:
        """New members on the ledger, by the month of their arrival."""
        joined = months_of(np.ascontiguousarray(arrival[member]), self.month_start)
        self.ledger.record_member_arrivals(np.bincount(joined, minlength=self.months).astype(np.int64))

    def _existing(self) -> dict[str, np.ndarray]:
        """The existing customers are simulated apart, first (:meth:`_enter_base`): nothing waits in the queue."""
        from sim.model.existing import opening_base

        self.base = opening_base(self.scenario, self.replication, self.laws, self.draws)
        return {name: np.empty(0, dtype=np.float64) for name in ARRIVAL_COLUMNS}

    def _enter_base(self) -> None:
        """The existing customers (:mod:`sim.model.existing`), as the calendar engine adds them, every one of
        them (those gone before the start may hold points, which count and expire): their next purchase
        pending, their purchase count going on, their last purchase, trailing 12-month spend and points
        balance; their lives simulated and booked slice by slice."""
        channel = len(self.scenario.acquisition)
        for segment, base, traits in self.base:
            cohort = self._cohort(0, channel, segment)
            count = base.size
            for start in range(0, count, SLOTS):
                part = slice(start, min(count, start + SLOTS))
                size = part.stop - part.start
                newcomers = {name: traits[name][part] for name in ("key", "segment", "rate", "dropout_p", "spend_mean",
                                                                   "referral_rate", "hazard")}
                newcomers.update(ident=np.arange(self.next_ident, self.next_ident + size),
                                 cohort=np.full(size, cohort, dtype=np.int32),
                                 parent_cohort=np.full(size, -1, dtype=np.int32), arrival=np.zeros(size),
                                 start=traits["pending"][part], history=traits["made"][part].astype(np.uint64))
                self.next_ident += size
                opening = {"alive": traits["alive"][part], "last_purchase": traits["last_purchase"][part],
                           "points_balance": None if base.points_balance is None else base.points_balance[part],
                           "spend_12m": base.spend_12m[part]}
                rounds = bool(self.program.target_rounds)
                group = self._enter(newcomers, self._fresh_columns(size) if rounds else self.columns, opening)
                alive = opening["alive"]
                self.ledger.record_existing(cohort, count if start == 0 else 0, int(np.count_nonzero(alive)),
                                            members=int(np.count_nonzero(group["member"] & alive)))
                if rounds:   # the whole population lives at once
                    self._add_parts(group, traits["first_purchase"][part],
                                    base.repeat_purchases[part] * base.mean_repeat_spend[part])
                else:
                    self._leave([self._live(group)], group)

    # -- targeted-offer rounds: everyone advanced to each round, ranked, then on ------------------------
    def _simulate_rounds(self) -> Ledger:
        """The population with targeted-offer rounds: every customer's state kept at once, in groups of
        :data:`~sim.engines.lifetimes.PARTS` parts. Each round stops everyone before it (the customers referred
        before it too), the firm ranks everyone acquired so far as the calendar engine's round does, the
        chosen get their offer; then on. simpy's calendar is not needed: the rounds are known in advance, and
        nothing else couples customers."""
        from sim.engines.allocator import keep_freed_memory
        from sim.engines.lifetimes import PARTS
        from sim.engines.parts import PartExecutor

        keep_freed_memory()
        self.groups: list[list[dict]] = []
        # in the calendar engine's order of rounds at the same time: offer by offer, round by round
        rounds = sorted(self.program.target_rounds, key=lambda target_round: target_round.time)
        with PartExecutor(PARTS) as threads, np.errstate(divide="ignore", over="ignore"):
            if self.base:
                self._enter_base()
            self._join(threads)
            self._compact()
            for target_round in rounds:
                self._advance(target_round.time, threads, arrivals=target_round.time == 0)
                self._round(target_round, threads)
            self._advance(np.inf, threads)
        assert not any("offer_due" in part for part in self.population), "every offer is given by the advance after it"
        self.ledger.close()
        return self.ledger

    @property
    def population(self) -> list[dict]:
        """Every part of every group, in the order the groups joined."""
        return [part for group in self.groups for part in group]

    def _fresh_columns(self, n: int, new: bool = False) -> dict[str, np.ndarray]:
        """Columns for ``n`` customers held between rounds, without the opening state if they are all ``new``,
        and without their ids: a part's referrals are drawn customer by customer in its own order
        (:func:`~sim.engines.program_loops.round_referrals`), never sorted by id."""
        return {name: np.empty(n, dtype=dtype) for name, dtype in self.columns_spec.items()
                if name != "ident" and not (new and name in OPENING)}

    def _add_parts(self, group: dict, first_purchase: np.ndarray, repeat_spend: np.ndarray | None = None) -> list:
        """``group``'s customers join the population as a group of parts (one per thread), each with its
        state to resume from: not yet begun, referrals drawn up to no time yet."""
        from sim.engines.lifetimes import PARTS

        if first_purchase is not group["arrival"]:   # existing customers': before the start
            group["first_purchase"] = np.asarray(first_purchase, dtype=np.float64)
        group["resume"] = resume_state(group["member"], repeat_spend, len(self.program.tier_min) > 0)
        group["referral_next"] = np.full(len(group["key"]), -np.inf)   # (round_referrals: none drawn yet)
        added = self._split(group, balanced_cuts(group, self.horizon, PARTS))
        for part in added:
            part["spells"] = spell_lists()
            part["floor"] = -np.inf
        if added:
            self.groups.append(added)
        return added

    def _split(self, group: dict, cuts: list[int]) -> list[dict]:
        """``group``'s customers cut at the positions ``cuts``: views of its columns and of its ``resume``
        state, part by part, those held by member (:data:`BY_TIER`, the ring) cut at the same customers."""
        members = np.concatenate([[0], np.cumsum(group["member"], dtype=np.int64)])
        parts = []
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            by_customer, by_member = slice(a, b), slice(members[a], members[b])
            part = {name: column[by_member if name in BY_TIER else by_customer] for name, column in group.items()
                    if name != "resume"}
            if "resume" in group:
                part["resume"] = {name: column[by_member if name == "ring" else by_customer]
                                  for name, column in group["resume"].items()}
            parts.append(part)
        return parts

    def _join(self, threads) -> list:
        """Everyone waiting in the queue (acquisition batches, referred customers) joins the population, as
        one group: one set of columns filled slice by slice. The slices are taken from the queue and their
        membership drawn and booked here, in order; each is entered in ``threads`` (:meth:`_enter`) while
        the next is taken (each writes only its own customers' columns and its members' rows)."""
        total = sum(item.count - item.taken if isinstance(item, _Batch) else len(item["key"]) for item in self.queue)
        if not total:
            return []
        columns, at = self._fresh_columns(total, new=True), 0
        tiers = len(self.program.tier_min) + 1
        # the members' rows, in order: as many as customers (those past the last member are never written:
        # fresh memory takes none until it is)
        by_tier = {name: np.empty((total, tiers)) for name in BY_TIER}
        members, entering = 0, []
        while (newcomers := self._dequeue(SLOTS)) is not None:
            size = len(newcomers["key"])
            member = self._members(newcomers)
            self._book_members(newcomers["arrival"], member)
            count = int(np.count_nonzero(member))
            slice_of = ({name: column[at:at + size] for name, column in columns.items()}, None, member,
                        {name: rows[members:members + count] for name, rows in by_tier.items()})
            if len(entering) >= 2:   # (at most two slices taken ahead of those entered)
                entering[-2].result()
            entering.append(threads.submit(self._enter_quietly, newcomers, *slice_of))
            at += size
            members += count
        assert at == total, (at, total)
        for entered in entering:
            entered.result()
        group = dict(columns)
        group.update({name: rows[:members] for name, rows in by_tier.items()})
        return self._add_parts(group, group["arrival"])   # new customers: their first purchase at arrival

    def _enter_quietly(self, *args) -> dict[str, np.ndarray]:
        """:meth:`_enter` in a thread, which does not inherit the caller's :func:`numpy.errstate`."""
        with np.errstate(divide="ignore", over="ignore"):
            return self._enter(*args)

    def _compact(self) -> None:
        """Merges the latest groups while the last holds at least half as many customers as the one before,
        or the one before is small (under :data:`~sim.engines.lifetimes.SLOTS`): few groups (so few calls of
        the loop a round), and each customer copied a few times at most (a small group many times)."""
        from sim.engines.lifetimes import PARTS

        def size(group: list[dict]) -> int:
            return sum(len(part["key"]) for part in group)

        while len(self.groups) >= 2 and (2 * size(self.groups[-1]) >= size(self.groups[-2])
                                         or size(self.groups[-2]) < SLOTS):
            parts = self.groups.pop(-2) + self.groups.pop()
            bins: list[list[dict]] = [[] for _ in range(PARTS)]   # the largest parts first, each to the smallest bin
            for part in sorted(parts, key=lambda part: -len(part["key"])):
                min(bins, key=lambda chosen: sum(len(member["key"]) for member in chosen)).append(part)
            self.groups.append([merge_parts(chosen) for chosen in bins if chosen])

    def _advance(self, until: float, threads, arrivals: bool = False) -> None:
        """Every customer to ``until`` (inf: the horizon), the customers referred before it too: each part's
        loop and referrals in a thread (the last round's message cost booked meanwhile), the sums booked part
        by part in a fixed order, the referred customers joining after them; then the groups compacted."""
        todo = list(self.population)
        while todo:
            futures = [threads.submit(self._advance_part, part, until, arrivals) for part in todo]
            results = [future.result() for future in futures]
            self._book([sums for sums, _ in results])
            if self.has_referrals:
                drawn = [referrals for _, referrals in results]
                left = {name: np.concatenate([rows[name] for rows, _, _ in drawn]) for name in drawn[0][0]}
                self._bring(left, np.arange(len(left["key"])), np.concatenate([number for _, number, _ in drawn]),
                            np.concatenate([born for _, _, born in drawn]))
            todo = self._join(threads)
        self._compact()

    def _advance_part(self, part: dict, until: float, arrivals: bool) -> tuple:
        """A part's customers to ``until`` (:meth:`_live`), then, with referrals, those of their referrals due
        before it and not drawn yet (from the part's floor on), over their alive spells as they stand (an
        alive customer's last spell goes on past ``until``): its sums, and its referrers' key, segment,
        cohort and membership, each referral's number and time. The offer of the round before, if the part's
        customers have one due, is given by the loop as they resume, its message cost booked in the part's
        sums."""
        sums = self._live(part, until, arrivals, part.pop("offer_due", NO_OFFER))
        if not self.has_referrals:
            return sums, None
        cutoff = min(until, self.horizon)
        parent, number, born = program_loops.round_referrals(
            part["key"], part["arrival"], part["referral_rate"], part["death"], part["first_end"],
            part["resume"]["spell"], spell_arrays(part["spells"]), part["floor"], cutoff, self.horizon,
            rng.increment(Purpose.REFERRAL_TIME), part["referral_next"])
        part["floor"] = cutoff
        return sums, ({name: part[name][parent] for name in ("key", "segment", "cohort", "member")}, number, born)

    def _round(self, target_round, threads) -> None:
        """A targeted-offer round at its time t, as the calendar engine's: everyone acquired so far (before t;
        at 0, those arriving then, who have just bought) scored from its observable history, the message
        cost of the chosen booked, the offer to those alive, their pending purchases moved (time change; their
        deadlines follow from the coupon when they resume). The ranking's passes over many customers run in
        ``threads``; the offers and the message cost are left to the next advance, whose loop gives them and
        books the cost as each chosen customer resumes, before anything else happens to it, as the round
        would have (:func:`~sim.engines.program_loops.program_lives`'s ``targeted``)."""
        from sim.model.scoring import Observed, select_observed

        t, offer = target_round.time, target_round.offer
        parts = self.population
        scored = [_scored(part["arrival"], t) for part in parts]
        observed = [Observed(part["segment"], part["made"], opening_of(part, "first_purchase"), part["resume"]["last"],
                             part["resume"]["repeat_spend"], part["key"], None if isinstance(who, slice) else who)
                    for part, who in zip(parts, scored, strict=True)]
        picked = select_observed(self.laws, observed, t, target=offer.target, share=offer.share, threads=threads)
        count = sum(ids.size for ids in picked)
        if not count:
            return

        depth_at = int(np.searchsorted(self.calendar[4], offer.depth))
        valid = offer.valid_days / DAYS_PER_YEAR
        month = int(months_of(np.array([t]), self.month_start)[0])
        message = (float(offer.message_cost), month, float(self.ledger.discount(np.array([t]))[0]))
        for part, ids in zip(parts, picked, strict=True):   # given by the next advance (:meth:`_advance_part`)
            if ids.size:
                part["offer_due"] = (np.asarray(ids, dtype=np.int64), float(t), depth_at, valid, message)
        self.events += count

    def _customers(self, group: dict) -> tuple:
        """The customers' columns as :func:`~sim.engines.program_loops.program_lives` reads them."""
        opening = tuple(group.get(name, NONE[name]) for name in OPENING)
        return (*(group[name] for name in ("key", "segment", "cohort", "parent_cohort", "spend_mean", "rate",
                                           "arrival", "member", "redeemer", *BY_TIER[:2], "dropout_p",
                                           BY_TIER[2], "arrival_discount", "hazard")),
                opening)

    def _referred(self, month: np.ndarray, cohort: np.ndarray, born: np.ndarray,
                  parents: dict[str, np.ndarray]) -> None:
        """Referred customers on the ledger, with the bonuses of a referral program paid for those whose
        referrer is a member."""
        super()._referred(month, cohort, born, parents)
        referral = self.program.referral
        if referral is not None:
            bonus = np.where(parents["member"], referral.referrer_bonus + referral.referee_bonus, 0.0)
            self.ledger.record_referral_bonuses(month, cohort, born, bonus)

    def _live(self, group: dict, until: float = np.inf, arrivals: bool = False, targeted: tuple = NO_OFFER
              ) -> tuple:
        """The compiled loop over the customers of ``group`` from where they stand to ``until`` (default: the
        horizon), the chosen of the last round given its offer first (``targeted``: as
        :func:`~sim.engines.program_loops.program_lives` reads it): returns its monthly, cohort and member
        sums and, for lives run whole, the alive spells that reactivations began (:meth:`_spells`). A group
        that keeps its ``resume`` state (targeted-offer rounds) goes on from where the previous call stopped."""
        customers = self._customers(group)
        resume, spells = group.get("resume"), group.get("spells")
        whole = resume is None
        if whole:   # a slice's lives, whole
            resume = resume_state(group["member"], tiers=len(self.program.tier_min) > 0)
            spells = spell_lists()
        sums = np.zeros((len(program_loops.MONTHLY), self.months))
        cohort_sums = np.zeros((len(program_loops.COHORT), len(self.ledger.cohort["customers"])))
        member_sums = np.zeros(len(program_loops.MEMBER))
        state = (group["death"], group["made"], group["points"], group["first_end"], spells, tuple(resume.values()))
        program_loops.call(program_loops.program_lives, customers, self.rules, self.calendar, self.offers, state,
                           self.order_values, self.economics, (sums, cohort_sums, member_sums), until, arrivals,
                           targeted)
        if not whole:
            return sums, cohort_sums, member_sums, None
        owner, start, lives, end = spell_arrays(spells)
        later = {name: group[name][owner] for name in ("ident", "key", "segment", "cohort", "referral_rate", "member")}
        later.update(arrival=start, death=end, first=1_000_000 + lives)
        return sums, cohort_sums, member_sums, later

    def _leave(self, parts: list, columns: dict[str, np.ndarray]) -> None:
        """The slice's sums, added part by part in a fixed order, go to the ledger; its referrers wait for
        their referrals to be drawn."""
        results = [part.result() if isinstance(part, Future) else part for part in parts]
        self._book(results)
        if self.has_referrals:
            referring = np.flatnonzero(columns["referral_rate"] > 0)
            if referring.size:
                names = ("key", "segment", "cohort", "arrival", "death", "referral_rate", "member")
                if not self.winback:
                    self.referrers.append(rows_of(columns, names, referring))
                    self.waiting += referring.size
                else:
                    spells = self._spells(columns, referring, [result[3] for result in results])
                    self.referrers.append(spells)
                    self.waiting += len(spells["key"])

    def _book(self, results: list) -> None:
        """The sums of the parts of a slice (or of the population), added part by part in a fixed order,
        go to the ledger."""
        sums, cohort_sums, member_sums = (total.copy() for total in results[0][:3])
        for monthly, by_cohort, members, _ in results[1:]:   # in a fixed order, whichever thread finished first
            sums += monthly
            cohort_sums += by_cohort
            member_sums += members
        rows = dict(zip(program_loops.MONTHLY, sums, strict=True))
        flows = self.ledger.monthly
        flows["purchases"] += rows["purchases"]
        flows["repeat_purchases"] += rows["purchases"] - rows["acquisition_purchases"]
        for name in ("gross_revenue", "npv_profit", "customers_dropped_out", "reward_cost", "points_earned",
                     "points_redeemed", "points_expired", "member_cost", "tier_benefit_cost", "discount_cost",
                     "message_cost", "customers_reactivated"):
            flows[name] += rows[name]
        self.ledger.record_member_reactivations(rows["member_reactivations"])
        self.points_change += rows["points_change"]
        self.member_dropouts += rows["member_dropouts"]
        for name, row in zip(program_loops.COHORT, cohort_sums, strict=True):
            if name == "alive_years":   # every alive spell's, discounted: CLV's learning part
                self.ledger.cohort["learning"] += self.ledger.learning_value * row
            else:
                self.ledger.cohort[name] += row
        for name, value in zip(program_loops.MEMBER, member_sums, strict=True):
            self.ledger.member[name] += float(value)
        self.events += int(rows["purchases"].sum() + rows["customers_dropped_out"].sum() + rows["deadlines"].sum())

    def _spells(self, columns: dict[str, np.ndarray], referring: np.ndarray, later: list) -> dict[str, np.ndarray]:
        """The alive spells of the referring customers of a slice, each customer's in order: the first from
        its arrival to ``first_end``, then those that reactivations began (``later``, from the parts of the
        slice), whose first referral is drawn with the counter ``first`` (:func:`~sim.engines.program_loops.spell_referrals`)."""
        first = rows_of(columns, ("ident", "key", "segment", "cohort", "arrival", "referral_rate", "member"), referring)
        first.update(death=columns["first_end"][referring], first=np.full(referring.size, -1, dtype=np.int64))
        parts = [first] + [{name: part[name][part["referral_rate"] > 0] for name in part} for part in later]
        rows = {name: np.concatenate([part[name] for part in parts]) for name in first}
        order_in_customer = np.concatenate([np.zeros(referring.size, dtype=np.int64)]
                                           + [np.arange(1, len(part["key"]) + 1) for part in parts[1:]])
        order = np.lexsort((order_in_customer, rows["ident"]))
        rows = {name: column[order] for name, column in rows.items()}
        rows["fresh"] = rows["first"] < 0
        return rows

    def _referral_times(self, left: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The referrals of ``left`` (customers, or their alive spells under a win-back offer): the row of
        each referral's referrer, its number and its time, row by row."""
        if "first" not in left:
            return super()._referral_times(left)
        key, start, rate = left["key"], left["arrival"], left["referral_rate"]
        end = np.minimum(left["death"], self.horizon)
        step = rng.increment(Purpose.REFERRAL_TIME)
        none_f, none_i = np.empty(0), np.empty(0, dtype=np.int64)
        counts = program_loops.spell_referrals(key, start, end, rate, left["first"], left["fresh"], step, none_i,
                                               none_f, none_i)
        parent = np.repeat(np.arange(counts.size), counts)
        offsets = np.concatenate([[0], np.cumsum(counts[:-1])]).astype(np.int64)
        born, number = np.empty(parent.size), np.empty(parent.size, dtype=np.int64)
        program_loops.spell_referrals(key, start, end, rate, left["first"], left["fresh"], step, offsets, born,
                                      number)
        return parent, number, born


def _scored(arrival: np.ndarray, t: float) -> slice | np.ndarray:
    """Which customers of a part a round at ``t`` scores: those acquired before t (at 0, those arriving then,
    who have just bought), as positions; all of them (most rounds) as a slice, which gathers their columns
    without an index."""
    scored = arrival < t if t > 0 else arrival <= 0
    return slice(None) if scored.all() else np.flatnonzero(scored)
