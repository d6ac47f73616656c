"""Planning a sweep: every point of the design as a validated scenario, before anything runs.

A point is the sweep's scenario with the sweep's fixed values (``set:``) and the point's parameter values,
validated through the same door as a scenario file; a problem names the sweep file's line and the point.
Points that coincide and baselines that points share are found here, so that each runs once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.engines.memory import memory_shortfall
from sim.input.customers import attach_base
from sim.input.documents import Document, is_file, read_yaml
from sim.input.errors import InputError, KeyPath, Problem, dotted
from sim.input.scenarios import check_baseline, resolve_baseline
from sim.input.validation import validate
from sim.output.layout import (
    SWEEP_FILES,
    SWEEP_POINTS_FOLDER,
)
from sim.schema import Scenario

if TYPE_CHECKING:   # numpy is imported where it is used, so that `validate` stays light
    import numpy as np

from sim.experiments import designs
from sim.schema.sweep import Range, Scalar, SweepBody, SweepFile

#: Results of finished points: one Parquet file per point inside this folder, written once, atomically.
RESULTS = SWEEP_POINTS_FOLDER
MANIFEST, SENSITIVITY = SWEEP_FILES
PARTIAL = ".partial"

#: The most points (design and one-at-a-time) a sweep may have: each is validated before anything runs
#: (about half a millisecond a point), so that planning the largest sweep takes seconds, not minutes.
MAX_POINTS = 25_000
#: The most replications a sweep may simulate in all (points x replications, baselines aside).
MAX_UNITS = 10_000_000
#: Scenario keys every point must share (common random numbers, one row per replication): the sweep's own
#: keys set them, never a swept or fixed value.
SWEEP_OWN_KEYS = {"replications": "replications", "seed": "seed"}


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural when it is not 1: "1 point", "25 points", "1 lever setting"."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


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
            "levers": bool(body.levers),                  # the parameters are lever settings ...
            "uncertainties": list(body.uncertainties),     # ... judged over these draws
            "points": [{"point": i, "values": values, "finished": i in finished}
                       for i, values in enumerate(self.points)],
            "finished_points": len(finished),
            "complete": len(finished) == len(self.points),
            "fingerprint": self.fingerprint(engine),
        }


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
    _lines_of_levers(doc)
    body: SweepBody = validate(SweepFile, doc).sweep
    points_count = check_size(body, doc)
    scenario_path = Path(body.scenario)
    if not scenario_path.is_absolute():
        scenario_path = Path(path).parent / scenario_path
    if not is_file(scenario_path):
        raise InputError([doc.problem(("sweep", "scenario"), f"no such scenario file: {scenario_path}")])
    scenario_doc = read_yaml(scenario_path)
    if "sweep" in scenario_doc.data:
        raise InputError([doc.problem(("sweep", "scenario"), f"{scenario_path} is a sweep file, not a scenario")])
    _refuse_own_keys(body, doc)
    settings: list[Setting] = []
    for name, given in (("replications", replications), ("seed", seed), ("baseline", None)):
        value = given if given is not None else getattr(body, name)
        if value is not None:
            settings.append(Setting((name,), value, ("sweep", name), name))
    plain = _scenario_with(scenario_doc, scenario_path, doc, None, settings)
    _check_units(points_count, plain.replications, doc, "--replications" if replications is not None else None)
    for key, value in body.set.items():
        fixed_path = _key_path(key, plain.model_dump(), doc, ("sweep", "set", key))[0]
        settings.append(Setting(fixed_path, value, ("sweep", "set", key), key))
    for key, spec in body.uncertainties.items():
        uncertain_path = _key_path(key, plain.model_dump(), doc, ("sweep", "uncertainties", key))[0]
        law = {"dist": "uniform", "low": spec.low, "high": spec.high} if isinstance(spec, Range) else spec
        settings.append(Setting(uncertain_path, law, ("sweep", "uncertainties", key), key))
    base = _scenario_with(scenario_doc, scenario_path, doc, "sweep.set", settings)
    base_values = base.model_dump()
    parameters = [_parameter(key, spec, base_values, doc) for key, spec in body.parameters.items()]
    unit_sample = None
    if body.design == "grid":
        points = [dict(zip(body.parameters, combo)) for combo in itertools.product(*(p.grid() for p in parameters))]
    else:
        unit_sample = designs.unit_sample(body.design, len(parameters), body.samples, base.seed)
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


def _lines_of_levers(doc: Document) -> None:
    """A sweep's ``levers`` are its parameters: problems found in them are told at the levers' lines."""
    prefix = ("sweep", "levers")
    for path, line in list(doc.lines.items()):
        if path[:2] == prefix:
            doc.lines.setdefault(("sweep", "parameters") + path[2:], line)


def _refuse_own_keys(body: SweepBody, doc: Document) -> None:
    """Replications and seed are the sweep's own keys, and the baseline is one for every point: a point
    with other replications would get one row per replication of the first, and points with other seeds
    would not face the same customers."""
    for block, keys in (("parameters", body.parameters), ("set", body.set)):
        for key in keys:
            if key in SWEEP_OWN_KEYS:
                verb = "swept" if block == "parameters" else "set here"
                raise InputError([doc.problem(("sweep", block, key), f"cannot be {verb}: every point shares the "
                                              f"sweep's `{key}:` (common random numbers); set `sweep.{key}` "
                                              f"instead")])
            if key == "baseline" and block == "parameters":
                raise InputError([doc.problem(("sweep", block, key), "cannot be swept: every point is compared "
                                              "with the same kind of baseline; set `sweep.baseline` instead, "
                                              "or run one sweep per baseline")])


def design_points(body: SweepBody) -> tuple[int, int, KeyPath]:
    """How many points the design has and how many one-at-a-time points come with it, counted without
    building them, and the key that sets the design's size."""
    sizes = {key: len(spec) if isinstance(spec, list) else spec.levels or 2 for key, spec in body.parameters.items()}
    oat = 1 + sum(len(s) if isinstance(s, list) else 2 for s in body.parameters.values()) if body.oat else 0
    if body.design == "grid":
        largest = max(sizes, key=sizes.__getitem__)
        where: KeyPath = ("sweep", "parameters", largest) + (() if isinstance(body.parameters[largest], list)
                                                              else ("levels",))
        return math.prod(sizes.values()), oat, where
    samples = body.samples or 0
    count = samples * (len(body.parameters) + 2) if body.design == "sobol" else samples
    return count, oat, ("sweep", "samples")


