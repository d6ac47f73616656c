"""Parameter sweeps (``docs/scenarios.md`` "Sweep files", ``docs/results.md``).

A sweep file names a scenario, the parameters to vary (dotted keys of the scenario, each a list of values or a
``{low, high}`` range) and a design (``grid``, ``random``, ``latin_hypercube``, ``sobol``). Every point is the
scenario with those values, validated through the same door as a scenario file. All points run with the
sweep's seed and replications, so replication *i* of every point faces the same customers (common random
numbers) and differences between points are paired.

Besides the design, a sweep runs one-at-a-time (OAT) points around the scenario's own values (each parameter
at its low and high end, the others as the scenario has them), the data of a tornado chart; a ``sobol`` design
also gets Sobol indices (:mod:`sim.experiments.sensitivity`).

The work is split into units (one replication of one distinct scenario: points that coincide and baselines
that points share run once) and batches of units, which run in this process, in a process pool or on a Dask
cluster. Each unit depends only on its scenario, seed and replication index, so the numbers are the same
whatever the executor and the number of workers.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from sim.engines.memory import memory_shortfall
from sim.input.documents import Document, is_file, read_yaml
from sim.input.errors import InputError, KeyPath, Problem, dotted
from sim.input.scenarios import check_baseline, resolve_baseline
from sim.input.validation import validate
from sim.output.files import atomic_write
from sim.output.layout import (
    SCENARIO_FILE,
    SWEEP_FILES,
    SWEEP_POINT_PATTERN,
    SWEEP_POINTS_FOLDER,
    remove_stale,
)
from sim.schema import Scenario
from sim.schema.base import Frozen, KeyPathError
from sim.schema.scenario import MAX_NAME_LENGTH

if TYPE_CHECKING:   # numpy is imported where it is used, so that `validate` stays light
    import numpy as np

DESIGNS = ("grid", "random", "latin_hypercube", "sobol")
#: Results of finished points: one Parquet file per point inside this folder, written once, atomically.
RESULTS = SWEEP_POINTS_FOLDER
MANIFEST, SENSITIVITY = SWEEP_FILES
PARTIAL = ".partial"

Scalar = bool | int | float | str


class Range(Frozen):
    """A continuous range of values: sampled by the random designs, ``levels`` evenly spaced points in a grid."""

    low: float
    high: float
    levels: Annotated[int, Field(ge=2, le=1000)] | None = None
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise KeyPathError(("high",), f"must be above low ({self.low})")
        if self.log and self.low <= 0:
            raise KeyPathError(("low",), "must be positive on a log scale")
        return self


class SweepBody(Frozen):
    """The ``sweep:`` block of a sweep file."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    scenario: str = Field(min_length=1)
    design: Literal["grid", "random", "latin_hypercube", "sobol"] = "grid"
    samples: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    replications: Annotated[int, Field(ge=1, le=100_000)] | None = None
    seed: Annotated[int, Field(ge=0, lt=2**63)] | None = None
    baseline: str | None = None
    metric: str | None = None
    oat: bool = True
    set: dict[str, Any] = Field(default_factory=dict)   # fixed values for every point
    parameters: dict[str, Annotated[list[Scalar], Field(min_length=1)] | Range] = Field(min_length=1)

    @model_validator(mode="after")
    def _design_needs(self) -> SweepBody:
        for key, spec in self.parameters.items():
            if isinstance(spec, Range) and self.design == "grid" and spec.levels is None:
                raise KeyPathError(("parameters", key), "a range in a grid design needs `levels` (how many "
                                                        "evenly spaced values), or give a list of values")
            if isinstance(spec, Range) and self.design != "grid" and spec.levels is not None:
                raise KeyPathError(("parameters", key, "levels"), f"only a grid design uses levels; the "
                                                                  f"{self.design} design samples the range")
        if self.design != "grid" and self.samples is None:
            raise KeyPathError(("samples",), f"required by the {self.design} design")
        if self.design == "grid" and self.samples is not None:
            raise KeyPathError(("samples",), "a grid design runs every combination; samples is for the "
                                             "random, latin_hypercube and sobol designs")
        if self.design == "sobol" and self.samples & (self.samples - 1):
            raise KeyPathError(("samples",), f"a sobol design needs a power of two (Sobol' sequences are "
                                             f"balanced only then); got {self.samples}")
        return self


