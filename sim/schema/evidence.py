"""The defaults of the value-response keys of ``response:`` and the range the evidence allows for each,
and what ``response: {uncertain: evidence}`` draws from.

One table (:data:`EVIDENCE`): the schema's defaults are read from it, ``docs/levers.md`` section 3 prints
it with the full citations, and an uncertainty analysis draws each key from its (low, high) range. The
functions these keys parametrise are :mod:`sim.model.response`. :data:`EVIDENCE_RANGES` adds the response
keys that are not value curves (pull-forward, habituation, win-back reactivation). A fixed effect
(``member_frequency_lift`` and the like, unset by default) is never drawn: writing one is a choice of form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.schema.base import KeyPathError


@dataclass(frozen=True)
class Evidence:
    """A response default, the range the evidence allows (low, high), whether the default is measured or a
    judgement, and the source (full citations in ``docs/levers.md``)."""

    default: float
    low: float
    high: float
    status: str
    source: str


#: Every value-response default and its evidence range: the one table the schema's defaults and the docs'
#: table are read from, and the ranges an uncertainty analysis draws from.
EVIDENCE: dict[str, Evidence] = {
    "heavy_buyer_damping": Evidence(1.0, 0.0, 3.0, "judgement",
                                    "Liu 2007: heavy buyers do not change, light and moderate ones do"),
    "reward_reach_years": Evidence(5.0, 2.0, 10.0, "judgement",
                                   "a reward more than this many years of one's own buying away is no goal"),
    "half_reward_rate": Evidence(0.01, 0.005, 0.03, "judgement",
                                 "Woolf 2014: retail programs give 1-2% back; half the effect at 1%"),
    "member_max_lift": Evidence(0.12, 0.0, 0.25, "judgement (calibrated)",
                                "Verhoef 2003, Leenheer et al. 2007: small; calibrated on the 2% back example"),
    "member_max_retention": Evidence(0.44, 0.0, 0.9, "judgement (calibrated)",
                                     "Verhoef 2003: small retention effect; calibrated on the 2% back example"),
    "goal_gradient_max": Evidence(0.48, 0.0, 1.0, "measured (calibrated)",
                                  "Kivetz, Urminsky & Zheng 2006: 0.2-0.4 on a stamp card"),
    "discount_elasticity": Evidence(3.6, 2.0, 5.0, "measured",
                                    "Bijmolt et al. 2005: mean promotion elasticity -3.6"),
    "discount_half_depth": Evidence(0.30, 0.15, 1.0, "judgement",
                                    "saturation: deep cuts pull forward more than they add"),
    "tier_max_lift": Evidence(0.10, 0.0, 0.2, "judgement", "Dreze & Nunes 2009: direction only"),
    "tier_max_retention": Evidence(0.3, 0.0, 0.6, "judgement", "Dreze & Nunes 2009: direction only"),
    "half_benefit_rate": Evidence(0.02, 0.005, 0.05, "judgement", "benefit worth 2% of the year's spend"),
    "referral_max_lift": Evidence(2.0, 0.0, 4.0, "judgement",
                                  "Schmitt et al. 2011 value referred customers, not bonus effects"),
    "half_bonus_ratio": Evidence(0.4, 0.1, 1.0, "judgement", "a bonus of 40% of an order doubles referrals"),
}

#: key of ``response``: (low, high) of the range the evidence leaves open (docs/levers.md, section 3): the
#: value curves' ranges and those of the other response keys.
EVIDENCE_RANGES: dict[str, tuple[float, float]] = {
    **{key: (evidence.low, evidence.high) for key, evidence in EVIDENCE.items()},
    "pull_forward": (0.25, 0.75),
    "habituation": (0.0, 0.05),
    "winback_reactivation": (0.0, 0.15),
}
#: The values ``response.uncertain`` takes.
UNCERTAIN_CHOICES = ("evidence",)


def expand_evidence(response: Any, defaults: dict[str, float]) -> Any:
    """``response`` with ``uncertain: evidence`` replaced by a triangular distribution (evidence range,
    mode at the default) for every key of :data:`EVIDENCE_RANGES` the block does not set itself.

    Raises
    ------
    KeyPathError
        When ``uncertain`` is anything but ``evidence``.
    """
    if not isinstance(response, dict) or "uncertain" not in response:
        return response
    choice = response["uncertain"]
    if choice not in UNCERTAIN_CHOICES:
        raise KeyPathError(("response", "uncertain"), (
            f"'evidence' (every response default drawn from its evidence range, docs/levers.md) "
            f"is the only choice (got {choice!r})"))
    expanded = {key: value for key, value in response.items() if key != "uncertain"}
    for key, (low, high) in EVIDENCE_RANGES.items():
        expanded.setdefault(key, {"dist": "triangular", "low": low, "mode": defaults[key], "high": high})
    return expanded
