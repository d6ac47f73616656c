"""The firm's existing customers in a scenario (``existing_customers:``): who they are and their histories.

The scenario names a customer table (``loyalty-sim calibrate --customers``); the input door
(:mod:`sim.input.customers`) reads and checks it into a :class:`CustomerBase`, which the scenario carries
to the engines. Nothing here reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, field_validator

from sim.schema.base import MAX_MONTHS, Frozen, Share

if TYPE_CHECKING:   # numpy is not imported by the schema: `validate` and `--help` stay light
    import numpy as np

#: The channel of the existing base unless the scenario names another.
EXISTING_CHANNEL = "existing"


class ExistingFromFile(Frozen):
    """Existing customers read from a customer table (path relative to the scenario file), all of one
    segment, counted in their own channel (``cohorts.parquet``)."""

    file: str = Field(min_length=1, description="A customer table written by `calibrate --customers`, "
                                                "relative to the scenario file.")
    segment: str = Field(min_length=1)
    channel: str = Field(default=EXISTING_CHANNEL, min_length=1)

    @field_validator("channel")
    @classmethod
    def _not_reserved(cls, channel: str) -> str:
        from sim.schema.scenario import REFERRAL_CHANNEL

        if channel == REFERRAL_CHANNEL:
            raise ValueError(f"'{REFERRAL_CHANNEL}' is reserved for referred customers")
        return channel


class ExistingSimulated(Frozen):
    """A base without a log: ``count`` customers known to the firm, each with a first purchase in the last
    ``history_months`` months (arriving evenly over them), whose histories are simulated without a program
    up to the start under their segment's laws (the segment mix as in ``acquisition``)."""

    count: Annotated[int, Field(ge=1, le=10**9)]
    history_months: Annotated[int, Field(ge=1, le=MAX_MONTHS)]
    segments: dict[str, Share] | None = None
    channel: str = Field(default=EXISTING_CHANNEL, min_length=1)

    @field_validator("channel")
    @classmethod
    def _not_reserved(cls, channel: str) -> str:
        return ExistingFromFile._not_reserved(channel)

    @field_validator("segments")
    @classmethod
    def _mix_not_empty(cls, mix: dict[str, float] | None) -> dict[str, float] | None:
        if mix is not None and not mix:
            raise ValueError("the segment mix is empty")
        return mix


@dataclass(frozen=True, eq=False)
class CustomerBase:
    """The histories of the existing customers, one entry per customer, at the scenario start.

    Times in years before the start (the models' weeks converted at the door), money in the scenario's
    currency. ``id_hash`` is a stable 64-bit hash of each customer's id: the key of its random streams.
    """

    id_hash: np.ndarray            # uint64
    repeat_purchases: np.ndarray   # int64, x
    recency_years: np.ndarray      # t_x: from the first purchase to the last
    age_years: np.ndarray          # T: from the first purchase to the scenario start
    mean_repeat_spend: np.ndarray  # m_x, 0 without a repeat purchase
    spend_12m: np.ndarray          # spend over the 12 months before the start
    points_balance: np.ndarray | None = None   # int64, the balance of a program already running

    @property
    def size(self) -> int:
        return len(self.id_hash)
