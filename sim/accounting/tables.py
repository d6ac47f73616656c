"""Result tables of one replication, built once at its end from the ledger: small aggregated tables,
never per-customer arrays (but the transaction log, when asked for). Column meanings: ``docs/results.md``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.accounting.ledger import Ledger
from sim.accounting.metrics import SCALE_FREE
from sim.model.acquisition import channel_names
from sim.schema import Scenario


@dataclass
class ReplicationResult:
    """What one replication produces: small aggregated tables, never per-customer arrays (but transactions)."""

    replication: int
    totals: dict[str, float]
    monthly: dict[str, np.ndarray]
    cohorts: dict[str, np.ndarray]      # one entry per non-empty cohort
    events: int                         # purchases + referrals + dropouts simulated
    transactions: dict[str, np.ndarray] | None = None


def cohort_table(ledger: Ledger, channels: list[str], segments: list[str]) -> dict[str, np.ndarray]:
    """The non-empty cohorts (acquisition month x channel x segment) and their per-customer metrics."""
    sums = ledger.cohort
    present = np.flatnonzero(sums["customers"])
    customers = sums["customers"][present]
    per_month = len(channels) * len(segments)
    return {
        "acquisition_month": present // per_month,
        "channel": np.array([channels[(i % per_month) // len(segments)] for i in present], dtype=object),
        "segment": np.array([segments[i % len(segments)] for i in present], dtype=object),
        "customers": customers.astype(np.int64),
        "repeat_purchases": sums["repeat_purchases"][present].astype(np.int64),
        "net_revenue": sums["net_revenue"][present],
        "clv": (sums["clv"][present] - sums["program"][present]) / customers,
        "cac": sums["cac"][present] / customers,
        "active_end": sums["active_end"][present].astype(np.int64),
        "network_value": sums["network_value"][present] / customers,
        **clv_parts(sums, present, customers),
    }


def clv_parts(sums: dict[str, np.ndarray], present, customers: np.ndarray) -> dict[str, np.ndarray]:
    """CLV in the four parts of the marketing texts, per customer of the cohorts ``present`` (``docs/model.md``,
    "CLV in four parts"): ``clv_base`` + ``clv_growth`` is ``clv``; the network part is ``network_value``;
    ``clv_learning`` is the learning value; ``clv_total`` their sum."""
    clv = (sums["clv"][present] - sums["program"][present]) / customers
    growth = sums["clv_growth"][present] / customers
    learning = sums["learning"][present] / customers
    return {"clv_base": clv - growth, "clv_growth": growth, "clv_learning": learning,
            "clv_total": clv + sums["network_value"][present] / customers + learning}


def transaction_table(parts: list[tuple[np.ndarray, ...]] | None) -> dict[str, np.ndarray] | None:
    """The transaction log from its parts (customer ids, times, list values and, with a program, discounts,
    points earned and redeemed), by customer and time."""
    if parts is None:
        return None
    names = ("customer_id", "time", "list_value", "discount", "points_earned", "points_redeemed")
    columns = [np.concatenate(column) for column in zip(*parts)] if parts else [np.empty(0, dtype=np.int64)]
    table = {name: columns[i] if i < len(columns) else np.zeros(len(columns[0])) for i, name in enumerate(names)}
    order = np.lexsort((table["time"], table["customer_id"]))
    table = {name: column[order] for name, column in table.items()}
    table["amount"] = table.pop("list_value") - table["discount"]   # what the customer paid
    return table


#: Columns of the cohort table that are counts or amounts (K times the sample's at ``population_scale: K``);
#: the others are per customer.
COHORT_TOTALS = ("customers", "repeat_purchases", "net_revenue", "active_end")


def scaled_to_population(result: ReplicationResult, scale: int) -> ReplicationResult:
    """A replication of a one-in-``scale`` sample as the population's: every count and amount (totals,
    months, cohort sizes) times ``scale``, per-customer figures and ratios as they are. The transaction log
    stays the sample's (its rows are the simulated customers' purchases)."""
    if scale == 1:
        return result
    totals = {name: value if name in SCALE_FREE else value * scale for name, value in result.totals.items()}
    monthly = {name: column * scale for name, column in result.monthly.items()}
    cohorts = {name: column * scale if name in COHORT_TOTALS else column for name, column in result.cohorts.items()}
    return ReplicationResult(result.replication, totals, monthly, cohorts, result.events, result.transactions)


def replication_result(scenario: Scenario, replication: int, ledger: Ledger, events: int,
                       transactions: dict[str, np.ndarray] | None) -> ReplicationResult:
    """The result of a replication from its closed ledger."""
    return ReplicationResult(replication=replication, totals=ledger.totals(), monthly=ledger.monthly_table(),
                             cohorts=cohort_table(ledger, channel_names(scenario), list(scenario.segments)),
                             events=events, transactions=transactions)
