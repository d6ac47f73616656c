"""Scenario files in: read, overridden, validated, their baseline resolved and their size checked.

The one door for scenarios: the engines receive the frozen :class:`~sim.schema.Scenario` and never see a
file or a dict.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.engines.memory import memory_shortfall
from sim.input.customers import attach_base
from sim.input.documents import Document, is_file, read_yaml
from sim.input.errors import InputError, KeyPath, Problem, dotted
from sim.input.overrides import apply_overrides, parse_override, set_path
from sim.input.validation import validate
from sim.schema import Scenario
from sim.schema.uncertain import find

#: What defines who the customers are and how long they are followed: a file baseline must agree with its
#: scenario on these, or every paired difference compares two populations instead of two policies.
POPULATION_KEYS = ("horizon_months", "segments", "acquisition", "existing_customers", "population_scale")
#: Never carried to a file baseline: its own labels, and the run settings it gets from the scenario anyway.
OWN_KEYS = ("name", "description", "baseline", "seed", "replications")
#: The levers: what a comparison with a baseline compares, so overrides of them stay with the scenario.
LEVER_KEYS = ("policy",)


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
    scenario = attach_base(validate(Scenario, doc), doc, path)
    check_baseline(scenario, doc, Path(path))
    shortfall = memory_shortfall(scenario, shards, transactions)
    if shortfall:
        raise InputError([doc.problem(("acquisition",), shortfall)])
    return scenario


def _baseline_path(scenario: Scenario, path: Path) -> Path:
    target = Path(scenario.baseline)
    return target if target.is_absolute() else path.parent / target


def input_files(scenario: Scenario, path: str | os.PathLike[str]) -> list[Path]:
    """The files ``scenario`` (read from ``path``) was made of: ``path`` and its baseline file, if any."""
    files = [Path(path)]
    if scenario.baseline not in ("auto", "none"):
        files.append(_baseline_path(scenario, Path(path)))
    return files


def check_baseline(scenario: Scenario, doc: Document, path: Path) -> None:
    """A baseline given as a path must be a file (relative to the scenario's ``path``)."""
    if scenario.baseline in ("auto", "none"):
        return
    target = _baseline_path(scenario, path)
    if not is_file(target):
        raise InputError([doc.problem(("baseline",), f"'auto', 'none' or the path of a scenario file; "
                                                      f"{target} does not exist")])


def resolve_baseline(scenario: Scenario, path: str | os.PathLike[str],
                     carried: Sequence[tuple[KeyPath, Any]] = ()) -> Scenario | None:
    """The scenario ``scenario`` (read from ``path``) is compared with, or None.

    ``auto``: the same scenario without its policy (None if it has none, there is nothing to compare);
    ``none``: None; a path (relative to the scenario file): that scenario, run with this scenario's seed
    and replications so that the comparison is paired.

    ``carried`` are the values given to ``scenario`` beyond its file (``--set``, a sweep's ``set:`` and swept
    values), as (key path, value). Those that are not levers go to a file baseline too, where it has the key
    (see :func:`carry_to_baseline`); then the two must describe the same customers over the same horizon
    (:data:`POPULATION_KEYS`), else the comparison is refused naming both files.
    """
    if scenario.baseline == "none":
        return None
    if scenario.baseline == "auto":
        return scenario.without_policy() if scenario.policy is not None else None
    target = _baseline_path(scenario, Path(path))
    other = load_scenario(target)
    kept = carry_to_baseline(other, carried)
    if kept:
        other = _load_with(target, kept)
    check_same_population(scenario, path, other, target)
    return other.model_copy(update={"seed": scenario.seed, "replications": scenario.replications})


def carry_to_baseline(baseline: Scenario, carried: Sequence[tuple[KeyPath, Any]]) -> list[tuple[KeyPath, Any]]:
    """The values of ``carried`` a file baseline takes: every key the baseline has (its defaults included)
    except the levers (``policy``), its own labels and run settings, and ``response`` when the baseline has no
    policy (it would change nothing there)."""
    values = baseline.model_dump()
    skipped = OWN_KEYS + LEVER_KEYS + (("response",) if baseline.policy is None else ())
    return [(key, value) for key, value in carried if key and key[0] not in skipped and find(values, key)[0]]


def _load_with(path: Path, carried: Sequence[tuple[KeyPath, Any]]) -> Scenario:
    """The baseline file with the carried values, through the same checks as a scenario file."""
    doc = read_yaml(path)
    for key, value in carried:
        set_path(doc.data, key, value)
        doc.overridden.add(key)
    try:
        scenario = attach_base(validate(Scenario, doc), doc, path)
    except InputError as exc:
        raise InputError([problem if problem.source != "--set" else
                          Problem(str(path), problem.path, f"with the value carried from the scenario: {problem.message}")
                          for problem in exc.problems]) from None
    shortfall = memory_shortfall(scenario)
    if shortfall:
        raise InputError([doc.problem(("acquisition",), shortfall)])
    return scenario


def check_same_population(scenario: Scenario, path: str | os.PathLike[str], baseline: Scenario,
                          baseline_path: str | os.PathLike[str], key: KeyPath = ("baseline",)) -> None:
    """Refuse a paired comparison of ``scenario`` (read from ``path``) with a ``baseline`` whose customers or
    horizon differ: the differences would measure the other population, not the policy.

    Raises
    ------
    InputError
        At the scenario's ``key`` (its ``baseline`` key), naming both files and the first keys that differ.
    """
    if baseline.horizon_months != scenario.horizon_months:
        doc = read_yaml(path)
        raise InputError([doc.problem(key, (
            f"the baseline {baseline_path} runs {baseline.horizon_months} months and this scenario "
            f"{scenario.horizon_months}; a paired comparison needs the same horizon"))])
    keys = list(POPULATION_KEYS)
    differ = population_differences(scenario.model_dump(include=set(keys)), baseline.model_dump(include=set(keys)))
    differ += _uncertain_population_differences(scenario, baseline)
    if differ:
        shown = "; ".join(f"{key}: {mine!r} here, {theirs!r} there" for key, mine, theirs in differ[:3])
        more = f" (and {len(differ) - 3} more)" if len(differ) > 3 else ""
        doc = read_yaml(path)
        raise InputError([doc.problem(key, (
            f"{path} and its baseline {baseline_path} simulate different customers ({shown}{more}); a paired "
            f"comparison needs the same segments, acquisition and horizon in both files (values given with "
            f"--set or a sweep's set: and parameters are carried to a file baseline, its policy aside)"))])


def _uncertain_population_differences(scenario: Scenario, baseline: Scenario) -> list[tuple[str, Any, Any]]:
    """Uncertain keys of the population (``{dist: ...}`` values) that the two do not share exactly."""
    def table(which: Scenario) -> dict[str, Any]:
        return {item.key: item.distribution.model_dump() for item in which.uncertain if item.path[0] in POPULATION_KEYS}

    mine, theirs = table(scenario), table(baseline)
    return [(key, mine.get(key, "a fixed value"), theirs.get(key, "a fixed value"))
            for key in sorted(set(mine) | set(theirs)) if mine.get(key) != theirs.get(key)]


def population_differences(mine: Any, theirs: Any, prefix: KeyPath = ()) -> list[tuple[str, Any, Any]]:
    """(dotted key, this value, that value) wherever two scenario dumps differ."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        found = []
        for key in list(mine) + [k for k in theirs if k not in mine]:
            if key not in mine or key not in theirs:
                found.append((dotted(prefix + (key,)), mine.get(key, "nothing"), theirs.get(key, "nothing")))
            else:
                found += population_differences(mine[key], theirs[key], prefix + (key,))
        return found
    if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        return [d for i, (a, b) in enumerate(zip(mine, theirs)) for d in population_differences(a, b, prefix + (i,))]
    if mine != theirs:
        if isinstance(mine, list) and isinstance(theirs, list):
            return [(dotted(prefix), f"{len(mine)} item(s)", f"{len(theirs)} item(s)")]
        return [(dotted(prefix), mine, theirs)]
    return []


def overrides_to_carry(overrides: Sequence[str]) -> list[tuple[KeyPath, Any]]:
    """``--set`` overrides as (key path, value), for :func:`resolve_baseline`."""
    return [parse_override(text) for text in overrides]
