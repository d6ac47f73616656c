"""The page of a sweep directory: which points win, and which assumptions drive the answer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from sim.accounting.metrics import NOT_MONEY
from sim.experiments.ranking import Ranking, rank_points, ranked_unit, ranking_sentence
from sim.experiments.sweep_plan import counted
from sim.input.errors import InputError, Problem
from sim.report import analysis, sweep_charts, text
from sim.report.inputs import SweepData
from sim.report.page import Chart, Page
from sim.report.style import CURRENCY, number, sentence
from sim.report.sweep_charts import PAIRS_MAX_PARAMETERS, short

#: Points listed in the headline table.
TOP_POINTS = 10

CAPTIONS = {
    "frontier": (
        "Each sweep point's mean CLV per customer against its mean program cost. Orange points are on the "
        "efficient frontier: no other point costs no more and yields no less CLV."),
    "metric-frontier": (
        "Each point's mean {metric} against its program cost; the orange points are the Pareto front (no other "
        "point is cheaper and at least as good). Labels are point numbers (see the table above)."),
    "tornado": (
        "One parameter at a time is moved to its low and its high setting while the others stay at the "
        "scenario's values (centre line); the settings are the ends of a range, or for a list of values the ones "
        "giving the lowest and the highest result, written at the bar ends. The widest bars are the assumptions "
        "the answer depends on most; whiskers are 95% intervals over replications."),
    "sobol": (
        "Sobol indices over the whole sampled space: S1 is the share of the variance of {metric} a parameter "
        "explains on its own, ST including its interactions with the others; bars are 95% bootstrap intervals. "
        "ST near zero means the parameter can be fixed anywhere in its range."),
    "heatmap": (
        "Mean {metric} of the points in each cell of the two most influential parameters, averaged over the "
        "other parameters. Blue is above zero, red below."),
    "points-map": (
        "Each sweep point placed by the two most influential parameters and coloured by its mean {metric} (blue "
        "above zero, red below, white at zero); the other parameters vary from point to point."),
    "single": "Mean {metric} at each point against the one swept parameter; band: 95% interval over replications.",
    "pairs": (
        "Diagonal: {metric} of each point against each parameter. Below it: every pair of parameters, each point "
        "coloured by its {metric} (blue above zero, red below): look for the regions where the sign changes."),
}


def label(metric: str) -> str:
    """'vs_baseline.profit' -> 'incremental profit'; 'clv_per_customer' -> 'CLV per customer'."""
    name = metric.removeprefix("vs_baseline.").replace("_", " ").replace("clv", "CLV").replace("npv", "NPV")
    name = "ROI" if name == "roi" else name
    return f"incremental {name}" if metric.startswith("vs_baseline.") else name


def is_money(metric: str) -> bool:
    """Whether a metric is an amount of money."""
    return metric.removeprefix("vs_baseline.") not in NOT_MONEY


def sweep_page(sweep: SweepData) -> Page:
    """The report page of a sweep directory."""
    design, parameters = sweep.design, sweep.parameters
    results = _finished_rows(sweep)
    metric = target_metric(sweep)
    extra = ("program_cost", "clv_per_customer", "vs_baseline.profit", "vs_baseline.profit_net_of_liability",
             "vs_baseline.roi")
    metrics = list(dict.fromkeys([metric, *(m for m in extra if m in results)]))
    points = analysis.point_statistics(results, parameters, metrics)
    ranking = rank_points(results, metric)
    unit = ranked_unit(bool(design.get("levers")))
    ranked = rank_parameters(points, parameters, metric, sweep.sensitivity)
    page_charts = sweep_chart_list(sweep, points, metric, ranked)
    swept = {key: _describe(spec) for key, spec in design["parameters"].items()}
    scenarios = {design.get("name", "sweep"): sweep.scenario} if sweep.scenario else {}
    return Page(
        title=f"{design.get('name', 'sweep')}: loyalty-sim sweep report",
        subtitle=f"Sweep of {counted(len(parameters), 'parameter')}, {design.get('design', 'grid')} design: "
                 f"{counted(len(points), unit)} x {counted(int(design.get('replications') or 0), 'replication')}, "
                 f"seed {design.get('seed')}; metric "
                 f"{metric}" + text.scale_note((sweep.scenario or {}).get("population_scale")),
        summary=sweep_summary(sweep, points, metric, ranked, ranking), charts=page_charts,
        headline=top_points_table(points, parameters, metrics, metric, ranking, unit),
        headline_title=f"The top {min(TOP_POINTS, len(points))} {unit}s by {label(metric)}",
        headline_note=f"Means over replications with t-based 95% intervals; money in {CURRENCY}. 'best' marks a {unit} "
                      f"above every other on paired differences, 'tied' the {unit}s that cannot be told from the "
                      f"highest mean ({ranking.confidence:.2%} intervals, Bonferroni over {ranking.comparisons}).",
        assumptions=text.assumptions(scenarios, swept) if scenarios else _parameters_only(swept),
        assumptions_note=(f"The scenario every point starts from ({sweep.scenario_source}), with the swept keys "
                          "highlighted." if scenarios else
                          "The base scenario file named in sweep.json was not found; the swept parameters:"),
        methods=text.methods("sweep", int(design.get("replications") or results["replication"].nunique()),
                             design.get("seed"), _horizon(sweep), baseline=_baseline_note(design, metric)))


def _finished_rows(sweep: SweepData) -> pd.DataFrame:
    finished = [p["point"] for p in sweep.design["points"] if isinstance(p, dict) and p.get("finished")]
    results = sweep.results
    if finished:
        results = results[results["point"].isin(finished)]
    if results.empty:
        raise InputError([Problem(str(sweep.path / "results.parquet"), (), "holds no rows of a finished point")])
    return results


def target_metric(sweep: SweepData) -> str:
    """The metric the sweep optimises: sensitivity.json's, sweep.json's, else incremental profit or profit."""
    results = sweep.results
    metric = ((sweep.sensitivity or {}).get("metric") or sweep.design.get("metric")
              or ("vs_baseline.profit" if "vs_baseline.profit" in results else "profit"))
    if metric not in results:
        raise InputError([Problem(str(sweep.path / "results.parquet"), (), f"no column '{metric}' (the sweep's "
                                                                          "metric)")])
    if not pd.api.types.is_numeric_dtype(results[metric]):
        raise InputError([Problem(str(sweep.path / "results.parquet"), (), f"column '{metric}' is not numeric")])
    return metric


def rank_parameters(points: pd.DataFrame, parameters: list[str], metric: str,
                    sensitivity: dict[str, Any] | None) -> list[str]:
    """Parameters from the most to the least influential: by Sobol ST, else the tornado swing, else the
    spread of the metric's mean across each parameter's values (or quantile bins)."""
    sensitivity = sensitivity or {}
    sobol, oat = sensitivity.get("sobol"), sensitivity.get("oat")
    if sobol and sobol.get("parameters") and sobol.get("ST"):
        score = dict(zip(sobol["parameters"], sobol["ST"]))
    elif oat and oat.get("parameters"):
        score = {p["parameter"]: abs(_mean(p["high"]) - _mean(p["low"])) for p in oat["parameters"]}
    else:
        score = {}
        for parameter in parameters:
            cells, _labels = sweep_charts.cells(points[parameter])
            means = pd.Series(points[metric].to_numpy(float)).groupby(cells).mean()
            score[parameter] = float(means.max() - means.min()) if len(means) > 1 else 0.0
    return sorted(parameters, key=lambda p: -np.nan_to_num(score.get(p, 0.0), nan=0.0))


def _mean(estimate: dict | None) -> float:
    value = (estimate or {}).get("mean")
    return 0.0 if value is None else float(value)


def sweep_chart_list(sweep: SweepData, points: pd.DataFrame, metric: str, ranked: list[str]) -> list[Chart]:
    """The charts that apply to this sweep, in reading order."""
    result = []
    sensitivity = sweep.sensitivity or {}
    metric_label = label(metric)
    labels = points.index.astype(str)
    if "program_cost" in points:
        pareto = sensitivity.get("pareto") or {}
        front = None
        if pareto.get("y") == metric and pareto.get("points") is not None:
            front = points.index.isin(pareto["points"])
        frame = _frontier_frame(points, labels, metric)
        result.append(Chart("metric-frontier", f"{sentence(metric_label)} against program cost",
                            CAPTIONS["metric-frontier"].format(metric=metric_label),
                            sweep_charts_frontier(frame, metric_label, front)))
        if "clv_per_customer" in points and metric != "clv_per_customer":
            result.append(Chart("frontier", "CLV against program cost: the efficient frontier", CAPTIONS["frontier"],
                                sweep_charts_frontier(_frontier_frame(points, labels, "clv_per_customer"),
                                                      "CLV per customer", None)))
    if sensitivity.get("oat"):
        result.append(Chart("tornado", "Tornado: which assumption moves the answer most", CAPTIONS["tornado"],
                            sweep_charts.tornado_chart(sensitivity["oat"], metric_label=metric_label,
                                                       money=is_money(metric))))
    if sensitivity.get("sobol"):
        result.append(Chart("sobol", "Sobol sensitivity indices", CAPTIONS["sobol"].format(metric=metric_label),
                            sweep_charts.sobol_chart(sensitivity["sobol"])))
    if len(ranked) >= 2:
        x, y = ranked[0], ranked[1]
        if sweep.design.get("design", "grid") == "grid":
            result.append(Chart("heatmap", f"{sentence(metric_label)} by {short(x)} and {short(y)}",
                                CAPTIONS["heatmap"].format(metric=metric_label),
                                sweep_charts.heatmap_chart(points, x, y, metric, metric_label=metric_label,
                                                           money=is_money(metric))))
        else:   # sampled points scatter over the plane: binned, most cells of a heatmap would stay empty
            result.append(Chart("points-map", f"{sentence(metric_label)} by {short(x)} and {short(y)}",
                                CAPTIONS["points-map"].format(metric=metric_label),
                                sweep_charts.points_map_chart(points, x, y, metric, metric_label=metric_label,
                                                              money=is_money(metric))))
        shown = ranked[:PAIRS_MAX_PARAMETERS]
        note = (f"Showing the {len(shown)} most influential of {len(ranked)} parameters."
                if len(ranked) > len(shown) else None)
        result.append(Chart("pairs", "Pairs plot of the sweep points", CAPTIONS["pairs"].format(metric=metric_label),
                            sweep_charts.pairs_chart(points, shown, metric, metric_label=metric_label), note=note))
    elif ranked:
        result.append(Chart("parameter", f"{sentence(metric_label)} against {short(ranked[0])}",
                            CAPTIONS["single"].format(metric=metric_label),
                            sweep_charts.metric_by_parameter_chart(points, ranked[0], metric,
                                                                   metric_label=metric_label)))
    return result


def _frontier_frame(points: pd.DataFrame, labels: pd.Index, metric: str) -> pd.DataFrame:
    return pd.DataFrame({"label": labels, "cost": points["program_cost"].to_numpy(float),
                         "value": points[metric].to_numpy(float),
                         "value_low": points[f"{metric}:low"].to_numpy(float),
                         "value_high": points[f"{metric}:high"].to_numpy(float)})


def sweep_charts_frontier(frame: pd.DataFrame, value_label: str, front: np.ndarray | None):
    """The frontier chart of sweep points (labels are point numbers)."""
    from sim.report.charts import frontier_chart

    return frontier_chart(frame, value_label=value_label, cost_label="Program cost over the horizon",
                          front=front, title=f"{sentence(value_label)} against program cost, per point")


def sweep_summary(sweep: SweepData, points: pd.DataFrame, metric: str, ranked: list[str],
                  ranking: Ranking | None = None) -> list[dict[str, str]]:
    """Executive summary: the best point (only when the replications separate it from every other point, else
    the points tied for best), how many points are surely positive, payback, the main drivers. A sweep of
    ``levers`` under ``uncertainties`` names its points lever settings: each is a choice judged over the drawn
    assumptions, and the best is chosen among the choices only."""
    design = sweep.design
    unit = ranked_unit(bool(design.get("levers")))
    total = len(design["points"])
    ranking = ranking or rank_points(_finished_rows(sweep), metric)
    best = ranking.order[0]
    row = points.loc[best]
    estimate = {"mean": row[metric], "ci_low": row[f"{metric}:low"], "ci_high": row[f"{metric}:high"]}
    values = ", ".join(f"{short(p)} = {_show(row[p])}" for p in sweep.parameters)
    replications = int(design.get("replications") or sweep.results["replication"].nunique())
    if ranking.best is not None:
        bullets = [{"lead": f"Best {unit}: #{best}",
                    "text": f"{values}: {label(metric)} {text.amount(estimate, 0 if is_money(metric) else 2)}; "
                            f"{ranking_sentence(ranking, replications, unit)}."}]
    else:
        bullets = [{"lead": f"No single best {unit}: {len(ranking.tied)} tied",
                    "text": f"{ranking_sentence(ranking, replications, unit)}. The highest mean is #{best} ({values}: "
                            f"{label(metric)} {text.amount(estimate, 0 if is_money(metric) else 2)})."}]
    if metric.startswith("vs_baseline.") or metric == "profit":
        above = int((points[f"{metric}:low"] > 0).sum())
        below = int((points[f"{metric}:high"] < 0).sum())
        bullets.append({"lead": f"How many {unit}s pay",
                        "text": f"{above} of {len(points)} {unit}s have a 95% interval entirely above zero, {below} "
                                f"entirely below; the rest cannot be told from zero with "
                                f"{design.get('replications', 'these')} replications."})
    if "vs_baseline.payback_month" in sweep.results:
        payback = sweep.results.loc[sweep.results["point"] == best, "vs_baseline.payback_month"].to_numpy(float)
        which = f"the best {unit}" if ranking.best is not None else f"#{best}"
        if np.all(np.isfinite(payback)):
            bullets.append({"lead": f"Payback of {which}",
                            "text": f"month {text.amount(analysis.interval(payback), 1)}."})
        else:
            bullets.append({"lead": f"Payback of {which}",
                            "text": f"not within the horizon in {int(np.sum(~np.isfinite(payback)))} of "
                                    f"{len(payback)} replications."})
    if len(ranked) > 1:
        how = ("Sobol total index" if (sweep.sensitivity or {}).get("sobol") else "tornado swing"
               if (sweep.sensitivity or {}).get("oat") else "spread of the point means")
        bullets.append({"lead": "What drives the answer",
                        "text": f"{ranked[0]}, then {ranked[1]} (by {how})."})
    if len(points) < total:
        bullets.append({"lead": "Partial sweep",
                        "text": f"only {len(points)} of {total} points are finished; this report covers those."})
    if design.get("uncertainties"):
        sure = (f"each replication draws the uncertain assumptions ({', '.join(design['uncertainties'])}) anew, "
                f"the same draws for every {unit}: intervals over replications cover both what is not known and "
                f"simulation noise, and the {unit}s are compared on the same draws.")
    else:
        sure = ("intervals are over replications of each point and measure simulation noise; the spread across "
                "points is the uncertainty the sweep explores.")
    bullets.append({"lead": "How sure", "text": sure})
    return bullets


def _show(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and value != int(value):
        return f"{value:.4g}"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return number(float(value))
    return str(value)


def top_points_table(points: pd.DataFrame, parameters: list[str], metrics: list[str], metric: str,
                     ranking: Ranking | None = None, unit: str = "point") -> dict:
    """The top points by the metric: parameter values, the metric with its interval, the others, and whether
    a point is the best or tied for best (``ranking``)."""
    best = points.sort_values(metric, ascending=False).head(TOP_POINTS)
    others = [m for m in metrics if m != metric]
    rows = []
    for point, row in best.iterrows():
        digits = 0 if is_money(metric) else 2
        rows.append([str(point), *(_show(row[p]) for p in parameters), number(row[metric], digits),
                     text.interval_text({"ci_low": row[f"{metric}:low"], "ci_high": row[f"{metric}:high"]}, digits),
                     *(number(row[m], 0 if is_money(m) else 2) for m in others),
                     *([ranking.status(int(point))] if ranking else [])])
    return {"columns": [unit, *(short(p) for p in parameters), label(metric), "95% CI",
                        *(label(m) for m in others), *(["best?"] if ranking else [])], "rows": rows}



def _describe(spec: Any) -> str:
    if isinstance(spec, dict) and "values" in spec:
        return ", ".join(_show(v) for v in spec["values"])
    if isinstance(spec, dict) and "low" in spec:
        return f"{_show(spec['low'])} to {_show(spec['high'])}"
    if isinstance(spec, list):
        return ", ".join(_show(v) for v in spec)
    return str(spec)


def _parameters_only(swept: dict[str, str]) -> dict[str, Any]:
    return {"columns": ["swept values"],
            "rows": [{"group": "swept parameters", "key": key, "values": [value], "differs": True}
                     for key, value in swept.items()]}


def _horizon(sweep: SweepData) -> int | str:
    return (sweep.scenario or {}).get("horizon_months", "?")


def _baseline_note(design: dict[str, Any], metric: str) -> str:
    if design.get("baseline"):
        return (f"Every point is paired with its baseline (the same point without the policy, on the same "
                f"customers), so the vs_baseline columns and {metric} are paired differences.")
    return "The sweep has no baseline: the metrics are the points' own totals."