class SweepFile(Frozen):
    sweep: SweepBody


@dataclass(frozen=True)
class Parameter:
    """One swept parameter: a dotted key of the scenario and the values it takes."""

    key: str
    path: KeyPath
    values: tuple[Scalar, ...] | None       # a list of values, or
    low: float | None = None                # a range
    high: float | None = None
    levels: int | None = None
    log: bool = False
    integer: bool = False                   # the scenario field holds whole numbers: values are rounded
    center: Any = None                      # the scenario's own value

    def at(self, u: float) -> Scalar:
        """The value at quantile ``u`` in [0, 1) of the parameter's range (or list, for a list)."""
        if self.values is not None:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        return self._typed(value)

    def grid(self) -> tuple[Scalar, ...]:
        import numpy as np

        if self.values is not None:
            return self.values
        positions = np.linspace(0.0, 1.0, self.levels)
        if self.log:
            return tuple(self._typed(v) for v in np.geomspace(self.low, self.high, self.levels))
        return tuple(self._typed(self.low + p * (self.high - self.low)) for p in positions)

    def ends(self) -> tuple[Scalar, ...]:
        """The values of the one-at-a-time points: the range's ends, or every listed value."""
        return self.values if self.values is not None else (self._typed(self.low), self._typed(self.high))

    def _typed(self, value: float) -> Scalar:
        return round(value) if self.integer else float(value)


@dataclass
class SweepPlan:
    """Everything a sweep will simulate, validated: points, distinct scenarios, and who needs which."""

    source: str
    body: SweepBody
    scenario_path: Path
    parameters: list[Parameter]
    points: list[dict[str, Scalar]]
    scenarios: list[Scenario] = field(default_factory=list)   # distinct scenarios to simulate
    point_arm: list[int] = field(default_factory=list)        # index into scenarios of each point
    point_base: list[int | None] = field(default_factory=list)
    oat: list[dict[str, Any]] = field(default_factory=list)   # {"parameter", "value", "arm", "base"}
    unit_sample: np.ndarray | None = None                     # the design's unit-cube sample (sobol)
    base: Scenario | None = None                              # the scenario with the sweep's fixed values
    metric: str = "profit"

    @property
    def replications(self) -> int:
        return self.scenarios[0].replications

    @property
    def has_baseline(self) -> bool:
        return any(b is not None for b in self.point_base)

    def fingerprint(self, engine: str = "fast") -> str:
        """What must be equal for stored results to be reused by ``--resume``."""
        try:
            version = metadata.version("loyalty-sim")
        except metadata.PackageNotFoundError:
            version = "source"
        digest = hashlib.sha256(f"{version}|{engine}|{self.metric}".encode())
        for scenario in self.scenarios:
            digest.update(scenario.model_dump_json().encode())
        digest.update(json.dumps([self.point_arm, self.point_base, self.oat], default=str).encode())
        return digest.hexdigest()

    def manifest(self, finished: set[int], engine: str) -> dict[str, Any]:
        body = self.body
        return {
            "name": body.name,
            "scenario": str(self.scenario_path),
            "design": body.design,
            "samples": body.samples,
            "replications": self.replications,
            "seed": self.scenarios[0].seed,
            "baseline": self.has_baseline,
            "metric": self.metric,
            "engine": engine,
            "set": dict(body.set),
            "parameters": {p.key: ({"values": list(p.values)} if p.values is not None else
                                   {"low": p.low, "high": p.high, "levels": p.levels, "log": p.log,
                                    "integer": p.integer}) for p in self.parameters},
            "points": [{"point": i, "values": values, "finished": i in finished}
                       for i, values in enumerate(self.points)],
            "finished_points": len(finished),
            "complete": len(finished) == len(self.points),
            "fingerprint": self.fingerprint(engine),
        }


