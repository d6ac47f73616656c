"""The pages of a run directory (a scenario and its baseline) and of a comparison directory."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.accounting.derived import payback_months
from sim.output.layout import folder_name
from sim.report import analysis, charts, clv_charts, text
from sim.report.decision import DECISION_CAPTION, decision_bullets, decision_chart
from sim.report.inputs import ComparisonData, RunData
from sim.report.page import Chart, Page
from sim.report.style import CURRENCY, number

#: Caps that keep a comparison of many scenarios readable.
MAX_WATERFALLS = 3
MAX_POINTS_CHARTS = 2
MAX_FORMULA_ARMS = 4

CAPTIONS = {
    "cumulative-profit": (
        "Profit since the start minus the reference's profit on the same customers, at each month end. Line: "
        "mean over replications; dark band: its 95% confidence interval; light band: the range of single "
        "replications. The dashed line marks the payback month: the month by whose end cumulative incremental "
        "profit turned non-negative for good (mean over replications)."),
    "waterfall": (
        "Read from left to right: the reference's profit over the horizon; the change in contribution (gross "
        "margin − cost to serve) split exactly into more customers (referrals), retention (active months per "
        "customer), frequency (purchases per active month) and spend (contribution per purchase); then each "
        "cost's change; the last bar is the scenario's profit. Green adds, orange subtracts; whiskers are 95% "
        "intervals. The split is a Shapley decomposition, see docs/report.md."),
    "customers": (
        "Left: customers still active (and, dotted, members) at each month end, mean with 95% band. Right: for "
        "each monthly cohort, the share still active at the horizon, by how long ago it was acquired; the curve "
        "falling to the right is the survival curve of the segment."),
    "channel-clv": (
        "CLV per customer acquired through each channel: discounted contribution minus attributable program costs "
        "from acquisition to the horizon, before CAC; black ticks are the CAC. Right: CLV / CAC; below 1 the "
        "channel does not earn back what it costs to acquire (within the horizon); guides aim for 3. Referral "
        "customers' CAC is the referral bonus, absent without a referral program."),
    "clv-parts": (
        "CLV per customer in the four parts of the marketing texts, by channel (means over replications): base, "
        "the margin at the customer's starting spend, less cost to serve and attributable program costs; growth, "
        "the margin on what its spend growth with tenure added; network, the CLV of the customers it referred; "
        "learning, what the relationship teaches the firm (economics.learning_value_per_customer_year per "
        "discounted year alive). Black dots: the total, with its 95% interval. Network value is also counted in "
        "the referred customers' own CLV, so totals do not add up across channels."),
    "points": (
        "Means over replications. Left: points earned, redeemed and expired each month. Right: the points "
        "outstanding at each month end and their liability: outstanding points at the firm's cost of a reward, "
        "net of the expected breakage (1 − redeemer share). Earned = redeemed + expired + outstanding exactly."),
    "members": (
        "Left: repeat purchases per member and per non-member, as a dashboard would show them. Right: the naive "
        "difference next to the true effect: the extra repeat purchases the program caused per member, measured "
        "against the same customers without the program. Heavier buyers join more readily (self-selection), so "
        "the naive comparison credits the program with what members would have bought anyway."),
    "clv-formulas": (
        "The CLV formulas of marketing guides, fed with what the simulated customers actually did (inputs in the "
        "table), next to the simulated CLV of the same customers (bold)."),
    "frontier": (
        "Each scenario's CLV per customer against its program cost (95% intervals as whiskers). A scenario on the "
        "frontier (orange) is not beaten by another that costs no more and yields no less; the grey ones are."),
    "differences": (
        "The paired difference in profit over the horizon against the reference (same customers, replication by "
        "replication). A dot with its bar clear of zero is a sure winner (green) or loser (orange) at the stated "
        "confidence; grey means the data cannot tell."),
}


def arm_label(run: RunData) -> str:
    """'baseline' for the automatic baseline's long name, the scenario name otherwise."""
    return "baseline" if run.name.endswith("(baseline)") else run.name


