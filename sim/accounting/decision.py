"""The decision figures of a run or comparison (``docs/results.md``, "The decision block").

Each replication is one joint draw of the uncertain assumptions (:mod:`sim.model.assumptions`) and of the
customers, with every option (the program and its baseline, or the scenarios of a comparison) run on that
same draw. Over the replications, then, the incremental profit of an option is a sample of what it may be
given what we do not know: a probabilistic sensitivity analysis as health economics does it (Briggs, Claxton
& Sculpher, *Decision Modelling for Health Economic Evaluation*, 2006, ch. 5 and 7; the BCEA package).

- ``p_positive``: the share of replications whose incremental profit is positive (``p_above_hurdle``: above
  the hurdle); ``incremental_profit``: its mean and 5/50/95% quantiles; ``acceptability``: the chance that
  the ROI (incremental profit / program cost) exceeds k, for a range of k (the acceptability curve).
- ``options``: for each option, the chance it is the most profitable and the expected loss of choosing it
  (the mean, over replications, of the best option's profit minus its own).
- ``evpi`` and ``evppi``: the expected value of perfect information, about all assumptions and about each
  one, in currency: E[max over options of E(profit | values)] - max over options of E(profit), with the
  conditional expectations estimated by regression on the assumption values (:mod:`sim.accounting.regression`,
  Strong, Oakley & Brennan 2014), so that simulation noise does not count as information.
- ``break_even``: for each assumption, the value at which the expected incremental profit given it crosses
  zero, with a 95% bootstrap interval over replications.
- ``spread``: how much of the variance of incremental profit the assumptions explain, and how much is
  simulation noise (the residual variance of the regression on all of them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from sim.accounting.derived import roi
from sim.accounting.regression import Fit, fit_additive
from sim.accounting.runs import RunResult
from sim.model.assumptions import assumption_values

#: Bootstrap resamples behind each break-even interval.
BOOTSTRAP = 200
#: Points of the acceptability curve.
CURVE_POINTS = 21
#: Where the break-even value is looked for: this many points across the values drawn.
GRID = 401


def decision_block(incremental: Mapping[str, np.ndarray], program_cost: Mapping[str, np.ndarray],
                   assumptions: Mapping[str, np.ndarray], *, hurdle: float = 0.0, seed: int = 0) -> dict[str, Any]:
    """The ``decision`` block for options compared with one reference (the baseline).

    ``incremental`` maps each option's name to its incremental profit per replication (against the reference,
    paired), ``program_cost`` to its program cost per replication; ``assumptions`` maps each uncertain key to
    its value per replication. With one option the figures of that option are at the top level; with several,
    under ``by_option``. ``seed`` seeds the bootstrap (the run's seed: same run, same intervals).
    """
    names = list(incremental)
    arrays = {name: np.asarray(incremental[name], dtype=float) for name in names}
    values = {key: np.asarray(v, dtype=float) for key, v in assumptions.items() if np.ptp(np.asarray(v)) > 0}
    per_option = {name: _option_figures(arrays[name], np.asarray(program_cost[name], dtype=float), values,
                                        hurdle, seed) for name in names}
    block: dict[str, Any] = dict(per_option[names[0]]) if len(names) == 1 else {"by_option": per_option}
    block["hurdle"] = hurdle
    block["replications"] = int(arrays[names[0]].size)
    block["assumptions"] = sorted(values)
    block["options"] = choice_figures(arrays)
    block["evpi"], block["evppi"] = value_of_information(arrays, values)
    return block


def run_decision(result: RunResult, hurdle: float = 0.0) -> dict[str, Any]:
    """The ``decision`` block of a run against its baseline (summary.json)."""
    baseline = result.baseline
    incremental = result.metric_values("profit") - baseline.metric_values("profit")
    return decision_block({result.scenario.name: incremental}, {result.scenario.name: result.metric_values("program_cost")},
                          drawn_values([result, baseline]), hurdle=hurdle, seed=result.scenario.seed)


def comparison_decision(compared: list[RunResult], reference: RunResult, hurdle: float = 0.0) -> dict[str, Any]:
    """The ``decision`` block of a comparison (compare.json): every compared scenario as an option against
    the reference, whose incremental profit is 0 (named ``baseline`` in ``options``)."""
    reference_profit = reference.metric_values("profit")
    incremental = {r.scenario.name: r.metric_values("profit") - reference_profit for r in compared}
    costs = {r.scenario.name: r.metric_values("program_cost") for r in compared}
    return decision_block(incremental, costs, drawn_values([*compared, reference]), hurdle=hurdle,
                          seed=reference.scenario.seed)


def drawn_values(results: list[RunResult]) -> dict[str, np.ndarray]:
    """Each uncertain key's value per replication; a key of several scenarios takes the first one's value
    (all of them rise and fall with the same uniform draw)."""
    items: dict[str, Any] = {}
    for result in results:
        for item in result.scenario.uncertain:
            items.setdefault(item.key, item)
    first = results[0]
    rows = [assumption_values(first.scenario, rep.replication, tuple(items.values())) for rep in first.replications]
    return {key: np.array([row[key] for row in rows], dtype=float) for key in items}


def _option_figures(incremental: np.ndarray, program_cost: np.ndarray, values: Mapping[str, np.ndarray],
                    hurdle: float, seed: int) -> dict[str, Any]:
    n = incremental.size
    positive = float(np.mean(incremental > 0))
    return {
        "p_positive": positive,
        "p_positive_std_error": math.sqrt(positive * (1 - positive) / n) if n > 1 else None,
        "p_above_hurdle": float(np.mean(incremental > hurdle)),
        "incremental_profit": {"mean": float(incremental.mean()),
                               **{f"p{q}": float(np.percentile(incremental, q)) for q in (5, 50, 95)}},
        "acceptability": acceptability_curve(roi(incremental, program_cost)),
        "break_even": {key: break_even(v, incremental, seed=seed) for key, v in values.items()},
        "spread": spread(incremental, values),
    }


def acceptability_curve(roi_values: np.ndarray, points: int = CURVE_POINTS) -> list[dict[str, float]]:
    """The chance that the ROI exceeds k, for k from the lower of 0 and its 5% quantile to the higher of 1
    and its 95% quantile (undefined ROIs, of replications without program cost, left out)."""
    data = np.asarray(roi_values, dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return []
    low, high = min(0.0, float(np.percentile(data, 5))), max(1.0, float(np.percentile(data, 95)))
    return [{"roi": float(k), "probability": float(np.mean(data > k))} for k in np.linspace(low, high, points)]


def choice_figures(incremental: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """For each option and the reference (``baseline``, incremental profit 0): the chance it is the most
    profitable in a replication, and the expected loss of choosing it."""
    names = ["baseline", *incremental]
    table = np.column_stack([np.zeros_like(next(iter(incremental.values())))] + list(incremental.values()))
    best = table.max(axis=1)
    winners = np.argmax(table, axis=1)
    return {name: {"p_best": float(np.mean(winners == i)), "expected_loss": float(np.mean(best - table[:, i]))}
            for i, name in enumerate(names)}


def value_of_information(incremental: Mapping[str, np.ndarray],
                         values: Mapping[str, np.ndarray]) -> tuple[float | None, dict[str, float | None]]:
    """EVPI about all assumptions and EVPPI about each, in currency (None when the replications are too few
    for the regression). Without uncertain assumptions both are 0: there is nothing to learn."""
    if not values:
        return 0.0, {}
    columns = list(values.values())
    total = _evpi({name: fit_additive(columns, nb) for name, nb in incremental.items()}, columns)
    partial = {key: _evpi({name: fit_additive([v], nb) for name, nb in incremental.items()}, [v])
               for key, v in values.items()}
    return total, partial


def _evpi(fits: Mapping[str, Fit | None], columns: list[np.ndarray]) -> float | None:
    if any(fit is None for fit in fits.values()):
        return None
    expected = np.column_stack([np.zeros(len(columns[0]))] + [fit.predict(columns) for fit in fits.values()])
    value = float(np.mean(expected.max(axis=1)) - max(0.0, float(expected.mean(axis=0).max())))
    # below the rounding of the sums (a choice that never changes is worth exactly nothing to learn)
    return value if value > 1e-9 * float(np.abs(expected).max() or 1.0) else 0.0


def spread(incremental: np.ndarray, values: Mapping[str, np.ndarray]) -> dict[str, float | None]:
    """The standard deviation of incremental profit over replications, and the shares of its variance the
    assumptions explain and simulation noise leaves (the regression's residual variance)."""
    total = float(np.var(incremental, ddof=1)) if incremental.size > 1 else 0.0
    if not values:
        return {"sd": math.sqrt(total), "assumption_share": 0.0, "simulation_noise_share": 1.0 if total else 0.0}
    fit = fit_additive(list(values.values()), incremental)
    if fit is None or total == 0.0:
        return {"sd": math.sqrt(total), "assumption_share": None, "simulation_noise_share": None}
    noise = min(1.0, fit.residual_variance / total)
    return {"sd": math.sqrt(total), "assumption_share": 1.0 - noise, "simulation_noise_share": noise}


def break_even(values: np.ndarray, incremental: np.ndarray, *, seed: int = 0) -> dict[str, Any]:
    """Where E[incremental profit | this assumption] crosses zero within the values drawn, with a 95%
    percentile-bootstrap interval; ``pays_when`` says on which side it pays. ``value`` is None when it does
    not cross (``pays_when`` is then ``always`` or ``never``); the interval is None when more than 2.5% of
    the resamples do not cross zero."""
    fit = fit_additive([values], incremental)
    if fit is None:
        return {"value": None, "ci_low": None, "ci_high": None, "pays_when": None}
    knots = len(fit.splines[0].knots)
    root, slope = _crossing(fit, values)
    if root is None:
        mean = float(np.mean(incremental))
        return {"value": None, "ci_low": None, "ci_high": None, "pays_when": "always" if mean > 0 else "never"}
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(0xB5E,)))
    roots = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, values.size, values.size)
        again = fit_additive([values[pick]], incremental[pick], knots=knots)
        found = None if again is None else _crossing(again, values[pick], near=root)[0]
        roots.append(math.nan if found is None else found)
    draws = np.array(roots)
    found = draws[~np.isnan(draws)]
    closed = found.size >= 2 and 1.0 - found.size / draws.size <= 0.025
    low, high = np.percentile(found, [2.5, 97.5]) if closed else (None, None)
    return {"value": root, "ci_low": None if low is None else float(low),
            "ci_high": None if high is None else float(high),
            "std_error": float(np.std(found, ddof=1)) if found.size >= 2 else None,
            "pays_when": "above" if slope > 0 else "below"}


def _crossing(fit: Fit, values: np.ndarray, near: float | None = None) -> tuple[float | None, float]:
    """The zero of the fitted curve within the values' range nearest ``near`` (default: their median), and
    the curve's slope there."""
    grid = np.linspace(values.min(), values.max(), GRID)
    curve = fit.predict([grid])
    signs = np.sign(curve)
    change = np.nonzero(signs[:-1] * signs[1:] < 0)[0]
    exact = np.nonzero(curve == 0)[0]
    if change.size == 0 and exact.size == 0:
        return None, 0.0
    roots = [grid[i] - curve[i] * (grid[i + 1] - grid[i]) / (curve[i + 1] - curve[i]) for i in change]
    roots += [grid[i] for i in exact]
    slopes = [(curve[i + 1] - curve[i]) for i in change] + [0.0 for _ in exact]
    target = float(np.median(values)) if near is None else near
    index = int(np.argmin([abs(r - target) for r in roots]))
    return float(roots[index]), float(slopes[index])