# --------------------------------------------------------------------------------------------------- planning


def plan_sweep(path: str | os.PathLike[str], *, replications: int | None = None,
               seed: int | None = None) -> SweepPlan:
    """Read and validate a sweep file and every scenario it implies, before anything runs.

    Raises
    ------
    InputError
        Naming the sweep file, the key (``sweep.parameters.policy.points.reward_threshold``) and its line,
        or the scenario file when the scenario itself is at fault.
    """
    doc = read_yaml(path)
    if "sweep" not in doc.data:
        raise InputError([doc.problem((), "not a sweep file (no top-level `sweep:` key); "
                                          "use `loyalty-sim run` for a scenario")])
    body: SweepBody = validate(SweepFile, doc).sweep
    scenario_path = Path(body.scenario)
    if not scenario_path.is_absolute():
        scenario_path = Path(path).parent / scenario_path
    if not is_file(scenario_path):
        raise InputError([doc.problem(("sweep", "scenario"), f"no such scenario file: {scenario_path}")])
    scenario_doc = read_yaml(scenario_path)
    if "sweep" in scenario_doc.data:
        raise InputError([doc.problem(("sweep", "scenario"), f"{scenario_path} is a sweep file, not a scenario")])
    settings: list[Setting] = []
    for name, given in (("replications", replications), ("seed", seed), ("baseline", None)):
        value = given if given is not None else getattr(body, name)
        if value is not None:
            settings.append(Setting((name,), value, ("sweep", name), name))
    plain = _scenario_with(scenario_doc, scenario_path, doc, None, settings)
    for key, value in body.set.items():
        fixed_path = _key_path(key, plain.model_dump(), doc, ("sweep", "set", key))[0]
        settings.append(Setting(fixed_path, value, ("sweep", "set", key), key))
    base = _scenario_with(scenario_doc, scenario_path, doc, "sweep.set", settings)
    base_values = base.model_dump()
    parameters = [_parameter(key, spec, base_values, doc) for key, spec in body.parameters.items()]
    unit_sample = None
    if body.design == "grid":
        points = [dict(zip(body.parameters, combo)) for combo in itertools.product(*(p.grid() for p in parameters))]
    else:
        unit_sample = _unit_sample(body.design, len(parameters), body.samples, base.seed)
        points = [{p.key: p.at(u) for p, u in zip(parameters, row)} for row in unit_sample]
    plan = SweepPlan(str(path), body, scenario_path, parameters, points, unit_sample=unit_sample, base=base)
    plan.metric = _metric(body, doc, base)
    distinct: dict[str, int] = {}

    def index_of(scenario: Scenario) -> int:
        key = scenario.model_dump_json()
        if key not in distinct:
            distinct[key] = len(plan.scenarios)
            plan.scenarios.append(scenario)
        return distinct[key]

    def arms(values: dict[str, Scalar], label: str) -> tuple[int, int | None]:
        point = settings + [Setting(p.path, values[p.key], ("sweep", "parameters", p.key), p.key)
                            for p in parameters if p.key in values]
        scenario = _scenario_with(scenario_doc, scenario_path, doc, label, point)
        baseline = _baseline_of(scenario, scenario_path, doc, label, [(s.path, s.value) for s in point])
        return index_of(scenario), None if baseline is None else index_of(baseline)

    for number, values in enumerate(points):
        arm, base_index = arms(values, f"point {number}")
        plan.point_arm.append(arm)
        plan.point_base.append(base_index)
    if body.oat:
        arm, base_index = arms({}, "the scenario's own values")
        plan.oat.append({"parameter": None, "value": None, "arm": arm, "base": base_index})
        for parameter in parameters:
            for value in parameter.ends():
                arm, base_index = arms({parameter.key: value}, f"one-at-a-time {parameter.key}={value!r}")
                plan.oat.append({"parameter": parameter.key, "value": value, "arm": arm, "base": base_index})
    return plan


