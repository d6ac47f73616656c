"""The scenario: who the customers are, how they arrive, the economics, the policy and the response."""

from __future__ import annotations

import difflib
from typing import Annotated

from pydantic import Discriminator, Field, PrivateAttr, Tag, field_validator, model_validator

from sim.schema.base import MAX_MONTHS, MAX_REPLICATIONS, Frozen, KeyPathError, Money, Share
from sim.schema.behaviour import HazardDropout, Segment
from sim.schema.evidence import expand_evidence
from sim.schema.existing import CustomerBase, ExistingFromFile, ExistingSimulated
from sim.schema.policy import Policy, Response
from sim.schema.uncertain import UncertainValue, check_support, extract_uncertain

REFERRAL_CHANNEL = "referral"
#: Counts larger than this are refused outright (they could never be simulated).
MAX_COUNT = 10**13
#: Points an average order may earn: as many as the largest reward_threshold, so that the points of a
#: million orders still fit the exact int64 balances (9.2e18).
MAX_POINTS_PER_ORDER = 1e12
#: A scenario's or sweep's name is a title printed in tables and turned into a folder name: a line, not a page.
MAX_NAME_LENGTH = 200
#: The largest ``population_scale``: one simulated customer for a million.
MAX_POPULATION_SCALE = 1_000_000


class Economics(Frozen):
    """Margins and money over time."""

    gross_margin: Share
    cost_to_serve_per_order: Money = 0.0
    #: 10 is 1000% a year: beyond it every future cash flow is worth nothing anyway.
    annual_discount_rate: Annotated[float, Field(ge=0, le=10, description="Per year, at most 10.")] = 0.10
    #: What a year of a customer's relationship teaches the firm (CLV's learning part, ``docs/model.md``):
    #: money per customer-year alive, discounted like every flow; 0 leaves CLV as it was.
    learning_value_per_customer_year: Money = 0.0


class Acquisition(Frozen):
    """Customers arriving through a channel. Each arrival makes a first purchase at once.

    ``initial_customers`` arrive at time 0; ``new_per_month`` arrive in each of the first ``months`` months
    (default: every month of the horizon), evenly spread over the month.
    """

    channel: str = Field(min_length=1)
    cac: Money = 0.0
    initial_customers: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 0
    new_per_month: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 0
    months: Annotated[int, Field(ge=0, le=MAX_MONTHS)] | None = None
    segments: dict[str, Share] | None = None

    @field_validator("channel")
    @classmethod
    def _not_reserved(cls, channel: str) -> str:
        if channel == REFERRAL_CHANNEL:
            raise ValueError(f"'{REFERRAL_CHANNEL}' is reserved for referred customers")
        return channel

    @field_validator("segments")
    @classmethod
    def _mix_not_empty(cls, mix: dict[str, float] | None) -> dict[str, float] | None:
        # that the shares sum to 1 is checked by the scenario, once it knows the names are segments
        if mix is not None and not mix:
            raise ValueError("the segment mix is empty")
        return mix


def _existing_form(value) -> str:
    """Which form of ``existing_customers`` a value is: a table (``file``) unless it has the keys of a base
    without a log, so that a problem is reported against the form the user meant."""
    if isinstance(value, ExistingSimulated):
        return "simulated"
    if isinstance(value, dict) and "file" not in value and {"count", "history_months"} & set(value):
        return "simulated"
    return "from-table"   # a table, or not a mapping at all (refused as such)


