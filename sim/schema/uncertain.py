"""Uncertain assumptions: a numeric scenario value written as a distribution (``docs/scenarios.md``,
"Uncertain values").

Any number of a scenario may be written ``{dist: uniform, low, high}``, ``{dist: triangular, low, mode,
high}``, ``{dist: normal, mean, sd}``, ``{dist: lognormal, median, sd_log}`` or ``{dist: beta, mean, sd}``.
The scenario keeps the distribution's median in place of the value (so that everything that reads a
scenario still sees a number) and the distribution itself in :attr:`Scenario.uncertain`; each replication
draws one value per uncertain key (:mod:`sim.model.assumptions`).

Every draw is the distribution's quantile at a uniform ``u`` kept within [:data:`TAIL`, 1 - :data:`TAIL`]
(the normal's +-6 standard deviations), so the values a scenario can meet are bounded and are checked
against the key's own range when the file is read.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Field, model_validator

from sim.schema.base import Frozen, KeyPathError

#: The chance left out in each tail: Phi(-6), about 1e-9. Draws of a normal stay within 6 sd of its mean.
TAIL = 0.5 * math.erfc(6.0 / math.sqrt(2.0))
#: Bounds on the distributions' own parameters that keep every quantile finite.
MAX_ABS = 1e15
Finite = Annotated[float, Field(ge=-MAX_ABS, le=MAX_ABS)]
#: Keys every replication shares: the horizon shapes every table, the seed and replications are the run.
FIXED_KEYS = ("seed", "replications", "horizon_months")


def _standard_normal_quantile(u: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(u))


class Uniform(Frozen):
    """Every value from ``low`` to ``high`` equally likely."""

    dist: Literal["uniform"]
    low: Finite
    high: Finite

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if not self.low < self.high:
            raise ValueError("a uniform distribution needs low < high")
        return self

    def quantile(self, u: float) -> float:
        return self.low + u * (self.high - self.low)

    def extremes(self) -> tuple[float, float]:
        return self.low, self.high


class Triangular(Frozen):
    """From ``low`` to ``high``, most likely at ``mode``."""

    dist: Literal["triangular"]
    low: Finite
    mode: Finite
    high: Finite

    @model_validator(mode="after")
    def _ordered(self) -> Triangular:
        if not (self.low <= self.mode <= self.high and self.low < self.high):
            raise ValueError("a triangular distribution needs low <= mode <= high and low < high")
        return self

    def quantile(self, u: float) -> float:
        width = self.high - self.low
        split = (self.mode - self.low) / width
        if u < split:
            return self.low + math.sqrt(u * width * (self.mode - self.low))
        return self.high - math.sqrt((1.0 - u) * width * (self.high - self.mode))

    def extremes(self) -> tuple[float, float]:
        return self.low, self.high


class Normal(Frozen):
    """Normal with ``mean`` and standard deviation ``sd`` (kept within 6 sd of the mean)."""

    dist: Literal["normal"]
    mean: Finite
    sd: Annotated[float, Field(gt=0, le=MAX_ABS)]

    def quantile(self, u: float) -> float:
        return self.mean + self.sd * _standard_normal_quantile(u)

    def extremes(self) -> tuple[float, float]:
        return self.quantile(TAIL), self.quantile(1.0 - TAIL)


class LogNormal(Frozen):
    """Log-normal: ``median`` x exp(``sd_log`` x a standard normal); always positive, skewed to the right."""

    dist: Literal["lognormal"]
    median: Annotated[float, Field(gt=0, le=MAX_ABS)]
    sd_log: Annotated[float, Field(gt=0, le=5)]

    def quantile(self, u: float) -> float:
        return self.median * math.exp(self.sd_log * _standard_normal_quantile(u))

    def extremes(self) -> tuple[float, float]:
        return self.quantile(TAIL), self.quantile(1.0 - TAIL)


class Beta(Frozen):
    """Beta on [0, 1] with ``mean`` and standard deviation ``sd`` (sd^2 < mean (1 - mean))."""

    dist: Literal["beta"]
    mean: Annotated[float, Field(gt=0, lt=1)]
    sd: Annotated[float, Field(gt=0)]

    @model_validator(mode="after")
    def _feasible(self) -> Beta:
        if not self.sd**2 < self.mean * (1.0 - self.mean):
            limit = math.sqrt(self.mean * (1.0 - self.mean))
            raise ValueError(f"a beta distribution with mean {self.mean:g} needs sd < {limit:.4g}")
        return self

    @property
    def shapes(self) -> tuple[float, float]:
        """(a, b): a + b = mean (1 - mean) / sd^2 - 1."""
        total = self.mean * (1.0 - self.mean) / self.sd**2 - 1.0
        return self.mean * total, (1.0 - self.mean) * total

    def quantile(self, u: float) -> float:
        from scipy.special import betaincinv

        return float(betaincinv(*self.shapes, u))

    def extremes(self) -> tuple[float, float]:
        return self.quantile(TAIL), self.quantile(1.0 - TAIL)


Distribution = Annotated[Uniform | Triangular | Normal | LogNormal | Beta, Field(discriminator="dist")]
DISTRIBUTIONS = {"uniform": Uniform, "triangular": Triangular, "normal": Normal, "lognormal": LogNormal,
                 "beta": Beta}


class UncertainValue(Frozen):
    """One uncertain key: where it is (``path``), its distribution, and whether the key takes whole numbers
    (then every draw is rounded)."""

    path: tuple[str | int, ...]
    distribution: Distribution
    integer: bool = False

    @property
    def key(self) -> str:
        """The dotted key path, which also keys the assumption's random stream."""
        return ".".join(str(part) for part in self.path)

    def value(self, u: float) -> float | int:
        """The value at ``u`` (kept within the tails; rounded for a whole-number key)."""
        value = self.distribution.quantile(min(max(u, TAIL), 1.0 - TAIL))
        return int(round(value)) if self.integer else value

    def extremes(self) -> tuple[float | int, float | int]:
        low, high = self.distribution.extremes()
        return (int(round(low)), int(round(high))) if self.integer else (low, high)

    def central(self) -> float | int:
        """The median: the value a scenario shows in place of the distribution."""
        return self.value(0.5)