@dataclass(frozen=True)
class Setting:
    """A value the sweep puts into the scenario, and the sweep-file key to blame if it does not fit."""

    path: KeyPath
    value: Any
    where: KeyPath
    key: str


def _scenario_with(scenario_doc: Document, scenario_path: Path, sweep_doc: Document, label: str | None,
                   settings: Sequence[Setting]) -> Scenario:
    """The scenario with the sweep's settings (fixed values, a point's values), through the scenario door."""
    doc = Document(scenario_doc.source, copy.deepcopy(scenario_doc.data), scenario_doc.lines)
    for setting in settings:
        _assign(doc.data, setting.path, setting.value)
        doc.overridden.add(setting.path)
    try:
        scenario = validate(Scenario, doc)
        check_baseline(scenario, doc, scenario_path)
        shortfall = memory_shortfall(scenario)
        if shortfall:
            raise InputError([doc.problem(("acquisition",), shortfall)])
    except InputError as exc:
        raise InputError([_locate(problem, settings, label, sweep_doc) for problem in exc.problems]) from None
    return scenario


def _locate(problem: Problem, settings: Sequence[Setting], label: str | None, sweep_doc: Document) -> Problem:
    """A problem caused by a value the sweep sets is the sweep file's, at that key's line."""
    if problem.source != "--set":
        return problem
    for setting in reversed(settings):       # a point's values first
        short = min(len(setting.path), len(problem.path))
        if setting.path[:short] == problem.path[:short]:
            where = f"{label}: " if label else ""
            return sweep_doc.problem(setting.where, f"{where}{setting.key}={setting.value!r} makes the scenario "
                                                    f"invalid: {dotted(problem.path)}: {problem.message}")
    return problem


def _assign(data: Any, path: KeyPath, value: Any) -> None:
    """Set ``path`` (checked against the scenario by :func:`_parameter`); blocks the file leaves to their
    defaults are created."""
    target = data
    for key in path[:-1]:
        target = target[key] if isinstance(target, list) else target.setdefault(key, {})
    target[path[-1]] = value


def _parameter(key: str, spec: list[Scalar] | Range, base_values: dict[str, Any], doc: Document) -> Parameter:
    """Check that ``key`` addresses a value of the scenario, and type the parameter by that value."""
    where = ("sweep", "parameters", key)
    path, node = _key_path(key, base_values, doc, where)
    if isinstance(spec, Range):
        integer = isinstance(node, int) and not isinstance(node, bool)
        if integer and math.ceil(spec.low) > math.floor(spec.high):
            raise InputError([doc.problem(where, f"{key} holds whole numbers and [{spec.low}, {spec.high}] "
                                                 f"contains none")])
        return Parameter(key, path, None, spec.low, spec.high, spec.levels, spec.log, integer, node)
    values = common_type(spec)
    if len(set(map(repr, values))) != len(values):
        raise InputError([doc.problem(where, "lists a value twice")])
    return Parameter(key, path, values, center=node)


def common_type(values: Sequence[Scalar]) -> tuple[Scalar, ...]:
    """Listed values in one type, so that the parameter's column has one type in every point's file: numbers
    are all floats when one of them is (``[0, 0.25]`` is ``[0.0, 0.25]``); whole numbers, booleans and strings
    stay as they are."""
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) == len(values) and any(isinstance(v, float) for v in numbers):
        return tuple(float(v) for v in values)
    return tuple(values)


