"""Uncertain assumptions drawn for one replication (``docs/scenarios.md``, "Uncertain values").

Replication *r* of a scenario with uncertain keys runs the scenario with one value drawn for each key, at the
quantile :func:`sim.random.streams.assumption_uniform` gives for (seed, *r*, key path). The draw depends on
nothing else, so a scenario, its baseline and every scenario compared with it meet the same value of a
shared assumption in the same replication (common random numbers over assumptions as well as customers),
and a different one in each replication.
"""

from __future__ import annotations

from sim.random.streams import assumption_uniform
from sim.schema import Scenario
from sim.schema.uncertain import UncertainValue, has_path, set_value


def assumption_values(scenario: Scenario, replication: int,
                      items: tuple[UncertainValue, ...] | None = None) -> dict[str, float]:
    """The value of each uncertain key (dotted) of ``scenario`` (or of ``items``) in ``replication``."""
    chosen = scenario.uncertain if items is None else items
    return {item.key: item.value(assumption_uniform(scenario.seed, replication, item.key)) for item in chosen}


def realise(scenario: Scenario, replication: int) -> Scenario:
    """``scenario`` with every uncertain key set to its draw for ``replication`` (itself when it has none).

    Keys the scenario no longer has (a ``policy`` key of the policy-free baseline) are left out; the
    existing customers' histories read by the input door go with it.
    """
    if not scenario.uncertain:
        return scenario
    data = scenario.model_dump(exclude_unset=True, exclude={"uncertain"})
    for item in scenario.uncertain:
        if has_path(data, item.path):
            data = set_value(data, item.path, item.value(assumption_uniform(scenario.seed, replication, item.key)))
    return Scenario.model_validate(data).with_base(scenario.base)   # the existing customers' histories stay