def run_page(run: RunData) -> Page:
    """The report page of a run directory."""
    months, base = int(run.summary["horizon_months"]), run.baseline
    arms = {run.name: run, **({arm_label(base): base} if base is not None else {})}
    page_charts: list[Chart] = []
    decision = run.summary.get("decision")
    if decision is not None:
        page_charts.append(Chart("decision", "The decision: chance of paying and what to learn first",
                                 DECISION_CAPTION, decision_chart(decision)))
    if base is not None:
        page_charts += incremental_charts(run, base, arm_label(base))
    page_charts += arm_charts(arms, months)
    if run.summary.get("member_comparison"):
        page_charts.append(Chart("members", "Members against non-members: self-selection", CAPTIONS["members"],
                                 charts.member_comparison_chart(run.summary["member_comparison"])))
    formulas = formula_chart(arms, months)
    if formulas is not None:
        page_charts.append(formulas)
    if base is not None:
        page_charts.append(frontier_chart({name: r.summary["metrics"] for name, r in arms.items()}))
    scenarios = {run.name: run.scenario} if run.scenario else {}
    baseline_note = (f"The baseline is {_baseline_words(run)}, run with the same seed and replications on the "
                     "same customers." if base is not None else "This scenario has no baseline.")
    return Page(
        title=f"{run.name}: loyalty-sim report",
        subtitle=f"Run of {run.name}: {run.summary['replications']} replications, {months} months, seed "
                 f"{run.summary.get('seed')}" + (", against its baseline" if base is not None else "")
                 + text.scale_note(run.summary.get("population_scale")),
        summary=(decision_bullets(decision, run.name) if decision else []) + text.run_summary(run.summary),
        charts=page_charts,
        headline=text.run_headline(run.summary), headline_title="Headline figures (totals over the horizon)",
        headline_note=f"Money in {CURRENCY} (the scenario's currency); differences are paired, scenario − baseline.",
        assumptions=text.assumptions(scenarios) if scenarios else None,
        assumptions_note=_assumptions_note(run),
        methods=text.methods("run", run.summary["replications"], run.summary.get("seed"), months,
                             baseline=baseline_note))


def _baseline_words(run: RunData) -> str:
    setting = (run.scenario or {}).get("baseline", "auto")
    if setting == "auto":
        return "the same scenario without its policy block (baseline: auto)"
    return f"the scenario file {setting}"


def _assumptions_note(run: RunData) -> str:
    if run.scenario is None:
        return ("This results directory holds no scenario.yaml (it was written by an older loyalty-sim), so the "
                "assumptions cannot be listed; rerun the scenario to get them.")
    return (f"The scenario as simulated (from {run.source or 'its file'}): validated, with every default "
            "filled in, keys as --set takes them. Rates are per year; money in the scenario's currency.")


def incremental_charts(run: RunData, reference: RunData, reference_label: str) -> list[Chart]:
    """Cumulative incremental profit with payback, and the waterfall, of ``run`` against ``reference``."""
    cumulative = analysis.cumulative_incremental_profit(run.timeseries, reference.timeseries)
    decomposition = analysis.decompose_incremental_profit(run.timeseries, reference.timeseries)
    if reference_label == "baseline":
        steps = analysis.waterfall_steps(decomposition)
    else:
        steps = analysis.waterfall_steps(decomposition, reference_label, run.name)
    table = {"columns": ["step", "mean", "95% CI"],
             "rows": [[row["label"], number(row["mean"]),
                       text.interval_text({"ci_low": row["ci_low"], "ci_high": row["ci_high"]})]
                      for _, row in steps.iterrows()]}
    return [
        Chart("cumulative-profit", f"Cumulative incremental profit of {run.name} and its payback",
              CAPTIONS["cumulative-profit"],
              charts.cumulative_profit_chart({run.name: cumulative}, reference=reference_label)),
        Chart(f"waterfall-{_slug(run.name)}", f"Incremental-value waterfall: {reference_label} → {run.name}",
              CAPTIONS["waterfall"],
              charts.waterfall_chart(steps, reference=reference_label, scenario=run.name), table=table),
    ]