def _key_path(key: str, values: dict[str, Any], doc: Document, where: KeyPath) -> tuple[KeyPath, Any]:
    """The path of dotted ``key`` in the scenario's (validated, defaults filled in) ``values``, and the value
    there; an unknown key, or one that names a block rather than a value, is the sweep file's error."""
    import difflib

    parts = key.split(".")
    if not all(parts):
        raise InputError([doc.problem(where, "empty key in the dotted path")])
    path: KeyPath = tuple(int(p) if p.isdigit() else p for p in parts)
    node: Any = values
    for depth, part in enumerate(path):
        here = dotted(path[:depth]) or "the top level"
        if isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            if isinstance(node, list):
                message = f"{here} is a list of {len(node)} item(s); no index {part!r}"
            elif isinstance(node, dict):
                close = difflib.get_close_matches(str(part), [str(k) for k in node], n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else \
                    f" (it has: {', '.join(map(str, node))})" if node else ""
                message = f"unknown key: the scenario has no '{part}' under {here}{hint}"
            elif node is None:
                message = f"unknown key: the scenario has no {here} block to set '{part}' in"
            else:
                message = f"{here} is a value, not a block"
            raise InputError([doc.problem(where, message)])
    if isinstance(node, (dict, list)):
        raise InputError([doc.problem(where, f"addresses a block ({type(node).__name__}), not a value")])
    return path, node


def _unit_sample(design: str, dimensions: int, samples: int, seed: int) -> np.ndarray:
    """Points in the unit cube [0, 1)^d: scipy.stats.qmc for the quasi-random designs, SALib's Saltelli
    scheme (on scipy's scrambled Sobol' sequence) for ``sobol``, so that its indices can be estimated."""
    import numpy as np
    from scipy.stats import qmc

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E1EC7]))
    if design == "random":
        return rng.random((samples, dimensions))
    if design == "latin_hypercube":
        return qmc.LatinHypercube(d=dimensions, rng=rng).random(samples)
    from sim.experiments.sensitivity import sobol_sample

    return sobol_sample(dimensions, samples, seed)


