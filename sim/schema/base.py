"""Shared pieces of the scenario schema: a strict frozen base model and constrained number types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Share = Annotated[float, Field(ge=0, le=1)]
Money = Annotated[float, Field(ge=0)]


class Frozen(BaseModel):
    """Immutable, strict, closed: unknown keys are errors, strings are never read as numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class KeyPathError(ValueError):
    """A validation error about a key other than the one being validated (cross-references).

    The input door reads ``path`` to point the user at the right key and YAML line.
    """

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
