"""Which assumptions drive the answer: one-at-a-time effects, Sobol indices and the profit/cost frontier.

- **One-at-a-time** (the data of a tornado chart): the sweep's metric at the scenario's own values, and with
  one parameter at a time moved to each end of its range (or to each listed value), the others kept.
- **Sobol indices** (Saltelli 2002; Saltelli et al. 2010): first-order ``S1`` and total ``ST`` indices of the
  metric's mean over replications, from a ``sobol`` design, estimated by SALib with bootstrap intervals.
- **Pareto front**: the points no other point beats on both program cost (lower) and the metric (higher).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.accounting.derived import pareto_front
from sim.accounting.estimates import estimate
from sim.experiments.designs import problem

if TYPE_CHECKING:
    from pathlib import Path

    from sim.experiments.sweep_plan import SweepPlan


def sobol_indices(values: np.ndarray, dimensions: int, seed: int) -> dict[str, list[float]]:
    """First-order and total Sobol indices (with 95% bootstrap half-widths) of ``values``, the model output
    at the points of :func:`sim.experiments.designs.sobol_sample` in the same order."""
    from SALib.analyze import sobol

    result = sobol.analyze(problem(dimensions), np.asarray(values, dtype=float), calc_second_order=False,
                           num_resamples=500, seed=seed % 2**32)
    return {name: [float(v) for v in result[name]] for name in ("S1", "S1_conf", "ST", "ST_conf")}


def analyse(plan: SweepPlan, done: dict[tuple[int, int], Any], out: Path) -> dict[str, Any]:
    """The content of sensitivity.json for a finished sweep."""
    from sim.experiments.sweep_results import arm_rows, read_results

    metric = plan.metric
    results = read_results(out)
    per_point = results.groupby("point")[metric].mean().reindex(range(len(plan.points)))
    content: dict[str, Any] = {"metric": metric, "oat": None, "sobol": None, "pareto": None}
    if plan.oat:
        def values(entry: dict[str, Any]) -> np.ndarray:
            rows = arm_rows(plan, entry["arm"], entry["base"], done, {})
            return rows[metric].to_numpy(dtype=float)

        center_entry = plan.oat[0]
        center = values(center_entry)
        parameters = []
        for parameter in plan.parameters:
            runs = [(e["value"], values(e)) for e in plan.oat if e["parameter"] == parameter.key]
            described = [{"value": v, **estimate(x).as_dict(),
                          "vs_center": estimate(x - center).as_dict()} for v, x in runs]
            if parameter.values is None:
                low, high = described[0], described[-1]
            else:   # a list: the values with the lowest and the highest metric
                ranked = sorted(described, key=lambda d: -math.inf if d["mean"] is None else d["mean"])
                low, high = ranked[0], ranked[-1]
            parameters.append({
                "parameter": parameter.key, "center_value": parameter.center,
                "low_value": low["value"], "high_value": high["value"],
                "low": _estimate_only(low), "high": _estimate_only(high), "values": described,
            })
        parameters.sort(key=lambda p: -abs((p["high"]["mean"] or 0.0) - (p["low"]["mean"] or 0.0)))
        content["oat"] = {"center": estimate(center).as_dict(), "parameters": parameters}
    if plan.body.design == "sobol" and per_point.notna().all():
        indices = sobol_indices(per_point.to_numpy(), len(plan.parameters), plan.scenarios[0].seed)
        content["sobol"] = {"parameters": [p.key for p in plan.parameters], **indices}
    if "program_cost" in results:
        cost = results.groupby("point")["program_cost"].mean().reindex(range(len(plan.points)))
        front = pareto_front(cost.to_numpy(), per_point.to_numpy())
        content["pareto"] = {"x": "program_cost", "y": metric, "points": front}
    return content


def _estimate_only(described: dict[str, Any]) -> dict[str, Any]:
    return {k: described[k] for k in ("mean", "ci_low", "ci_high")}
