"""Engine speed benchmark: the no-policy model and every policy lever on, 3 years, one replication.

Each measurement runs in a fresh subprocess so that the figures are whole-process (imports, scenario
loading, simulation, results tables) and peak memory is that process's own. On a shared machine, repeat
(--repeat N: the plan is run N times over, in turns) and read the best wall time; the process's CPU time
is reported beside it. "x naive" is customers/s over the naive simpy script's, best against best, and with
repeats also turn by turn (each run against the naive run of its turn, minutes apart at most). Prints a
table and writes bench/out/bench_engine.json (every run's figures, in the order taken).

    .venv/bin/python bench/bench_engine.py                 # 1M and 10M customers, naive simpy at 20k,
                                                           # the CDNOW example at 10M, a points program
                                                           # at 2M, every lever at 1M
    .venv/bin/python bench/bench_engine.py --repeat 3      # best of 3 of each, taken in turns
    .venv/bin/python bench/bench_engine.py --sizes 100000 --cdnow-sizes --lever-sizes 100000  # quick
"""

from __future__ import annotations

import argparse
import compileall
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: A retail mix: BG/NBD and Pareto/NBD segments, heterogeneous spend, organic referrals.
SEGMENTS = {
    "regular": {
        "purchases_per_year": {"mean": 4.0, "cv": 0.9},
        "dropout": {"model": "per_purchase", "mean": 0.15, "cv": 0.6},
        "order_value": {"mean": 55.0, "cv": 0.5, "between_cv": 0.4, "growth_per_year": 0.03},
        "referrals_per_year": {"mean": 0.05},
    },
    "loyal": {
        "purchases_per_year": {"mean": 9.0, "cv": 0.6},
        "dropout": {"model": "hazard", "annual_churn": 0.2, "cv": 0.8},
        "order_value": {"mean": 75.0, "cv": 0.4, "between_cv": 0.3},
        "referrals_per_year": {"mean": 0.15},
    },
}


#: Every lever of the policy block at once.
POLICY = {
    "enrollment": {"probability": 0.6, "self_selection": 1.0},
    "points": {"earn_per_currency": 1, "reward_threshold": 500, "reward_value": 10, "reward_cost_ratio": 0.7,
               "redeemer_share": 0.75, "expiry_months_inactive": 12},
    "tiers": [{"name": "silver", "min_spend_12m": 300, "earn_multiplier": 1.25, "frequency_lift": 0.02},
              {"name": "gold", "min_spend_12m": 800, "earn_multiplier": 1.5, "frequency_lift": 0.05,
               "dropout_multiplier": 0.85, "benefit_cost_per_year": 15}],
    "discounts": [
        {"name": "black-friday", "kind": "blanket", "depth": 0.2, "start_month": 11, "every_months": 12,
         "duration_days": 4},
        {"name": "win-back", "kind": "winback", "inactive_days": 120, "depth": 0.15, "valid_days": 30,
         "message_cost": 0.1},
        {"name": "vip", "kind": "targeted", "target": "top_predicted_clv", "share": 0.2, "every_months": 3,
         "depth": 0.1, "valid_days": 30, "message_cost": 0.05},
    ],
    "referral": {"referrer_bonus": 10, "referee_bonus": 10},
    "costs": {"fixed_per_month": 5000, "per_member_per_year": 1.5},
}


#: A plain points program (the levers each customer meets on its own): membership, points with expiry,
#: member and fixed costs.
POINTS_POLICY = {key: POLICY[key] for key in ("enrollment", "points", "costs")}


def scenario_dict(customers: int, levers: bool = False, points: bool = False) -> dict:
    extra = {"policy": POLICY} if levers else {"policy": POINTS_POLICY} if points else {}
    return {
        **extra,
        "name": f"bench-{customers}",
        "horizon_months": 36,
        "replications": 1,
        "seed": 1,
        "economics": {"gross_margin": 0.3, "cost_to_serve_per_order": 4.0},
        "segments": SEGMENTS,
        "acquisition": [{"channel": "web", "cac": 30.0, "initial_customers": customers,
                         "segments": {"regular": 0.8, "loyal": 0.2}}],
    }


def child_fast(customers: int, levers: bool = False, points: bool = False) -> dict:
    """Runs inside the subprocess: the fast engine on the retail mix (timed from its imports to its last table)."""
    start = time.perf_counter()
    from sim.schema import Scenario

    return _run_timed(start, Scenario.model_validate(scenario_dict(customers, levers, points)))


def child_cdnow(customers: int) -> dict:
    """The shipped CDNOW example (BG/NBD and Gamma-Gamma at CDNOW's published parameters, no referrals), all
    ``customers`` acquired at the start, 36 months: about 3.8 purchases a customer, near the event density of
    the numpy prototype of the vectorised engine, against about 9 in the retail mix."""
    start = time.perf_counter()
    from sim.input.scenarios import load_scenario

    return _run_timed(start, load_scenario(HERE.parent / "scenarios" / "cdnow_baseline.yaml", [
        f"acquisition.0.initial_customers={customers}", "acquisition.0.new_per_month=0", "horizon_months=36",
        "replications=1"]))


def _run_timed(start: float, scenario) -> dict:
    """Runs ``scenario`` on the fast engine; ``start`` is when the child began importing."""
    from sim.experiments.replications import run_scenario

    imported = time.perf_counter()
    result = run_scenario(scenario)
    totals = result.replications[0].totals
    return {"import_s": imported - start, "simulate_s": time.perf_counter() - imported, "purchases": totals["purchases"],
            "customers": totals["customers_acquired"], "events": result.events}


