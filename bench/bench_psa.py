"""Probabilistic sensitivity analysis benchmark: N assumption draws (replications) of a 20k-customer program
with every lever, the response defaults uncertain over their evidence ranges, against its baseline; time and
peak memory, and where the time goes.

Each replication draws the assumptions (``response: {uncertain: evidence}`` plus the fixed program cost),
builds the scenario with them and simulates the program and its baseline on the same customers; the
decision block (regressions, bootstrap break-evens) is computed at the end. Prints a table and writes
bench/out/bench_psa.json.

    .venv/bin/python bench/bench_psa.py                      # 1,000 draws on 2 workers
    .venv/bin/python bench/bench_psa.py --draws 40           # quick
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_engine import POLICY, scenario_dict


def psa_scenario(customers: int, draws: int):
    from sim.schema import Scenario

    data = scenario_dict(customers, levers=True)
    policy = {**POLICY, "costs": {"fixed_per_month": {"dist": "triangular", "low": 2000, "mode": 5000,
                                                      "high": 8000}, "per_member_per_year": 1.5}}
    data.update({"name": f"psa-{customers}", "replications": draws, "policy": policy,
                 "response": {"uncertain": "evidence"}})
    return Scenario.model_validate(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from sim.accounting.decision import run_decision
    from sim.experiments.replications import run_scenario
    from sim.model.assumptions import realise

    scenario = psa_scenario(args.customers, args.draws)
    start = time.perf_counter()
    for replication in range(min(50, args.draws)):
        realise(scenario, replication)
    realise_each = (time.perf_counter() - start) / min(50, args.draws)

    start = time.perf_counter()
    result = run_scenario(scenario, baseline=scenario.without_policy(), workers=args.workers)
    simulate = time.perf_counter() - start
    start = time.perf_counter()
    decision = run_decision(result)
    decide = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    events = result.events
    figures = {
        "draws": args.draws, "customers": args.customers, "workers": args.workers,
        "assumptions": len(scenario.uncertain),
        "simulate_seconds": simulate, "decision_seconds": decide,
        "realise_seconds_per_replication": realise_each,
        "realise_share_of_simulation": realise_each * 2 * args.draws / (simulate * args.workers),
        "events": events, "peak_rss_main_mb": own, "peak_rss_worker_mb": children,
        "p_positive": decision["p_positive"], "evpi": decision["evpi"],
        "evppi": decision["evppi"], "noise_share": decision["spread"]["simulation_noise_share"],
    }
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_psa.json").write_text(json.dumps(figures, indent=2) + "\n")
    for key, value in figures.items():
        if key != "evppi":
            print(f"{key:36s} {value:,.4g}" if isinstance(value, float) else f"{key:36s} {value}")
    for key, value in sorted(figures["evppi"].items(), key=lambda kv: -(kv[1] or 0)):
        print(f"  EVPPI {key:40s} {value:,.0f}" if value is not None else f"  EVPPI {key}: -")


if __name__ == "__main__":
    main()
