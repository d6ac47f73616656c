"""The reference engine: one simpy process per customer, written to be read, not to be fast.

This is the executable specification of ``docs/model.md`` and ``docs/levers.md``. Where it and the fast
engine (:mod:`sim.engines.calendar`) disagree statistically, one of them is wrong. It is meant for small
populations (thousands of customers); ``docs/model.md`` (section 6) explains why it cannot scale.

What is shared with the fast engine, and what is not
----------------------------------------------------
Shared (money bookkeeping and the firm's formulas, not customer behaviour):

* :class:`sim.accounting.ledger.Ledger` sums the money. The reference engine keeps its own plain event lists and
  hands them to the Ledger month by month at the end; it does **not** call ``Ledger.close``: active
  customers, members, dropouts, reactivations and outstanding points are counted here as they happen.
* :func:`sim.model.population.segment_laws` (the scenario's laws in per-year units),
  :meth:`sim.model.program.Program.join_probability` (the enrollment curve, whose intercept needs a root solve)
  and :func:`sim.model.scoring.select_targets` (the firm's scoring of observable histories).

Written independently here, from the docs: the arrival schedule, the latent traits (drawn from one plain
``numpy.random.Generator`` per replication, no common random numbers with the fast engine), every customer
event, the purchase-rate and dropout multipliers, the calendar of blanket windows, pull-forward dips and
targeted rounds, tiers, points, offers, win-back and referrals.

How a customer lives
--------------------
Each customer is a simpy process. After its acquisition purchase it loops: while alive it has three
exponential clocks (next purchase at rate lambda x m, next referral at its referral rate, and, under
``hazard`` dropout, its death at mu x dropout multiplier) and up to three deterministic deadlines (a held
offer running out, a win-back offer going out, its points expiring). It draws the clocks, waits for the
earliest clock or deadline with ``env.timeout``, and handles that event. When the calendar changes one of
its rates (a blanket window opens or closes, a pull-forward dip ends, its tier changes at a month end, it
receives a targeted offer), the calendar process interrupts it and it simply draws all its clocks again
from the new rates: the exponential is memoryless, so redrawing the remaining waiting time at the new rate
is exact. (The fast engine instead time-changes the pending purchase time; both give the same law.)
A dropped-out customer keeps its deadlines (its points still expire, a win-back offer still reaches it,
and may bring it back), and its process ends once nothing can happen to it any more.

Order of simultaneous events (only time 0 has them in practice: the initial customers arrive with the
first month): window openings and closings, dip ends and month ends act before customers' own events at
that instant, so a window opening in month 1 discounts the acquisition purchases made at time 0; a targeted
round acts after the acquisition purchases of the customers arriving at its instant, so the firm scores
customers who have bought once (the fast engine does the same).

Levers implemented (all of ``policy`` and ``response`` as of this writing)
-------------------------------------------------------------------------
* the no-policy model: acquisition schedule per channel and segment (initial customers at 0,
  ``new_per_month`` evenly over each month, split by largest remainder), the acquisition purchase at
  arrival (not a repeat purchase), Poisson purchases, ``per_purchase`` (BG/NBD, after repeat purchases
  only) and ``hazard`` (Pareto/NBD) dropout, Gamma-Gamma order values with growth over tenure, organic
  referrals (into the referral segment, referred customers refer too), cohorts, CLV and NPV;
* ``enrollment`` (self-selection through ``Program.join_probability``); the member purchase-rate factor,
  dropout multiplier and goal gradient from the value offered (levers.md section 3: reward rate,
  reachability at the customer's own pace, who reacts), or their fixed forms when set; written out here
  in plain floats, independently of ``sim.model.response``;
* ``points``: integer points on net spend x earn rate x tier multiplier, redeemers (``redeemer_share``)
  redeem whole rewards at the purchase after the balance reaches the threshold, expiry after
  ``expiry_months_inactive`` without a purchase (also for dropped-out customers), goal gradient, points
  outstanding and liability;
* ``costs``: fixed cost per month, member cost per year of a member's time alive;
* blanket windows (``kind: blanket``): price cut, uplift from the depth (or fixed), pull-forward dip per
  segment, habituation;
* ``tiers``: month-end evaluation on trailing 12 monthly buckets of net spend, earn multiplier,
  frequency lift and dropout multiplier (from the value of the benefits, or fixed), benefit cost per year of
  a member's time alive in the tier;
* win-back (``kind: winback``) with reactivation of dropped-out customers;
* targeted offers (``kind: targeted``, ``top_predicted_clv`` and ``at_risk``);
* the referral program: members' referral rate lift (from the bonus, or fixed), bonuses for referrals made
  by members;
* existing customers (``existing_customers``, docs/model.md "Existing customers"): from a customer table,
  traits drawn here from their posterior given the history (P(alive) from the shared closed forms of
  :mod:`sim.model.theory`; a gone Pareto/NBD customer's departure time by inverting its density on a fine
  grid), or, without a log, histories simulated purchase by purchase before the start; no purchase at
  time 0, the history in the observable state (last purchase, trailing year's spend by month, repeat
  purchases and spend, points balance).

A scenario key this module does not know (a policy or response field, a discount kind, a segment
option added to the schema later) raises :class:`NotImplementedError` naming it (:func:`check_supported`)
unless it is at its default, so nothing is ever silently ignored.

Details the docs leave open, decided as the fast engine does: a coupon received while one is held keeps
the better depth and the later end of the two; a blanket window and a coupon give the deeper discount and
use the coupon up; a win-back goes out once per inactivity spell (the next purchase starts a new one); a
customer won back under ``hazard`` dropout gets a fresh exponential lifetime (here simply its clocks,
memoryless), keeps its traits, tier, points and tenure.

Where the fast engine differs (tests/test_reference.py, ``xfail``): ``member_cost`` and
``tier_benefit_cost`` are charged here for the exact time a member is alive in the month (levers.md 2.7);
the fast engine charges a member won back twice or more within one calendar month also for the time it was
dropped out before the earlier win-back (only possible when ``inactive_days`` is under a month).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import simpy
from pydantic import BaseModel

from sim.accounting.ledger import Ledger
from sim.accounting.tables import ReplicationResult
from sim.model import theory
from sim.model.population import SegmentLaws, segment_laws
from sim.schema import REFERRAL_CHANNEL, Acquisition, Economics, Scenario, Segment
from sim.schema.behaviour import HazardDropout, OrderValue, PerPurchaseDropout, PurchaseRate, Referrals
from sim.schema.existing import CustomerBase, ExistingFromFile, ExistingSimulated
from sim.schema.policy import (
    MAX_POINTS_PER_PURCHASE,
    BlanketDiscount,
    Enrollment,
    Points,
    Policy,
    ProgramCosts,
    ReferralProgram,
    Response,
    TargetedOffer,
    Tier,
    WinbackOffer,
)
from sim.schema.units import DAYS_PER_YEAR

INF = math.inf
#: levers.md section 1: full-price buying never falls below half its level through habituation.
HABITUATION_FLOOR = 0.5
#: levers.md section 2.4: the deepest pull-forward dip.
MAX_DIP = 0.9
#: The spawn key that separates the reference engine's stream from everything else of a replication.
STREAM = 99

#: The fields of every scenario model this module implements (see :func:`check_supported`).
KNOWN_FIELDS = {
    Scenario: {"name", "description", "horizon_months", "replications", "seed", "baseline", "economics",
               "segments", "acquisition", "existing_customers", "policy", "response"},
    ExistingFromFile: {"file", "segment", "channel"},
    ExistingSimulated: {"count", "history_months", "segments", "channel"},
    Economics: {"gross_margin", "cost_to_serve_per_order", "annual_discount_rate", "learning_value_per_customer_year"},
    Acquisition: {"channel", "cac", "initial_customers", "new_per_month", "months", "segments"},
    Segment: {"purchases_per_year", "dropout", "order_value", "referrals_per_year", "deal_proneness"},
    PurchaseRate: {"mean", "cv", "r", "alpha", "alpha_unit"},
    PerPurchaseDropout: {"model", "mean", "cv", "a", "b"},
    HazardDropout: {"model", "annual_churn", "cv", "s", "beta", "beta_unit"},
    OrderValue: {"mean", "cv", "between_cv", "p", "q", "gamma", "growth_per_year"},
    Referrals: {"mean", "cv", "segment"},
    Policy: {"enrollment", "points", "tiers", "discounts", "referral", "costs"},
    Enrollment: {"probability", "self_selection"},
    Points: {"earn_per_currency", "reward_threshold", "reward_value", "reward_cost_ratio", "redeemer_share",
             "expiry_months_inactive"},
    Tier: {"name", "min_spend_12m", "earn_multiplier", "frequency_lift", "dropout_multiplier",
           "benefit_cost_per_year"},
    BlanketDiscount: {"name", "kind", "depth", "start_month", "every_months", "duration_days"},
    WinbackOffer: {"name", "kind", "inactive_days", "depth", "valid_days", "message_cost"},
    TargetedOffer: {"name", "kind", "target", "share", "start_month", "every_months", "depth", "valid_days",
                    "message_cost"},
    ReferralProgram: {"referrer_bonus", "referee_bonus"},
    ProgramCosts: {"fixed_per_month", "per_member_per_year"},
    Response: {"member_frequency_lift", "member_dropout_multiplier", "goal_gradient", "discount_uplift",
               "pull_forward", "habituation", "winback_reactivation", "referral_bonus_lift",
               "heavy_buyer_damping", "reward_reach_years", "half_reward_rate", "member_max_lift",
               "member_max_retention", "goal_gradient_max", "discount_elasticity", "discount_half_depth",
               "tier_max_lift", "tier_max_retention", "half_benefit_rate", "referral_max_lift", "half_bonus_ratio"},
}


def check_supported(scenario: Scenario) -> None:
    """Raise NotImplementedError naming the key if the scenario uses anything this module does not
    implement: a field of a scenario model missing from :data:`KNOWN_FIELDS` and not at its default, or a
    model (a discount kind, a dropout model) it does not know. Walks the whole scenario."""

    def walk(value, path: str) -> None:
        if isinstance(value, BaseModel):
            known = KNOWN_FIELDS.get(type(value))
            if known is None:
                raise NotImplementedError(f"the reference engine does not implement {path} "
                                          f"({type(value).__name__})")
            for name, field in type(value).model_fields.items():
                child = getattr(value, name)
                if name not in known:
                    if child != field.get_default(call_default_factory=True):
                        raise NotImplementedError(f"the reference engine does not implement {path}.{name}")
                    continue
                walk(child, f"{path}.{name}")
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(item, f"{path}.{index}")
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")

    walk(scenario, "scenario")


class Customer:
    """One customer's latent traits and observable state (times in years from the scenario start)."""

    __slots__ = (
        "id", "segment", "cohort", "parent_cohort", "arrival", "rate", "dropout_p", "hazard", "spend_mean",
        "referral_rate", "member", "redeemer", "alive", "purchases", "last_purchase", "repeat_spend",
        "points", "tier", "discounted", "offer_until", "offer_depth", "winback_at", "spend_by_month",
        "spells", "process", "waiting", "first_purchase",
    )

    def __init__(self, **values) -> None:
        for name in self.__slots__:
            setattr(self, name, values.get(name))


