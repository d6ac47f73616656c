"""Customer shards of one replication: acquisition blocks run apart (in processes or on a cluster) and
merged, adding up exactly to the whole replication (the README's "Populations larger than one machine")."""

from __future__ import annotations

from sim.accounting.ledger import Ledger
from sim.accounting.tables import ReplicationResult, replication_result
from sim.engines.program_lifetimes import fast_engine_class
from sim.engines.protocol import ShardableEngine
from sim.model.assumptions import realise
from sim.schema import Scenario


def run_shard(scenario: Scenario, replication: int, shard: int, count: int) -> tuple[Ledger, int]:
    """Shard ``shard`` of ``count`` of a replication: its closed ledger and its number of events."""
    scenario = realise(scenario, replication)
    kind = fast_engine_class(scenario)
    engine: ShardableEngine = kind(scenario, replication, shard=(shard, count))
    return engine.simulate(), engine.events


def merge_shards(scenario: Scenario, replication: int, parts: list[tuple[Ledger, int]]) -> ReplicationResult:
    """The whole replication from the results of :func:`run_shard` for every shard."""
    scenario = realise(scenario, replication)
    ledger = parts[0][0]
    for other, _ in parts[1:]:
        ledger.merge(other)
    return replication_result(scenario, replication, ledger, sum(events for _, events in parts), None)

