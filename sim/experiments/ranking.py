"""Which sweep point is best, said only when the replications can tell it from every other point.

Replication *i* of every point faces the same customers (common random numbers), so two points are compared
by the paired differences of their replications (Law & Kelton, ch. 11). The point with the highest mean is
named best only if the interval of its paired difference to each other point lies above zero; the intervals
are Bonferroni intervals at ``1 - 0.05 / k`` over the ``k`` comparisons, so that the claim "better than every
other point" holds with 95% confidence. Otherwise the points that cannot be told from it are listed: tied.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sim.accounting.estimates import estimate

FAMILY_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Ranking:
    """The points by mean of a metric, and which of them are best or tied for best."""

    order: list[int]          # every point, by decreasing mean
    best: int | None          # the top point, when it is separated from every other point
    tied: list[int]           # the top point and those that cannot be told from it (by decreasing mean)
    confidence: float         # of each interval of a paired difference (Bonferroni)

    @property
    def comparisons(self) -> int:
        return max(1, len(self.order) - 1)

    def status(self, point: int) -> str:
        """'best', 'tied' (for best) or ''."""
        if point == self.best:
            return "best"
        return "tied" if self.best is None and point in self.tied else ""


def rank_points(results: pd.DataFrame, metric: str, family_confidence: float = FAMILY_CONFIDENCE) -> Ranking:
    """Rank the points of a sweep's ``results`` (one row per point and replication) by ``metric``, higher
    being better, and decide whether the top one is separated from all the others (module docstring).

    A replication where either point's value is undefined (NaN) is left out of that pair's difference.
    """
    table = results.pivot(index="replication", columns="point", values=metric).astype(float)
    means = table.mean()
    order = [int(p) for p in means.sort_values(ascending=False, kind="stable", na_position="last").index]
    top, others = order[0], order[1:]
    confidence = 1.0 - (1.0 - family_confidence) / max(1, len(others))
    tied = [top]
    for point in others:
        difference = estimate((table[top] - table[point]).to_numpy(), confidence)
        if difference.ci_low is None or not difference.ci_low > 0:
            tied.append(point)
    return Ranking(order, top if len(tied) == 1 else None, tied, confidence)


def short_key(key: str) -> str:
    """The last two names of a dotted key, for a column header or label: ``policy.points.reward_threshold`` ->
    ``points.reward_threshold``, ``segments.regular.referrals_per_year.mean`` -> ``referrals_per_year.mean``,
    ``policy.discounts.0.depth`` -> ``discounts.0.depth`` (list indices kept)."""
    parts = key.split(".")
    names, start = 0, len(parts)
    while start > 0 and names < 2:
        start -= 1
        names += not parts[start].isdigit()
    return ".".join(parts[start:])


def ranking_sentence(ranking: Ranking, replications: int, unit: str = "point") -> str:
    """What the ranking says, in words (the CLI's and the report's). ``unit`` names what is ranked: ``point``,
    or ``lever setting`` in a sweep of levers under uncertainties (:func:`ranked_unit`)."""
    level = f"{ranking.confidence:.2%}".replace(".00%", "%")
    how = (f"paired differences over {replications} replications, {level} intervals"
           + (f", Bonferroni over {ranking.comparisons} comparisons" if ranking.comparisons > 1 else ""))
    if ranking.best is not None:
        if len(ranking.order) == 1:
            return f"{unit} #{ranking.best} is the only {unit}"
        return f"{unit} #{ranking.best} is the best: above every other {unit} ({how})"
    names = ", ".join(f"#{p}" for p in ranking.tied)
    return (f"no single best {unit}: {len(ranking.tied)} of {len(ranking.order)} {unit}s ({names}) cannot be told "
            f"from the highest mean ({how}); more replications may separate them")


def ranked_unit(levers: bool) -> str:
    """What a sweep's points are: ``lever setting`` when the sweep gives ``levers`` (what the firm chooses;
    the uncertainties are drawn in every replication of every point, so each point is one choice judged over
    them, and only choices are ranked), else ``point``."""
    return "lever setting" if levers else "point"
