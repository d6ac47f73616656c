"""The scenario schema: frozen, validated pydantic models (SPEC "Scenario file")."""

from sim.schema.behaviour import BetaLaw, GammaLaw, Segment, SpendLaw
from sim.schema.model import REFERRAL_CHANNEL, Acquisition, Economics, Scenario
from sim.schema.policy import Policy, Response

__all__ = [
    "REFERRAL_CHANNEL",
    "Acquisition",
    "BetaLaw",
    "Economics",
    "GammaLaw",
    "Policy",
    "Response",
    "Scenario",
    "Segment",
    "SpendLaw",
]