def arm_charts(arms: dict[str, RunData], months: int) -> list[Chart]:
    """Customers and retention, CLV by channel, and points (for arms with a points program)."""
    curves = analysis.retention_curves({name: r.cohorts for name, r in arms.items()}, months)
    channels = analysis.channel_summary({name: r.cohorts for name, r in arms.items()})
    result = [
        Chart("customers", "Active customers and retention by cohort", CAPTIONS["customers"],
              charts.customers_chart({name: r.timeseries for name, r in arms.items()}, curves)),
        Chart("channel-clv", "CLV and CLV / CAC by channel", CAPTIONS["channel-clv"],
              charts.channel_clv_chart(channels, horizon_months=months)),
    ]
    if all(clv_charts.has_parts(r.cohorts) for r in arms.values()):   # results written before the parts lack them
        parts = clv_charts.parts_by_channel({name: r.cohorts for name, r in arms.items()})
        result.append(Chart("clv-parts", "CLV in four parts by channel",
                            CAPTIONS["clv-parts"], clv_charts.clv_parts_chart(parts, horizon_months=months),
                            table=_parts_table(parts)))
    with_points = [(name, r) for name, r in arms.items()
                   if "points_earned" in r.timeseries and r.timeseries["points_earned"].sum() > 0]
    for name, r in with_points[:MAX_POINTS_CHARTS]:
        result.append(Chart(f"points-{_slug(name)}", f"Points and liability: {name}", CAPTIONS["points"],
                            charts.points_chart(r.timeseries)))
    return result


def _parts_table(parts: pd.DataFrame) -> dict:
    """The numbers of the CLV parts chart: per arm and channel, each part and the total per customer."""
    names = [label for _, label in clv_charts.PARTS]
    arms = parts["arm"].nunique() > 1
    columns = (["scenario"] if arms else []) + ["channel", *names, "total"]
    rows = [([row["arm"]] if arms else []) + [row["channel"], *(number(row[c], 2) for c, _ in clv_charts.PARTS),
                                             number(row["clv_total"], 2)]
            for _, row in parts.iterrows()]
    return {"columns": columns, "rows": rows}


def formula_chart(arms: dict[str, RunData], months: int) -> Chart | None:
    """The guides' CLV formulas against the simulated CLV, with the inputs as a table and a sentence why; None
    when the run acquires nobody (an existing base alone): the formulas are about an acquired customer's CLV."""
    formulas = {}
    for name, r in list(arms.items())[:MAX_FORMULA_ARMS]:
        metrics = {key: value.get("mean") for key, value in r.summary["metrics"].items()}
        if not metrics.get("customers_acquired"):
            return None
        rate = ((r.scenario or {}).get("economics") or {}).get("annual_discount_rate", 0.10)
        formulas[name] = analysis.simple_clv(metrics, r.timeseries, float(rate))
    inputs = (("aov", "average order value (AOV)", 2), ("frequency", "purchases per active customer-year", 2),
              ("churn", "annual churn (dropped out per customer-year)", 3), ("lifespan", "lifespan 1 / churn, years", 2),
              ("retention", "annual retention r = 1 − churn", 3),
              ("margin_per_year", "m: margin − cost to serve per customer-year", 2),
              ("cost_to_serve_per_year", "cost to serve incl. attributable program costs per year", 2),
              ("cac", "CAC per customer acquired", 2), ("discount_rate", "i: annual discount rate", 3))
    table = {"columns": ["input", *formulas],
             "rows": [[label, *(number(f[key], digits) for f in formulas.values())] for key, label, digits in inputs]}
    first_name, first = next(iter(formulas.items()))
    note = (f"Why they differ ({first_name}): the simulated CLV ({number(first['simulated_clv'], 2)}) counts each "
            f"customer only until month {months}{_late_arrivals(next(iter(arms.values())).cohorts)}, whereas the "
            f"formulas assume a whole lifetime of {number(first['lifespan'], 1)} years; the formulas multiply "
            "averages, but customers differ (heavy buyers also stay longer, so the mix and the churn rate change "
            "over time); and the simulation discounts each cash flow from its date and counts the acquisition "
            "purchase, while the retention formula starts a year after acquisition. The revenue formula ignores "
            "margin and costs altogether.")
    return Chart("clv-formulas", "Marketing-guide CLV formulas against the simulated CLV", CAPTIONS["clv-formulas"],
                 charts.clv_formulas_chart(formulas, horizon_months=months), table=table, note=note)


