"""Existing-customer benchmark: 1M customers read from a customer table, with and without a program.

The table is the shipped retailer's (scenarios/data/retailer_customers.parquet, 3,600 customers) resampled
with replacement to the size asked, each row a new customer id, written to bench/out/. Each measurement
runs in a fresh subprocess (whole-process figures: imports, reading and checking the table, drawing the
posterior traits, simulating 12 months, the result tables; peak memory is that process's own):

- ``plain``: no program (the engine without a program), the table's segment;
- ``program``: every lever of bench/bench_engine.py on (the compiled program engine, with its rounds);
- ``simulated``: ``existing_customers: {count, history_months: 24}``, histories simulated, no program.

    .venv/bin/python bench/bench_existing.py                   # 1M customers
    .venv/bin/python bench/bench_existing.py --sizes 100000    # quick

Prints customers/s and peak bytes per customer, and writes bench/out/bench_existing.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
SEGMENT = {"purchases_per_year": {"r": 0.965511, "alpha": 11.0709, "alpha_unit": "week"},
           "dropout": {"model": "per_purchase", "a": 1.02938, "b": 6.3933},
           "order_value": {"p": 2.77031, "q": 11.3499, "gamma": 195.333}}


def table(customers: int) -> Path:
    """The shipped retailer table resampled to ``customers`` rows (made once per size)."""
    import numpy as np
    import pandas as pd

    path = OUT / f"customers-{customers}.parquet"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        source = pd.read_parquet(ROOT / "scenarios" / "data" / "retailer_customers.parquet")
        rows = np.random.default_rng(1).integers(0, len(source), customers)
        sample = source.iloc[rows].reset_index(drop=True)
        sample["customer_id"] = [f"B{i:08d}" for i in range(customers)]
        sample.to_parquet(path, index=False)
    return path


def scenario_file(kind: str, customers: int) -> Path:
    import yaml

    sys.path.insert(0, str(HERE))
    from bench_engine import POLICY

    existing = ({"count": customers, "history_months": 24} if kind == "simulated"
                else {"file": str(table(customers)), "segment": "retail"})
    document = {"name": f"existing-{kind}-{customers}", "horizon_months": 12, "replications": 1, "seed": 1,
                "economics": {"gross_margin": 0.3, "cost_to_serve_per_order": 3.0},
                "segments": {"retail": SEGMENT}, "acquisition": [], "existing_customers": existing}
    if kind == "program":
        document["policy"] = POLICY
    path = OUT / f"existing-{kind}-{customers}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def child(kind: str, customers: int) -> dict:
    """Runs inside the subprocess: read the scenario (and its table), simulate one replication."""
    start = time.perf_counter()
    from sim.experiments.replications import run_scenario
    from sim.input.scenarios import load_scenario

    imported = time.perf_counter()
    scenario = load_scenario(OUT / f"existing-{kind}-{customers}.yaml")
    loaded = time.perf_counter()
    result = run_scenario(scenario)
    totals = result.replications[0].totals
    return {"import_s": imported - start, "load_s": loaded - imported, "simulate_s": time.perf_counter() - loaded,
            "customers": totals["existing_customers"], "purchases": totals["purchases"]}


def measure(kind: str, customers: int) -> dict:
    scenario_file(kind, customers)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(customers)], capture_output=True,
                         text=True, check=True)
    wall = time.perf_counter() - start
    figures = json.loads(out.stdout)
    figures.update(kind=kind, wall_s=wall, customers_per_s=figures["customers"] / wall,
                   bytes_per_customer=figures["peak_rss_bytes"] / figures["customers"])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--kinds", nargs="*", default=["plain", "program", "simulated"])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        figures = child(args.child[0], int(args.child[1]))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        figures.update(peak_rss_bytes=usage.ru_maxrss * 1024, cpu_s=usage.ru_utime + usage.ru_stime)
        print(json.dumps(figures))
        return
    measured = [measure(kind, n) for n in args.sizes for kind in args.kinds]
    print(f"{'kind':9} {'customers':>11} {'wall s':>7} {'load s':>7} {'sim s':>7} {'customers/s':>12} "
          f"{'purchases':>11} {'peak MiB':>9} {'B/customer':>10}")
    for r in measured:
        print(f"{r['kind']:9} {r['customers']:>11,.0f} {r['wall_s']:>7.2f} {r['load_s']:>7.2f} {r['simulate_s']:>7.2f} "
              f"{r['customers_per_s']:>12,.0f} {r['purchases']:>11,.0f} {r['peak_rss_bytes'] / 2**20:>9,.0f} "
              f"{r['bytes_per_customer']:>10,.0f}")
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_existing.json").write_text(json.dumps(measured, indent=2) + "\n")


if __name__ == "__main__":
    main()
