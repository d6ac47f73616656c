"""All replications of one scenario (and of its baseline): the metrics' means and intervals over them, and
the paired differences against another run on the same seed and replications (common random numbers;
Law & Kelton, *Simulation Modeling and Analysis*, ch. 11)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.accounting.derived import payback_month, profit_net_of_liability, roi
from sim.accounting.estimates import Estimate, estimate
from sim.accounting.tables import ReplicationResult
from sim.schema import Scenario


@dataclass
class RunResult:
    """All replications of one scenario, and of its baseline when it has one."""

    scenario: Scenario
    replications: list[ReplicationResult]
    baseline: RunResult | None = None

    def metric_values(self, name: str) -> np.ndarray:
        return np.array([rep.totals[name] for rep in self.replications], dtype=float)

    def metrics(self) -> dict[str, Estimate]:
        """Every metric's mean and 95% CI over replications."""
        names = self.replications[0].totals
        return {name: estimate(self.metric_values(name)) for name in names}

    def differences(self, other: RunResult, confidence: float = 0.95) -> dict[str, Estimate]:
        """Paired differences ``self - other``, replication by replication, with t-based CIs;
        also ``profit_net_of_liability`` (incremental profit minus incremental points liability, the prudent
        incremental profit), ``roi`` (incremental profit / this scenario's program cost) and ``payback_month``."""
        _check_paired(self, other)
        names = self.replications[0].totals
        result = {name: estimate(self.metric_values(name) - other.metric_values(name), confidence)
                  for name in names}
        incremental = self.metric_values("profit") - other.metric_values("profit")
        result["profit_net_of_liability"] = estimate(
            profit_net_of_liability(self.metric_values("profit"), self.metric_values("points_liability"),
                                    other.metric_values("profit"), other.metric_values("points_liability")),
            confidence)
        result["roi"] = estimate(roi(incremental, self.metric_values("program_cost")), confidence)
        result["payback_month"] = estimate_payback(self.payback_months(other), confidence)
        return result

    def payback_months(self, other: RunResult) -> np.ndarray:
        """Per replication: the month (1-based) by whose end cumulative incremental profit turned
        non-negative for good; ``inf`` if it never did within the horizon."""
        return np.array([payback_month(mine.monthly["profit"] - theirs.monthly["profit"])
                         for mine, theirs in zip(self.replications, other.replications)])

    def vs_baseline(self) -> dict[str, Estimate] | None:
        return None if self.baseline is None else self.differences(self.baseline)

    @property
    def events(self) -> int:
        own = sum(rep.events for rep in self.replications)
        return own + (self.baseline.events if self.baseline is not None else 0)


def estimate_payback(months: np.ndarray, confidence: float = 0.95) -> Estimate:
    """Mean payback month with its CI; undefined (NaN) when some replication never paid back."""
    if not np.all(np.isfinite(months)):
        return Estimate(math.nan, None, None, None)
    return estimate(months, confidence)


def _check_paired(a: RunResult, b: RunResult) -> None:
    ids_a = [rep.replication for rep in a.replications]
    ids_b = [rep.replication for rep in b.replications]
    if ids_a != ids_b or a.scenario.seed != b.scenario.seed:
        raise ValueError("paired differences need the same seed and the same replications")
