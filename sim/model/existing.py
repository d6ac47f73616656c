"""Existing customers at the scenario start: latent traits drawn from their exact posterior given their history.

A customer of the firm's base has made ``x`` repeat purchases, the last ``t_x`` years after its first one,
and its first purchase was ``T`` years before the scenario start (``docs/model.md``, "Existing customers").
Under its segment's laws (Gamma purchase rates, Beta dropout chances or Gamma dropout hazards, Gamma-Gamma
spend), the posterior of its traits given that history is (Fader, Hardie & Lee 2005, Marketing Science,
for BG/NBD; Schmittlein, Morrison & Colombo 1987 and Fader, Hardie & Lee 2005, JMR, for Pareto/NBD and
Gamma-Gamma):

- alive at the start with probability P(alive | x, t_x, T) (:mod:`sim.model.theory`'s closed forms, computed
  by :mod:`sim.model.existing_compiled` so that the coin compared with it decides alike on every machine);
- BG/NBD, alive: rate ~ Gamma(r + x, alpha + T), dropout chance ~ Beta(a, b + x); gone (after its last
  purchase): rate ~ Gamma(r + x, alpha + t_x), chance ~ Beta(a + 1, b + x - 1);
- Pareto/NBD, alive: rate ~ Gamma(r + x, alpha + T), hazard ~ Gamma(s, beta + T); gone at tau in (t_x, T),
  whose density is proportional to (alpha + tau)^-(r+x) (beta + tau)^-(s+1): rate ~ Gamma(r + x, alpha + tau),
  hazard ~ Gamma(s + 1, beta + tau);
- Gamma-Gamma: the spend rate nu ~ Gamma(p x + q, gamma + x m_x), own mean order value p / nu.

Every draw is keyed by the customer's id (:func:`sim.random.streams.existing_keys`), so a scenario and its
baseline share these customers. Alive customers' next purchase comes after an exponential time at their rate
(memoryless: the time since their last purchase carries no further information once alive is drawn), and
their purchase counter continues from their history, so every purchase they make is a repeat purchase.
Times in years, rates per year, money in the scenario's currency.
"""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from sim.model import existing_compiled
from sim.model.acquisition import allocate
from sim.model.population import BatchTraits, KeptDraws, SegmentLaws, keeps_traits, read_only
from sim.random import streams as rng
from sim.random.streams import Purpose
from sim.schema import Scenario
from sim.schema.existing import CustomerBase, ExistingSimulated

#: Proposals of the time a gone Pareto/NBD customer left (rejection sampling, see :func:`_pareto_departure`; each
#: is accepted with probability at least 0.9); past them the most likely time (its last purchase) would be taken.
DEPARTURE_ATTEMPTS = 64


def opening_base(scenario: Scenario, replication: int, laws: list[SegmentLaws], draws
                 ) -> list[tuple[int, CustomerBase, dict[str, np.ndarray]]]:
    """The existing customers of one replication, per segment: (segment index, histories, traits and state at
    the start as :func:`draw_base` gives them). ``draws`` are the engine's event draws
    (:class:`sim.engines.draws.Draws`), with which simulated histories are drawn."""
    existing, names = scenario.existing_customers, list(scenario.segments)
    if isinstance(existing, ExistingSimulated):
        mix = scenario.existing_mix()
        found = []
        for segment, count in enumerate(allocate(existing.count, [mix.get(name, 0.0) for name in names])):
            if not count:
                continue

            def simulated(segment: int = segment, count: int = count) -> tuple[CustomerBase, dict[str, np.ndarray]]:
                sequence = np.random.SeedSequence(entropy=scenario.seed, spawn_key=(
                    replication, rng.name_key(existing.channel), 0xE716, rng.name_key(names[segment])))
                return simulate_histories(laws[segment], segment, count, existing.history_months / 12.0, sequence,
                                          draws)

            if keeps_traits(scenario):   # a small run: kept for the next that simulates the same histories
                # (the draws are made from every segment's laws: all of them are in the key)
                key = (tuple(laws), segment, count, existing.history_months, scenario.seed, replication,
                       existing.channel, names[segment])
                found.append((segment, *_copied(KEPT_HISTORIES.get(key, lambda made=simulated: _read_only(made()),
                                                                   count))))
            else:
                found.append((segment, *simulated()))
        return found
    segment = names.index(existing.segment)
    keys = rng.existing_keys(scenario.seed, replication, existing.channel, scenario.base.id_hash)
    return [(segment, scenario.base, draw_base(laws[segment], segment, scenario.base, keys))]


#: The simulated histories kept (:class:`~sim.model.population.KeptDraws`; about 150 bytes a customer).
KEPT_HISTORIES = KeptDraws(250_000)


