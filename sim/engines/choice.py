"""Which fast engine can run a scenario, decided from the scenario alone (no numerical library imported), so
that the memory check before a run (:mod:`sim.engines.memory`) knows it too."""

from __future__ import annotations

from sim.schema import Scenario


def holds_population(scenario: Scenario) -> bool:
    """Whether the compiled program engine holds every customer's state at once: targeted-offer rounds rank
    everyone acquired so far, so everyone is stopped before each round (otherwise customers live apart, a
    slice at a time)."""
    policy = scenario.policy
    return policy is not None and any(discount.kind == "targeted" for discount in policy.discounts)


def compiled_program_gap(scenario: Scenario) -> str | None:
    """Why ``scenario``'s program cannot run on the compiled program engine
    (:class:`sim.engines.program_lifetimes.ProgramLifetimes`; it runs on the calendar engine then), or None
    if it can."""
    policy = scenario.policy
    if policy is None:
        return "no program"
    return None
