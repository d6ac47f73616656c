"""What every engine is to the experiments that run it: one replication of one scenario.

The experiments (:mod:`sim.experiments`) run engines only through this interface, so the calendar engine,
the lifetimes engine and the reference engine are interchangeable there (``run --engine``, shards).
"""

from __future__ import annotations

from typing import Protocol

from sim.accounting.ledger import Ledger
from sim.accounting.tables import ReplicationResult


class ReplicationEngine(Protocol):
    """Built as ``Engine(scenario, replication, record_transactions=...)``; simulates once."""

    #: Events simulated so far (purchases, referrals, dropouts), for the speed figures.
    events: int

    def run(self) -> ReplicationResult:
        """Simulate the replication to the horizon and return its result tables."""


class ShardableEngine(ReplicationEngine, Protocol):
    """The fast engines also simulate one customer shard (``shard=(k, n)`` when built) and hand back the
    closed ledger, which :mod:`sim.experiments.shards` merges."""

    def simulate(self) -> Ledger:
        """Simulate the replication (or the engine's shard of it) and return the closed ledger."""
