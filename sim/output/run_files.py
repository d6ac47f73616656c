"""Result files of a run (``docs/results.md``): tidy tables built once, written atomically."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ValidationError

from sim.accounting.decision import run_decision
from sim.accounting.estimates import estimate
from sim.accounting.metrics import METRICS, MONTHLY_METRICS, VS_BASELINE_EXTRA
from sim.accounting.runs import RunResult
from sim.input.yaml12 import CoreSchemaDumper
from sim.output.files import atomic_write
from sim.output.layout import BASELINE_FOLDER, SCENARIO_FILE, remove_stale
from sim.schema.units import DAYS_PER_YEAR

#: Day 0 of the simulation in transactions.parquet's ``date`` column (scenarios have no calendar dates).
SIMULATION_EPOCH = dt.date(2000, 1, 1)


def summary(result: RunResult, hurdle: float = 0.0) -> dict[str, Any]:
    """The content of summary.json (``vs_baseline``, ``decision`` and ``member_comparison`` when there is a
    baseline; ``hurdle`` is the incremental profit whose chance of being exceeded ``decision`` gives)."""
    scenario = result.scenario
    metrics = result.metrics()
    content: dict[str, Any] = {
        "scenario": scenario.name,
        "replications": len(result.replications),
        "seed": scenario.seed,
        "horizon_months": scenario.horizon_months,
        "population_scale": scenario.population_scale,
        "metrics": {name: metrics[name].as_dict() for name in METRICS},
    }
    vs = result.vs_baseline()
    if vs is not None:
        content["baseline"] = result.baseline.scenario.name
        content["vs_baseline"] = {name: vs[name].as_dict() for name in METRICS + VS_BASELINE_EXTRA}
        paid_back = np.isfinite(result.payback_months(result.baseline))
        content["vs_baseline"]["payback_month"]["replications_paid_back"] = int(paid_back.sum())
        content["decision"] = run_decision(result, hurdle)
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


def write_run(result: RunResult, out_dir: str | os.PathLike[str], *, with_transactions: bool = False,
              source: str | os.PathLike[str] | None = None, hurdle: float = 0.0) -> Path:
    """Write the result files into ``out_dir`` (created if needed), each file atomically.

    With a baseline, its own summary.json, timeseries.parquet and cohorts.parquet go to ``out_dir/baseline``.
    ``scenario.yaml`` holds the scenario as it was simulated (validated, defaults filled in, overrides
    applied); ``source`` is the file it was read from, named in its first lines. Result files of ours that
    this run does not write (an earlier run's transactions.parquet or baseline, a comparison's or a sweep's
    files) are removed, so that nothing stale sits beside the new results; no other file is touched.
    """
    out = Path(out_dir)
    remove_stale(out, write_run_files(result, out, with_transactions=with_transactions, source=source,
                                      hurdle=hurdle))
    return out


def write_run_files(result: RunResult, out: Path, *, with_transactions: bool = False,
                    source: str | os.PathLike[str] | None = None, hurdle: float = 0.0) -> list[Path]:
    """Write the result files of :func:`write_run` (removing nothing); the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if result.baseline is not None:
        written += write_run_files(result.baseline, out / BASELINE_FOLDER,
                                   source=_baseline_source(result.scenario, source))
    files = {
        SCENARIO_FILE: lambda p: p.write_text(scenario_yaml(result.scenario, source)),
        "summary.json": lambda p: p.write_text(json.dumps(summary(result, hurdle), indent=2) + "\n"),
        "timeseries.parquet": lambda p: timeseries(result).to_parquet(p, index=False),
        "cohorts.parquet": lambda p: cohorts(result).to_parquet(p, index=False),
    }
    if with_transactions:
        files["transactions.parquet"] = lambda p: transactions(result).to_parquet(p, index=False)
    for name, write in files.items():
        atomic_write(out / name, write)
        written.append(out / name)
    return written


def scenario_yaml(scenario: BaseModel, source: str | os.PathLike[str] | None = None) -> str:
    """The validated scenario as YAML, defaults filled in; ``loyalty-sim run`` reads it back as it is.

    The first comment lines name the ``source`` file. A relative ``baseline`` path stays relative to
    that source, not to this file.
    """
    header = "# The scenario as simulated: validated, with every default filled in and overrides applied.\n"
    header += f"# source: {source if source is not None else 'unknown (written through the Python API)'}\n"
    return header + yaml.dump(_with_distributions(scenario, resolved(scenario)), Dumper=CoreSchemaDumper,
                              sort_keys=False, allow_unicode=True, width=100)


def _with_distributions(scenario: BaseModel, data: dict[str, Any]) -> dict[str, Any]:
    """The uncertain values written back as the ``{dist: ...}`` they were given as, in place of their medians."""
    from sim.schema.uncertain import has_path, set_value

    items = data.pop("uncertain", None) and getattr(scenario, "uncertain", ())
    for item in items or ():
        if has_path(data, item.path):
            data = set_value(data, item.path, item.distribution.model_dump())
    return data


def resolved(model: BaseModel) -> dict[str, Any]:
    """A model as plain data with its defaults written out, still valid input for the same model.

    Fields left unset whose value is None are left out. A default the model would refuse next to the
    fields that were given (the time unit of a native parameter given in its friendly form) is left out too.
    """
    kind = type(model)
    data = {name: _plain(getattr(model, name)) for name in kind.model_fields}
    data = {name: value for name, value in data.items() if value is not None or name in model.model_fields_set}
    if _accepts(kind, data):
        return data
    kept = {name: value for name, value in data.items() if name in model.model_fields_set}
    for name, value in data.items():
        if name not in kept and _accepts(kind, {**kept, name: value}):
            kept[name] = value
    return {name: kept[name] for name in data if name in kept}


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return resolved(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _accepts(kind: type[BaseModel], data: dict[str, Any]) -> bool:
    try:
        kind.model_validate(data)
    except ValidationError:
        return False
    return True


def _baseline_source(scenario: BaseModel, source: str | os.PathLike[str] | None) -> str | None:
    """Where an ``auto`` or file baseline came from, for its scenario.yaml header."""
    if source is None:
        return None
    baseline = getattr(scenario, "baseline", "auto")
    if baseline in ("auto", "none"):
        return f"{source} without its policy block (baseline: auto)"
    target = Path(baseline)
    return str(target if target.is_absolute() else Path(source).parent / target)