def extract_uncertain(data: Any, model: type[BaseModel]) -> tuple[Any, list[UncertainValue]]:
    """A copy of the scenario document ``data`` with every ``{dist: ...}`` replaced by its median, and the
    distributions found, each checked (its parameters; that its key holds a number of ``model``).

    Raises
    ------
    KeyPathError
        At the key of the first malformed distribution.
    """
    found: list[UncertainValue] = []

    def walk(node: Any, path: tuple[str | int, ...]) -> Any:
        if isinstance(node, dict) and "dist" in node:
            item = _uncertain_at(node, path, model)
            found.append(item)
            return item.central()
        if isinstance(node, dict):
            return {key: (value if not path and key == "uncertain" else walk(value, path + (key,)))
                    for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value, path + (i,)) for i, value in enumerate(node)]
        return node

    return walk(data, ()), found


def _uncertain_at(node: dict, path: tuple[str | int, ...], model: type[BaseModel]) -> UncertainValue:
    from pydantic import TypeAdapter, ValidationError

    if path and path[0] in FIXED_KEYS:
        raise KeyPathError(path, "the run's own settings cannot be uncertain (every replication shares them)")
    kind = _leaf_kind(model, path)
    if kind is None:
        raise KeyPathError(path, "only a number can be written as a distribution ({dist: ...})")
    if not isinstance(node.get("dist"), str) or node["dist"] not in DISTRIBUTIONS:   # a list is unhashable
        raise KeyPathError(path + ("dist",), f"unknown distribution {node.get('dist')!r}; one of "
                                             f"{', '.join(DISTRIBUTIONS)}")
    try:
        distribution = TypeAdapter(Distribution).validate_python(node)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = tuple(part for part in err["loc"] if part not in DISTRIBUTIONS)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown key for a {node['dist']} distribution"
        raise KeyPathError(path + where, message) from None
    return UncertainValue(path=path, distribution=distribution, integer=kind is int)


