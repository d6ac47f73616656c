"""The one door for input: YAML files become validated, frozen scenario models here and nowhere else.

Every error names the file, the key path (``policy.points.reward_threshold``) and, where the YAML gives
it, the line. YAML is read with PyYAML's safe composer; tags other than the plain YAML types (``!!python/…``
above all) are refused, and so are duplicate keys, which PyYAML would otherwise silently overwrite.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sim.scenario import Scenario
from sim.scenario.base import KeyPathError

KeyPath = tuple[str | int, ...]

_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}
_MAX_NODES = 200_000  # a scenario has hundreds of nodes; far more means an alias bomb
_MAX_BYTES = 5_000_000
#: Peak bytes per customer of the engine with a program, which holds the whole population: its state
#: (sim.population, 85 + 144 bytes) and round temporaries. Measured with every lever on: 416 bytes more per
#: customer from 0.38M to 1.53M customers. The engine without a program runs in flat memory (~200 MiB) but
#: for its queue of referred customers.
PROGRAM_BYTES_PER_CUSTOMER = 420
#: Peak bytes per purchase of the transaction log (its parts, the sorted table, the Parquet file's
#: conversion): measured 115 without a program and 132 with one, as above.
TRANSACTION_BYTES_PER_PURCHASE = 135
#: A referred customer waiting in the queue of the engine without a program (sim.lifetimes.ARRIVAL_COLUMNS).
QUEUED_BYTES_PER_CUSTOMER = 80
_MEMORY_SHARE = 0.7


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where and what."""

    source: str
    path: KeyPath
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        key = dotted(self.path)
        return f"{where}: {key}: {self.message}" if key else f"{where}: {self.message}"


