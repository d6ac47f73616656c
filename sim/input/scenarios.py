"""Scenario files in: read, overridden, validated, their baseline resolved and their size checked.

The one door for scenarios: the engines receive the frozen :class:`~sim.schema.Scenario` and never see a
file or a dict.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sim.engines.memory import memory_shortfall
from sim.input.documents import Document, is_file, read_yaml
from sim.input.errors import InputError
from sim.input.overrides import apply_overrides
from sim.input.validation import validate
from sim.schema import Scenario


def load_scenario(path: str | os.PathLike[str], overrides: Sequence[str] = (), *, shards: int = 1,
                  transactions: bool = False) -> Scenario:
    """Read, override, validate and size-check a scenario file (the size of one of ``shards`` customer
    shards, when the run is split; :func:`sim.model.acquisition.shards`; with its transaction log if ``transactions``).

    Raises
    ------
    InputError
        With every problem found, each naming the file, key path and line.
    """
    doc = read_yaml(path)
    if "sweep" in doc.data:
        raise InputError([doc.problem(("sweep",), "this is a sweep file; use `loyalty-sim sweep`")])
    apply_overrides(doc, overrides)
    scenario = validate(Scenario, doc)
    check_baseline(scenario, doc, Path(path))
    shortfall = memory_shortfall(scenario, shards, transactions)
    if shortfall:
        raise InputError([doc.problem(("acquisition",), shortfall)])
    return scenario


def _baseline_path(scenario: Scenario, path: Path) -> Path:
    target = Path(scenario.baseline)
    return target if target.is_absolute() else path.parent / target


def check_baseline(scenario: Scenario, doc: Document, path: Path) -> None:
    """A baseline given as a path must be a file (relative to the scenario's ``path``)."""
    if scenario.baseline in ("auto", "none"):
        return
    target = _baseline_path(scenario, path)
    if not is_file(target):
        raise InputError([doc.problem(("baseline",), f"'auto', 'none' or the path of a scenario file; "
                                                      f"{target} does not exist")])


def resolve_baseline(scenario: Scenario, path: str | os.PathLike[str]) -> Scenario | None:
    """The scenario ``scenario`` (read from ``path``) is compared with, or None.

    ``auto``: the same scenario without its policy (None if it has none, there is nothing to compare);
    ``none``: None; a path (relative to the scenario file): that scenario, run with this scenario's seed
    and replications so that the comparison is paired. Its horizon must be the same.
    """
    if scenario.baseline == "none":
        return None
    if scenario.baseline == "auto":
        return scenario.without_policy() if scenario.policy is not None else None
    target = _baseline_path(scenario, Path(path))
    other = load_scenario(target)
    if other.horizon_months != scenario.horizon_months:
        doc = read_yaml(path)
        raise InputError([doc.problem(("baseline",), (
            f"the baseline {target} runs {other.horizon_months} months and this scenario "
            f"{scenario.horizon_months}; a paired comparison needs the same horizon"))])
    return other.model_copy(update={"seed": scenario.seed, "replications": scenario.replications})
