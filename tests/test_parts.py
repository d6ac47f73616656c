"""A run's parts go to threads, or run at once while a process pool's other workers keep every core busy
(sim.engines.parts): the same numbers either way, to the bit."""

from __future__ import annotations

import multiprocessing
import threading
import time

import numpy as np
import pytest
from support.scenarios import ROOT

from sim.engines import parts
from sim.engines.lifetimes import Lifetimes
from sim.engines.program_lifetimes import ProgramLifetimes
from sim.experiments.executors import execute
from sim.input.scenarios import load_scenario
from sim.model import scoring


@pytest.fixture
def pool_busy(monkeypatch: pytest.MonkeyPatch):
    """A function that sets how many units the (pretend) pool runs, with as many cores as this process may use."""
    shared = multiprocessing.Value("i", 0)
    monkeypatch.setattr(parts, "running", shared)
    monkeypatch.setattr(parts, "_cores", parts.usable_cores())

    def busy(units: int) -> None:
        shared.value = units

    return busy


def test_parts_run_at_once_while_every_core_has_a_unit(pool_busy) -> None:
    here = threading.get_ident()
    with parts.PartExecutor(2) as executor:
        pool_busy(parts.usable_cores())
        assert parts.cores_taken()
        assert executor.submit(threading.get_ident).result() == here
        failed = executor.submit(int, "not a number")
        with pytest.raises(ValueError, match="not a number"):
            failed.result()
        pool_busy(parts.usable_cores() - 1)   # a core free: to a thread again
        assert not parts.cores_taken()
        assert executor.submit(threading.get_ident).result() != here


def test_parts_go_to_threads_outside_a_pool() -> None:
    assert parts.running is None and not parts.cores_taken()
    with parts.PartExecutor(2) as executor:
        assert executor.submit(threading.get_ident).result() != threading.get_ident()


def _ledgers_equal(first, second) -> None:
    for part in ("monthly", "cohort"):
        for name, values in getattr(first, part).items():
            assert np.array_equal(getattr(second, part)[name], values), f"{part} {name}"
    assert first.member == second.member


@pytest.mark.parametrize(("engine", "example", "overrides"), [
    # win-back and quarterly at-risk rounds, members, points, referrals, an existing base
    (ProgramLifetimes, "winback_campaign", ["existing_customers.count=3000", "acquisition.0.new_per_month=200",
                                            "acquisition.1.new_per_month=80"]),
    (Lifetimes, "baseline_retail", ["existing_customers.count=3000", "acquisition.0.new_per_month=300",
                                    "acquisition.1.new_per_month=100"]),
])
def test_the_same_numbers_with_parts_in_threads_or_at_once(pool_busy, monkeypatch: pytest.MonkeyPatch, engine,
                                                          example: str, overrides: list[str]) -> None:
    monkeypatch.setattr(scoring, "PARALLEL_FROM", 200)   # the rankings' passes in halves too
    monkeypatch.setattr(scoring, "SHARPEN_PARALLEL_FROM", 20)
    scenario = load_scenario(ROOT / "scenarios" / f"{example}.yaml", overrides)
    pool_busy(0)
    threaded = engine(scenario, 1).simulate()
    pool_busy(parts.usable_cores())
    at_once = engine(scenario, 1).simulate()
    assert threaded.monthly["purchases"].sum() > 1000
    _ledgers_equal(threaded, at_once)


def _count_seen(_: int) -> tuple[int, int]:
    """In a pool worker: the units the pool counts as running (this one among them), and this worker's cores."""
    return parts.running.value, parts._cores


def test_pool_workers_count_the_units_running() -> None:
    seen = [result for _, result in execute(_count_seen, [(i,) for i in range(4)], workers=2)]
    assert all(1 <= running <= 2 and cores == parts.usable_cores() for running, cores in seen), seen
    assert parts.running is None   # the parent is no pool worker


def _units_met(units: int) -> tuple[int, bool, int]:
    """On a Dask worker: waits (10 s at most) until ``units`` units run in the worker, then returns how many
    it counts, whether a part would run at once, and the cores it counts them against."""
    deadline = time.monotonic() + 10.0
    while parts.running.value < units and time.monotonic() < deadline:
        time.sleep(0.01)
    seen = parts.running.value, parts.cores_taken(), parts._cores
    time.sleep(0.5)   # still running while the other units look
    return seen


def test_dask_workers_count_the_units_running_in_their_threads() -> None:
    """A worker of two threads running two units runs their parts at once (as many units as its threads);
    one unit alone goes to threads again (where the process may use two cores)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        together = dict(execute(_units_met, [(2,), (2,)], client=client))
        alone = dict(execute(_units_met, [(1,)], client=client))
    cores = min(2, parts.usable_cores())
    assert together == {0: (2, True, cores), 1: (2, True, cores)}
    assert alone == {0: (1, cores == 1, cores)}
    assert parts.running is None   # the client's process is no worker
