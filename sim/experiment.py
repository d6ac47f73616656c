"""Replications of a scenario: the unit of work that runs, executors aside, the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sim.engine import Engine, ReplicationResult
from sim.scenario import Scenario
from sim.stats import Estimate, estimate


@dataclass
class RunResult:
    """All replications of one scenario."""

    scenario: Scenario
    replications: list[ReplicationResult]

    def metric_values(self, name: str) -> list[float]:
        return [rep.totals[name] for rep in self.replications]

    def metrics(self) -> dict[str, Estimate]:
        """Every metric's mean and 95% CI over replications."""
        names = self.replications[0].totals
        return {name: estimate(self.metric_values(name)) for name in names}

    @property
    def events(self) -> int:
        return sum(rep.events for rep in self.replications)


def run_replication(scenario: Scenario, replication: int, *, record_transactions: bool = False) -> ReplicationResult:
    """Simulate replication ``replication`` (0-based) of ``scenario``; the same numbers wherever it runs."""
    return Engine(scenario, replication, record_transactions=record_transactions).run()


def run_scenario(scenario: Scenario, *, record_transactions: bool = False,
                 on_replication: Callable[[ReplicationResult], None] | None = None) -> RunResult:
    """Run every replication of ``scenario`` in this process, reporting each as it finishes."""
    results = []
    for replication in range(scenario.replications):
        result = run_replication(scenario, replication, record_transactions=record_transactions)
        results.append(result)
        if on_replication is not None:
            on_replication(result)
    return RunResult(scenario, results)
