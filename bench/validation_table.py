"""The agreement table of the two engines: scenario x metric, fast vs reference mean, difference / SE.

Runs every scenario of the equivalence tests (tests/test_reference.py: one per lever and every lever at once;
tests/test_validation_examples.py: the shipped examples, scaled down; tests/test_validation_points.py: points
expiry at high power) with both engines, exactly as the tests do (same seeds, same replications), and prints
markdown:

1. per scenario and metric: the mean over replications of each engine, z = (fast - reference) / combined SE
   (the tests require |z| <= 4) and the detectable difference, 4 combined SE / mean;
2. per scenario: customers, replications, largest |z|, and the wall time per replication of each engine
   (in the worker processes; small populations, so the fast engine's fixed costs dominate; see
   bench/bench_reference.py for the speed ratio at scale).

    .venv/bin/python bench/validation_table.py                      # everything (about 10 minutes on 2 cores)
    .venv/bin/python bench/validation_table.py bgnbd example:points_program
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import test_validation_examples  # noqa: F401  (registers the example scenarios)
import test_validation_points  # noqa: F401  (registers the points-expiry scenario)
from support.agreement import ENGINES, SCENARIOS, compare, runs

#: the metrics shown, in this order, for every scenario where they are not zero in both engines
TABLE_METRICS = (
    "customers_acquired", "purchases", "repeat_purchases", "gross_revenue", "active_customers_end", "profit",
    "clv_per_customer", "referred_customers", "customers_reactivated", "discount_cost", "message_cost",
    "tier_benefit_cost", "referral_bonus_cost", "member_cost", "reward_cost", "points_earned",
    "points_redeemed", "points_expired", "points_outstanding", "members_end",
)


def rows(name: str) -> list[tuple[str, float, float, float, float]]:
    """(metric, fast mean, reference mean, z, detectable) of every shown metric of scenario ``name``."""
    found = []
    for metric in TABLE_METRICS:
        fast, ref, se, detectable = compare(name, metric)
        if fast == 0 and ref == 0:
            continue
        z = (fast - ref) / se if se else (0.0 if fast == ref else math.inf)
        found.append((metric, fast, ref, z, detectable))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="scenarios (default: all)")
    args = parser.parse_args()
    names = args.names or list(SCENARIOS)

    summary = []
    print("| scenario | reps | metric | fast | reference | diff / SE | detectable |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        table = rows(name)
        for metric, fast, ref, z, detectable in table:
            shown = "equal" if math.isnan(detectable) or detectable == 0 else f"{detectable:.1%}"
            print(f"| {name} | {SCENARIOS[name][1]} | {metric} | {fast:.6g} | {ref:.6g} | {z:+.2f} | {shown} |",
                  flush=True)
        both = runs(name)
        seconds = {e: sum(rep["seconds"] for rep in both[e]) / len(both[e]) for e in ENGINES}
        customers = compare(name, "customers_acquired")[1]
        summary.append((name, customers, SCENARIOS[name][1], max(abs(row[3]) for row in table), seconds))

    print("\n| scenario | customers | reps | max abs(diff / SE) | reference s / rep | fast s / rep | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, customers, reps, worst, seconds in summary:
        print(f"| {name} | {customers:,.0f} | {reps} | {worst:.2f} | {seconds['ref']:.2f} | {seconds['fast']:.2f} | "
              f"{seconds['ref'] / seconds['fast']:.1f} |")


if __name__ == "__main__":
    main()