def _leaf_kind(model: Any, path: tuple[str | int, ...]) -> type | None:
    """``int`` or ``float`` when ``path`` leads to a number field of ``model``, else None."""
    candidates = [model]
    for part in path:
        candidates = [child for ann in candidates for child in _children(ann, part)]
        if not candidates:
            return None
    for ann in candidates:
        for leaf in _flatten(ann):
            if leaf is int or leaf is float:
                return leaf
    return None


def _flatten(annotation: Any) -> list[Any]:
    """The plain types inside Annotated, Optional and Union."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _flatten(get_args(annotation)[0])
    if origin is Union or str(origin) == "types.UnionType" or type(annotation).__name__ == "UnionType":
        return [leaf for arg in get_args(annotation) for leaf in _flatten(arg)]
    return [annotation]


def _children(annotation: Any, part: str | int) -> list[Any]:
    found = []
    for kind in _flatten(annotation):
        origin = get_origin(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel) and isinstance(part, str):
            if part in kind.model_fields:
                found.append(kind.model_fields[part].annotation)
        elif origin is dict and isinstance(part, str):
            found.append(get_args(kind)[1])
        elif origin is list and isinstance(part, int):
            found.append(get_args(kind)[0])
    return found


def check_support(scenario: BaseModel, items: list[UncertainValue]) -> None:
    """Every value each distribution can give must be valid for its key: the scenario is validated again
    with each key at its distribution's lowest and highest values.

    Raises
    ------
    KeyPathError
        At the uncertain key, with what its range refuses.
    """
    from pydantic import ValidationError

    dump = scenario.model_dump(exclude_unset=True, exclude={"uncertain"})
    for item in items:
        if not has_path(dump, item.path):
            raise KeyPathError(item.path, "this scenario has no such key for the distribution to set")
        for end in item.extremes():
            data = set_value(dump, item.path, end)
            try:
                type(scenario).model_validate(data)
            except ValidationError as exc:
                err = exc.errors()[0]
                message = err["msg"].removeprefix("Value error, ")
                raise KeyPathError(item.path, (
                    f"this {item.distribution.dist} distribution reaches {end:.6g}, which the key refuses: "
                    f"{message}")) from None


def set_value(data: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """A copy of the nested ``data`` with ``value`` at ``path`` (copying only the containers on the way)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        copy = dict(data)
    else:
        copy = list(data)
    copy[head] = set_value(copy[head], rest, value)
    return copy


def find(data: Any, path: tuple[str | int, ...]) -> tuple[bool, Any]:
    """(whether the nested ``data`` holds ``path``, the value there): dict keys and list indices in turn."""
    node = data
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False, None
    return True, node


def has_path(data: Any, path: tuple[str | int, ...]) -> bool:
    """Whether the nested ``data`` has a value at ``path`` (a None block has none)."""
    found, node = find(data, path)
    return found and node is not None


def json_schema_with_distributions(document: dict[str, Any]) -> dict[str, Any]:
    """A scenario's JSON Schema in which every number may also be a ``{dist: ...}`` (for editors), the
    ``response`` block takes ``uncertain: evidence``, and the loader's own ``uncertain`` field is left out."""
    from pydantic import TypeAdapter

    laws = TypeAdapter(Distribution).json_schema(ref_template="#/$defs/{model}")
    defs = dict(document.get("$defs", {}))

    def widen(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("type") in ("number", "integer"):
                return {"anyOf": [node, {"$ref": "#/$defs/Distribution"}]}
            return {key: widen(value) for key, value in node.items()}
        if isinstance(node, list):
            return [widen(value) for value in node]
        return node

    widened = widen({key: value for key, value in document.items() if key != "$defs"})
    for key in FIXED_KEYS:                   # the run's own settings stay plain numbers
        if key in document.get("properties", {}):
            widened["properties"][key] = document["properties"][key]
    widened["$defs"] = {name: widen(value) for name, value in defs.items()}
    widened["$defs"].update(laws.pop("$defs", {}))
    widened["$defs"]["Distribution"] = laws
    widened.get("properties", {}).pop("uncertain", None)
    response = widened["$defs"].get("Response", {}).get("properties")
    if response is not None:
        response["uncertain"] = {"enum": ["evidence"], "description": "Draw every response default not set "
                                 "here from its evidence range (docs/decisions.md)."}
    return widened
