"""The levers (``policy``) and how customers respond to them (``response``).

The defaults of :class:`Response` come from published effect sizes; see ``docs/levers.md`` for each
source (Kivetz, Urminsky & Zheng 2006; Bijmolt et al. 2005; van Heerde, Gupta & Wittink 2003;
Mela, Gupta & Lehmann 1997; Leenheer et al. 2007; Verhoef 2003; Schmitt, Skiera & Van den Bulte 2011).
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import Field, field_validator

from sim.schema.base import MAX_MONTHS, Days, Frozen, Money, Share
from sim.schema.evidence import EVIDENCE

Month = Annotated[int, Field(ge=1, le=MAX_MONTHS)]
#: A rate lift: the rate is multiplied by 1 + lift, which must stay positive (a zero rate would stop time).
#: At most 10 (x11): published effects of loyalty levers are 5-30% (docs/levers.md).
Lift = Annotated[float, Field(gt=-1, le=10, description="Above -1, at most 10.")]
#: A dropout multiplier: at least 1e-6, because the pending lifetime is time-changed by old / new
#: multiplier when a tier is entered and left again, and a zero (or denormal) hazard cannot be undone;
#: at most 100, which already ends nearly every customer at once.
DropoutMultiplier = Annotated[float, Field(ge=1e-6, le=100, description="From 1e-6 to 100.")]
#: A response strength (goal gradient, discount uplift, referral bonus lift): at most 100 times the
#: published sizes of about 0.2-1.5.
Strength = Annotated[float, Field(ge=0, le=100, description="At most 100.")]
Depth = Annotated[float, Field(ge=0, lt=1)]


class Enrollment(Frozen):
    """Who joins: ``probability`` on average; heavier buyers join more readily when ``self_selection`` > 0."""

    probability: Share = 1.0
    #: Log-odds of joining per log of the purchase rate: at 100 a doubling multiplies the odds by 2^100,
    #: already a sharp threshold on the rate.
    self_selection: Annotated[float, Field(ge=0, le=100, description="At most 100.")] = 0.0


class Points(Frozen):
    """Points earned on net spend; a reward of ``reward_value`` for every ``reward_threshold`` points."""

    #: Points per unit of net spend: at most 1000 (programs give 1-10).
    earn_per_currency: Annotated[float, Field(ge=0, le=1000, description="At most 1000.")] = 1.0
    #: Points are whole numbers; 10^12 points is a trillion-currency spend at one point per unit.
    reward_threshold: Annotated[int, Field(ge=1, le=10**12, description="Whole points, at most 10^12.")]
    reward_value: Money
    reward_cost_ratio: Share = 1.0
    redeemer_share: Share = 1.0
    expiry_months_inactive: Annotated[float, Field(gt=0, le=MAX_MONTHS, description="At most 1200.")] | None = None


#: Points one purchase earns at most: a heavy-tailed order far beyond the scenario's mean (refused at the
#: door, :data:`sim.schema.scenario.MAX_POINTS_PER_ORDER`) is capped where floats stop holding whole numbers.
MAX_POINTS_PER_PURCHASE = 2.0**53


class Tier(Frozen):
    """A status tier reached on trailing 12-month spend."""

    name: str
    min_spend_12m: Money
    earn_multiplier: Annotated[float, Field(ge=0, le=100, description="At most 100.")] = 1.0
    #: A number is a fixed effect; unset, the effect follows the value of the benefits (docs/levers.md).
    frequency_lift: Lift | None = None
    dropout_multiplier: DropoutMultiplier | None = None
    benefit_cost_per_year: Money = 0.0


class BlanketDiscount(Frozen):
    """A price cut for everybody during a window, from ``start_month``, repeating ``every_months``."""

    name: str
    kind: Literal["blanket"]
    depth: Depth
    start_month: Month = 1
    every_months: Month | None = None
    duration_days: Days


class WinbackOffer(Frozen):
    """An offer to every customer inactive for ``inactive_days`` (alive or not: the firm cannot tell)."""

    name: str
    kind: Literal["winback"]
    inactive_days: Days
    depth: Depth
    valid_days: Days
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
    valid_days: Days
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


def _default(key: str) -> float:
    return EVIDENCE[key].default


#: A positive half-saturation point of a value-response curve.
Half = Annotated[float, Field(gt=0, le=1e6, description="Above 0, at most 1e6.")]
#: The most a response can add: a rate lift or a retention strength, at most 10.
MaxEffect = Annotated[float, Field(ge=0, le=10, description="At most 10.")]


class Response(Frozen):
    """How customers react to the levers. Multipliers combine multiplicatively (``docs/model.md``).

    Each behavioural effect is a function of the value offered (:mod:`sim.model.response`,
    ``docs/levers.md`` section 3), parametrised by the keys after the fixed ones. The five fixed-effect
    keys (``member_frequency_lift``, ``member_dropout_multiplier``, ``goal_gradient``, ``discount_uplift``,
    ``referral_bonus_lift``) are unset by default; a number given for one of them replaces that effect's
    value curve with a constant, whatever the value offered (the form of scenario files before value
    responses). :meth:`forms` says which form each effect uses.
    """

    member_frequency_lift: Lift | None = None
    member_dropout_multiplier: DropoutMultiplier | None = None
    goal_gradient: Strength | None = None
    discount_uplift: Strength | None = None
    pull_forward: Share = 0.5
    habituation: Annotated[float, Field(ge=0, lt=1)] = 0.02
    winback_reactivation: Share = 0.05
    referral_bonus_lift: Strength | None = None
    #: Who reacts: weight (1 + d) / (1 + d x^2) at x times the segment's mean purchase rate.
    heavy_buyer_damping: Annotated[float, Field(ge=0, le=100, description="At most 100.")] = _default(
        "heavy_buyer_damping")
    #: A reward further than this many years of the customer's own buying is worth nothing to it.
    reward_reach_years: Annotated[float, Field(gt=0, le=100, description="Above 0, at most 100.")] = _default(
        "reward_reach_years")
    #: The program value (reward back per unit spent, times reachability) at half the full response.
    half_reward_rate: Half = _default("half_reward_rate")
    member_max_lift: MaxEffect = _default("member_max_lift")
    member_max_retention: MaxEffect = _default("member_max_retention")
    goal_gradient_max: Annotated[float, Field(ge=0, le=100, description="At most 100.")] = _default(
        "goal_gradient_max")
    #: Promotion elasticity (as a positive number) at a 20% cut for the average deal proneness 0.5.
    discount_elasticity: Annotated[float, Field(ge=0, le=100, description="At most 100.")] = _default(
        "discount_elasticity")
    discount_half_depth: Half = _default("discount_half_depth")
    tier_max_lift: MaxEffect = _default("tier_max_lift")
    tier_max_retention: MaxEffect = _default("tier_max_retention")
    #: A tier's benefit per year, per unit of the customer's yearly spend, at half the full response.
    half_benefit_rate: Half = _default("half_benefit_rate")
    referral_max_lift: MaxEffect = _default("referral_max_lift")
    #: The referral bonus per referral, per unit of the customer's mean order value, at half the response.
    half_bonus_ratio: Half = _default("half_bonus_ratio")

    def forms(self) -> dict[str, str]:
        """Which form each effect uses: ``"fixed <value>"`` or ``"value curve"``."""
        fixed = {"membership rate": self.member_frequency_lift,
                 "membership dropout": self.member_dropout_multiplier,
                 "goal gradient": self.goal_gradient, "discount uplift": self.discount_uplift,
                 "referral": self.referral_bonus_lift}
        return {effect: "value curve" if value is None else f"fixed {value:g}" for effect, value in fixed.items()}


def _unique_names(items: list) -> None:
    names = [item.name for item in items]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"names must be unique; repeated: {', '.join(duplicated)}")
