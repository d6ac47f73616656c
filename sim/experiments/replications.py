"""Replications of scenarios: the unit of work that runs, executors aside, the same everywhere.

Scenarios compared with each other (a scenario and its baseline, the scenarios of ``compare``) run with the
same seed and the same replication indices, so replication *i* of every scenario faces the same customers
and the differences are paired (common random numbers; Law & Kelton, ch. 11).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sim.accounting.runs import RunResult
from sim.accounting.tables import ReplicationResult, scaled_to_population
from sim.engines.program_lifetimes import fast_engine_class
from sim.engines.protocol import ShardableEngine
from sim.experiments.shards import merge_shards, run_shard
from sim.model.assumptions import realise
from sim.schema import Scenario

#: The engines ``run --engine`` can choose: the fast vectorised one, and the plain one-process-per-customer
#: reference (sim.engines.reference), the executable specification, for small populations.
ENGINES = ("fast", "reference")


def fast_engine(scenario: Scenario, replication: int, *, record_transactions: bool = False) -> ShardableEngine:
    """The fast engine for ``scenario``: whole lifetimes without a program, compiled lives under a program
    whose customers live apart (:func:`~sim.engines.program_lifetimes.compiled_program_gap`), the calendar
    engine for the other programs and for a program's transaction log."""
    return fast_engine_class(scenario, record_transactions)(scenario, replication, record_transactions=record_transactions)


def run_replication(scenario: Scenario, replication: int, *, record_transactions: bool = False,
                    engine: str = "fast") -> ReplicationResult:
    """Simulate replication ``replication`` (0-based) of ``scenario``; the same numbers wherever it runs.

    Uncertain keys of ``scenario`` take their values drawn for this replication (:mod:`sim.model.assumptions`).
    With ``population_scale: K`` the engine then simulates one customer in K (:meth:`Scenario.sample`) and the
    result is the population's (:func:`sim.accounting.tables.scaled_to_population`).
    """
    sample = realise(scenario, replication).sample()
    if engine == "reference":
        from sim.engines.reference import ReferenceEngine

        result = ReferenceEngine(sample, replication, record_transactions=record_transactions).run()
    else:
        result = fast_engine(sample, replication, record_transactions=record_transactions).run()
    return scaled_to_population(result, scenario.population_scale)


def check_shardable(scenario: Scenario) -> str | None:
    """Why ``scenario`` cannot run in customer shards, or None. Targeted offers go to the top share of all
    customers by score: a shard cannot rank its customers against the others'."""
    if scenario.policy is not None and any(d.kind == "targeted" for d in scenario.policy.discounts):
        return "targeted offers rank every customer against all the others, so the population cannot be split"
    return None


def _unit(scenario: Scenario, replication: int, record_transactions: bool, engine: str, shard: int, shards: int):
    if shards == 1:
        return run_replication(scenario, replication, record_transactions=record_transactions, engine=engine)
    return run_shard(realise(scenario, replication).sample(), replication, shard, shards)


def run_many(scenarios: Sequence[Scenario], *, record_transactions: bool = False, workers: int = 1,
             on_replication: Callable[[int, ReplicationResult], None] | None = None,
             finished: dict[tuple[int, int], ReplicationResult] | None = None,
             engine: str = "fast", shards: int = 1, client=None) -> list[RunResult]:
    """Run every replication of several scenarios (all on their own seeds), reporting each as it finishes.

    ``workers`` > 1 runs the replications in a process pool, ``client`` (a :class:`distributed.Client`) on
    a Dask cluster. Each replication depends only on its scenario, seed and index, so the numbers are the
    same whatever the executor. ``shards`` > 1 splits every replication into that many customer shards
    (acquisition blocks with the customers they refer; :func:`sim.model.acquisition.shards`) run as separate
    units and added up: the same totals as a whole run, to the last bit for counts and up to the order of
    floating-point sums for money, for populations no single worker could hold.
    ``on_replication(scenario_index, result)`` is called in the order replications finish.
    ``record_transactions`` applies to the first scenario only (the others are its comparisons).
    ``finished`` holds replications already simulated, keyed by (scenario index, replication); they are
    not run again (see :mod:`sim.experiments.checkpoint`).
    """
    from sim.experiments.executors import execute

    if shards > 1:
        if record_transactions:
            raise ValueError("transactions are not recorded in sharded runs")
        if engine != "fast":
            raise ValueError("only the fast engine runs in shards")
        for scenario in scenarios:
            reason = check_shardable(scenario)
            if reason is not None:
                raise ValueError(f"{scenario.name}: {reason}")
    done: dict[tuple[int, int], ReplicationResult] = dict(finished or {})
    keys = [(index, replication, shard) for index, scenario in enumerate(scenarios)
            for replication in range(scenario.replications) if (index, replication) not in done
            for shard in range(shards)]
    tasks = [(scenarios[index], replication, record_transactions and index == 0, engine, shard, shards)
             for index, replication, shard in keys]
    parts: dict[tuple[int, int], dict[int, tuple]] = {}
    for task_index, result in execute(_unit, tasks, workers=workers, client=client):
        index, replication, shard = keys[task_index]
        key = index, replication
        scenario = scenarios[index]
        if shards > 1:
            parts.setdefault(key, {})[shard] = result
            if len(parts[key]) < shards:
                continue
            pieces = parts.pop(key)
            result = scaled_to_population(merge_shards(scenario.sample(), replication,
                                                       [pieces[k] for k in range(shards)]), scenario.population_scale)
        done[key] = result
        if on_replication is not None:
            on_replication(key[0], result)
    return [RunResult(scenario, [done[index, r] for r in range(scenario.replications)])
            for index, scenario in enumerate(scenarios)]


def run_scenario(scenario: Scenario, *, baseline: Scenario | None = None, record_transactions: bool = False,
                 workers: int = 1, on_replication: Callable[[int, ReplicationResult], None] | None = None,
                 finished: dict[tuple[int, int], ReplicationResult] | None = None,
                 engine: str = "fast", shards: int = 1, client=None) -> RunResult:
    """Run every replication of ``scenario`` and, if given, of its ``baseline`` on the same customers.

    ``baseline`` is typically :func:`sim.input.scenarios.resolve_baseline` of the scenario (``baseline: auto`` =
    the scenario without its policy). The result's :meth:`RunResult.vs_baseline` holds the paired
    differences. ``on_replication(arm, result)`` (arm 0 = the scenario, 1 = the baseline), ``finished``,
    ``shards`` and ``client`` are as in :func:`run_many`.
    """
    scenarios = [scenario] if baseline is None else [scenario, baseline]
    results = run_many(scenarios, record_transactions=record_transactions, workers=workers,
                       on_replication=on_replication, finished=finished, engine=engine, shards=shards,
                       client=client)
    main = results[0]
    if baseline is not None:
        main.baseline = results[1]
    return main
