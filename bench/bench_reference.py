"""The reference engine (one simpy process per customer) against the fast engine, on the same scenario.

The scenario is bench_engine.py's retail mix (a BG/NBD and a Pareto/NBD segment, organic referrals), 3 years,
one replication, without a policy and with every lever on. Both engines run in this process after a warm-up
(imports, scipy), so the figures are simulation time only: wall time, customers/s, purchases/s and the
speed ratio (reference time / fast time). Prints a table.

    .venv/bin/python bench/bench_reference.py                       # 20,000 customers
    .venv/bin/python bench/bench_reference.py --customers 5000 --repeat 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_engine import scenario_dict  # the same segments and policy as the engine benchmark

from sim.engines.reference import ReferenceEngine
from sim.experiments.replications import fast_engine
from sim.schema import Scenario

ENGINES = {"fast": fast_engine, "reference": ReferenceEngine}


def measure(engine: str, scenario: Scenario, repeat: int) -> dict:
    """Median wall time over ``repeat`` runs of replication 0 (the same work each time)."""
    times, totals = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = ENGINES[engine](scenario, 0).run()
        times.append(time.perf_counter() - start)
        totals = result.totals
    wall = statistics.median(times)
    customers, purchases = totals["customers_acquired"], totals["purchases"]
    return {"engine": engine, "wall_s": wall, "customers": customers, "purchases": purchases,
            "customers_per_s": customers / wall, "purchases_per_s": purchases / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (the median is shown)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    warm = Scenario.model_validate(dict(scenario_dict(200, levers=True), horizon_months=3))
    for engine in ENGINES.values():  # imports (scipy for the program), first-call costs
        engine(warm, 0).run()

    rows = []
    for levers in (False, True):
        scenario = Scenario.model_validate(dict(scenario_dict(args.customers, levers=levers),
                                                horizon_months=args.months))
        pair = {engine: measure(engine, scenario, args.repeat) for engine in ENGINES}
        for figures in pair.values():
            figures.update(levers=levers, ratio=pair["reference"]["wall_s"] / pair["fast"]["wall_s"])
            rows.append(figures)

    print(f"{'engine':10} {'levers':6} {'customers':>10} {'purchases':>10} {'wall s':>8} {'customers/s':>12} "
          f"{'purchases/s':>12} {'ref/fast':>9}")
    for r in rows:
        print(f"{r['engine']:10} {'yes' if r['levers'] else 'no':6} {r['customers']:>10,.0f} {r['purchases']:>10,.0f} "
              f"{r['wall_s']:>8.2f} {r['customers_per_s']:>12,.0f} {r['purchases_per_s']:>12,.0f} "
              f"{r['ratio']:>8.1f}x")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
