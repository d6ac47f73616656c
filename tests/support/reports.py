"""Result directories for report tests: a small run and comparison simulated from the shipped examples, and
a synthetic sweep whose surface is known (so charts can be checked against it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

import sim
from sim.accounting import derived
from sim.output.run_files import METRICS
from support.scenarios import ROOT

SMALL = ["replications=3", "horizon_months=12", "existing_customers.count=1500",
         "acquisition.0.new_per_month=150", "acquisition.1.new_per_month=60"]


def small_run(out: Path, scenario: str = "points_program.yaml", extra: tuple[str, ...] = ()) -> Path:
    """Simulate a small version of a shipped scenario (and its baseline) into ``out``."""
    path = ROOT / "scenarios" / scenario
    loaded = sim.load_scenario(path, overrides=[*SMALL, *extra])
    result = sim.run_scenario(loaded, baseline=sim.resolve_baseline(loaded, path))
    sim.write_run(result, out, source=str(path))
    return out


def small_comparison(out: Path) -> Path:
    """A paired comparison of two small scenarios, written like `loyalty-sim compare` does."""
    from sim.experiments.compare import Comparison, write_comparison
    from sim.experiments.replications import run_many

    files = [ROOT / "scenarios" / "points_program.yaml", ROOT / "scenarios" / "discount_heavy.yaml"]
    scenarios = [sim.load_scenario(f, overrides=SMALL) for f in files]
    results = run_many(scenarios)
    write_comparison(Comparison(results, results[0], reference_is_baseline=False), out,
                     sources={s.name: str(f) for s, f in zip(scenarios, files)})
    return out


RANGES = {
    "policy.points.reward_threshold": (200.0, 1200.0),
    "policy.points.earn_per_currency": (0.5, 2.0),
    "response.goal_gradient": (0.0, 0.4),
    "response.member_frequency_lift": (0.0, 0.1),
    "policy.points.redeemer_share": (0.5, 0.95),
    "policy.costs.fixed_per_month": (0.0, 6000.0),
}


def surface(values: dict[str, np.ndarray]) -> np.ndarray:
    """The synthetic incremental profit: goal gradient and member lift help, earning more costs; parameters
    not swept are at the middle of their range."""
    def get(key: str) -> np.ndarray | float:
        return values[key] if key in values else sum(RANGES[key]) / 2

    return (300_000 * get("response.goal_gradient") + 900_000 * get("response.member_frequency_lift")
            - 60_000 * get("policy.points.earn_per_currency") + 20 * (get("policy.points.reward_threshold") - 700)
            - 36 * get("policy.costs.fixed_per_month") - 40_000)


def synthetic_sweep(out: Path, *, points: int = 30, replications: int = 4, parameters: int = 6,
                    baseline: bool = True, finished: int | None = None, sensitivity: bool = True,
                    folder: bool = True, seed: int = 5, design: str = "latin_hypercube") -> Path:
    """Write a sweep directory of ``points`` random points over the first ``parameters`` of :data:`RANGES`."""
    rng = np.random.default_rng(seed)
    keys = list(RANGES)[:parameters]
    values = {k: rng.uniform(*RANGES[k], size=points) for k in keys}
    values["policy.points.reward_threshold"] = np.round(values["policy.points.reward_threshold"])
    truth = surface(values)
    done = points if finished is None else finished
    rows = []
    for p in range(done):
        for r in range(replications):
            incremental = truth[p] + rng.normal(0, 8_000)
            earn = values["policy.points.earn_per_currency"][p] if parameters > 1 else 1.25
            program_cost = 100_000 + 60_000 * earn + rng.normal(0, 2_000)
            row = {"point": p, "replication": r, **{k: values[k][p] for k in keys}}
            row.update({m: float(rng.uniform(1_000, 50_000)) for m in METRICS})
            row.update({"program_cost": program_cost, "profit": 1e7 + incremental,
                        "clv_per_customer": 110 + incremental / 20_000})
            if baseline:
                row.update({f"vs_baseline.{m}": float(rng.normal(0, 1_000)) for m in METRICS})
                row.update({"vs_baseline.profit": incremental, "vs_baseline.program_cost": program_cost,
                            "vs_baseline.roi": incremental / program_cost,
                            "vs_baseline.payback_month": float(rng.integers(2, 12)) if incremental > 0 else np.inf})
            rows.append(row)
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    if folder:
        (out / "results.parquet").mkdir()
        for p, frame in table.groupby("point"):
            frame.to_parquet(out / "results.parquet" / f"point-{p:07d}.parquet", index=False)
    else:
        table.to_parquet(out / "results.parquet", index=False)
    design = {"name": "synthetic", "scenario": str(ROOT / "scenarios" / "points_program.yaml"),
              "design": design, "samples": points, "replications": replications, "seed": seed,
              "baseline": baseline, "parameters": {k: {"low": RANGES[k][0], "high": RANGES[k][1]} for k in keys},
              "points": [{"point": p, "values": {k: float(values[k][p]) for k in keys}, "finished": p < done}
                         for p in range(points)]}
    (out / "sweep.json").write_text(json.dumps(design, indent=1))
    if sensitivity and done == points:
        metric = "vs_baseline.profit" if baseline else "profit"
        (out / "sensitivity.json").write_text(json.dumps(_sensitivity(keys, metric, table)))
    return out


def _sensitivity(keys: list[str], metric: str, table: pd.DataFrame) -> dict:
    center = {k: np.array([(RANGES[k][0] + RANGES[k][1]) / 2]) for k in keys}
    offset = 1e7 if metric == "profit" else 0.0

    def at(changes: dict) -> dict:
        mean = float(surface({**center, **changes})[0]) + offset
        return {"mean": mean, "ci_low": mean - 5_000, "ci_high": mean + 5_000}

    oat = {"center": at({}), "parameters": [
        {"parameter": k, "center_value": float(center[k][0]), "low_value": RANGES[k][0], "high_value": RANGES[k][1],
         "low": at({k: np.array([RANGES[k][0]])}), "high": at({k: np.array([RANGES[k][1]])})} for k in keys]}
    swing = np.array([abs(p["high"]["mean"] - p["low"]["mean"]) for p in oat["parameters"]])
    share = swing**2 / np.sum(swing**2)
    sobol = {"parameters": keys, "S1": list(share * 0.9), "S1_conf": [0.03] * len(keys),
             "ST": list(share), "ST_conf": [0.04] * len(keys)}
    means = table.groupby("point")[[metric, "program_cost"]].mean()
    front = means.index[derived.pareto_mask(means["program_cost"], means[metric])].tolist()
    return {"metric": metric, "oat": oat, "sobol": sobol,
            "pareto": {"x": "program_cost", "y": metric, "points": front}}
