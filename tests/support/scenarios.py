"""Shared builders for tests: the example files, scenarios from small dicts (run through the one validation
door), and the statistical assertion of every test against theory."""

from __future__ import annotations

import copy
from pathlib import Path

from sim.schema import Scenario

ROOT = Path(__file__).resolve().parent.parent.parent


def _is_sweep(path: Path) -> bool:
    return any(line.startswith("sweep:") for line in path.read_text().splitlines())


def _is_optimize(path: Path) -> bool:
    return any(line.startswith("optimize:") for line in path.read_text().splitlines())


def base_of(path: Path, count: int) -> list[str]:
    """Overrides that shrink an example's simulated existing base (``existing_customers: {count, ...}``) to
    ``count`` customers; none for an example without one (or whose base is a customer table)."""
    import yaml

    existing = (yaml.safe_load(path.read_text()) or {}).get("existing_customers")
    return [f"existing_customers.count={count}"] if isinstance(existing, dict) and "count" in existing else []


#: The example files of scenarios/: scenarios (for `run`), sweeps (for `sweep`) and searches (for `optimize`).
EXAMPLE_SCENARIOS = [p for p in sorted((ROOT / "scenarios").glob("*.yaml")) if not _is_sweep(p)
                     and not _is_optimize(p)]
EXAMPLE_SWEEPS = [p for p in sorted((ROOT / "scenarios").glob("*.yaml")) if _is_sweep(p)]
EXAMPLE_OPTIMIZES = [p for p in sorted((ROOT / "scenarios").glob("*.yaml")) if _is_optimize(p)]

BASE = {
    "name": "test",
    "horizon_months": 12,
    "replications": 1,
    "seed": 1,
    "economics": {"gross_margin": 0.3, "cost_to_serve_per_order": 0.0, "annual_discount_rate": 0.1},
    "segments": {
        "only": {
            "purchases_per_year": {"mean": 6.0, "cv": 0.5},
            "dropout": {"model": "per_purchase", "mean": 0.1, "cv": 0.5},
            "order_value": {"mean": 50.0, "cv": 0.5, "between_cv": 0.3},
        }
    },
    "acquisition": [{"channel": "web", "cac": 10.0, "initial_customers": 1000}],
}


def scenario(**changes) -> Scenario:
    """BASE with top-level keys replaced (dicts are replaced whole, not merged)."""
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(changes))
    return Scenario.model_validate(data)


def one_segment(segment: dict, *, customers: int, months: int, **changes) -> Scenario:
    """A cohort of ``customers`` arriving at time 0, all in one segment, no cost to serve, no CAC."""
    return scenario(
        horizon_months=months,
        segments={"only": segment},
        acquisition=[{"channel": "web", "cac": 0.0, "initial_customers": customers}],
        **changes,
    )


def assert_within(observed: float, expected: float, std_error: float, *, max_std_error: float,
                   k: float = 4.0) -> None:
    """|observed - expected| <= k standard errors, and the standard error small enough to have power."""
    assert std_error <= max_std_error, f"standard error {std_error:.4g} exceeds the bound {max_std_error:.4g}"
    assert abs(observed - expected) <= k * std_error, (
        f"observed {observed:.6g}, expected {expected:.6g}: {abs(observed - expected) / std_error:.2f} SE apart"
    )
