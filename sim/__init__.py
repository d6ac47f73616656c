"""loyalty-sim: does a loyalty program, discount policy or referral scheme pay for itself?

The public API::

    import sim
    scenario = sim.load_scenario("scenarios/baseline_retail.yaml")
    result = sim.run_scenario(scenario)
    result.metrics()["clv_per_customer"]

Attributes load lazily so that ``import sim`` (and the CLI's ``--help``) stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["InputError", "RunResult", "Scenario", "load_scenario", "resolve_baseline", "run_replication",
           "run_scenario", "write_run"]

_HOMES = {
    "InputError": "sim.loading",
    "load_scenario": "sim.loading",
    "resolve_baseline": "sim.loading",
    "Scenario": "sim.scenario",
    "RunResult": "sim.experiment",
    "run_replication": "sim.experiment",
    "run_scenario": "sim.experiment",
    "write_run": "sim.results",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