class ReferenceEngine:
    """Simulates one replication of ``scenario`` with one simpy process per customer.

    Same interface and result as :class:`sim.engines.calendar.Engine`; the numbers agree in distribution, not
    draw for draw.
    """

    def __init__(self, scenario: Scenario, replication: int, *, record_transactions: bool = False) -> None:
        check_supported(scenario)
        self.scenario = scenario
        self.replication = replication
        self.horizon = scenario.horizon_years
        self.months = scenario.horizon_months
        self.laws: list[SegmentLaws] = segment_laws(scenario)
        self.segment_names = list(scenario.segments)
        existing = [] if scenario.existing_customers is None else [scenario.existing_customers.channel]
        self.channels = [a.channel for a in scenario.acquisition] + existing + [REFERRAL_CHANNEL]
        self.existing: list[tuple[int, int, int, int]] = []   # (cohort, customers, alive, members alive)
        self.gen = np.random.default_rng(np.random.SeedSequence(scenario.seed, spawn_key=(replication, STREAM)))
        self.env = simpy.Environment()
        self.customers: list[Customer] = []
        self.record_transactions = record_transactions
        self.events = 0

        self.policy = scenario.policy
        self.response = scenario.response
        self.program = None
        if self.policy is not None:
            from sim.model.program import Program  # only for the enrollment curve (and its scipy import)

            self.program = Program(scenario, self.laws)
        policy = self.policy
        self.points = policy.points if policy is not None else None
        self.tiers = policy.tiers if policy is not None else []
        discounts = policy.discounts if policy is not None else []
        self.winback = next((d for d in discounts if isinstance(d, WinbackOffer)), None)
        self.deal_proneness = [seg.deal_proneness for seg in scenario.segments.values()]

        # calendar state: open blanket windows (their depths) and running dips (segment -> [(factor, until)])
        self.open_windows: list[float] = []
        self.dips: dict[int, list[tuple[float, float]]] = defaultdict(list)

        # plain event lists, handed to the Ledger at the end
        self.arrivals: list[tuple] = []       # (month, cohort, time, cac, referred, bonus, member)
        self.purchases: list[tuple] = []      # (month, cohort, time, arrival, list value, repeat, parent, member)
        self.growth_margin: list[tuple] = []  # (cohort, margin on what growth with tenure added, at acquisition)
        self.costs: dict[str, list[tuple]] = defaultdict(list)  # name -> (month, cohort, time, arrival, amount, parent)
        self.fixed_costs: list[tuple] = []    # (month, amount, time)
        self.points_flow = np.zeros((self.months, 3), dtype=np.int64)   # earned, redeemed, expired
        self.dropped_out = np.zeros(self.months)
        self.reactivated = np.zeros(self.months)
        self.stocks = {name: np.zeros(self.months) for name in
                       ("active_customers_end", "members_end", "points_outstanding", "points_liability")}
        self.transactions: list[tuple] = []   # (customer id, time, list value, discount, earned, redeemed)
        # running counts
        self.active = 0
        self.active_members = 0
        self.outstanding_points = 0

    # =========================================================================================
    # the run
    # =========================================================================================
    def run(self) -> ReplicationResult:
        env = self.env
        # Calendar processes first: at one instant the calendar acts before the customers (module docstring).
        months = env.process(self._month_ends())
        for window in self._blanket_windows():
            env.process(self._window(*window))
        for time, offer in self._target_rounds():
            env.process(self._targeted_round(time, offer))
        if self.scenario.existing_customers is not None:
            self._existing_customers()
        env.process(self._acquisition())
        env.run(until=months)  # the last month end is at the horizon; nothing after it counts
        return self._result()

    def _month(self, t: float) -> int:
        return min(int(t * 12.0), self.months - 1)

    def _cohort(self, month: int, channel: int, segment: int) -> int:
        return (month * len(self.channels) + channel) * len(self.laws) + segment

    # =========================================================================================
    # arrivals
    # =========================================================================================
    def _arrival_schedule(self) -> list[tuple[float, int, int, int, float]]:
        """(time, month, channel index, segment, cac) of every acquired customer, in time order.

        Initial customers at 0; ``new_per_month`` of each of the first ``months`` months spread evenly over
        the month, segment by segment (the k-th of n at (month + (k + 1/2) / n) / 12). A channel's customers
        are split between segments by the largest remainder, so counts are exact.
        """
        scenario = self.scenario
        schedule = []
        for channel, acq in enumerate(scenario.acquisition):
            mix = scenario.segment_mix(acq)
            shares = [mix.get(name, 0.0) for name in self.segment_names]
            for segment, count in enumerate(_split(acq.initial_customers, shares)):
                schedule += [(0.0, 0, channel, segment, acq.cac)] * count
            for month in range(scenario.acquisition_months(acq)):
                for segment, count in enumerate(_split(acq.new_per_month, shares)):
                    for k in range(count):
                        schedule.append(((month + (k + 0.5) / count) / 12.0, month, channel, segment, acq.cac))
        schedule.sort(key=lambda row: row[0])
        return schedule

    def _acquisition(self):
        for time, month, channel, segment, cac in self._arrival_schedule():
            if time >= self.horizon:
                break
            if time > self.env.now:
                yield self.env.timeout(time - self.env.now)
            self._arrive(segment, self._cohort(month, channel, segment), month, cac, parent=None)

    def _arrive(self, segment: int, cohort: int, month: int, cac: float, parent: Customer | None) -> Customer:
        """A new customer: latent traits, enrollment, and its process (which starts with the acquisition
        purchase)."""
        gen, law, now = self.gen, self.laws[segment], self.env.now
        rate = _gamma_draw(gen, law.purchase_rate)
        if law.dropout is not None:
            dropout_p = law.dropout.mean if law.dropout.a is None else gen.beta(law.dropout.a, law.dropout.b)
            hazard = 0.0
        else:
            dropout_p = 0.0
            hazard = _gamma_draw(gen, law.hazard)
        spend = law.spend
        spend_mean = spend.mean if spend.q is None else spend.mean * (spend.q - 1.0) / gen.standard_gamma(spend.q)
        referral_rate = _gamma_draw(gen, law.referral_rate)
        member = redeemer = False
        if self.program is not None:
            member = bool(gen.random() < self.program.join_probability(segment, np.array([rate]))[0])
            redeemer = self.points is not None and bool(gen.random() < self.points.redeemer_share)
            if member and self.policy.referral is not None:
                referral_rate *= self.referral_multiplier(spend_mean)
        customer = Customer(
            id=len(self.customers), segment=segment, cohort=cohort,
            parent_cohort=-1 if parent is None else parent.cohort, arrival=now, rate=rate,
            dropout_p=dropout_p, hazard=hazard, spend_mean=spend_mean, referral_rate=referral_rate,
            member=member, redeemer=redeemer, alive=True, purchases=0, last_purchase=-INF, repeat_spend=0.0,
            points=0, tier=0, discounted=0, offer_until=-INF, offer_depth=0.0,
            winback_at=INF, spend_by_month={}, spells=[[now, INF]], waiting=False, first_purchase=now,
        )
        self.customers.append(customer)
        bonus = 0.0
        if parent is not None and parent.member and self.policy is not None and self.policy.referral is not None:
            bonus = self.policy.referral.referrer_bonus + self.policy.referral.referee_bonus
        self.arrivals.append((month, cohort, now, cac, parent is not None, bonus, member))
        self.active += 1
        self.active_members += member
        customer.process = self.env.process(self._life(customer))
        return customer

    # =========================================================================================
    # existing customers
    # =========================================================================================
    def _existing_customers(self) -> None:
        """The firm's customers at time 0 with their histories: from the scenario's customer table, traits from
        their posterior given the history; without one, histories simulated before the start."""
        existing, channel = self.scenario.existing_customers, len(self.scenario.acquisition)
        if isinstance(existing, ExistingFromFile):
            segment = self.segment_names.index(existing.segment)
            base = self.scenario.base
            people = [self._posterior(segment, base, i) for i in range(base.size)]
            self._open(segment, self._cohort(0, channel, segment), people, base.spend_12m, base.points_balance)
            return
        mix = existing.segments or {self.segment_names[0]: 1.0}
        counts = _split(existing.count, [mix.get(name, 0.0) for name in self.segment_names])
        for segment, count in enumerate(counts):
            people = [self._history(segment, (k + 0.5) / count * existing.history_months / 12.0
                                    - existing.history_months / 12.0) for k in range(count)]
            self._open(segment, self._cohort(0, channel, segment), [p[0] for p in people],
                       np.array([p[1] for p in people]), None)

    def _posterior(self, segment: int, base: CustomerBase, i: int) -> dict:
        """Traits of customer ``i`` of the table given its history (docs/model.md, "Existing customers")."""
        gen, law = self.gen, self.laws[segment]
        x, t_x, T, m = (int(base.repeat_purchases[i]), float(base.recency_years[i]), float(base.age_years[i]),
                        float(base.mean_repeat_spend[i]))
        r, alpha = law.purchase_rate.shape, law.purchase_rate.shape / law.purchase_rate.mean
        if law.dropout is not None:
            a, b = law.dropout.a, law.dropout.b
            alive = gen.random() < float(theory.bgnbd_probability_alive(x, t_x, T, r, alpha, a, b))
            rate = gen.gamma(r + x, 1.0 / (alpha + (T if alive else t_x)))
            dropout_p = gen.beta(a, b + x) if alive else gen.beta(a + 1.0, b + x - 1.0)
            hazard = 0.0
        else:
            s, beta = law.hazard.shape, law.hazard.shape / law.hazard.mean
            alive = gen.random() < float(theory.paretonbd_probability_alive(x, t_x, T, r, alpha, s, beta))
            left = T
            if not alive:   # the departure time, by inverting its density (alpha+tau)^-(r+x) (beta+tau)^-(s+1)
                grid = np.linspace(t_x, T, 4001)
                density = (alpha + grid) ** -(r + x) * (beta + grid) ** -(s + 1.0)
                cumulative = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2.0)])
                left = float(np.interp(gen.random() * cumulative[-1], cumulative, grid))
            rate = gen.gamma(r + x, 1.0 / (alpha + left))
            hazard = gen.gamma(s if alive else s + 1.0, 1.0 / (beta + left))
            dropout_p = 0.0
        spend = law.spend
        if spend.q is None:
            spend_mean = spend.mean
        elif spend.p is None:
            spend_mean = m if x > 0 else spend.mean * (spend.q - 1.0) / gen.standard_gamma(spend.q)
        else:   # own mean p / nu, nu ~ Gamma(p x + q, rate gamma + x m)
            scale = spend.mean * (spend.q - 1.0) / spend.p + x * m
            spend_mean = spend.p / (gen.standard_gamma(spend.p * x + spend.q) / scale)
        return {"rate": rate, "dropout_p": dropout_p, "hazard": hazard, "spend_mean": spend_mean,
                "referral_rate": _gamma_draw(gen, law.referral_rate), "alive": alive, "purchases": x + 1,
                "first_purchase": -T, "last_purchase": t_x - T, "repeat_spend": x * m}

    def _history(self, segment: int, arrival: float) -> tuple[dict, float]:
        """A customer who arrived at ``arrival`` (< 0), its history simulated without a program up to the
        start: its traits and state, and its spend in the year before the start."""
        gen, law = self.gen, self.laws[segment]
        rate = _gamma_draw(gen, law.purchase_rate)
        per_purchase = law.dropout is not None
        dropout_p = (law.dropout.mean if law.dropout.a is None else gen.beta(law.dropout.a, law.dropout.b)) \
            if per_purchase else 0.0
        hazard = 0.0 if per_purchase else _gamma_draw(gen, law.hazard)
        spend = law.spend
        spend_mean = spend.mean if spend.q is None else spend.mean * (spend.q - 1.0) / gen.standard_gamma(spend.q)
        life_end = arrival + self._exponential(hazard) if not per_purchase else INF
        t, purchases, repeat_spend, spend_12m, last, alive = arrival, 0, 0.0, 0.0, arrival, True
        while True:
            value = spend_mean * (gen.standard_gamma(spend.p) / spend.p if spend.p is not None else 1.0)
            value *= (1.0 + spend.growth_per_year) ** (t - arrival)
            repeat_spend += value if purchases else 0.0
            spend_12m += value if t > -1.0 else 0.0
            last = t
            if purchases and gen.random() < dropout_p:
                alive = False
            purchases += 1
            t += self._exponential(rate)
            if not alive or t >= 0.0 or t >= life_end:
                break
        alive = alive and life_end > 0.0
        return ({"rate": rate, "dropout_p": dropout_p, "hazard": hazard, "spend_mean": spend_mean,
                 "referral_rate": _gamma_draw(gen, law.referral_rate), "alive": alive, "purchases": purchases,
                 "first_purchase": arrival, "last_purchase": last, "repeat_spend": repeat_spend}, spend_12m)

    def _open(self, segment: int, cohort: int, people: list[dict], spend_12m: np.ndarray,
              points_balance: np.ndarray | None) -> None:
        """Existing customers of one segment enter at time 0 with their state (enrollment as new customers';
        a points balance makes a member), each with its process (no purchase at time 0)."""
        gen, alive_count, members_alive = self.gen, 0, 0
        for i, person in enumerate(people):
            member = redeemer = False
            points = 0
            if self.program is not None:
                member = bool(gen.random() < self.program.join_probability(segment, np.array([person["rate"]]))[0])
                redeemer = self.points is not None and bool(gen.random() < self.points.redeemer_share)
                if self.points is not None and points_balance is not None and points_balance[i] > 0:
                    member, points = True, int(points_balance[i])
                if member and self.policy.referral is not None:
                    person["referral_rate"] *= self.referral_multiplier(person["spend_mean"])
            tier = 0
            spend_by_month: dict[int, float] = {}
            if self.tiers:
                for month in range(-11, 0):   # the trailing year spread over its months -11 .. -1
                    spend_by_month[month] = float(spend_12m[i]) / 12.0
                if member:
                    tier = sum(1 for level in self.tiers if spend_12m[i] >= level.min_spend_12m)
            alive = bool(person.pop("alive"))
            winback_at = INF
            if self.winback is not None:
                winback_at = max(person["last_purchase"] + self.winback.inactive_days / DAYS_PER_YEAR, 0.0)
            c = Customer(id=len(self.customers), segment=segment, cohort=cohort, parent_cohort=-1, arrival=0.0,
                         member=member, redeemer=redeemer, alive=alive, points=points if member else 0, tier=tier,
                         discounted=0, offer_until=-INF, offer_depth=0.0, winback_at=winback_at,
                         spend_by_month=spend_by_month, spells=[[0.0, INF]] if alive else [], waiting=False,
                         **person)
            self.customers.append(c)
            self.outstanding_points += c.points
            alive_count += alive
            members_alive += alive and member
            c.process = self.env.process(self._life(c, acquired=False))
        self.active += alive_count
        self.active_members += members_alive
        self.existing.append((cohort, len(people), alive_count, members_alive))

    # =========================================================================================
    # a customer's life
    # =========================================================================================
    def _life(self, c: Customer, acquired: bool = True):
        env = self.env
        yield env.timeout(0)  # the calendar of this instant acts first
        if acquired:
            self._purchase(c)     # the acquisition purchase (an existing customer has none at time 0)
        while True:
            now = env.now
            # exponential clocks, drawn afresh at the current rates
            purchase_at = referral_at = death_at = INF
            if c.alive:
                purchase_at = now + self._exponential(c.rate * self.purchase_multiplier(c, now))
                referral_at = now + self._exponential(c.referral_rate)
                if c.hazard > 0:
                    death_at = now + self._exponential(c.hazard * self.dropout_multiplier(c))
            deadline = self._next_deadline(c)
            when = min(purchase_at, referral_at, death_at, deadline)
            if when == INF and not c.alive:
                return  # dropped out and nothing left that could bring it back
            c.waiting = True
            try:
                # an alive customer with no clock at all still waits, for the calendar to change its rates
                yield env.timeout(when - now) if when < INF else env.event()
            except simpy.Interrupt:
                continue  # a rate changed: draw the clocks again (memoryless)
            finally:
                c.waiting = False
            self.events += 1
            if when == deadline:
                self._deadlines(c)
            elif when == purchase_at:
                self._purchase(c)
            elif when == referral_at:
                self._refer(c)
            else:
                self._die(c)

    def _exponential(self, rate: float) -> float:
        return self.gen.standard_exponential() / rate if rate > 0 else INF

    def wake(self, c: Customer) -> None:
        """The calendar changed something of ``c``: make it draw its clocks again."""
        if c.waiting:
            c.process.interrupt()
            c.waiting = False

    # -- multipliers (levers.md section 1) and responses to the value offered (section 3) -------------
    def discount_depth(self, c: Customer, t: float) -> float | None:
        """The deepest discount available to ``c`` at ``t`` (an open window or a held offer), or None."""
        depths = list(self.open_windows)
        if c.offer_until > t:
            depths.append(c.offer_depth)
        return max(depths) if depths else None

    def reacts(self, c: Customer) -> float:
        """Who reacts (levers.md 3): (1 + d) / (1 + d x²), x = own rate / segment's mean rate."""
        d = self.response.heavy_buyer_damping
        mean = self.laws[c.segment].purchase_rate.mean
        x = c.rate / mean if mean > 0 else 1.0
        return (1.0 + d) / (1.0 + d * x * x)

    def program_value(self, c: Customer) -> float:
        """V: reward value back per unit spent x max(0, 1 - years to a reward at c's pace / reach years)."""
        points = self.points
        if points is None:
            return 0.0
        earn = points.earn_per_currency * (self.tiers[c.tier - 1].earn_multiplier if c.tier else 1.0)
        points_per_year = float(c.rate) * float(c.spend_mean) * earn
        if points_per_year <= 0:
            return 0.0
        years_to_reward = points.reward_threshold / points_per_year
        reach = max(0.0, 1.0 - years_to_reward / self.response.reward_reach_years)
        return earn * points.reward_value / points.reward_threshold * reach

    def value_share(self, c: Customer) -> float:
        """How much of the full membership response the program's value buys: V / (V + half)."""
        v = self.program_value(c)
        return v / (v + self.response.half_reward_rate)

    def benefit_share(self, c: Customer) -> float:
        """How much of the full tier response c's tier's benefits buy, per unit of its yearly spend."""
        yearly = float(c.rate) * float(c.spend_mean)
        if not c.tier or yearly <= 0:
            return 0.0
        b = self.tiers[c.tier - 1].benefit_cost_per_year / yearly
        return b / (b + self.response.half_benefit_rate)

    def discount_factor(self, segment: int, depth: float) -> float:
        """Rate factor while a discount of ``depth`` is available: elasticity with saturation (levers.md 3)."""
        response = self.response
        deal = self.deal_proneness[segment]
        if response.discount_uplift is not None:
            return 1.0 + response.discount_uplift * deal
        h = response.discount_half_depth
        anchored = response.discount_elasticity * depth * (1.0 + 0.2 / h) / (1.0 + depth / h)
        return 1.0 + deal / 0.5 * anchored

    def referral_multiplier(self, spend_mean: float) -> float:
        response, referral = self.response, self.policy.referral
        if response.referral_bonus_lift is not None:
            return 1.0 + response.referral_bonus_lift
        ratio = (referral.referrer_bonus + referral.referee_bonus) / float(spend_mean)
        return 1.0 + response.referral_max_lift * ratio / (ratio + response.half_bonus_ratio)

    def purchase_multiplier(self, c: Customer, t: float) -> float:
        if self.policy is None:
            return 1.0
        response = self.response
        m = 1.0
        if c.member:
            weight = self.reacts(c)
            if response.member_frequency_lift is not None:
                m *= 1.0 + response.member_frequency_lift
            else:
                m *= 1.0 + response.member_max_lift * weight * self.value_share(c)
            if c.tier:
                tier = self.tiers[c.tier - 1]
                if tier.frequency_lift is not None:
                    m *= 1.0 + tier.frequency_lift
                else:
                    m *= 1.0 + response.tier_max_lift * weight * self.benefit_share(c)
            if self.points is not None and c.redeemer:
                gradient = (response.goal_gradient if response.goal_gradient is not None
                            else response.goal_gradient_max * weight * self.value_share(c))
                m *= 1.0 + gradient * min(c.points / self.points.reward_threshold, 1.0)
        depth = self.discount_depth(c, t)
        if depth is not None:
            m *= self.discount_factor(c.segment, depth)
        else:
            m *= max(HABITUATION_FLOOR, (1.0 - response.habituation) ** c.discounted)
            for factor, until in self.dips[c.segment]:
                if t < until:
                    m *= factor
        return m

    def dropout_multiplier(self, c: Customer) -> float:
        if self.policy is None or not c.member:
            return 1.0
        response = self.response
        weight = self.reacts(c)
        if response.member_dropout_multiplier is not None:
            m = response.member_dropout_multiplier
        else:
            m = 1.0 / (1.0 + response.member_max_retention * weight * self.value_share(c))
        if c.tier:
            tier = self.tiers[c.tier - 1]
            if tier.dropout_multiplier is not None:
                m *= tier.dropout_multiplier
            else:
                m *= 1.0 / (1.0 + response.tier_max_retention * weight * self.benefit_share(c))
        return m

    # -- events ----------------------------------------------------------------------------------------
    def _purchase(self, c: Customer) -> None:
        t = self.env.now
        month = self._month(t)
        repeat = c.purchases > 0
        spend = self.laws[c.segment].spend
        value = c.spend_mean
        if spend.p is not None:
            value *= self.gen.standard_gamma(spend.p) / spend.p
        before_growth = value
        value *= (1.0 + spend.growth_per_year) ** (t - c.arrival)
        if spend.growth_per_year:   # CLV's growth part, discounted to the acquisition
            economics = self.scenario.economics
            self.growth_margin.append((c.cohort, economics.gross_margin * (value - before_growth)
                                       / (1.0 + economics.annual_discount_rate) ** (t - c.arrival)))
        # the deeper of an open window and a held coupon; the coupon is used up either way
        depth = max(self.open_windows, default=0.0)
        if c.offer_until > t:
            depth = max(depth, c.offer_depth)
            c.offer_until, c.offer_depth = -INF, 0.0
        paid = value * (1.0 - depth)
        self.purchases.append((month, c.cohort, t, c.arrival, value, repeat, c.parent_cohort, c.member))
        if depth > 0:
            c.discounted += 1
            self.costs["discount_cost"].append((month, c.cohort, t, c.arrival, value - paid, c.parent_cohort))
        earned = redeemed = 0
        if self.points is not None and c.member:
            points = self.points
            if c.redeemer and c.points >= points.reward_threshold:
                rewards = c.points // points.reward_threshold
                redeemed = rewards * points.reward_threshold
                self.costs["reward_cost"].append((month, c.cohort, t, c.arrival,
                                                  rewards * points.reward_value * points.reward_cost_ratio,
                                                  c.parent_cohort))
            earn_multiplier = self.tiers[c.tier - 1].earn_multiplier if c.tier else 1.0
            earned = math.floor(min(paid * points.earn_per_currency * earn_multiplier, MAX_POINTS_PER_PURCHASE))
            c.points += earned - redeemed
            self.outstanding_points += earned - redeemed
            self.points_flow[month, 0] += earned
            self.points_flow[month, 1] += redeemed
        if self.record_transactions:
            self.transactions.append((c.id, t, value, value - paid, earned, redeemed))
        if self.tiers:
            c.spend_by_month[month] = c.spend_by_month.get(month, 0.0) + paid
        if repeat:
            c.repeat_spend += value
        c.purchases += 1
        c.last_purchase = t
        if self.winback is not None:
            c.winback_at = t + self.winback.inactive_days / DAYS_PER_YEAR  # a new inactivity spell
        # BG/NBD: a coin after each repeat purchase
        if repeat and c.dropout_p > 0 and self.gen.random() < min(1.0, c.dropout_p * self.dropout_multiplier(c)):
            self._die(c)

    def _refer(self, c: Customer) -> None:
        """An organic referral: a new customer arrives now, in the referral segment, through ``referral``."""
        month = self._month(self.env.now)
        segment = self.laws[c.segment].referral_segment
        cohort = self._cohort(month, len(self.channels) - 1, segment)
        self._arrive(segment, cohort, month, 0.0, parent=c)

    def _die(self, c: Customer) -> None:
        t = self.env.now
        c.alive = False
        c.spells[-1][1] = t
        self.dropped_out[self._month(t)] += 1
        self.active -= 1
        self.active_members -= c.member

    def _revive(self, c: Customer) -> None:
        t = self.env.now
        c.alive = True
        c.spells.append([t, INF])
        self.reactivated[self._month(t)] += 1
        self.active += 1
        self.active_members += c.member

    # -- deadlines -------------------------------------------------------------------------------------
    def _expiry_at(self, c: Customer) -> float:
        if self.points is None or self.points.expiry_months_inactive is None or c.points == 0:
            return INF
        return c.last_purchase + self.points.expiry_months_inactive / 12.0

    def _next_deadline(self, c: Customer) -> float:
        offer_end = c.offer_until if c.offer_until > -INF else INF
        # an existing customer's deadline may have passed before the start: it falls due at once
        return max(min(offer_end, c.winback_at, self._expiry_at(c)), self.env.now)

    def _deadlines(self, c: Customer) -> None:
        """Whatever of ``c``'s deadlines are due now: points expiring, a coupon running out, a win-back."""
        t = self.env.now
        if self._expiry_at(c) <= t:
            self.points_flow[self._month(t), 2] += c.points
            self.outstanding_points -= c.points
            c.points = 0
        if -INF < c.offer_until <= t:
            c.offer_until, c.offer_depth = -INF, 0.0
        if c.winback_at <= t:
            self._send_winback(c)

    def _send_winback(self, c: Customer) -> None:
        """Once per inactivity spell, alive or not (the firm cannot see dropout)."""
        offer = self.winback
        c.winback_at = INF
        self._message(c, offer.message_cost)
        if not c.alive and self.gen.random() < self.response.winback_reactivation:
            self._revive(c)
        if c.alive:
            self._give_offer(c, offer.depth, offer.valid_days)

    def _message(self, c: Customer, cost: float) -> None:
        if cost:
            t = self.env.now
            self.costs["message_cost"].append((self._month(t), c.cohort, t, c.arrival, cost, c.parent_cohort))

    def _give_offer(self, c: Customer, depth: float, valid_days: float) -> None:
        """A single-use coupon valid for ``valid_days``; if one is held, the better terms of the two."""
        t = self.env.now
        until = t + valid_days / DAYS_PER_YEAR
        if c.offer_until > t:
            c.offer_depth, c.offer_until = max(c.offer_depth, depth), max(c.offer_until, until)
        else:
            c.offer_depth, c.offer_until = depth, until

    # =========================================================================================
    # the calendar
    # =========================================================================================
    def _blanket_windows(self) -> list[tuple[float, float, float, list[float], list[float]]]:
        """(start, end, depth, dip factor per segment, dip end per segment) of every window opening
        within the horizon (levers.md 2.4: d = min(0.9, pull_forward U), L = pull_forward U D / d)."""
        windows = []
        if self.policy is None:
            return windows
        for discount in self.policy.discounts:
            if not isinstance(discount, BlanketDiscount):
                continue
            duration = discount.duration_days / DAYS_PER_YEAR
            month = discount.start_month - 1
            while month < self.months:
                start = month / 12.0
                end = start + duration
                factors, ends = [], []
                for segment in range(len(self.deal_proneness)):
                    borrowed = self.response.pull_forward * (self.discount_factor(segment, discount.depth) - 1.0)
                    dip = min(MAX_DIP, borrowed)
                    factors.append(1.0 - dip)
                    ends.append(end + (borrowed * duration / dip if dip > 0 else 0.0))
                windows.append((start, end, discount.depth, factors, ends))
                if discount.every_months is None:
                    break
                month += discount.every_months
        return windows

    def _window(self, start: float, end: float, depth: float, factors: list[float], ends: list[float]):
        env = self.env
        yield env.timeout(start - env.now)
        self.open_windows.append(depth)
        self._wake_alive()
        yield env.timeout(end - env.now)
        self.open_windows.remove(depth)
        for segment, (factor, until) in enumerate(zip(factors, ends)):
            if until > end:
                self.dips[segment].append((factor, until))
        self._wake_alive()
        for until in sorted({u for u in ends if u > end}):
            yield env.timeout(until - env.now)
            self._wake_alive([s for s, u in enumerate(ends) if u == until])
        for segment, (factor, until) in enumerate(zip(factors, ends)):
            if until > end:
                self.dips[segment].remove((factor, until))

    def _wake_alive(self, segments: list[int] | None = None) -> None:
        for c in self.customers:
            if c.alive and (segments is None or c.segment in segments):
                self.wake(c)

    def _target_rounds(self) -> list[tuple[float, TargetedOffer]]:
        rounds = []
        if self.policy is None:
            return rounds
        for offer in self.policy.discounts:
            if isinstance(offer, TargetedOffer):
                month = offer.start_month - 1
                while month < self.months:
                    rounds.append((month / 12.0, offer))
                    month += offer.every_months
        return rounds

    def _targeted_round(self, time: float, offer: TargetedOffer):
        """Score every customer acquired so far from its observable history; offer to the chosen ones."""
        from sim.model.scoring import select_targets

        yield self.env.timeout(time - self.env.now)
        yield self.env.timeout(0)  # customers arriving at this instant make their acquisition purchase first
        t = self.env.now
        scored = [c for c in self.customers if c.arrival <= t]
        if not scored:
            return
        segment = np.array([c.segment for c in scored])
        repeats = np.array([max(c.purchases - 1, 0) for c in scored])
        recency = np.array([c.last_purchase - c.first_purchase if c.purchases else 0.0 for c in scored])
        age = np.array([t - c.first_purchase for c in scored])
        repeat_spend = np.array([c.repeat_spend for c in scored])
        chosen = select_targets(self.laws, segment, repeats, recency, age, repeat_spend,
                                target=offer.target, share=offer.share)
        for index in chosen:
            c = scored[index]
            self._message(c, offer.message_cost)
            if c.alive:  # the dropped-out only cost the message
                self._give_offer(c, offer.depth, offer.valid_days)
                self.wake(c)

    def _month_ends(self):
        """Month-end accounting: stocks, member and tier costs, fixed cost, tier evaluation."""
        env = self.env
        for month in range(self.months):
            yield env.timeout((month + 1) / 12.0 - env.now)
            start, end = month / 12.0, (month + 1) / 12.0
            self.stocks["active_customers_end"][month] = self.active
            self.stocks["members_end"][month] = self.active_members
            if self.policy is None:
                continue
            costs = self.policy.costs
            if costs.fixed_per_month:
                self.fixed_costs.append((month, costs.fixed_per_month, (start + end) / 2.0))
            members = [c for c in self.customers if c.member]
            for c in members:
                for spell_start, spell_end in c.spells:
                    lo, hi = max(spell_start, start), min(spell_end, end)
                    if hi <= lo:
                        continue
                    middle = (lo + hi) / 2.0
                    if costs.per_member_per_year:
                        self.costs["member_cost"].append((month, c.cohort, middle, c.arrival,
                                                          (hi - lo) * costs.per_member_per_year, c.parent_cohort))
                    if c.tier and self.tiers[c.tier - 1].benefit_cost_per_year:
                        self.costs["tier_benefit_cost"].append(
                            (month, c.cohort, middle, c.arrival,
                             (hi - lo) * self.tiers[c.tier - 1].benefit_cost_per_year, c.parent_cohort))
            if self.tiers:
                for c in members:
                    # net spend of the trailing 12 months (this month and the 11 before)
                    for old in [m for m in c.spend_by_month if m <= month - 12]:
                        del c.spend_by_month[old]
                    spend = sum(c.spend_by_month.values())
                    tier = 0
                    for index, level in enumerate(self.tiers):
                        if spend >= level.min_spend_12m:
                            tier = index + 1
                    if tier != c.tier:
                        c.tier = tier
                        if c.alive:
                            self.wake(c)
            if self.points is not None:
                points = self.points
                self.stocks["points_outstanding"][month] = self.outstanding_points
                # outstanding points at the firm's cost, net of the expected breakage (the non-redeemers)
                self.stocks["points_liability"][month] = (self.outstanding_points / points.reward_threshold
                                                          * points.reward_value * points.reward_cost_ratio
                                                          * points.redeemer_share)

    # =========================================================================================
    # the results
    # =========================================================================================
    def _result(self) -> ReplicationResult:
        economics = self.scenario.economics
        cohorts = self.months * len(self.channels) * len(self.laws)
        ledger = Ledger(self.months, cohorts, economics.gross_margin, economics.cost_to_serve_per_order,
                        economics.annual_discount_rate)
        with_program = self.policy is not None

        # arrivals, by cohort (a cohort lies within one month)
        by_cohort = defaultdict(list)
        for row in self.arrivals:
            by_cohort[row[1]].append(row)
        for cohort, rows in sorted(by_cohort.items()):
            month, _, _, cac, referred, _, _ = rows[0]
            times = np.array([row[2] for row in rows])
            bonus = np.array([row[5] for row in rows]) if with_program and referred else None
            members = sum(row[6] for row in rows)
            ledger.record_arrivals(month, cohort, len(rows), times, cac, referred, referral_bonus=bonus,
                                   members=members)

        for month, rows in _by_month(self.purchases):
            columns = list(zip(*rows))
            ledger.record_purchases(
                month, np.array(columns[1], dtype=np.int64), np.array(columns[2]), np.array(columns[3]),
                np.array(columns[4]), np.array(columns[5], dtype=bool),
                parent=np.array(columns[6], dtype=np.int64),
                member=np.array(columns[7], dtype=bool) if with_program else None)
        for name, entries in self.costs.items():
            for month, rows in _by_month(entries):
                columns = list(zip(*rows))
                ledger.record_cost(name, month, np.array(columns[1], dtype=np.int64), np.array(columns[2]),
                                   np.array(columns[3]), np.array(columns[4]),
                                   parent=np.array(columns[5], dtype=np.int64))
        for month, amount, time in self.fixed_costs:
            ledger.record_fixed_cost("program_fixed_cost", month, amount, time)
        for month in range(self.months):
            earned, redeemed, expired = (int(x) for x in self.points_flow[month])
            ledger.record_points(month, earned=earned, redeemed=redeemed, expired=expired)
        # counted here as they happened (Ledger.close is not used)
        ledger.monthly["customers_dropped_out"] += self.dropped_out
        ledger.monthly["customers_reactivated"] += self.reactivated
        for name, values in self.stocks.items():
            for month, value in enumerate(values):
                ledger.set_stock(name, month, float(value))
        for cohort, count, alive, members in self.existing:
            ledger.record_existing(cohort, count, alive, members)
        for c in self.customers:
            if c.alive:
                ledger.cohort["active_end"][c.cohort] += 1
        for cohort, amount in self.growth_margin:
            ledger.cohort["clv_growth"][cohort] += amount
        learning = economics.learning_value_per_customer_year
        if learning:
            for c in self.customers:
                ledger.cohort["learning"][c.cohort] += learning * self._discounted_alive_years(c)
        return ReplicationResult(
            replication=self.replication,
            totals=ledger.totals(),
            monthly=ledger.monthly_table(),
            cohorts=self._cohort_table(ledger),
            events=self.events + len(self.customers),
            transactions=self._transaction_table() if self.record_transactions else None,
        )

    def _discounted_alive_years(self, c: Customer) -> float:
        """The years ``c`` was alive within the horizon, each discounted to its acquisition: the integral of
        (1 + rate)^-(t - arrival) over its spells."""
        rate = self.scenario.economics.annual_discount_rate
        total = 0.0
        for start, end in c.spells:
            end = min(end, self.horizon)
            if end <= start:
                continue
            if rate == 0:
                total += end - start
            else:
                total += ((1.0 + rate) ** -(start - c.arrival) - (1.0 + rate) ** -(end - c.arrival)) / math.log(1.0 + rate)
        return total

    def _cohort_table(self, ledger: Ledger) -> dict[str, np.ndarray]:
        sums = ledger.cohort
        present = [i for i in range(len(sums["customers"])) if sums["customers"][i] > 0]
        per_month = len(self.channels) * len(self.laws)
        customers = np.array([sums["customers"][i] for i in present])

        def pick(name: str) -> np.ndarray:
            return np.array([sums[name][i] for i in present])

        return {
            "acquisition_month": np.array([i // per_month for i in present], dtype=np.int64),
            "channel": np.array([self.channels[(i % per_month) // len(self.laws)] for i in present], dtype=object),
            "segment": np.array([self.segment_names[i % len(self.laws)] for i in present], dtype=object),
            "customers": customers.astype(np.int64),
            "repeat_purchases": pick("repeat_purchases").astype(np.int64),
            "net_revenue": pick("net_revenue"),
            "clv": (pick("clv") - pick("program")) / customers,
            "cac": pick("cac") / customers,
            "active_end": pick("active_end").astype(np.int64),
            "network_value": pick("network_value") / customers,
            "clv_base": (pick("clv") - pick("program") - pick("clv_growth")) / customers,
            "clv_growth": pick("clv_growth") / customers,
            "clv_learning": pick("learning") / customers,
            "clv_total": (pick("clv") - pick("program") + pick("network_value") + pick("learning")) / customers,
        }

    def _transaction_table(self) -> dict[str, np.ndarray]:
        rows = sorted(self.transactions, key=lambda row: (row[0], row[1]))
        columns = list(zip(*rows)) if rows else [()] * 6
        value = np.array(columns[2], dtype=float)
        discount = np.array(columns[3], dtype=float)
        return {
            "customer_id": np.array(columns[0], dtype=np.int64),
            "time": np.array(columns[1], dtype=float),
            "discount": discount,
            "points_earned": np.array(columns[4], dtype=float),
            "points_redeemed": np.array(columns[5], dtype=float),
            "amount": value - discount,
        }


def _split(total: int, shares: list[float]) -> list[int]:
    """``total`` customers split by ``shares``: floors, then one more to the largest remainders."""
    exact = [share * total for share in shares]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: -(exact[i] - counts[i]))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _gamma_draw(gen: np.random.Generator, law) -> float:
    """A trait that is Gamma across customers (shape, mean), or the constant mean."""
    if law.shape is None:
        return float(law.mean)
    return float(gen.gamma(law.shape, law.mean / law.shape))


def _by_month(rows: list[tuple]):
    grouped = defaultdict(list)
    for row in rows:
        grouped[row[0]].append(row)
    return sorted(grouped.items())