def _late_arrivals(cohorts: pd.DataFrame) -> str:
    """Who the horizon cuts short: customers acquired late, referred late, or (all acquired at the start)
    nobody but by the horizon itself."""
    arrived = cohorts[cohorts["customers"] > 0] if "customers" in cohorts else cohorts
    later = arrived[arrived["acquisition_month"] > 0]
    if later.empty:
        return " (all of them were acquired at the start, so each is counted for the whole horizon)"
    if "channel" in later and (later["channel"] == "referral").all():
        return " (acquired at the start, but the customers they referred later contribute a few months only)"
    return ", so customers acquired late contribute a few months"


def frontier_chart(metrics_by_name: dict[str, dict]) -> Chart:
    """CLV per customer against program cost, per scenario, with the efficient frontier."""
    rows = []
    for name, metrics in metrics_by_name.items():
        cost, clv = metrics["program_cost"], metrics["clv_per_customer"]
        rows.append({"label": name, "cost": cost["mean"], "value": clv["mean"],
                     "cost_low": _or_nan(cost.get("ci_low")), "cost_high": _or_nan(cost.get("ci_high")),
                     "value_low": _or_nan(clv.get("ci_low")), "value_high": _or_nan(clv.get("ci_high"))})
    return Chart("frontier", "CLV against program cost: the efficient frontier", CAPTIONS["frontier"],
                 charts.frontier_chart(pd.DataFrame(rows), cost_label="Program cost over the horizon"))


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


def _slug(name: str) -> str:
    """A chart's file stem from a scenario name (lower case)."""
    return folder_name(name, "scenario").lower()


def comparison_page(comparison: ComparisonData) -> Page:
    """The report page of a comparison directory."""
    content, reference = comparison.content, comparison.reference
    months, reps = int(content["horizon_months"]), int(content["replications"])
    runs = comparison.runs
    compared = list(content["differences"])
    differences = pd.DataFrame([{"label": name, **{k: _or_nan(v) for k, v in
                                                   content["differences"][name]["profit"].items()}}
                                for name in compared])
    confidence = float(content.get("confidence", 0.95))
    decision = content.get("decision")
    page_charts = [] if decision is None else [
        Chart("decision", "The decision: chance of paying and what to learn first", DECISION_CAPTION,
              decision_chart(decision))]
    page_charts += [
        Chart("differences", f"Profit against {reference}", CAPTIONS["differences"],
              charts.differences_chart(differences, metric_label="Profit", reference=reference,
                                       confidence=confidence)),
        frontier_chart({name: content["metrics"][name] for name in content["metrics"]}),
    ]
    cumulative = {name: analysis.cumulative_incremental_profit(runs[name].timeseries, runs[reference].timeseries)
                  for name in compared}
    page_charts.append(Chart("cumulative-profit", f"Cumulative profit against {reference} and payback",
                             CAPTIONS["cumulative-profit"],
                             charts.cumulative_profit_chart(cumulative, reference=reference)))
    for name in compared[:MAX_WATERFALLS]:
        page_charts.append(incremental_charts(runs[name], runs[reference], reference)[1])
    page_charts += arm_charts(runs, months)
    formulas = formula_chart(runs, months)
    if formulas is not None:
        page_charts.append(formulas)
    scenarios = {name: r.scenario for name, r in runs.items() if r.scenario}
    return Page(
        title=f"Comparison of {', '.join(content['metrics'])}: loyalty-sim report",
        subtitle=f"{len(runs)} scenarios on the same customers: {reps} replications, {months} months, seed "
                 f"{content.get('seed')}; reference: {reference}" + text.scale_note(content.get("population_scale")),
        summary=(decision_bullets(decision, reference) if decision else [])
        + comparison_summary(comparison, {name: int(np.isfinite(payback_months(matrix)).sum())
                                          for name, matrix in cumulative.items()}), charts=page_charts,
        headline=comparison_headline(comparison), headline_title="Scenarios side by side (totals over the horizon)",
        headline_note=f"Money in {CURRENCY}. Differences are paired against {reference}; their intervals are at "
                      f"{confidence:.2%} (Bonferroni over {content.get('comparisons', len(compared))} comparisons).",
        assumptions=text.assumptions(scenarios) if scenarios else None,
        assumptions_note=("Each compared scenario as simulated, one column each; rows that differ are highlighted."
                          if scenarios else "The scenario folders hold no scenario.yaml (written by an older "
                                            "loyalty-sim), so the assumptions cannot be listed."),
        methods=text.methods("comparison", reps, content.get("seed"), months, confidence=confidence,
                             baseline=f"Every scenario is compared with {reference}"
                                      + (" (the baseline given with --baseline)." if content.get("reference_is_baseline")
                                         else " (the first scenario named).")))


