"""Calibration speed: summary from a transaction log plus maximum-likelihood fits, for 100k and 1M customers.

A synthetic log is drawn from the BG/NBD with the CDNOW estimates (weeks: r 0.243, alpha 4.414, a 0.793,
b 2.426) and Gamma-Gamma spend (p 6.25, q 3.74, gamma 15.44), customers' first purchases spread over 12
weeks and the log running 78 weeks, like CDNOW; calibration end at week 39. Timed, each in a fresh process
(so that imports and caches do not flatter later sizes):

- ``summary``: merge same-day purchases and build (x, t_x, T, mean spend) from the in-memory log;
- ``bgnbd``: the BG/NBD fit (with standard errors) on that summary; ``summary + bgnbd`` is the figure to
  compare with lifetimes' 8.6 s for a 1M-customer BG/NBD fit on this machine;
- ``paretonbd``, ``gamma_gamma``: the other two fits; ``read_csv``: reading and checking the log from a CSV;
- ``customers``: the customer table of ``calibrate --customers`` (P(alive), expected purchases in 12
  months, expected order value, discounted residual purchases and CLV) from the BG/NBD calibration.

    .venv/bin/python bench/bench_calibrate.py                      # 100k and 1M customers
    .venv/bin/python bench/bench_calibrate.py --sizes 100000       # quick

Prints a table and writes bench/out/bench_calibrate.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EPOCH_DAY = 9861  # 1997-01-01 in days since 1970-01-01
TRUE = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "gamma": 15.44}


def synthetic_log(customers: int, seed: int = 1) -> dict[str, np.ndarray]:
    """BG/NBD purchases in whole days (customer, day, amount) over 78 weeks, first purchases in 12 weeks."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], customers) / 7.0  # per day
    dropout = rng.beta(TRUE["a"], TRUE["b"], customers)
    spend_rate = rng.gamma(TRUE["q"], 1 / TRUE["gamma"], customers)
    first = rng.uniform(0, 84, customers)
    horizon = 78 * 7.0
    ids, times = [np.arange(customers)], [first]
    alive, clock = np.arange(customers), first.copy()
    while alive.size:
        clock = clock + rng.exponential(1.0, alive.size) / rate[alive]
        bought = clock < horizon
        alive, clock = alive[bought], clock[bought]
        ids.append(alive)
        times.append(clock)
        stays = rng.random(alive.size) >= dropout[alive]
        alive, clock = alive[stays], clock[stays]
    customer = np.concatenate(ids)
    amount = rng.gamma(TRUE["p"], 1.0, customer.size) / spend_rate[customer]
    return {"customer": customer, "day": EPOCH_DAY + np.floor(np.concatenate(times)).astype(np.int64),
            "amount": amount}


def measure(customers: int) -> dict[str, float]:
    """Time every step for one size (run in its own process)."""
    import datetime as dt
    import tempfile

    import pandas as pd

    from sim.calibration import (
        calibrate,
        fit_bgnbd,
        fit_gamma_gamma,
        fit_paretonbd,
        merge_same_day,
        read_log,
        summarize,
    )
    from sim.calibration.customers import customer_table

    log = synthetic_log(customers)
    figures: dict[str, float] = {"customers": customers, "transactions": int(log["customer"].size)}
    start = time.perf_counter()
    summary = summarize(merge_same_day(log["customer"], log["day"], log["amount"]), dt.date(1997, 9, 30))
    figures["summary"] = time.perf_counter() - start
    for name, fit in (("bgnbd", fit_bgnbd), ("paretonbd", fit_paretonbd), ("gamma_gamma", fit_gamma_gamma)):
        start = time.perf_counter()
        result = fit(summary)
        figures[name] = time.perf_counter() - start
        figures[f"{name}_params"] = {k: round(v, 4) for k, v in result.params.items()}
    figures["summary_plus_bgnbd"] = figures["summary"] + figures["bgnbd"]
    purchases = merge_same_day(log["customer"], log["day"], log["amount"])
    calibration = calibrate(purchases, dt.date(1997, 9, 30), model="bgnbd")
    start = time.perf_counter()
    customer_table(calibration, purchases)
    figures["customers_table"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.csv"
        dates = pd.to_datetime(log["day"], unit="D").strftime("%Y-%m-%d")
        pd.DataFrame({"customer_id": log["customer"], "date": dates, "amount": log["amount"].round(2)}).to_csv(
            path, index=False)
        start = time.perf_counter()
        read_log(path)
        figures["read_csv"] = time.perf_counter() - start
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    rows = []
    for size in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(size)], check=True, capture_output=True,
                             text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"{'customers':>10} {'transactions':>12} {'summary':>8} {'bgnbd':>7} {'sum+bg':>7} {'pareto':>7} "
          f"{'gg':>6} {'read_csv':>8} {'customers':>9}  (seconds)")
    for row in rows:
        print(f"{row['customers']:>10,} {row['transactions']:>12,} {row['summary']:>8.2f} {row['bgnbd']:>7.2f} "
              f"{row['summary_plus_bgnbd']:>7.2f} {row['paretonbd']:>7.2f} {row['gamma_gamma']:>6.2f} "
              f"{row['read_csv']:>8.2f} {row['customers_table']:>9.2f}")
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "bench_calibrate.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