def _read_only(histories: tuple[CustomerBase, dict[str, np.ndarray]]) -> tuple[CustomerBase, dict[str, np.ndarray]]:
    base, traits = histories
    read_only((*(getattr(base, field.name) for field in fields(base)), *traits.values()))
    return histories


def _copied(histories: tuple[CustomerBase, dict[str, np.ndarray]]) -> tuple[CustomerBase, dict[str, np.ndarray]]:
    """A run's own copy of kept histories (writable: numba compiles for writable arrays)."""
    base, traits = histories
    columns = {field.name: getattr(base, field.name) for field in fields(base)}
    return (replace(base, **{name: column.copy() for name, column in columns.items() if column is not None}),
            {name: column.copy() for name, column in traits.items()})


def simulate_histories(laws: SegmentLaws, segment: int, count: int, history_years: float,
                       sequence: np.random.SeedSequence, draws) -> tuple[CustomerBase, dict[str, np.ndarray]]:
    """A base without a log (``existing_customers: {count, history_months}``): ``count`` customers arriving
    evenly over the ``history_years`` before the start (as ``new_per_month`` customers would), their traits
    from the segment's laws and their histories simulated without a program up to the start with the
    engines' own keyed draws (``draws``, :class:`sim.engines.draws.Draws`): purchases, order values and
    dropout coins. So their state at the start is what the laws imply, and the purchase pending at the start
    is the one the history drew. A hazard lifetime over the history is drawn on its own stream; the alive
    ones' residual lifetime is drawn by the engine from the start (memoryless). Referrals before the start
    are not simulated (the base is ``count`` customers)."""
    traits = BatchTraits(laws, segment, sequence).take(count)
    keys, rate, spend_mean = traits["key"], traits["rate"], traits["spend_mean"]
    arrival = -history_years + (np.arange(count) + 0.5) / count * history_years
    life_end = np.full(count, np.inf)
    if laws.hazard is not None:
        with np.errstate(divide="ignore"):   # a zero hazard: an infinite lifetime
            life_end = arrival + rng.exponential(keys, Purpose.EXISTING_DEATH, 0) / traits["hazard"]
    made, t = np.zeros(count, dtype=np.int64), arrival.copy()
    last, repeat_spend, spend_12m = arrival.copy(), np.zeros(count), np.zeros(count)
    dropped = np.zeros(count, dtype=bool)
    chosen = np.arange(count)
    with np.errstate(divide="ignore", over="ignore"):
        while chosen.size:
            when, number = t[chosen], made[chosen]
            value = draws.order_values(keys[chosen], number, np.full(chosen.size, segment, dtype=np.uint8),
                                       spend_mean[chosen], when, arrival[chosen])
            repeat_spend[chosen] += value * (number > 0)
            spend_12m[chosen] += value * (when > -1.0)
            last[chosen] = when
            following = draws.next_purchase(keys[chosen], number, when, rate[chosen])
            drops = draws.drops(keys[chosen], number, traits["dropout_p"][chosen])
            dropped[chosen] |= drops
            made[chosen] = number + 1
            t[chosen] = following
            chosen = chosen[~drops & (following < 0.0) & (following < life_end[chosen])]
    alive = ~dropped & (life_end > 0.0)
    x = made - 1
    base = CustomerBase(id_hash=keys, repeat_purchases=x, recency_years=np.where(x > 0, last - arrival, 0.0),
                        age_years=-arrival, mean_repeat_spend=np.where(x > 0, repeat_spend / np.maximum(x, 1), 0.0),
                        spend_12m=spend_12m)
    traits.update(alive=alive, pending=np.where(alive, t, np.inf), made=made, first_purchase=arrival,
                  last_purchase=last)
    return base, traits


