"""Warnings about valid scenarios that probably do not say what their author means: ``validate`` and ``run``
print them on stderr and carry on (exit status 0). Each names the file, the key path and its line, as bad
input does (:mod:`sim.input.errors`)."""

from __future__ import annotations

from sim.input.documents import Document
from sim.input.errors import Problem
from sim.schema import Scenario

#: ``initial_customers`` (all channels) from this share of the customers a scenario acquires on, with a policy and
#: no ``existing_customers``, are likely a firm's existing customers written as new ones: warned about.
INITIAL_SHARE = 0.1


def scenario_warnings(scenario: Scenario, doc: Document) -> list[Problem]:
    """The warnings about ``scenario`` (read from ``doc``): today one, about ``initial_customers`` standing for
    an existing base (``docs/scenarios.md``, "Warnings")."""
    initial = sum(channel.initial_customers for channel in scenario.acquisition)
    acquired = sum(scenario.planned_customers(channel) for channel in scenario.acquisition)
    if scenario.policy is None or scenario.existing_customers is not None or not initial \
            or initial < INITIAL_SHARE * acquired:
        return []
    index = max(range(len(scenario.acquisition)), key=lambda i: scenario.acquisition[i].initial_customers)
    return [doc.problem(("acquisition", index, "initial_customers"), (
        f"{initial:,} of the {acquired:,} customers acquired ({initial / acquired:.0%}) are initial_customers: "
        "they arrive as brand-new customers at time 0, each with a first purchase on day 0, new customers' "
        "churn and no history. If they stand for the firm's existing customers, describe those with "
        "existing_customers instead (a customer table or {count, history_months}; docs/scenarios.md, "
        "existing_customers), so that the program starts on customers with their histories"))]
