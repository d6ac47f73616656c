"""Replications of scenarios: the unit of work that runs, executors aside, the same everywhere.

Scenarios compared with each other (a scenario and its baseline, the scenarios of ``compare``) run with the
same seed and the same replication indices, so replication *i* of every scenario faces the same customers
and the differences are paired (common random numbers; Law & Kelton, ch. 11).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np

from sim.engine import Engine, ReplicationResult
from sim.lifetimes import Lifetimes
from sim.scenario import Scenario
from sim.stats import Estimate, estimate


@dataclass
class RunResult:
    """All replications of one scenario, and of its baseline when it has one."""

    scenario: Scenario
    replications: list[ReplicationResult]
    baseline: RunResult | None = None

    def metric_values(self, name: str) -> np.ndarray:
        return np.array([rep.totals[name] for rep in self.replications], dtype=float)

    def metrics(self) -> dict[str, Estimate]:
        """Every metric's mean and 95% CI over replications."""
        names = self.replications[0].totals
        return {name: estimate(self.metric_values(name)) for name in names}

    def differences(self, other: RunResult, confidence: float = 0.95) -> dict[str, Estimate]:
        """Paired differences ``self - other``, replication by replication, with t-based CIs;
        also ``roi`` (incremental profit / this scenario's program cost) and ``payback_month``."""
        _check_paired(self, other)
        names = self.replications[0].totals
        result = {name: estimate(self.metric_values(name) - other.metric_values(name), confidence)
                  for name in names}
        program_cost = self.metric_values("program_cost")
        with np.errstate(divide="ignore", invalid="ignore"):
            roi = np.where(program_cost > 0,
                           (self.metric_values("profit") - other.metric_values("profit")) / program_cost, np.nan)
        result["roi"] = estimate(roi, confidence)
        result["payback_month"] = estimate_payback(self.payback_months(other), confidence)
        return result

    def payback_months(self, other: RunResult) -> np.ndarray:
        """Per replication: the month (1-based) by whose end cumulative incremental profit turned
        non-negative for good; ``inf`` if it never did within the horizon."""
        months = []
        for mine, theirs in zip(self.replications, other.replications):
            cumulative = np.cumsum(mine.monthly["profit"] - theirs.monthly["profit"])
            negative = np.flatnonzero(cumulative < 0)
            if not negative.size:
                months.append(1.0)
            elif negative[-1] == len(cumulative) - 1:
                months.append(math.inf)
            else:
                months.append(float(negative[-1] + 2))
        return np.array(months)

    def vs_baseline(self) -> dict[str, Estimate] | None:
        return None if self.baseline is None else self.differences(self.baseline)

    @property
    def events(self) -> int:
        own = sum(rep.events for rep in self.replications)
        return own + (self.baseline.events if self.baseline is not None else 0)


def estimate_payback(months: np.ndarray, confidence: float = 0.95) -> Estimate:
    """Mean payback month with its CI; undefined (NaN) when some replication never paid back."""
    if not np.all(np.isfinite(months)):
        return Estimate(math.nan, None, None, None)
    return estimate(months, confidence)


def _check_paired(a: RunResult, b: RunResult) -> None:
    ids_a = [rep.replication for rep in a.replications]
    ids_b = [rep.replication for rep in b.replications]
    if ids_a != ids_b or a.scenario.seed != b.scenario.seed:
        raise ValueError("paired differences need the same seed and the same replications")


#: The engines ``run --engine`` can choose: the fast vectorised one, and the plain one-process-per-customer
#: reference (sim.reference), the executable specification, for small populations.
ENGINES = ("fast", "reference")


def fast_engine(scenario: Scenario, replication: int, *, record_transactions: bool = False) -> Engine | Lifetimes:
    """The fast engine for ``scenario``: the calendar engine for a program, whole lifetimes without one."""
    engine = Lifetimes if scenario.policy is None else Engine
    return engine(scenario, replication, record_transactions=record_transactions)


def run_replication(scenario: Scenario, replication: int, *, record_transactions: bool = False,
                    engine: str = "fast") -> ReplicationResult:
    """Simulate replication ``replication`` (0-based) of ``scenario``; the same numbers wherever it runs."""
    if engine == "reference":
        from sim.reference import ReferenceEngine

        return ReferenceEngine(scenario, replication, record_transactions=record_transactions).run()
    return fast_engine(scenario, replication, record_transactions=record_transactions).run()


def run_many(scenarios: Sequence[Scenario], *, record_transactions: bool = False, workers: int = 1,
             on_replication: Callable[[int, ReplicationResult], None] | None = None,
             finished: dict[tuple[int, int], ReplicationResult] | None = None,
             engine: str = "fast") -> list[RunResult]:
    """Run every replication of several scenarios (all on their own seeds), reporting each as it finishes.

    ``workers`` > 1 runs the replications in a process pool. Each replication depends only on its
    scenario, seed and index, so the numbers are the same whatever the number of workers.
    ``on_replication(scenario_index, result)`` is called in the order replications finish.
    ``record_transactions`` applies to the first scenario only (the others are its comparisons).
    ``finished`` holds replications already simulated, keyed by (scenario index, replication); they are
    not run again (see :mod:`sim.checkpoint`).
    """
    done: dict[tuple[int, int], ReplicationResult] = dict(finished or {})
    tasks = [(index, replication) for index, scenario in enumerate(scenarios)
             for replication in range(scenario.replications) if (index, replication) not in done]
    if workers <= 1 or len(tasks) <= 1:
        for index, replication in tasks:
            done[index, replication] = run_replication(scenarios[index], replication, engine=engine,
                                                       record_transactions=record_transactions and index == 0)
            if on_replication is not None:
                on_replication(index, done[index, replication])
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
            futures = {pool.submit(run_replication, scenarios[index], replication, engine=engine,
                                   record_transactions=record_transactions and index == 0): (index, replication)
                       for index, replication in tasks}
            for future in as_completed(futures):
                key = futures[future]
                done[key] = future.result()
                if on_replication is not None:
                    on_replication(key[0], done[key])
    return [RunResult(scenario, [done[index, r] for r in range(scenario.replications)])
            for index, scenario in enumerate(scenarios)]


def run_scenario(scenario: Scenario, *, baseline: Scenario | None = None, record_transactions: bool = False,
                 workers: int = 1, on_replication: Callable[[int, ReplicationResult], None] | None = None,
                 finished: dict[tuple[int, int], ReplicationResult] | None = None,
                 engine: str = "fast") -> RunResult:
    """Run every replication of ``scenario`` and, if given, of its ``baseline`` on the same customers.

    ``baseline`` is typically :func:`sim.loading.resolve_baseline` of the scenario (``baseline: auto`` =
    the scenario without its policy). The result's :meth:`RunResult.vs_baseline` holds the paired
    differences. ``on_replication(arm, result)`` (arm 0 = the scenario, 1 = the baseline) and ``finished``
    are as in :func:`run_many`.
    """
    scenarios = [scenario] if baseline is None else [scenario, baseline]
    results = run_many(scenarios, record_transactions=record_transactions, workers=workers,
                       on_replication=on_replication, finished=finished, engine=engine)
    main = results[0]
    if baseline is not None:
        main.baseline = results[1]
    return main
