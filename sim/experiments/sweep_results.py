"""A sweep's result rows: one per point and replication, with the point's values, every metric and the
paired ``vs_baseline.`` differences; written once per finished point into ``results.parquet/`` and read
back whole (``docs/results.md``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sim.experiments.sweep_plan import RESULTS, SweepPlan
from sim.output.files import atomic_write


def arm_rows(plan: SweepPlan, arm: int, base: int | None, done: dict[tuple[int, int], Any],
             labels: dict[str, Any]):
    """The rows of ``arm`` (one per replication) as a pandas DataFrame, with ``labels`` in front and, if
    ``base`` is given, the paired differences to it."""
    import pandas as pd

    return pd.DataFrame(_rows(plan, arm, base, done, labels))


def _rows(plan: SweepPlan, arm: int, base: int | None, done: dict[tuple[int, int], Any],
          labels: dict[str, Any]) -> list[dict[str, Any]]:
    from sim.accounting.derived import payback_month, profit_net_of_liability, roi
    from sim.accounting.metrics import METRICS

    rows = []
    for r in range(plan.replications):
        mine = done[arm, r]
        row: dict[str, Any] = dict(labels)
        row["replication"] = r
        row.update({name: float(mine.totals[name]) for name in METRICS})
        if base is not None:
            theirs = done[base, r]
            for name in METRICS:
                row[f"vs_baseline.{name}"] = float(mine.totals[name] - theirs.totals[name])
            incremental = mine.totals["profit"] - theirs.totals["profit"]
            row["vs_baseline.profit_net_of_liability"] = float(profit_net_of_liability(
                mine.totals["profit"], mine.totals["points_liability"], theirs.totals["profit"],
                theirs.totals["points_liability"]))
            row["vs_baseline.roi"] = float(roi(incremental, mine.totals["program_cost"]))
            row["vs_baseline.payback_month"] = payback_month(mine.monthly["profit"] - theirs.monthly["profit"])
        rows.append(row)
    return rows


def point_file(results_dir: Path, number: int) -> Path:
    return results_dir / f"point-{number:07d}.parquet"


def write_point(results_dir: Path, plan: SweepPlan, number: int, done: dict) -> None:
    """Point ``number``'s rows into its own file, written with pyarrow (a third of the time pandas takes,
    which a sweep of thousands of small points pays once per point in the process that drives it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(_rows(plan, plan.point_arm[number], plan.point_base[number], done,
                                       {"point": number} | plan.points[number]))
    atomic_write(point_file(results_dir, number), lambda p: pq.write_table(table, p))


def read_results(out: str | os.PathLike[str]):
    """All rows of a sweep's finished points (``results.parquet`` is a folder of one file per point)."""
    import pandas as pd

    folder = Path(out) / RESULTS
    files = sorted(folder.glob("point-*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
