"""loyalty-sim: does a loyalty program, discount policy or referral scheme pay for itself?

The public API::

    import sim
    scenario = sim.load_scenario("scenarios/baseline_retail.yaml")
    result = sim.run_scenario(scenario)
    result.metrics()["clv_per_customer"]

    plan = sim.plan_sweep("scenarios/sweep_points.yaml")      # validated: every point, before running
    sim.run_sweep(plan, "results/sweep", workers=2)           # or scheduler="tcp://host:8786"
    rows = sim.read_sweep_results("results/sweep")            # one row per point and replication

Attributes load lazily so that ``import sim`` (and the CLI's ``--help``) stays light.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any

# The engines run their own threads and use BLAS only for small least-squares problems (the decision tables'
# regressions, one row per replication). OpenBLAS, loaded by numpy and again by scipy, otherwise starts a
# thread per core for each and lets them spin for work: about a fifth of a small run's CPU time, on the
# cores the simulation or the other sweep workers need. Only if the user has not chosen, and only before
# numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__all__ = ["InputError", "RunResult", "Scenario", "load_scenario", "plan_sweep", "read_sweep_results",
           "resolve_baseline", "run_replication", "run_scenario", "run_sweep", "write_run"]

_HOMES = {
    "InputError": "sim.input.errors",
    "load_scenario": "sim.input.scenarios",
    "resolve_baseline": "sim.input.scenarios",
    "Scenario": "sim.schema",
    "RunResult": "sim.accounting.runs",
    "run_replication": "sim.experiments.replications",
    "run_scenario": "sim.experiments.replications",
    "write_run": "sim.output.run_files",
    "plan_sweep": "sim.experiments.sweep_plan",
    "run_sweep": "sim.experiments.sweep",
    "read_sweep_results": "sim.experiments.sweep_results",
}


_RENAMED = {"read_sweep_results": "read_results"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), _RENAMED.get(name, name))
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
