"""Targeted-offer scoring (sim/model/scoring.py ``select_targets``) on synthetic histories, before and after.

Histories drawn from the models themselves (seed 1): a BG/NBD segment and a Pareto/NBD one (the retail mix of
bench/bench_engine.py, 80% and 20% of the customers), ages uniform over 3 years, repeat spend Gamma-Gamma,
random customer keys as the engines pass them. Each case (target, share) is timed as the best of --repeat
calls after a warm-up call (numba's compiled code loaded); with --before REV the version of scoring.py at that
git revision is timed on the same histories, interleaved, and must choose the same customers.

    .venv/bin/python bench/bench_scoring.py                              # 100k and 1M customers
    .venv/bin/python bench/bench_scoring.py --before b60ea01 --repeat 5  # against the numpy version
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_engine import SEGMENTS  # the retail mix: BG/NBD "regular", Pareto/NBD "loyal"
from revisions import module_at

from sim.model import scoring
from sim.model.population import segment_laws
from sim.schema import Scenario

CASES = [("top_predicted_clv", 0.05), ("top_predicted_clv", 0.2), ("at_risk", 0.05), ("at_risk", 0.2)]


def synthetic_histories(laws, customers: int, gen: np.random.Generator) -> dict[str, np.ndarray]:
    """(segment, repeats, recency, age, repeat_spend, keys) of ``customers`` drawn from the segments' laws:
    rate ~ Gamma, BG/NBD dropout after each repeat purchase with a Beta chance (the repeats are the fewer of
    the Poisson count and the geometric count to the dropout, the last one's time an order statistic),
    Pareto/NBD an exponential lifetime with a Gamma hazard; repeat orders Gamma with a Gamma rate."""
    segment = (gen.random(customers) < 0.2).astype(np.uint8)
    age = gen.uniform(0.0, 3.0, customers)
    repeats = np.zeros(customers, dtype=np.int64)
    recency = np.zeros(customers)
    spend = np.zeros(customers)
    for index, law in enumerate(laws):
        who = np.flatnonzero(segment == index)
        n, T = who.size, age[who]
        rate = gen.gamma(law.purchase_rate.shape, law.purchase_rate.mean / law.purchase_rate.shape, n)
        if law.dropout is not None:
            count = gen.poisson(rate * T)
            to_dropout = gen.geometric(gen.beta(law.dropout.a, law.dropout.b, n))
            x = np.minimum(count, to_dropout)
            last = T * gen.beta(np.maximum(x, 1), count - x + 1.0)
        else:
            alive = np.minimum(T, gen.exponential(1.0, n) / gen.gamma(law.hazard.shape,
                                                                      law.hazard.mean / law.hazard.shape, n))
            x = gen.poisson(rate * alive)
            last = alive * gen.random(n) ** (1.0 / np.maximum(x, 1))
        p, q = law.spend.p, law.spend.q
        order_rate = gen.gamma(q, 1.0 / (law.spend.mean * (q - 1.0) / p), n)
        repeats[who], recency[who] = x, np.where(x > 0, last, 0.0)
        spend[who] = np.where(x > 0, gen.gamma(np.maximum(p * x, 1e-9), 1.0 / order_rate), 0.0)
    keys = gen.integers(0, 2**63, customers, dtype=np.uint64)
    return {"segment": segment, "repeats": repeats, "recency": recency, "age": age, "spend": spend, "keys": keys}


def best_seconds(select, laws, history: dict, target: str, share: float, repeat: int) -> tuple[float, np.ndarray]:
    """Best time of ``repeat`` calls (after a warm-up) and the customers chosen."""
    def call():
        return select(laws, history["segment"], history["repeats"], history["recency"], history["age"],
                      history["spend"], target=target, share=share, keys=history["keys"])

    chosen = call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times), chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--before", help="git revision of sim/model/scoring.py to time against")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    laws = segment_laws(Scenario.model_validate({
        "name": "bench-scoring", "horizon_months": 36, "segments": SEGMENTS, "economics": {"gross_margin": 0.3},
        "acquisition": [{"channel": "web", "initial_customers": 10, "segments": {"regular": 0.8, "loyal": 0.2}}]}))
    with tempfile.TemporaryDirectory() as folder:
        before = module_at(args.before, "sim/model/scoring.py", Path(folder)) if args.before else None
        print(f"{'customers':>10} {'target':>18} {'share':>6} {'eligible':>9} "
              + (f"{'before s':>9} " if before else "") + f"{'after s':>9}" + (f" {'speed-up':>8}" if before else ""))
        for customers in args.sizes:
            history = synthetic_histories(laws, customers, np.random.default_rng(1))
            for target, share in CASES:
                eligible = scoring._eligible(target, history["repeats"], history["spend"]).size
                row = f"{customers:>10,} {target:>18} {share:>6} {eligible:>9,} "
                after, chosen = best_seconds(scoring.select_targets, laws, history, target, share, args.repeat)
                if before:
                    old, old_chosen = best_seconds(before.select_targets, laws, history, target, share, args.repeat)
                    if not np.array_equal(chosen, old_chosen):
                        raise SystemExit(f"different choice from {args.before}: {row}")
                    row += f"{old:>9.4f} "
                row += f"{after:>9.4f}" + (f" {old / after:>7.1f}x" if before else "")
                print(row, flush=True)


if __name__ == "__main__":
    main()