def _metric(body: SweepBody, doc: Document, scenario: Scenario) -> str:
    from sim.accounting.metrics import METRICS, VS_BASELINE_EXTRA

    has_baseline = scenario.baseline != "none" and (scenario.baseline != "auto" or scenario.policy is not None)
    if body.metric is None:
        return "vs_baseline.profit" if has_baseline else "profit"
    names = list(METRICS) + ([f"vs_baseline.{m}" for m in METRICS + VS_BASELINE_EXTRA] if has_baseline else [])
    if body.metric not in names:
        import difflib

        close = difflib.get_close_matches(body.metric, names, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise InputError([doc.problem(("sweep", "metric"), f"unknown metric '{body.metric}'{hint}"
                                      + ("" if has_baseline else "; vs_baseline metrics need a baseline"))])
    return body.metric


def _baseline_of(scenario: Scenario, scenario_path: Path, doc: Document, label: str,
                 carried: list[tuple[KeyPath, Any]]) -> Scenario | None:
    """The point's baseline; a file baseline gets the sweep's fixed and swept values, levers aside
    (:func:`sim.input.scenarios.carry_to_baseline`)."""
    try:
        return resolve_baseline(scenario, scenario_path, carried)
    except InputError as exc:
        raise InputError([Problem(doc.source, ("sweep",), f"{label}: the baseline: {p}") for p in exc.problems]
                         ) from None


# --------------------------------------------------------------------------------------------------- running


def run_units(scenarios: dict[int, Scenario], units: Sequence[tuple[int, int]], engine: str = "fast"):
    """Simulate a batch of units (scenario index, replication): the task every executor runs.

    Returns ``[(index, ReplicationResult)]`` trimmed to what a sweep keeps (totals and monthly profit)."""
    from sim.accounting.tables import ReplicationResult
    from sim.experiments.replications import run_replication

    out = []
    for index, replication in units:
        rep = run_replication(scenarios[index], replication, engine=engine)
        out.append((index, ReplicationResult(rep.replication, rep.totals, {"profit": rep.monthly["profit"]},
                                             {}, rep.events)))
    return out


def batches(units: Sequence[tuple[int, int]], workers: int) -> list[list[tuple[int, int]]]:
    """Consecutive units grouped so that there are about eight tasks per worker (tiny units are not
    dominated by the cost of shipping a task), yet a point's work is not held back by a huge batch."""
    size = max(1, min(64, len(units) // (8 * max(workers, 1))))
    return [list(units[i:i + size]) for i in range(0, len(units), size)]


@dataclass
class SweepProgress:
    """Callbacks of :func:`run_sweep`; each is optional."""

    on_start: Callable[[int, int], None] | None = None          # (units to run, units already done)
    on_units: Callable[[int], None] | None = None               # units just finished
    on_point: Callable[[int], None] | None = None               # a point's results were written
    on_discarded: Callable[[str], None] | None = None           # stored replications not reused, and why


def run_sweep(plan: SweepPlan, out: str | os.PathLike[str], *, workers: int = 1, scheduler: str | None = None,
              resume: bool = False, engine: str = "fast", progress: SweepProgress | None = None) -> dict:
    """Run every point of ``plan`` not finished yet, writing each point's rows as soon as it is complete.

    ``out/scenario.yaml`` is the scenario every point starts from (the sweep's ``set`` values, seed and
    replications applied); ``out/results.parquet/`` holds one Parquet file per finished point (never
    rewritten); ``out/sweep.json``
    lists the points and which are finished; ``out/.partial/`` keeps finished replications of unfinished
    points, so a killed sweep loses nothing finished and ``resume`` runs only what is missing. Once every
    point is finished, ``out/sensitivity.json`` is written. Returns the final manifest.
    """
    progress = progress or SweepProgress()
    from sim.experiments.executors import connect

    client = connect(scheduler) if scheduler is not None else None   # before anything on disk is touched
    try:
        return _run(plan, Path(out), workers, client, resume, engine, progress)
    finally:
        if client is not None:
            client.close()


def _run(plan: SweepPlan, out: Path, workers: int, client, resume: bool, engine: str,
         progress: SweepProgress) -> dict:
    from sim.experiments.checkpoint import Checkpoint

    out.mkdir(parents=True, exist_ok=True)
    key = plan.fingerprint(engine)
    manifest_path = out / MANIFEST
    results_dir = out / RESULTS
    if resume and manifest_path.is_file():
        previous = _read_json(manifest_path)
        if previous.get("fingerprint") != key:
            raise InputError([Problem(str(manifest_path), (), (
                "holds the results of a different sweep (the sweep file, its scenario or the program changed "
                "since); run without --resume to start over, or choose another --out"))])
        if previous.get("complete") and (out / SENSITIVITY).is_file():
            return previous
        kept = [manifest_path, out / SENSITIVITY, *results_dir.glob(SWEEP_POINT_PATTERN)]
    else:
        kept = []
    if plan.base is not None:
        from sim.output.run_files import scenario_yaml

        text = scenario_yaml(plan.base, f"{plan.scenario_path} with the sweep's fixed values ({plan.source})")
        atomic_write(out / SCENARIO_FILE, lambda p: p.write_text(text))
        kept.append(out / SCENARIO_FILE)
    remove_stale(out, kept)   # an earlier sweep's points (unless resumed), a run's or a comparison's files
    results_dir.mkdir(exist_ok=True)
    finished = {i for i in range(len(plan.points)) if _point_file(results_dir, i).is_file()}
    checkpoint = Checkpoint(out, key)
    stored = checkpoint.start(resume=resume)
    if checkpoint.discarded and progress.on_discarded:
        from sim.experiments.checkpoint import discarded_message

        progress.on_discarded(discarded_message(checkpoint.discarded))
    _write_json(manifest_path, plan.manifest(finished, engine))

    done: dict[tuple[int, int], Any] = dict(stored)
    needed_by: dict[int, list[int]] = {}
    for number, (arm, base) in enumerate(zip(plan.point_arm, plan.point_base)):
        if number in finished:
            continue
        for index in (arm,) if base is None else (base, arm):
            needed_by.setdefault(index, []).append(number)
    needed = list(needed_by)
    for entry in plan.oat:
        for index in (entry["arm"], entry["base"]):
            if index is not None and index not in needed_by:
                needed_by[index] = []
                needed.append(index)
    units = [(index, r) for index in needed for r in range(plan.replications) if (index, r) not in done]
    if progress.on_start:
        progress.on_start(len(units), len(needed) * plan.replications - len(units))

    def complete(index: int) -> bool:
        return all((index, r) in done for r in range(plan.replications))

    def write_ready(indices: set[int]) -> None:
        for number in sorted({n for i in indices for n in needed_by.get(i, ())}):
            if number in finished:
                continue
            arm, base = plan.point_arm[number], plan.point_base[number]
            if complete(arm) and (base is None or complete(base)):
                _write_point(results_dir, plan, number, done)
                finished.add(number)
                if progress.on_point:
                    progress.on_point(number)

    write_ready(set(needed))          # points whose replications were all stored by an interrupted sweep
    tasks = [({i: plan.scenarios[i] for i in {u[0] for u in batch}}, batch, engine)
             for batch in batches(units, workers if client is None else 2 * workers)]
    last_manifest = 0.0
    from sim.experiments.executors import execute

    for _, result in execute(run_units, tasks, workers=workers, client=client):
        for index, rep in result:
            done[index, rep.replication] = rep
            checkpoint.save(index, rep)
        if progress.on_units:
            progress.on_units(len(result))
        write_ready({index for index, _ in result})
        if time.monotonic() - last_manifest > 1.0:
            _write_json(manifest_path, plan.manifest(finished, engine))
            last_manifest = time.monotonic()
    from sim.experiments.sensitivity import analyse

    _write_json(out / SENSITIVITY, analyse(plan, done, out))
    manifest = plan.manifest(finished, engine)
    _write_json(manifest_path, manifest)
    checkpoint.finish()
    return manifest


def point_rows(plan: SweepPlan, number: int, done: dict[tuple[int, int], Any]):
    """The rows of point ``number``: one per replication, its parameter values, metrics and vs_baseline."""
    return arm_rows(plan, plan.point_arm[number], plan.point_base[number], done,
                    {"point": number} | plan.points[number])


def arm_rows(plan: SweepPlan, arm: int, base: int | None, done: dict[tuple[int, int], Any],
             labels: dict[str, Any]):
    import pandas as pd

    from sim.accounting.derived import payback_month, profit_net_of_liability
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
            cost = mine.totals["program_cost"]
            row["vs_baseline.roi"] = float(incremental / cost) if cost > 0 else math.nan
            row["vs_baseline.payback_month"] = payback_month(mine.monthly["profit"] - theirs.monthly["profit"])
        rows.append(row)
    return pd.DataFrame(rows)


def _point_file(results_dir: Path, number: int) -> Path:
    return results_dir / f"point-{number:07d}.parquet"


def _write_point(results_dir: Path, plan: SweepPlan, number: int, done: dict) -> None:
    frame = point_rows(plan, number, done)
    atomic_write(_point_file(results_dir, number), lambda p: frame.to_parquet(p, index=False))


def read_results(out: str | os.PathLike[str]):
    """All rows of a sweep's finished points (``results.parquet`` is a folder of one file per point)."""
    import pandas as pd

    folder = Path(out) / RESULTS
    files = sorted(folder.glob("point-*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError([Problem(str(path), (), f"cannot be read: {exc}")]) from None


def _write_json(path: Path, content: dict) -> None:
    text = json.dumps(_plain(content), indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda p: p.write_text(text))


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python numbers, undefined numbers (NaN, infinities) as null."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):   # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