def comparison_summary(comparison: ComparisonData, paid_back: dict[str, int] | None = None) -> list[dict[str, str]]:
    """Executive summary of a comparison: the winner by mean profit, its margin over the runner-up;
    ``paid_back`` counts the replications of each scenario that paid back against the reference."""
    content = comparison.content
    months = content["horizon_months"]
    profits = {name: metrics["profit"]["mean"] for name, metrics in content["metrics"].items()}
    ranking = sorted(profits, key=profits.get, reverse=True)
    winner = ranking[0]
    bullets = [{"lead": f"{winner} has the highest profit",
                "text": f"{number(profits[winner])} {CURRENCY} over {months} months; ranking: "
                        + ", ".join(f"{name} ({number(profits[name])})" for name in ranking) + "."}]
    if len(ranking) > 1:
        runner_up = ranking[1]
        table = comparison.table.pivot_table(index="replication", columns="scenario", values="profit")
        margin = analysis.interval(table[winner] - table[runner_up])
        bullets.append({"lead": text.verdict(margin, winner, runner_up),
                        "text": f"{winner} − {runner_up}, paired on the same customers: {text.amount(margin)}."})
    reference = comparison.reference
    level = f"{float(content.get('confidence', 0.95)):.2%}".replace(".00%", "%")
    for name in content["differences"]:
        diff = content["differences"][name]
        payback = text.payback_text(diff.get("payback_month"), content["replications"], months,
                                    (paid_back or {}).get(name), level)
        prudent = (f"; net of the incremental points liability "
                   f"{text.amount(diff[text.PRUDENT], level=level)}" if diff.get(text.PRUDENT) else "")
        bullets.append({"lead": f"{name} against {reference}",
                        "text": f"profit {text.amount(diff['profit'], level=level)}{prudent}; ROI "
                                f"{text.amount(diff.get('roi'), 2, level)}; {payback}."})
    bullets.append({"lead": "How sure",
                    "text": f"{content['replications']} replications per scenario; intervals of differences at "
                            f"{float(content.get('confidence', 0.95)):.2%} (Bonferroni). They measure simulation "
                            "noise given the assumptions, not doubt about the assumptions (sweep those)."})
    return bullets


def comparison_headline(comparison: ComparisonData) -> dict:
    """One row per scenario: profit, program cost, CLV, and the paired difference against the reference."""
    content = comparison.content
    rows = []
    for name, metrics in content["metrics"].items():
        diff = content["differences"].get(name)
        rows.append([name, number(metrics["profit"]["mean"]), text.interval_text(metrics["profit"]),
                     number(metrics["program_cost"]["mean"]), number(metrics["clv_per_customer"]["mean"], 2),
                     number(diff["profit"]["mean"]) if diff else "reference",
                     text.interval_text(diff["profit"]) if diff else "",
                     number((diff.get(text.PRUDENT) or {}).get("mean")) if diff else "",
                     text.interval_text(diff.get(text.PRUDENT)) if diff else "",
                     number(diff["roi"]["mean"], 2) if diff else "",
                     number(diff["payback_month"]["mean"], 1) if diff else ""])
    return {"columns": ["scenario", "profit", "95% CI", "program cost", "CLV per customer",
                        f"profit − {comparison.reference}", "CI", "net of points liability", "CI", "ROI",
                        "payback month"], "rows": rows}
