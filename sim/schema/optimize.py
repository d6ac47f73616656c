"""The optimize file schema (``docs/scenarios.md``, "Optimize files"): a scenario, the levers to search, the
objective and its constraints. What the levers may address is checked against the scenario when the search
is planned (:mod:`sim.experiments.optimize`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from sim.schema.base import MAX_MONEY, MAX_REPLICATIONS, Frozen, KeyPathError
from sim.schema.scenario import MAX_NAME_LENGTH
from sim.schema.sweep import Range, Scalar


class OptimizeBody(Frozen):
    """The ``optimize:`` block: levers as in a sweep (a range, or a list of values: a categorical lever)."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    scenario: str = Field(min_length=1)
    levers: dict[str, Annotated[list[Scalar], Field(min_length=1)] | Range] = Field(min_length=1)
    objective: Literal["mean", "quantile"] = "mean"
    quantile: Annotated[float, Field(gt=0, lt=1)] = 0.10
    min_p_positive: Annotated[float, Field(ge=0, le=1)] | None = None
    max_program_cost: Annotated[float, Field(ge=0, le=MAX_MONEY * 1e4)] | None = None
    trials: Annotated[int, Field(ge=1, le=100_000)] = 40
    replications: Annotated[int, Field(ge=2, le=MAX_REPLICATIONS)] | None = None
    seed: Annotated[int, Field(ge=0, lt=2**63 - 1)] | None = None
    confirm_replications: Annotated[int, Field(ge=2, le=MAX_REPLICATIONS)] | None = None
    runners_up: Annotated[int, Field(ge=0, le=20)] = 3

    @model_validator(mode="after")
    def _ranges_are_searched(self) -> OptimizeBody:
        for key, spec in self.levers.items():
            if isinstance(spec, Range) and spec.levels is not None:
                raise KeyPathError(("levers", key, "levels"), "a search samples the range; levels is for grid sweeps")
        return self


class OptimizeFile(Frozen):
    optimize: OptimizeBody
