"""Make the example retailer's transaction log and customer table (scenarios/data/).

The shipped example ``scenarios/retailer_existing_base.yaml`` starts from a retailer's existing customers.
Its data are synthetic and made here, reproducibly: two years of a retailer without a program (3,600
customers acquired evenly over 24 months, two kinds of buyers) simulated by the project's own engine with
``--transactions``, written as the CSV log a retailer would export (``customer_id,date,amount``), then
calibrated with ``loyalty-sim calibrate LOG --customers``. Run from the project root:

    python scripts/make_retailer_base.py

It rewrites ``scenarios/data/retailer_log.csv``, ``scenarios/data/retailer_customers.parquet`` and
``scenarios/data/retailer_segments.yaml`` (the fitted segment block the example scenario copies).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "scenarios" / "data"
HISTORY = {
    "name": "retailer-history",
    "description": "two years of a retailer without a program: the source of the example's synthetic log",
    "horizon_months": 24,
    "replications": 1,
    "seed": 2024,
    "economics": {"gross_margin": 0.3},
    "segments": {
        "occasional": {"purchases_per_year": {"mean": 3.0, "cv": 1.0},
                       "dropout": {"model": "per_purchase", "mean": 0.2, "cv": 0.7},
                       "order_value": {"mean": 45.0, "cv": 0.5, "between_cv": 0.4}},
        "regular": {"purchases_per_year": {"mean": 8.0, "cv": 0.6},
                    "dropout": {"model": "per_purchase", "mean": 0.08, "cv": 0.6},
                    "order_value": {"mean": 60.0, "cv": 0.4, "between_cv": 0.3}},
    },
    "acquisition": [{"channel": "shop", "new_per_month": 150, "segments": {"occasional": 0.7, "regular": 0.3}}],
}


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "sim.cli", *args], check=True, cwd=ROOT)


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        scenario = Path(folder) / "history.yaml"
        scenario.write_text(yaml.safe_dump(HISTORY, sort_keys=False))
        _cli("run", str(scenario), "--out", str(Path(folder) / "run"), "--transactions", "--workers", "1")
        log = pd.read_parquet(Path(folder) / "run" / "transactions.parquet")
    log = pd.DataFrame({"customer_id": "C" + log["customer_id"].astype(str).str.zfill(5),
                        "date": pd.to_datetime(log["date"]).dt.strftime("%Y-%m-%d"),
                        "amount": log["amount"].round(2)})
    log.to_csv(DATA / "retailer_log.csv", index=False)
    data = DATA.relative_to(ROOT)   # relative paths: the files name no machine's folders
    _cli("calibrate", str(data / "retailer_log.csv"), "--model", "bgnbd", "--segment-name", "retail",
         "-o", str(data / "retailer_segments.yaml"), "--customers", str(data / "retailer_customers.parquet"),
         "--margin", "0.3")


if __name__ == "__main__":
    main()
