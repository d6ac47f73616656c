"""Sweep throughput: points x replications per minute on 1 and 2 local workers, parallel efficiency, and the
overhead per unit of work when points are tiny.

    python bench/bench_sweep.py                 # both measurements
    python bench/bench_sweep.py --customers 300 # smaller points

Parallel efficiency = time on 1 worker / (2 x time on 2 workers); the goal on this 2-core machine is >= 90%.
Overhead per unit = (sweep wall time - the same units simulated back to back in one process) / units: what
planning, shipping tasks to processes, writing per-point Parquet files and the manifest cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sim.experiments.replications import run_replication
from sim.experiments.sweep import run_sweep
from sim.experiments.sweep_plan import plan_sweep

SCENARIO = """\
name: bench-points
horizon_months: 24
replications: 1
seed: 3
economics: {{gross_margin: 0.3, cost_to_serve_per_order: 4.0, annual_discount_rate: 0.1}}
segments:
  regular:
    purchases_per_year: {{mean: 5, cv: 0.8}}
    dropout: {{model: per_purchase, mean: 0.15, cv: 0.6}}
    order_value: {{mean: 50, cv: 0.5}}
    referrals_per_year: {{mean: 0.1}}
acquisition:
  - {{channel: web, cac: 20, initial_customers: {customers}, new_per_month: {monthly}}}
policy:
  enrollment: {{probability: 0.6, self_selection: 1.0}}
  points: {{earn_per_currency: 1, reward_threshold: 500, reward_value: 10, reward_cost_ratio: 0.7,
           redeemer_share: 0.75, expiry_months_inactive: 12}}
  costs: {{fixed_per_month: 100, per_member_per_year: 1.0}}
"""

SWEEP = """\
sweep:
  name: bench
  scenario: scenario.yaml
  design: grid
  replications: {replications}
  seed: 1
  oat: false
  parameters:
    policy.points.reward_threshold: {thresholds}
    response.goal_gradient: {{low: 0.0, high: 0.4, levels: {levels}}}
"""


def _files(folder: Path, customers: int, thresholds: list[int], levels: int, replications: int) -> Path:
    (folder / "scenario.yaml").write_text(SCENARIO.format(customers=customers, monthly=max(customers // 20, 1)))
    path = folder / "sweep.yaml"
    path.write_text(SWEEP.format(replications=replications, thresholds=thresholds, levels=levels))
    return path


def _timed_sweep(path: Path, workers: int) -> tuple[float, int]:
    plan = plan_sweep(path)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run_sweep(plan, out, workers=workers)
        elapsed = time.perf_counter() - start
    units = sum(1 for _ in set(plan.point_arm) | {b for b in plan.point_base if b is not None}) * plan.replications
    return elapsed, units


def throughput(customers: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _files(Path(folder), customers, [250, 500, 750, 1000], 4, 4)
        plan = plan_sweep(path)
        point_reps = len(plan.points) * plan.replications
        times = {}
        for workers in (1, 2):
            elapsed, units = _timed_sweep(path, workers)
            times[workers] = elapsed
            print(f"{customers:,} customers/point, {len(plan.points)} points x {plan.replications} replications "
                  f"({units} simulated units incl. the shared baseline), {workers} worker(s): {elapsed:.1f} s, "
                  f"{point_reps / elapsed * 60:,.0f} point-replications/min")
        print(f"parallel efficiency on 2 workers: {times[1] / (2 * times[2]):.0%}")


def overhead() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _files(Path(folder), 30, list(range(100, 1100, 100)), 10, 2)
        plan = plan_sweep(path)
        scenarios = sorted(set(plan.point_arm) | {b for b in plan.point_base if b is not None})
        start = time.perf_counter()
        for index in scenarios:
            for replication in range(plan.replications):
                run_replication(plan.scenarios[index], replication)
        compute = time.perf_counter() - start
        units = len(scenarios) * plan.replications
        for workers in (1, 2):
            elapsed, _ = _timed_sweep(path, workers)
            print(f"tiny points ({len(plan.points)} points x {plan.replications} replications, {units} units of "
                  f"{compute / units * 1000:.1f} ms): sweep on {workers} worker(s) {elapsed:.2f} s; overhead "
                  f"{(elapsed - compute / workers) / units * 1000:.2f} ms per unit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=3000, help="initial customers per point")
    args = parser.parse_args()
    throughput(args.customers)
    overhead()


if __name__ == "__main__":
    main()
