"""Result files of a run (SPEC "Results directory"): tidy tables built once, written atomically."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.experiment import RunResult
from sim.metrics import METRICS, MONTHLY_METRICS, VS_BASELINE_EXTRA
from sim.stats import estimate
from sim.units import DAYS_PER_YEAR

#: Day 0 of the simulation in transactions.parquet's ``date`` column (scenarios have no calendar dates).
SIMULATION_EPOCH = dt.date(2000, 1, 1)


def summary(result: RunResult) -> dict[str, Any]:
    """The content of summary.json (``vs_baseline`` and ``member_comparison`` when there is a baseline)."""
    scenario = result.scenario
    metrics = result.metrics()
    content: dict[str, Any] = {
        "scenario": scenario.name,
        "replications": len(result.replications),
        "seed": scenario.seed,
        "horizon_months": scenario.horizon_months,
        "metrics": {name: metrics[name].as_dict() for name in METRICS},
    }
    vs = result.vs_baseline()
    if vs is not None:
        content["baseline"] = result.baseline.scenario.name
        content["vs_baseline"] = {name: vs[name].as_dict() for name in METRICS + VS_BASELINE_EXTRA}
        paid_back = np.isfinite(result.payback_months(result.baseline))
        content["vs_baseline"]["payback_month"]["replications_paid_back"] = int(paid_back.sum())
        comparison = member_comparison(result)
        if comparison is not None:
            content["member_comparison"] = comparison
    return content


def member_comparison(result: RunResult) -> dict[str, Any] | None:
    """What a naive member-vs-non-member comparison claims, next to the program's true effect.

    Per replication: the naive effect is members' repeat purchases per member minus non-members' per
    non-member; the true effect is the incremental repeat purchases against the baseline (same customers)
    per member. Self-selection (heavier buyers join more readily) makes the first several times the second
    (Leenheer et al. 2007). None when everybody or nobody is a member, or there is no baseline.
    """
    if result.baseline is None:
        return None
    members = result.metric_values("members_acquired")
    others = result.metric_values("customers_acquired") - members
    if np.any(members == 0) or np.any(others == 0):
        return None
    member_repeat = result.metric_values("member_repeat_purchases")
    other_repeat = result.metric_values("repeat_purchases") - member_repeat
    naive = member_repeat / members - other_repeat / others
    true = (result.metric_values("repeat_purchases") - result.baseline.metric_values("repeat_purchases")) / members
    true_mean = float(true.mean())
    return {
        "members_acquired": estimate(members).as_dict(),
        "repeat_purchases_per_member": estimate(member_repeat / members).as_dict(),
        "repeat_purchases_per_non_member": estimate(other_repeat / others).as_dict(),
        "naive_effect_per_member": estimate(naive).as_dict(),
        "incremental_repeat_purchases_per_member": estimate(true).as_dict(),
        "overstatement_factor": float(naive.mean()) / true_mean if true_mean > 0 else None,
    }


def timeseries(result: RunResult) -> pd.DataFrame:
    """One row per replication and month (flows summed over the month, stocks at its end)."""
    frames = []
    for rep in result.replications:
        frame = pd.DataFrame({name: rep.monthly[name] for name in MONTHLY_METRICS})
        frame.insert(0, "month", np.arange(len(frame), dtype=np.int32))
        frame.insert(0, "replication", np.int32(rep.replication))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def cohorts(result: RunResult) -> pd.DataFrame:
    """One row per replication, acquisition month, channel and segment.

    ``customers``, ``repeat_purchases``, ``net_revenue`` and ``active_end`` are cohort totals;
    ``clv`` and ``cac`` are per customer of the cohort.
    """
    frames = []
    for rep in result.replications:
        frame = pd.DataFrame(rep.cohorts)
        frame.insert(0, "replication", np.int32(rep.replication))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def transactions(result: RunResult) -> pd.DataFrame:
    """Every purchase (``--transactions``): readable back by ``loyalty-sim calibrate``."""
    frames = []
    for rep in result.replications:
        table = rep.transactions
        days = table["time"] * DAYS_PER_YEAR
        frames.append(pd.DataFrame({
            "replication": np.int32(rep.replication),
            "customer_id": table["customer_id"],
            "time": days,
            "date": pd.Timestamp(SIMULATION_EPOCH) + pd.to_timedelta(np.floor(days), unit="D"),
            "amount": table["amount"],
            "discount": table["discount"],
            "points_earned": table["points_earned"].astype(np.int64),
            "points_redeemed": table["points_redeemed"].astype(np.int64),
        }))
    return pd.concat(frames, ignore_index=True)


def write_run(result: RunResult, out_dir: str | os.PathLike[str], *, with_transactions: bool = False) -> Path:
    """Write the result files into ``out_dir`` (created if needed), each file atomically.

    With a baseline, its own summary.json, timeseries.parquet and cohorts.parquet go to ``out_dir/baseline``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if result.baseline is not None:
        write_run(result.baseline, out / "baseline")
    elif (out / "baseline" / "summary.json").is_file():  # from an earlier run with a baseline
        shutil.rmtree(out / "baseline")
    _atomic_write(out / "summary.json", lambda p: p.write_text(json.dumps(summary(result), indent=2) + "\n"))
    _atomic_write(out / "timeseries.parquet", lambda p: timeseries(result).to_parquet(p, index=False))
    _atomic_write(out / "cohorts.parquet", lambda p: cohorts(result).to_parquet(p, index=False))
    if with_transactions:
        _atomic_write(out / "transactions.parquet", lambda p: transactions(result).to_parquet(p, index=False))
    return out


def _atomic_write(path: Path, write) -> None:
    """Write to a temporary sibling then rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)