def child_naive(customers: int) -> dict:
    """One simpy process per customer (the approach docs/model.md, section 6, explains we avoid), same BG/NBD segment."""
    import numpy as np
    import simpy

    start = time.perf_counter()
    gen = np.random.default_rng(1)
    seg = SEGMENTS["regular"]
    shape = 1 / seg["purchases_per_year"]["cv"] ** 2
    rates = gen.gamma(shape, seg["purchases_per_year"]["mean"] / shape, customers)
    mean_p, cv_p = seg["dropout"]["mean"], seg["dropout"]["cv"]
    total = (1 - mean_p) / (cv_p**2 * mean_p) - 1
    drop = gen.beta(mean_p * total, (1 - mean_p) * total, customers)
    env = simpy.Environment()
    purchases = [0]

    def customer(rate: float, p: float):
        purchases[0] += 1  # acquisition purchase
        while True:
            yield env.timeout(gen.exponential(1 / rate))
            purchases[0] += 1
            if gen.random() < p:
                return

    for rate, p in zip(rates, drop):
        env.process(customer(rate, p))
    env.run(until=3.0)
    return {"simulate_s": time.perf_counter() - start, "purchases": purchases[0], "customers": customers,
            "events": purchases[0]}


def measure(kind: str, customers: int) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(customers)], capture_output=True,
                         text=True, check=True)
    wall = time.perf_counter() - start
    figures = json.loads(out.stdout)
    figures.update(kind=kind, wall_s=wall, customers_per_s=figures["customers"] / wall,
                   events_per_s=figures["events"] / wall, purchases_per_s=figures["purchases"] / wall,
                   bytes_per_customer=figures["peak_rss_bytes"] / figures["customers"])
    return figures


def interleaved(repeat: int, plan: list[tuple[str, int]]) -> list[list[dict]]:
    """``repeat`` runs of each measurement of ``plan``, taken in turn (the whole plan once, then again), so
    that a machine that slows down or speeds up over the minutes of a benchmark touches every measurement
    alike; each measurement's runs in the order they were taken."""
    runs: list[list[dict]] = [[] for _ in plan]
    for _ in range(repeat):
        for taken, (kind, customers) in zip(runs, plan, strict=True):
            taken.append(measure(kind, customers))
    return runs


def times_naive(runs: list[dict], naive: list[dict]) -> list[float]:
    """Customers/s over the naive script's, run by run: each run against the naive run of the same turn."""
    return [run["customers_per_s"] / script["customers_per_s"] for run, script in zip(runs, naive, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--lever-sizes", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--points-sizes", type=int, nargs="*", default=[2_000_000])
    parser.add_argument("--cdnow-sizes", type=int, nargs="*", default=[10_000_000])
    parser.add_argument("--naive-size", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the fastest is shown")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, customers = args.child[0], int(args.child[1])
        child = {"fast": child_fast, "levers": lambda n: child_fast(n, levers=True),
                 "points": lambda n: child_fast(n, points=True), "naive": child_naive,
                 "cdnow": child_cdnow}[kind]
        figures = child(customers)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        figures.update(peak_rss_bytes=usage.ru_maxrss * 1024, cpu_s=usage.ru_utime + usage.ru_stime)
        print(json.dumps(figures))
        return
    # The package's bytecode, as an installed package has it: a machine that sets PYTHONDONTWRITEBYTECODE
    # would otherwise compile every module again in every child (0.04-0.06 s a process here).
    compileall.compile_dir(HERE.parent / "sim", quiet=1)
    plan = ([("naive", args.naive_size)] if args.naive_size else []) + [("fast", n) for n in args.sizes] \
        + [("cdnow", n) for n in args.cdnow_sizes] + [("points", n) for n in args.points_sizes] \
        + [("levers", n) for n in args.lever_sizes]
    measured = interleaved(args.repeat, plan)
    naive = measured[0] if args.naive_size else None
    best_naive = min(naive, key=lambda run: run["wall_s"]) if naive else None
    print(f"{'engine':6} {'customers':>11} {'wall s':>8} {'cpu s':>7} {'sim s':>7} {'customers/s':>12} "
          f"{'events/s':>11} {'purchases/s':>12} {'peak MiB':>9} {'B/customer':>10} {'x naive':>8}")
    for runs in measured:
        r = min(runs, key=lambda run: run["wall_s"])   # the best of the runs
        ratio = f"{r['customers_per_s'] / best_naive['customers_per_s']:>8.1f}" if naive else ""
        print(f"{r['kind']:6} {r['customers']:>11,.0f} {r['wall_s']:>8.2f} {r['cpu_s']:>7.2f} {r['simulate_s']:>7.2f} "
              f"{r['customers_per_s']:>12,.0f} {r['events_per_s']:>11,.0f} {r['purchases_per_s']:>12,.0f} "
              f"{r['peak_rss_bytes'] / 2**20:>9,.0f} {r['bytes_per_customer']:>10,.0f} {ratio}")
        if len(runs) > 1:
            walls = ", ".join(f"{run['wall_s']:.2f}" for run in runs)
            print(f"{'':6} {'':>11} walls in the order taken: {walls}")
            if naive and runs is not naive:
                turns = ", ".join(f"{ratio:.1f}" for ratio in times_naive(runs, naive))
                print(f"{'':6} {'':>11} x naive turn by turn: {turns}")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_engine.json").write_text(json.dumps([run for runs in measured for run in runs], indent=2) + "\n")


if __name__ == "__main__":
    main()
