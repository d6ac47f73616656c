"""The scenario schema: frozen, validated pydantic models (SPEC "Scenario file")."""

from sim.scenario.behaviour import BetaLaw, GammaLaw, Segment, SpendLaw
from sim.scenario.model import REFERRAL_CHANNEL, Acquisition, Economics, Scenario
from sim.scenario.policy import Policy, Response

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