class InputError(Exception):
    """Bad input: the CLI prints the problems and exits with status 2."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Document:
    """A YAML mapping read into plain Python values, with the line of every key."""

    source: str
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)
    overridden: set[KeyPath] = field(default_factory=set)

    def line_of(self, path: KeyPath) -> int | None:
        """Line of the deepest key of ``path`` that the file has (None for --set keys)."""
        for depth in range(len(path), 0, -1):
            prefix = path[:depth]
            if prefix in self.overridden:
                return None
            if prefix in self.lines:
                return self.lines[prefix]
        return None

    def problem(self, path: KeyPath, message: str) -> Problem:
        source = "--set" if any(path[:d] in self.overridden for d in range(1, len(path) + 1)) else self.source
        return Problem(source, path, message, None if source == "--set" else self.line_of(path))


def dotted(path: Iterable[str | int]) -> str:
    return ".".join(str(k) for k in path)


def read_yaml(path: str | os.PathLike[str]) -> Document:
    """Read a YAML file whose top level is a mapping, refusing what the safe loader would let slip."""
    source = str(path)
    text = _read_text(Path(path), source)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise InputError([Problem(source, (), "the YAML is nested too deeply")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError([Problem(source, (), f"not valid YAML: {exc.problem or exc}", line)]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(source, (), f"not valid YAML: {exc}")]) from None
    if node is None:
        raise InputError([Problem(source, (), "the file holds no YAML document (it is empty)")])
    if not isinstance(node, yaml.MappingNode):
        raise InputError([Problem(source, (), "the top level must be a mapping of keys to values",
                                  node.start_mark.line + 1)])
    doc = Document(source, {})
    try:
        doc.data = _to_python(node, (), doc, [0], set())
    except RecursionError:
        raise InputError([Problem(source, (), "the YAML is nested too deeply")]) from None
    return doc


def _read_text(path: Path, source: str) -> str:
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise InputError([Problem(source, (), "is a directory, not a YAML file")])
        if size > _MAX_BYTES:
            raise InputError([Problem(source, (), f"is {size:,} bytes; a scenario file is far smaller")])
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError([Problem(source, (), "no such file")]) from None
    except PermissionError:
        raise InputError([Problem(source, (), "cannot be read (permission denied)")]) from None
    if b"\x00" in raw:
        raise InputError([Problem(source, (), "is a binary file, not YAML text")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError([Problem(source, (), f"is not UTF-8 text (byte {exc.start})")]) from None


def _to_python(node: yaml.Node, path: KeyPath, doc: Document, count: list[int], open_nodes: set[int]) -> Any:
    """Plain values from a composed node, recording key lines; ``open_nodes`` are the ones being built."""
    count[0] += 1
    line = node.start_mark.line + 1
    if count[0] > _MAX_NODES:
        top = path[:1]
        raise InputError([Problem(doc.source, top, "the YAML expands to too many values (aliases?)",
                                  doc.lines.get(top, line))])
    if id(node) in open_nodes:
        raise InputError([Problem(doc.source, path, "an alias refers to the value that contains it", line)])
    if node.tag not in _PLAIN_TAGS:
        what = "python tags are refused" if "python" in node.tag else "only plain YAML values are accepted"
        raise InputError([Problem(doc.source, path, f"tag {node.tag!r}: {what}", line)])
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        open_nodes.add(id(node))
        try:
            return _collection(node, path, doc, count, open_nodes)
        finally:
            open_nodes.discard(id(node))
    return yaml.SafeLoader(" ").construct_object(node, deep=True)


def _collection(node: yaml.Node, path: KeyPath, doc: Document, count: list[int], open_nodes: set[int]) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _to_python(key_node, path, doc, count, open_nodes)
            key_line = key_node.start_mark.line + 1
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise InputError([Problem(doc.source, path, f"keys must be names, not {key!r}", key_line)])
            if key in result:
                first = doc.lines.get((*path, key))
                raise InputError([Problem(doc.source, (*path, key),
                                          f"duplicate key (first given on line {first})", key_line)])
            doc.lines[(*path, key)] = key_line
            result[key] = _to_python(value_node, (*path, key), doc, count, open_nodes)
        return result
    items = []
    for i, item in enumerate(node.value):
        doc.lines[(*path, i)] = item.start_mark.line + 1
        items.append(_to_python(item, (*path, i), doc, count, open_nodes))
    return items


def apply_overrides(doc: Document, overrides: Sequence[str]) -> None:
    """Apply ``dotted.key=value`` overrides (values read as YAML scalars or flow collections)."""
    for text in overrides:
        key, sep, value_text = text.partition("=")
        if not sep or not key.strip():
            raise InputError([Problem("--set", (), f"{text!r}: expected dotted.key=value")])
        parts = key.strip().split(".")
        if not all(parts):
            raise InputError([Problem("--set", (), f"{text!r}: empty key in the dotted path")])
        path: KeyPath = tuple(int(p) if p.isdigit() else p for p in parts)
        try:
            value = yaml.safe_load(value_text) if value_text.strip() else ""
        except yaml.YAMLError as exc:
            raise InputError([Problem("--set", path, f"cannot read value {value_text!r}: {exc}")]) from None
        _set_path(doc.data, path, value)
        doc.overridden.add(path)


def _set_path(data: dict[str, Any], path: KeyPath, value: Any) -> None:
    target: Any = data
    for depth, key in enumerate(path[:-1]):
        if isinstance(target, list) and isinstance(key, int):
            if key >= len(target):
                raise InputError([Problem("--set", path[: depth + 1], f"index {key} is out of range "
                                          f"(the list has {len(target)} items)")])
            target = target[key]
        elif isinstance(target, dict):
            target = target.setdefault(key, {})
        else:
            raise InputError([Problem("--set", path[: depth + 1], "is not a mapping or list")])
    last = path[-1]
    if isinstance(target, list) and isinstance(last, int):
        if last >= len(target):
            raise InputError([Problem("--set", path, f"index {last} is out of range "
                                      f"(the list has {len(target)} items)")])
        target[last] = value
    elif isinstance(target, dict):
        target[last] = value
    else:
        raise InputError([Problem("--set", path, "cannot be set here")])


def validate(model: type[BaseModel], doc: Document) -> Any:
    """Validate ``doc`` against ``model``; every pydantic error becomes a located :class:`Problem`."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise InputError([_problem_from(err, doc, model) for err in exc.errors()]) from None


def _problem_from(err: Mapping[str, Any], doc: Document, model: type[BaseModel]) -> Problem:
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, KeyPathError):
        path = _strip_tags(err["loc"], doc.data, keep_missing_key=False) + original.path
        return doc.problem(path, str(original))
    kind = err["type"]
    path = _strip_tags(err["loc"], doc.data, keep_missing_key=kind == "missing")
    if kind.startswith("union_tag"):
        path += (str(err["ctx"]["discriminator"]).strip("'"),)
    if kind == "extra_forbidden":
        message = f"unknown key '{path[-1]}'" + _suggestion(str(path[-1]), path[:-1], model)
    elif kind == "missing":
        message = "required key is missing"
    else:
        message = err["msg"].removeprefix("Value error, ")
        if not isinstance(err.get("input"), (dict, list)):
            message += f" (got {err.get('input')!r})"
    return doc.problem(path, message)


def _strip_tags(loc: Sequence[str | int], data: Any, *, keep_missing_key: bool) -> KeyPath:
    """Drop pydantic's union-member tags (``per_purchase``, ``function-after[...]``) from an error location.

    Only a missing key's own name is kept although the file does not have it.
    """
    path: list[str | int] = []
    node = data
    for i, key in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and key in node or isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        elif not (last and keep_missing_key and isinstance(node, dict)):
            continue  # a union tag, not a key of the file
        path.append(key)
    return tuple(path)


