"""The levers (``policy``) and how customers respond to them (``response``).

The defaults of :class:`Response` come from published effect sizes; see ``docs/levers.md`` for each
source (Kivetz, Urminsky & Zheng 2006; Bijmolt et al. 2005; van Heerde, Gupta & Wittink 2003;
Mela, Gupta & Lehmann 1997; Leenheer et al. 2007; Verhoef 2003; Schmitt, Skiera & Van den Bulte 2011).
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import Field, field_validator

from sim.schema.base import Frozen, Money, NonNegative, Positive, Share

Month = Annotated[int, Field(ge=1)]
#: A rate lift: the rate is multiplied by 1 + lift, which must stay positive (a zero rate would stop time).
Lift = Annotated[float, Field(gt=-1)]
#: A dropout multiplier: at least 1e-6, because the pending lifetime is time-changed by old / new
#: multiplier when a tier is entered and left again, and a zero (or denormal) hazard cannot be undone.
DropoutMultiplier = Annotated[float, Field(ge=1e-6)]
Depth = Annotated[float, Field(ge=0, lt=1)]


class Enrollment(Frozen):
    """Who joins: ``probability`` on average; heavier buyers join more readily when ``self_selection`` > 0."""

    probability: Share = 1.0
    self_selection: NonNegative = 0.0


class Points(Frozen):
    """Points earned on net spend; a reward of ``reward_value`` for every ``reward_threshold`` points."""

    earn_per_currency: NonNegative = 1.0
    reward_threshold: Annotated[int, Field(ge=1)]  # points are whole numbers
    reward_value: Money
    reward_cost_ratio: Share = 1.0
    redeemer_share: Share = 1.0
    expiry_months_inactive: Positive | None = None


class Tier(Frozen):
    """A status tier reached on trailing 12-month spend."""

    name: str
    min_spend_12m: Money
    earn_multiplier: NonNegative = 1.0
    frequency_lift: Lift = 0.0
    dropout_multiplier: DropoutMultiplier = 1.0
    benefit_cost_per_year: Money = 0.0


class BlanketDiscount(Frozen):
    """A price cut for everybody during a window, from ``start_month``, repeating ``every_months``."""

    name: str
    kind: Literal["blanket"]
    depth: Depth
    start_month: Month = 1
    every_months: Month | None = None
    duration_days: Positive


class WinbackOffer(Frozen):
    """An offer to every customer inactive for ``inactive_days`` (alive or not: the firm cannot tell)."""

    name: str
    kind: Literal["winback"]
    inactive_days: Positive
    depth: Depth
    valid_days: Positive
    message_cost: Money = 0.0


class TargetedOffer(Frozen):
    """An offer to the ``share`` of customers the firm scores highest from their observable history."""

    name: str
    kind: Literal["targeted"]
    target: Literal["top_predicted_clv", "at_risk"]
    share: Annotated[float, Field(gt=0, le=1)]
    start_month: Month = 1
    every_months: Month
    depth: Depth
    valid_days: Positive
    message_cost: Money = 0.0


Discount = Annotated[BlanketDiscount | WinbackOffer | TargetedOffer, Field(discriminator="kind")]


class ReferralProgram(Frozen):
    """Bonuses paid when a referral becomes a customer."""

    referrer_bonus: Money = 0.0
    referee_bonus: Money = 0.0


class ProgramCosts(Frozen):
    fixed_per_month: Money = 0.0
    per_member_per_year: Money = 0.0


class Policy(Frozen):
    """The levers. A scenario without this block is the no-program baseline."""

    enrollment: Enrollment = Enrollment()
    points: Points | None = None
    tiers: list[Tier] = Field(default_factory=list)
    discounts: list[Discount] = Field(default_factory=list)
    referral: ReferralProgram | None = None
    costs: ProgramCosts = ProgramCosts()

    @field_validator("tiers")
    @classmethod
    def _tiers_ascending(cls, tiers: list[Tier]) -> list[Tier]:
        _unique_names(tiers)
        spends = [t.min_spend_12m for t in tiers]
        if any(b <= a for a, b in itertools.pairwise(spends)):
            raise ValueError("tiers must be listed by strictly increasing min_spend_12m")
        return tiers

    @field_validator("discounts")
    @classmethod
    def _discount_names(cls, discounts: list) -> list:
        _unique_names(discounts)
        if sum(isinstance(d, WinbackOffer) for d in discounts) > 1:
            raise ValueError("at most one win-back offer (kind: winback) per policy")
        return discounts


class Response(Frozen):
    """How customers react to the levers. Multipliers combine multiplicatively (``docs/model.md``)."""

    member_frequency_lift: Lift = 0.05
    member_dropout_multiplier: DropoutMultiplier = 0.85
    goal_gradient: NonNegative = 0.20
    discount_uplift: NonNegative = 1.5
    pull_forward: Share = 0.5
    habituation: Annotated[float, Field(ge=0, lt=1)] = 0.02
    winback_reactivation: Share = 0.05
    referral_bonus_lift: NonNegative = 1.0


def _unique_names(items: list) -> None:
    names = [item.name for item in items]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"names must be unique; repeated: {', '.join(duplicated)}")
