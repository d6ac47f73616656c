"""Replications of a scenario: the unit of work that runs, executors aside, the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial

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


def run_scenario(scenario: Scenario, *, record_transactions: bool = False, workers: int = 1,
                 on_replication: Callable[[ReplicationResult], None] | None = None) -> RunResult:
    """Run every replication of ``scenario``, reporting each as it finishes.

    ``workers`` > 1 runs replications in a process pool. Each replication depends only on the seed and its
    index, so the numbers are the same whatever the number of workers.
    """
    indices = range(scenario.replications)
    results: list[ReplicationResult] = []
    if workers <= 1 or scenario.replications == 1:
        for replication in indices:
            results.append(run_replication(scenario, replication, record_transactions=record_transactions))
            if on_replication is not None:
                on_replication(results[-1])
    else:
        task = partial(run_replication, scenario, record_transactions=record_transactions)
        with ProcessPoolExecutor(max_workers=min(workers, scenario.replications)) as pool:
            futures = [pool.submit(task, replication) for replication in indices]
            for future in as_completed(futures):
                if on_replication is not None:
                    on_replication(future.result())
            results = [future.result() for future in futures]
    return RunResult(scenario, results)