def draw_base(laws: SegmentLaws, segment: int, base: CustomerBase, keys: np.ndarray) -> dict[str, np.ndarray]:
    """The existing customers' traits and state at the start (the engines' population columns).

    Returns ``key``, ``segment``, ``rate``, ``dropout_p``, ``hazard``, ``spend_mean``, ``referral_rate``,
    ``alive`` (bool), ``pending`` (the time of the next purchase; inf for the gone), ``made`` (purchases
    so far, the first one included), ``first_purchase`` and ``last_purchase`` (years, at most 0).
    """
    x = base.repeat_purchases.astype(np.float64)
    t_x, T = base.recency_years, base.age_years
    rate = laws.purchase_rate
    r, alpha = rate.shape, rate.rate
    coin = rng.uniform(keys, Purpose.EXISTING_ALIVE, 0)
    traits: dict[str, np.ndarray] = {"key": keys, "segment": np.full(base.size, segment, dtype=np.uint8)}
    if laws.dropout is not None:
        a, b = laws.dropout.a, laws.dropout.b
        alive = coin < existing_compiled.bgnbd_probability_alive(x, t_x, T, r, alpha, a, b)
        traits["rate"] = _gamma(keys, Purpose.EXISTING_RATE, r + x, 0) / (alpha + np.where(alive, T, t_x))
        first = _gamma(keys, Purpose.EXISTING_DROPOUT, np.where(alive, a, a + 1.0), 0)
        second = _gamma(keys, Purpose.EXISTING_DROPOUT, np.where(alive, b + x, b + x - 1.0), 1_000_000)
        traits["dropout_p"] = first / (first + second)
        traits["hazard"] = np.zeros(base.size)
    else:
        s, beta = laws.hazard.shape, laws.hazard.rate
        alive = coin < existing_compiled.paretonbd_probability_alive(x, t_x, T, r, alpha, s, beta)
        left = T.copy()
        gone = np.flatnonzero(~alive)
        left[gone] = _pareto_departure(keys[gone], x[gone], t_x[gone], T[gone], r, alpha, s, beta)
        traits["rate"] = _gamma(keys, Purpose.EXISTING_RATE, r + x, 0) / (alpha + left)
        traits["hazard"] = _gamma(keys, Purpose.EXISTING_DROPOUT, np.where(alive, s, s + 1.0), 0) / (beta + left)
        traits["dropout_p"] = np.zeros(base.size)
    traits["spend_mean"] = _spend_means(laws, keys, base)
    referral = laws.referral_rate
    traits["referral_rate"] = (np.full(base.size, referral.mean) if referral.shape is None else
                               _gamma(keys, Purpose.EXISTING_REFERRAL, np.full(base.size, referral.shape), 0)
                               / referral.rate)
    gap = rng.exponential(keys, Purpose.INTERPURCHASE, base.repeat_purchases) / traits["rate"]
    traits.update(alive=alive, pending=np.where(alive, gap, np.inf),
                  made=(base.repeat_purchases + 1).astype(np.int64),
                  first_purchase=-T, last_purchase=t_x - T)
    return traits


def _gamma(keys: np.ndarray, purpose: Purpose, shapes: np.ndarray, offset: int) -> np.ndarray:
    """A standard Gamma(shapes[i]) variate per customer from its ``purpose`` stream (one keyed draw per
    distinct shape: shapes vary with the number of purchases, which takes few values)."""
    values = np.empty(len(keys))
    distinct, which = np.unique(shapes, return_inverse=True)
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(len(distinct) + 1))
    for index, shape in enumerate(distinct):
        chosen = order[bounds[index]:bounds[index + 1]]
        values[chosen] = rng.gamma(keys[chosen], purpose, float(shape), offset=offset)
    return values


def _spend_means(laws: SegmentLaws, keys: np.ndarray, base: CustomerBase) -> np.ndarray:
    """Own mean order values given the repeat orders' mean (Gamma-Gamma posterior, see the module docstring)."""
    spend, x = laws.spend, base.repeat_purchases.astype(np.float64)
    if spend.q is None:
        return np.full(base.size, spend.mean)
    if spend.p is None:   # orders equal the customer's own mean: the repeat orders show it exactly
        prior = spend.mean * (spend.q - 1.0) / _gamma(keys, Purpose.EXISTING_SPEND, np.full(base.size, spend.q), 0)
        return np.where(x > 0, base.mean_repeat_spend, prior)
    gamma = spend.mean * (spend.q - 1.0) / spend.p
    nu = _gamma(keys, Purpose.EXISTING_SPEND, spend.p * x + spend.q, 0) / (gamma + x * base.mean_repeat_spend)
    return spend.p / nu


def _pareto_departure(keys: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, r: float, alpha: float,
                      s: float, beta: float) -> np.ndarray:
    """When gone Pareto/NBD customers left: tau in (t_x, T) with density proportional to
    (alpha + tau)^-(r+x) (beta + tau)^-(s+1), exactly, by rejection under a hull of chords of its convex
    log-density (:func:`sim.model.existing_compiled.pareto_departures`, compiled so that every logarithm is the
    C library's on every machine). Each attempt takes two fresh uniforms of the customer's stream; at least
    90% of attempts are accepted, so the :data:`DEPARTURE_ATTEMPTS` are never all refused in practice."""
    tau, _ = existing_compiled.pareto_departures(keys, rng.increment(Purpose.EXISTING_DEATH), x, t_x, T, r, alpha,
                                                 s, beta, DEPARTURE_ATTEMPTS)
    return tau
