"""The sweep file schema (``docs/scenarios.md``, "Sweep files"): a scenario, the parameters to vary and a
design. What the parameters may address is checked against the scenario when the sweep is planned
(:mod:`sim.experiments.sweep_plan`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from sim.schema.base import MAX_REPLICATIONS, Frozen, KeyPathError
from sim.schema.scenario import MAX_NAME_LENGTH

DESIGNS = ("grid", "random", "latin_hypercube", "sobol")

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
    replications: Annotated[int, Field(ge=1, le=MAX_REPLICATIONS)] | None = None
    seed: Annotated[int, Field(ge=0, lt=2**63)] | None = None
    baseline: str | None = None
    metric: str | None = None
    oat: bool = True
    set: dict[str, Any] = Field(default_factory=dict)   # fixed values for every point
    parameters: dict[str, Annotated[list[Scalar], Field(min_length=1)] | Range] = Field(default_factory=dict)
    #: What the firm chooses (keys under ``policy``): the design's parameters, when given instead of them.
    levers: dict[str, Annotated[list[Scalar], Field(min_length=1)] | Range] = Field(default_factory=dict)
    #: What it does not control: drawn per replication, a range {low, high} as a uniform distribution or any
    #: {dist: ...} (docs/decisions.md), the same draws at every point (common random numbers).
    uncertainties: dict[str, Range | dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _levers_are_the_parameters(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("levers"):
            if data.get("parameters"):
                raise KeyPathError(("levers",), "give either parameters, or levers (with uncertainties), not both")
            return {**data, "parameters": data["levers"]}
        return data

    @model_validator(mode="after")
    def _design_needs(self) -> SweepBody:
        if not self.parameters:
            raise KeyPathError(("parameters",), "required: the parameters to vary (or the levers, with "
                                                "uncertainties)")
        for key in self.levers:
            if not key.startswith("policy."):
                raise KeyPathError(("levers", key), "a lever is what the firm chooses: a key under policy; "
                                                    "customers' reactions and the market go under uncertainties")
        for key, spec in self.uncertainties.items():
            if isinstance(spec, Range) and (spec.levels is not None or spec.log):
                raise KeyPathError(("uncertainties", key), "an uncertainty is drawn per replication: {low, high} "
                                                           "(uniform) or a {dist: ...}, without levels or log")
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
