"""The customer table of ``calibrate --customers`` against the lifetimes package, on the same customers.

lifetimes (0.11.3, the last release) does not install beside this project's pandas 3 cleanly, so it runs
in a Python of its own: ``python -m venv /tmp/lt && /tmp/lt/bin/pip install lifetimes pyarrow``. Both sides
score the same synthetic cohort (bench/bench_calibrate.py's BG/NBD log, calibration end at week 39) with
the same parameters; times are of the scoring only (no fitting, no reading).

    .venv/bin/python bench/compare_lifetimes.py --customers 1000000 --lifetimes-python /tmp/lt/bin/python

lifetimes' side: P(alive), expected purchases in the next 12 months and the Gamma-Gamma expected spend;
then its ``customer_lifetime_value`` over 36 months (weekly steps, the discount per week). Ours: every column
of the table, the lifetime (not 36-month) discounted residual purchases and CLV included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

LIFETIMES_SIDE = """
import sys, time
import numpy as np, pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
data = pd.read_parquet(sys.argv[1])
x, t_x, T, m = (data[c].to_numpy() for c in ("x", "t_x", "T", "m"))
bgf = BetaGeoFitter(); bgf.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
ggf = GammaGammaFitter(); ggf.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})
start = time.perf_counter()
bgf.conditional_probability_alive(x, t_x, T)
bgf.conditional_expected_number_of_purchases_up_to_time(365.25 / 7, x, t_x, T)
ggf.conditional_expected_average_profit(x, m)
scores = time.perf_counter() - start
start = time.perf_counter()
ggf.customer_lifetime_value(bgf, *(pd.Series(v) for v in (x, t_x, T, m)), time=36, freq="W",
                            discount_rate=0.1 / 52)
print(f"lifetimes: P(alive), 12-month purchases and expected spend {scores:.2f} s; "
      f"customer_lifetime_value over 36 months {time.perf_counter() - start:.2f} s")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lifetimes-python", help="a Python with lifetimes installed (see above)")
    args = parser.parse_args()
    import pandas as pd
    from bench_calibrate import synthetic_log

    from sim.calibration import calibrate, merge_same_day
    from sim.calibration.customers import customer_table

    log = synthetic_log(args.customers)
    purchases = merge_same_day(log["customer"], log["day"], log["amount"])
    calibration = calibrate(purchases, dt.date(1997, 9, 30), model="bgnbd")
    start = time.perf_counter()
    table = customer_table(calibration, purchases)
    print(f"loyalty-sim: the customer table of {len(table):,} customers, every column, "
          f"{time.perf_counter() - start:.2f} s")
    if args.lifetimes_python:
        s = calibration.summary
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "summary.parquet"
            pd.DataFrame({"x": s.x, "t_x": s.t_x, "T": s.T, "m": s.mean_spend}).to_parquet(path)
            subprocess.run([args.lifetimes_python, "-c", LIFETIMES_SIDE, str(path)], check=True)


if __name__ == "__main__":
    main()