def check_size(body: SweepBody, doc: Document) -> int:
    """The number of points (design and one-at-a-time), refused beyond :data:`MAX_POINTS` before a point
    is built."""
    count, oat, where = design_points(body)
    if count + oat > MAX_POINTS:
        how = (" x ".join(str(len(s) if isinstance(s, list) else s.levels) for s in body.parameters.values())
               if body.design == "grid" else
               f"{body.samples} samples x ({len(body.parameters)} parameters + 2)" if body.design == "sobol"
               else f"{body.samples} samples")
        raise InputError([doc.problem(where, f"the {body.design} design has {count:,} points ({how}) and "
                                             f"{oat:,} one-at-a-time points; a sweep may have at most "
                                             f"{MAX_POINTS:,} points")])
    return count + oat


def _check_units(points: int, replications: int, doc: Document, option: str | None) -> None:
    """Points x replications, refused beyond :data:`MAX_UNITS` replications in all."""
    units = points * replications
    if units > MAX_UNITS:
        message = (f"{points:,} points x {replications:,} replications are {units:,} replications to simulate; "
                   f"a sweep may simulate at most {MAX_UNITS:,}")
        problem = (Problem(option, (), message) if option else doc.problem(("sweep", "replications"), message))
        raise InputError([problem])


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
    doc = Document(scenario_doc.source, dict(scenario_doc.data), scenario_doc.lines, sources=scenario_doc.sources)
    copied = {id(doc.data)}
    for setting in settings:
        _assign(doc.data, setting.path, setting.value, copied)
        doc.overridden.add(setting.path)
    try:
        scenario = attach_base(validate(Scenario, doc), doc, scenario_path)
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


def _assign(data: dict[str, Any], path: KeyPath, value: Any, copied: set[int]) -> None:
    """Set ``path`` (checked against the scenario by :func:`_parameter`); blocks the file leaves to their
    defaults are created.

    Every mapping or list on the way is copied the first time it is written through (``copied`` holds the
    ids of those that are already this point's own), so the scenario document and the sweep's values are
    never changed, and a point costs a few small copies instead of a deep copy of the whole scenario.
    """
    target: Any = data
    for key in path[:-1]:
        child = target[key] if isinstance(target, list) else target.setdefault(key, {})
        if isinstance(child, (dict, list)) and id(child) not in copied:
            child = dict(child) if isinstance(child, dict) else list(child)
            copied.add(id(child))
            target[key] = child
        target = child
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
