"""A sweep's result rows: one per point and replication, with the point's values, every metric and the
paired ``vs_baseline.`` differences; written once per finished point into ``results.parquet/`` and read
back whole (``docs/results.md``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.output.files import atomic_write

if TYPE_CHECKING:   # numpy is imported where it is used, so that `validate` stays light
    pass

from sim.experiments.sweep_plan import RESULTS, SweepPlan


def point_rows(plan: SweepPlan, number: int, done: dict[tuple[int, int], Any]):
    """The rows of point ``number``: one per replication, its parameter values, metrics and vs_baseline."""
    return arm_rows(plan, plan.point_arm[number], plan.point_base[number], done,
                    {"point": number} | plan.points[number])


def arm_rows(plan: SweepPlan, arm: int, base: int | None, done: dict[tuple[int, int], Any],
             labels: dict[str, Any]):
    import pandas as pd

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
    return pd.DataFrame(rows)


def point_file(results_dir: Path, number: int) -> Path:
    return results_dir / f"point-{number:07d}.parquet"


def write_point(results_dir: Path, plan: SweepPlan, number: int, done: dict) -> None:
    frame = point_rows(plan, number, done)
    atomic_write(point_file(results_dir, number), lambda p: frame.to_parquet(p, index=False))


def read_results(out: str | os.PathLike[str]):
    """All rows of a sweep's finished points (``results.parquet`` is a folder of one file per point)."""
    import pandas as pd

    folder = Path(out) / RESULTS
    files = sorted(folder.glob("point-*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
