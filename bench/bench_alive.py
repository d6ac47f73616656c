"""P(alive) and departure times of existing customers at 1M customers: the compiled forms the engines use
(sim/model/existing_compiled.py) against sim/model/theory.py's vectorised numpy ones.

CDNOW's calibration histories (tests/data/cdnow, weeks) resampled with replacement to the size asked, at the
published BG/NBD and Pareto/NBD estimates; best of 3 runs after a warm-up call.

    .venv/bin/python bench/bench_alive.py                    # 1M customers
    .venv/bin/python bench/bench_alive.py --customers 100000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


def best_of(f, n: int, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f(n)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from test_theory import cdnow_summary

    from sim.model import existing_compiled, theory
    from sim.random import streams as rng
    from sim.random.streams import Purpose

    s = cdnow_summary()
    rows = np.random.default_rng(1).integers(0, len(s["x"]), args.customers)
    x, t_x, T = s["x"][rows], s["t_x"][rows], s["T"][rows]
    keys, step = rng.customer_keys(3, len(x)), rng.increment(Purpose.EXISTING_DEATH)
    cases = {
        "BG/NBD P(alive), theory (numpy)": lambda n: theory.bgnbd_probability_alive(x[:n], t_x[:n], T[:n], **BGNBD),
        "BG/NBD P(alive), compiled": lambda n: existing_compiled.bgnbd_probability_alive(x[:n], t_x[:n], T[:n],
                                                                                        **BGNBD),
        "Pareto/NBD P(alive), theory (numpy)": lambda n: theory.paretonbd_probability_alive(
            x[:n], t_x[:n], T[:n], **PARETO),
        "Pareto/NBD P(alive), compiled": lambda n: existing_compiled.paretonbd_probability_alive(
            x[:n], t_x[:n], T[:n], **PARETO),
        "departures, compiled (all gone)": lambda n: existing_compiled.pareto_departures(
            keys[:n], step, x[:n], t_x[:n], T[:n], *PARETO.values(), 64),
    }
    for name, f in cases.items():
        f(10)
        print(f"{name:38} {best_of(f, len(x)):7.3f} s for {len(x):,} customers")


if __name__ == "__main__":
    main()
