"""How much memory a run needs, checked before it starts (``docs/model.md``, section 6).

The calendar engine (any program's transaction log) and the compiled program engine with targeted-offer
rounds hold the whole population; the engine without a program and the compiled program engine
run in flat memory but for their queue of referred customers (their program state lives in the slice being
simulated: about 2 bytes per customer more peak memory from 0.58M to 2.32M customers of a points program,
bench/bench_engine.py); the transaction log grows with the purchases. The figures below are
measured peaks, not estimates from the column sizes alone.
"""

from __future__ import annotations

import math
import os

from sim.engines.choice import compiled_program_gap, holds_population
from sim.schema import Scenario

#: Peak bytes per customer of the calendar engine, which holds the whole population: its state
#: (:data:`sim.model.population.PROGRAM_STATE_BYTES_PER_CUSTOMER` and the base columns) and round
#: temporaries. Measured with every lever on: 416 bytes more per customer from 0.38M to 1.53M customers.
PEAK_BYTES_PER_CUSTOMER_WITH_PROGRAM = 420
#: Peak bytes per customer of the compiled program engine with targeted-offer rounds, which holds every
#: customer's columns and state to resume from (:data:`sim.engines.program_lifetimes.RESUME`; the rate
#: factors by tier and the 12-month ring of members only) at once, and the ranking's temporaries at a round.
#: Measured with every lever on (bench/bench_engine.py --lever-sizes 250000 1000000): 269 bytes more per
#: customer from 0.32M to 1.27M customers with 60% of them members, 327 from 0.34M to 1.36M with all (the
#: ranking reads the population where it lies: 327 and 381 when it gathered each round's history).
PEAK_BYTES_PER_CUSTOMER_WITH_ROUNDS = 340
#: Peak bytes per purchase of the transaction log (its parts, the sorted table, the Parquet file's
#: conversion): measured 115 without a program and 132 with one, as above.
TRANSACTION_BYTES_PER_PURCHASE = 135
#: A referred customer waiting in the queue of the engine without a program (sim.engines.lifetimes.ARRIVAL_COLUMNS).
QUEUED_BYTES_PER_CUSTOMER = 80
#: An existing customer (``existing_customers``) without a program: its table row, the posterior draws and
#: its place in the queue, all held at the start. Measured 440 to 475 bytes more per customer from 0.25M to
#: 1M (bench/bench_existing.py, 2026-12-04; 415 on 2026-12-02).
EXISTING_BYTES_PER_CUSTOMER = 480
#: What an existing customer costs the engine with a program beyond a new one's peak: its table row and
#: its drawn traits and state, held while the population is built. Measured 540 bytes per customer in all
#: from 0.25M to 1M with every lever (bench/bench_existing.py, 2026-12-04, the compiled engine with rounds;
#: 734 on the calendar engine, 2026-12-02), against the 340 charged for a new customer held between rounds
#: and the 420 of a new customer on the calendar engine.
EXISTING_EXTRA_BYTES_WITH_PROGRAM = 330
_MEMORY_SHARE = 0.7


def memory_shortfall(scenario: Scenario, shards: int = 1, transactions: bool = False) -> str | None:
    """Why a run cannot start, or None: checked before anything is allocated, a population (or its largest
    of ``shards`` shards) whose program state, queue of referred customers or transaction log cannot fit in
    this machine's memory. Without a program, memory does not grow with the acquired population
    (:mod:`sim.engines.lifetimes`), only with referred customers waiting to be simulated, which compounding
    referrals can make explode."""
    scenario = scenario.sample()   # with population_scale, the simulated sample is what must fit
    planned = scenario.planned_customers()
    if shards > 1:
        from sim.model.acquisition import shards as split

        planned = max(sum(part.values()) for part in split(scenario, shards))
    # Referred customers refer too: without dropout the population grows like a Yule process,
    # e^(rate x years), which bounds the expected count from above.
    top_referral = max(s.referrals_per_year.mean for s in scenario.segments.values())
    expected = planned * math.exp(min(top_referral * scenario.horizon_years, 700.0))
    existing = scenario.existing_count()
    if scenario.policy is not None and (transactions or compiled_program_gap(scenario) is not None):
        parts = {"the program's state": expected * PEAK_BYTES_PER_CUSTOMER_WITH_PROGRAM
                 + existing * EXISTING_EXTRA_BYTES_WITH_PROGRAM}
    elif holds_population(scenario):
        parts = {"the program's state": expected * PEAK_BYTES_PER_CUSTOMER_WITH_ROUNDS
                 + existing * EXISTING_EXTRA_BYTES_WITH_PROGRAM}
    else:
        parts = {"the referred customers waiting to be simulated": (expected - planned) * QUEUED_BYTES_PER_CUSTOMER}
        if existing:
            parts["the existing customers"] = existing * EXISTING_BYTES_PER_CUSTOMER
    if transactions:   # at most the acquisition purchase and the mean rate over the horizon, no dropout
        purchases = expected * (1 + _mean_rate(scenario) * scenario.horizon_years)
        parts["the transaction log"] = purchases * TRANSACTION_BYTES_PER_PURCHASE
    need, have = sum(parts.values()), _physical_memory()
    if need > _MEMORY_SHARE * have:
        what = " and ".join(parts)
        return (
            f"the scenario brings up to about {expected:,.3g} customers per replication; {what} would need "
            f"about {need / 2**30:,.1f} GiB, and this machine has {have / 2**30:,.1f} GiB. Lower the customer "
            f"counts (results scale: simulate a sample and multiply) or split the population into shards "
            f"(`run --shards N`, on a Dask cluster with --scheduler).")
    return None


def _mean_rate(scenario: Scenario) -> float:
    """Purchases per year of an acquired customer, averaged over the acquisition mix."""
    weights = dict.fromkeys(scenario.segments, 0.0)
    for acquisition in scenario.acquisition:
        for name, share in scenario.segment_mix(acquisition).items():
            weights[name] += scenario.planned_customers(acquisition) * share
    total = sum(weights.values()) or 1.0
    return sum(w * scenario.segments[name].purchases_per_year.law().mean for name, w in weights.items()) / total


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30