def _suggestion(key: str, parent: KeyPath, model: type[BaseModel]) -> str:
    """'did you mean' for a typo, or where a key belongs when it is misplaced."""
    homes = _field_homes(model)
    if key in homes:
        places = sorted(homes[key], key=len)
        here = dotted(k for k in parent if isinstance(k, str))
        elsewhere = [p for p in places if p != here]
        if elsewhere:
            where = elsewhere[0] or "the top level"
            return f" here; it belongs under {where}"
        return ""
    close = difflib.get_close_matches(key, sorted(homes), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _field_homes(model: type[BaseModel], parent: str = "", homes: dict[str, set[str]] | None = None,
                 seen: frozenset[type] = frozenset()) -> dict[str, set[str]]:
    """Every field name of the schema, with the dotted paths of the blocks it belongs to.

    Mapping keys and list items chosen by the user (segment names, list indices) are left out of the
    paths, so ``segments.regular.dropout`` is ``segments.dropout`` here.
    """
    homes = {} if homes is None else homes
    if model in seen:
        return homes
    for name, info in model.model_fields.items():
        homes.setdefault(name, set()).add(parent)
        child = f"{parent}.{name}" if parent else name
        for sub in _models_in(info.annotation):
            _field_homes(sub, child, homes, seen | {model})
    return homes


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in getattr(annotation, "__args__", ()) + tuple(getattr(annotation, "__metadata__", ())):
        found += _models_in(arg)
    return found


def load_scenario(path: str | os.PathLike[str], overrides: Sequence[str] = (), *, shards: int = 1,
                  transactions: bool = False) -> Scenario:
    """Read, override, validate and size-check a scenario file (the size of one of ``shards`` customer
    shards, when the run is split; :func:`sim.engine.shards`; with its transaction log if ``transactions``).

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
    _check_baseline(scenario, doc, Path(path))
    _check_size(scenario, doc, shards, transactions)
    return scenario


def _baseline_path(scenario: Scenario, path: Path) -> Path:
    target = Path(scenario.baseline)
    return target if target.is_absolute() else path.parent / target


def _check_baseline(scenario: Scenario, doc: Document, path: Path) -> None:
    if scenario.baseline in ("auto", "none"):
        return
    target = _baseline_path(scenario, path)
    if not target.is_file():
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


def _check_size(scenario: Scenario, doc: Document, shards: int = 1, transactions: bool = False) -> None:
    """Refuse, before allocating anything, a population (or its largest shard) whose program state, queue of
    referred customers or transaction log cannot fit in this machine's memory. Without a program, memory
    does not grow with the acquired population (:mod:`sim.lifetimes`), only with referred customers waiting
    to be simulated, which compounding referrals can make explode."""
    planned = scenario.planned_customers()
    if shards > 1:
        from sim.engine import shards as split

        planned = max(sum(part.values()) for part in split(scenario, shards))
    # Referred customers refer too: without dropout the population grows like a Yule process,
    # e^(rate x years), which bounds the expected count from above.
    top_referral = max(s.referrals_per_year.mean for s in scenario.segments.values())
    expected = planned * math.exp(min(top_referral * scenario.horizon_years, 700.0))
    if scenario.policy is not None:
        parts = {"the program's state": expected * PROGRAM_BYTES_PER_CUSTOMER}
    else:
        parts = {"the referred customers waiting to be simulated": (expected - planned) * QUEUED_BYTES_PER_CUSTOMER}
    if transactions:   # at most the acquisition purchase and the mean rate over the horizon, no dropout
        purchases = expected * (1 + _mean_rate(scenario) * scenario.horizon_years)
        parts["the transaction log"] = purchases * TRANSACTION_BYTES_PER_PURCHASE
    need, have = sum(parts.values()), _physical_memory()
    if need > _MEMORY_SHARE * have:
        what = " and ".join(parts)
        raise InputError([doc.problem(("acquisition",), (
            f"the scenario brings up to about {expected:,.3g} customers per replication; {what} would need "
            f"about {need / 2**30:,.1f} GiB, and this machine has {have / 2**30:,.1f} GiB. Lower the customer "
            f"counts (results scale: simulate a sample and multiply) or split the population into shards "
            f"(`run --shards N`, on a Dask cluster with --scheduler)."))])


def _mean_rate(scenario: Scenario) -> float:
    """Purchases per year of an acquired customer, averaged over the acquisition mix."""
    weights = dict.fromkeys(scenario.segments, 0.0)
    for acquisition in scenario.acquisition:
        for name, share in scenario.segment_mix(acquisition).items():
            weights[name] += scenario.planned_customers(acquisition) * share
    total = sum(weights.values()) or 1.0
    return sum(w * scenario.segments[name].purchases_per_year.law().mean for name, w in weights.items()) / total


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30
