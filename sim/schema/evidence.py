"""The evidence ranges of the response defaults: what ``response: {uncertain: evidence}`` draws from.

Each default of :class:`sim.schema.policy.Response` gets a triangular distribution from the low to the high
end of the range the published evidence leaves open, most likely at the default itself. The ranges and their
sources are in ``docs/levers.md``, section 3 ("Response defaults", the ranges to sweep); a response key added
later joins this table with its own range.
"""

from __future__ import annotations

from typing import Any

from sim.schema.base import KeyPathError

#: key of ``response``: (low, high) of the range the evidence leaves open (docs/levers.md, section 3).
EVIDENCE_RANGES: dict[str, tuple[float, float]] = {
    "member_frequency_lift": (0.0, 0.10),
    "member_dropout_multiplier": (0.70, 1.0),
    "goal_gradient": (0.0, 0.40),
    "discount_uplift": (0.75, 2.5),
    "pull_forward": (0.25, 0.75),
    "habituation": (0.0, 0.05),
    "winback_reactivation": (0.0, 0.15),
    "referral_bonus_lift": (0.0, 2.0),
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