class Scenario(Frozen):
    """A complete scenario file. Rates are per year, money in the scenario's currency."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, description="Shown in tables and results "
                      f"(at most {MAX_NAME_LENGTH} characters).")
    description: str = ""
    horizon_months: Annotated[int, Field(ge=1, le=1200)]
    replications: Annotated[int, Field(ge=1, le=MAX_REPLICATIONS)] = 10
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    baseline: str = "auto"
    population_scale: Annotated[int, Field(ge=1, le=MAX_POPULATION_SCALE)] = Field(
        1, description="Simulate one customer in this many: the counts written are the population's, the "
                       "results are at the population's size.")
    economics: Economics
    segments: dict[str, Segment] = Field(min_length=1)
    acquisition: list[Acquisition]
    existing_customers: Annotated[Annotated[ExistingFromFile, Tag("from-table")] | Annotated[ExistingSimulated, Tag("simulated")],
                                  Discriminator(lambda value: _existing_form(value))] | None = None
    policy: Policy | None = None
    response: Response = Response()
    #: The existing customers' histories, read by the input door (:mod:`sim.input.customers`).
    _base: CustomerBase | None = PrivateAttr(default=None)

    uncertain: tuple[UncertainValue, ...] = Field(default=(), description=(
        "Filled in from the values written {dist: ...}: do not write it (docs/scenarios.md, Uncertain values)."))

    @model_validator(mode="before")
    @classmethod
    def _distributions_apart(cls, data: object) -> object:
        """Values written as distributions: their medians in place, the distributions in ``uncertain``."""
        if not isinstance(data, dict):
            return data
        if "response" in data:
            defaults = {name: field.default for name, field in Response.model_fields.items()}
            data = {**data, "response": expand_evidence(data["response"], defaults)}
        plain, found = extract_uncertain(data, cls)
        if not found and not isinstance(data.get("uncertain"), list):
            return data
        kept = [{**item, "path": tuple(item["path"])} if isinstance(item, dict) else item
                for item in data.get("uncertain", ())]
        return {**plain, "uncertain": tuple(kept) + tuple(found)}

    @model_validator(mode="after")
    def _distributions_fit(self) -> Scenario:
        """Each uncertain key's whole range is valid for the key."""
        check_support(self, list(self.uncertain))
        return self

    @model_validator(mode="after")
    def _references_exist(self) -> Scenario:
        if not self.acquisition and self.existing_customers is None:
            raise KeyPathError(("acquisition",), "at least one channel is needed unless the scenario has "
                                                 "existing_customers")
        channels = [a.channel for a in self.acquisition]
        if self.existing_customers is not None:
            channels.append(self.existing_customers.channel)
        repeated = sorted({c for c in channels if channels.count(c) > 1})
        if repeated:
            where = ("existing_customers", "channel") if self.existing_customers is not None and \
                self.existing_customers.channel in repeated else ("acquisition",)
            raise KeyPathError(where, f"channels must be unique; repeated: {', '.join(repeated)}")
        self._check_existing()
        for i, acq in enumerate(self.acquisition):
            if acq.segments is None and len(self.segments) > 1:
                raise KeyPathError(("acquisition", i, "segments"), "required when there are several segments")
            for name in acq.segments or {}:
                if name not in self.segments:
                    raise KeyPathError(("acquisition", i, "segments", name), self._unknown_segment(name))
            total = sum((acq.segments or {"": 1.0}).values())
            if abs(total - 1.0) > 1e-9:
                raise KeyPathError(("acquisition", i, "segments"),
                                   f"segment shares must sum to 1 (they sum to {total:.6g})")
        for name, seg in self.segments.items():
            target = seg.referrals_per_year.segment
            if target is not None and target not in self.segments:
                raise KeyPathError(("segments", name, "referrals_per_year", "segment"),
                                   self._unknown_segment(target))
        return self

    def _check_existing(self) -> None:
        existing = self.existing_customers
        if existing is None:
            return
        if isinstance(existing, ExistingSimulated):
            if existing.segments is None and len(self.segments) > 1:
                raise KeyPathError(("existing_customers", "segments"), "required when there are several segments")
            for name in existing.segments or {}:
                if name not in self.segments:
                    raise KeyPathError(("existing_customers", "segments", name), self._unknown_segment(name))
            total = sum((existing.segments or {"": 1.0}).values())
            if abs(total - 1.0) > 1e-9:
                raise KeyPathError(("existing_customers", "segments"),
                                   f"segment shares must sum to 1 (they sum to {total:.6g})")
            return
        if existing.segment not in self.segments:
            raise KeyPathError(("existing_customers", "segment"), self._unknown_segment(existing.segment))
        segment = self.segments[existing.segment]
        rate, dropout = segment.purchases_per_year.law(), segment.dropout.law()
        varies = rate.shape is not None and (dropout.shape is not None if isinstance(segment.dropout, HazardDropout)
                                              else dropout.a is not None)
        if not varies:
            raise KeyPathError(("existing_customers", "segment"), (
                f"segment '{existing.segment}' has a purchase rate or dropout that is the same for every customer "
                "(cv 0); existing customers are drawn from their posterior given their history, which needs "
                "both to vary across customers (cv > 0, or native parameters)"))

    @property
    def base(self) -> CustomerBase | None:
        """The existing customers' histories (None without ``existing_customers``, or before the input door
        read them)."""
        return self._base

    def with_base(self, base: CustomerBase | None) -> Scenario:
        """This scenario carrying the existing customers' histories (for the input door)."""
        copy = self.model_copy()
        copy._base = base
        return copy

    def existing_count(self) -> int:
        """How many existing customers the scenario starts with."""
        if isinstance(self.existing_customers, ExistingSimulated):
            return self.existing_customers.count
        return 0 if self._base is None else self._base.size

    def existing_mix(self) -> dict[str, float]:
        """The segment shares of the existing customers."""
        existing = self.existing_customers
        if isinstance(existing, ExistingFromFile):
            return {existing.segment: 1.0}
        return existing.segments or {next(iter(self.segments)): 1.0}

    def _unknown_segment(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self.segments), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown segment name '{name}'{hint}; the segments are {', '.join(self.segments)}"

    @model_validator(mode="after")
    def _counts_divide_by_the_scale(self) -> Scenario:
        """With ``population_scale: K``, one customer in K is simulated: every count must be a multiple of K,
        so that the sample is exactly the population divided by K and the results exactly K times the sample's."""
        scale = self.population_scale
        for i, acq in enumerate(self.acquisition):
            for key in ("initial_customers", "new_per_month"):
                count = getattr(acq, key)
                if count % scale:
                    raise KeyPathError(("acquisition", i, key), (
                        f"{count:,} customers cannot be sampled one in {scale:,} (population_scale): make it a "
                        f"multiple of {scale:,} (e.g. {max(scale, round(count / scale) * scale):,}) or choose a "
                        "population_scale that divides every count"))
        existing = self.existing_customers
        if scale > 1 and isinstance(existing, ExistingFromFile):
            raise KeyPathError(("population_scale",), (
                f"{scale:,}: a customer table ({existing.file}) is simulated whole (population_scale samples "
                "acquired customers and a simulated base, existing_customers: {count, history_months}); remove "
                "population_scale or run the table at population_scale 1"))
        if isinstance(existing, ExistingSimulated) and existing.count % scale:
            raise KeyPathError(("existing_customers", "count"), (
                f"{existing.count:,} customers cannot be sampled one in {scale:,} (population_scale): make it a "
                f"multiple of {scale:,} (e.g. {max(scale, round(existing.count / scale) * scale):,}) or choose a "
                "population_scale that divides every count"))
        return self

    @model_validator(mode="after")
    def _points_are_countable(self) -> Scenario:
        """Points are exact whole numbers (int64): an average order must earn far fewer than 2^63."""
        points = self.policy.points if self.policy is not None else None
        if points is None:
            return self
        most = max([1.0] + [t.earn_multiplier for t in self.policy.tiers]) * points.earn_per_currency
        for name, seg in self.segments.items():
            order = seg.order_value
            last = order.law().mean * (1.0 + order.growth_per_year) ** self.horizon_years
            if last * most > MAX_POINTS_PER_ORDER:
                raise KeyPathError(("policy", "points", "earn_per_currency"), (
                    f"an average order of segment '{name}' would earn {last * most:.3g} points by the end of the "
                    f"horizon (mean order value {last:.3g} with its growth, x earn_per_currency, x the largest "
                    f"tier earn_multiplier); at most {MAX_POINTS_PER_ORDER:.0e}, so that points stay exact"))
        return self

    @property
    def horizon_years(self) -> float:
        return self.horizon_months / 12.0

    def segment_mix(self, acquisition: Acquisition) -> dict[str, float]:
        """The channel's segment shares (the only segment when the scenario has one)."""
        return acquisition.segments or {next(iter(self.segments)): 1.0}

    def acquisition_months(self, acquisition: Acquisition) -> int:
        """How many months ``new_per_month`` customers arrive, capped at the horizon."""
        months = self.horizon_months if acquisition.months is None else acquisition.months
        return min(months, self.horizon_months)

    def planned_customers(self, acquisition: Acquisition | None = None) -> int:
        """Customers that arrive through ``acquisition`` (through every channel and the existing customers if
        None; referrals not included)."""
        if acquisition is None:
            return sum(self.planned_customers(a) for a in self.acquisition) + self.existing_count()
        return acquisition.initial_customers + acquisition.new_per_month * self.acquisition_months(acquisition)

    def sample(self) -> Scenario:
        """The scenario the engine simulates: with ``population_scale: K``, one customer in K (every count,
        a simulated base's too, divided by K) and the program's fixed cost divided by K, so that K times the sample's results are the
        population's (:func:`sim.accounting.tables.scaled_to_population`). The scenario itself when K = 1."""
        scale = self.population_scale
        if scale == 1:
            return self
        acquisition = [a.model_copy(update={"initial_customers": a.initial_customers // scale,
                                            "new_per_month": a.new_per_month // scale}) for a in self.acquisition]
        update: dict = {"acquisition": acquisition}
        if isinstance(self.existing_customers, ExistingSimulated):
            update["existing_customers"] = self.existing_customers.model_copy(
                update={"count": self.existing_customers.count // scale})
        if self.policy is not None:
            costs = self.policy.costs.model_copy(update={"fixed_per_month": self.policy.costs.fixed_per_month / scale})
            update["policy"] = self.policy.model_copy(update={"costs": costs})
        return self.model_copy(update=update)

    def without_policy(self) -> Scenario:
        """The same scenario with no levers: the baseline of ``baseline: auto``.

        The ``response`` block (how customers react to levers) is reset to its defaults: without levers it
        has no effect, and scenarios that differ only in it then share one baseline (a sweep runs it once).
        Uncertain values of the policy and the response go with them; the others stay, drawn as for the
        scenario.
        """
        kept = tuple(item for item in self.uncertain if item.path[0] not in ("policy", "response"))
        return self.model_copy(update={"policy": None, "response": Response(), "uncertain": kept,
                                       "name": f"{self.name} (baseline)"})  # the base's histories too
