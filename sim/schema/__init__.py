"""The scenario schema: frozen, validated pydantic models (``docs/scenarios.md``), and the units they are
written in. Nothing here reads a file: :mod:`sim.input` is the one door."""

from sim.schema.behaviour import BetaLaw, GammaLaw, Segment, SpendLaw
from sim.schema.policy import Policy, Response
from sim.schema.scenario import REFERRAL_CHANNEL, Acquisition, Economics, Scenario

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
