"""Customer shards: one replication split into parts that run apart and add up to the whole run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from support.scenarios import EXAMPLE_SCENARIOS, ROOT, base_of

from sim.cli import main
from sim.experiments.replications import check_shardable, fast_engine, run_scenario
from sim.experiments.shards import merge_shards, run_shard
from sim.input.scenarios import load_scenario
from sim.model.acquisition import BLOCK, acquisition_batches, shards
from sim.model.assumptions import realise

SMALL = ["acquisition.0.initial_customers=3000", "acquisition.0.new_per_month=150"]
SHARDABLE = [p for p in EXAMPLE_SCENARIOS if check_shardable(load_scenario(p)) is None]

COUNTS = ("customers_acquired", "referred_customers", "active_customers_end", "customers_dropped_out",
          "customers_reactivated", "members_end", "purchases", "repeat_purchases", "points_earned",
          "points_redeemed", "points_expired", "points_outstanding")


def test_shards_partition_the_batches() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "points_program.yaml")
    batches = acquisition_batches(scenario)
    assert sum(batches.values()) == scenario.planned_customers() - scenario.existing_count()
    assert max(batches.values()) <= BLOCK
    for count in (1, 2, 5, 37):
        parts = shards(scenario, count)
        merged: dict = {}
        for part in parts:
            assert not set(part) & set(merged)       # every batch in exactly one shard
            merged.update(part)
        assert merged == batches
        loads = [sum(p.values()) for p in parts]
        assert max(loads) <= sum(loads) / count + max(batches.values())   # greedy balance bound


@pytest.mark.parametrize("path", SHARDABLE, ids=[p.stem for p in SHARDABLE])
def test_shards_add_up_to_the_whole_run(path: Path) -> None:
    """Every count is identical, every sum of money equal up to the order of floating-point additions,
    month by month and cohort by cohort."""
    scenario = load_scenario(path, [*SMALL, *base_of(path, 2000)])
    whole = fast_engine(realise(scenario, 2), 2).run()   # replication 2's draws of any uncertain value
    merged = merge_shards(scenario, 2, [run_shard(scenario, 2, k, 3) for k in range(3)])
    assert merged.events == whole.events
    for name, value in whole.totals.items():
        if name in COUNTS:
            assert merged.totals[name] == value, name
        else:
            np.testing.assert_allclose(merged.totals[name], value, rtol=1e-12, atol=1e-9, err_msg=name)
    for name, column in whole.monthly.items():
        np.testing.assert_allclose(merged.monthly[name], column, rtol=1e-12, atol=1e-9, err_msg=name)
    for name, column in whole.cohorts.items():
        if column.dtype == object:
            assert list(merged.cohorts[name]) == list(column)
        else:
            np.testing.assert_allclose(merged.cohorts[name], column, rtol=1e-12, atol=1e-9, err_msg=name)


def test_sharded_run_with_baseline_through_the_api() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "points_program.yaml",
                             [*SMALL, "existing_customers.count=2000", "replications=2"])
    whole = run_scenario(scenario, baseline=scenario.without_policy())
    split = run_scenario(scenario, baseline=scenario.without_policy(), shards=4, workers=2)
    for name, value in whole.vs_baseline().items():
        if value.mean == value.mean:   # not NaN
            assert split.vs_baseline()[name].mean == pytest.approx(value.mean, rel=1e-12, abs=1e-9), name


def test_targeted_offers_cannot_be_sharded(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(ROOT / "scenarios" / "winback_campaign.yaml"), "--shards", "2",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "winback_campaign.yaml:54: policy.discounts.1.kind: --shards: targeted offers" in result.output
    result = CliRunner().invoke(main, ["run", str(ROOT / "scenarios" / "baseline_retail.yaml"), "--shards", "2",
                                       "--transactions", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--transactions is not available" in result.output


@pytest.mark.slow
def test_a_population_too_big_for_a_worker_runs_in_shards_on_a_dask_cluster(tmp_path: Path) -> None:
    """On a LocalCluster whose workers may use 600 MB each, a program whose population needs more than that
    runs in 8 shards; no worker's peak memory reaches its limit, and the results equal a whole run in this
    process. (Without a program memory does not grow with the population: sim.engines.lifetimes.)

    A worker holds about 330 MB before any shard (Python, numpy, scipy, numba, dask). Dask pauses a worker
    at 80% of its limit and a paused worker takes no task, which would hang the run rather than fail it:
    pausing is off, so a worker over its limit is terminated and the run fails."""
    import dask
    from distributed import Client, LocalCluster

    from sim.engines.memory import PEAK_BYTES_PER_CUSTOMER_WITH_PROGRAM

    limit = 600 * 2**20
    overrides = ["acquisition.0.initial_customers=1800000", "acquisition.0.new_per_month=20000",
                 "horizon_months=12", "replications=1", "baseline=none"]
    path = ROOT / "scenarios" / "points_program.yaml"
    scenario = load_scenario(path, overrides)
    assert scenario.planned_customers() * PEAK_BYTES_PER_CUSTOMER_WITH_PROGRAM > limit   # the whole would not fit one worker
    with dask.config.set({"distributed.worker.memory.pause": False}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=limit,
                         dashboard_address=None) as cluster:
        args = ["run", str(path), "--out", str(tmp_path / "sharded"), "--shards", "8",
                "--scheduler", cluster.scheduler_address, *[a for o in overrides for a in ("--set", o)]]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        with Client(cluster) as client:
            peaks = client.run(_peak_resident_bytes)
    assert max(peaks.values()) < limit
    whole = run_scenario(scenario)
    sharded = json.loads((tmp_path / "sharded" / "summary.json").read_text())["metrics"]
    for name in COUNTS:
        assert sharded[name]["mean"] == whole.metric_values(name)[0], name
    assert sharded["profit"]["mean"] == pytest.approx(whole.metric_values("profit")[0], rel=1e-12)


def _peak_resident_bytes() -> int:
    """This process's peak resident memory (VmHWM). Not getrusage's ru_maxrss, which a process started by
    fork and exec inherits from its parent on Linux (here: the pytest process after every earlier test)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
