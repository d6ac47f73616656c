"""The report's words: executive summary, headline tables, the assumptions table and the methods note.

Sentences are built from the numbers (never pasted); a bullet is ``{"lead": ..., "text": ...}``, a table
``{"columns": [...], "rows": [[...], ...]}``. HTML escaping is the template's job.
"""

from __future__ import annotations

import math
from typing import Any

from sim.accounting.metrics import HEADLINE_METRICS
from sim.report.style import CURRENCY, number

#: Labels of the headline metrics (:data:`sim.accounting.metrics.HEADLINE_METRICS`) in the report.
LABELS = {
    "profit": "profit", "npv_profit": "NPV of profit", "program_cost": "program cost", "gross_margin": "gross margin",
    "net_revenue": "net revenue", "acquisition_cost": "acquisition cost", "clv_per_customer": "CLV per customer",
    "clv_minus_cac_per_customer": "CLV − CAC per customer", "customers_acquired": "customers acquired",
    "active_customers_end": "active customers at the end", "purchases": "purchases",
    "points_liability": "points liability at the end",
}
HEADLINE = tuple((key, LABELS[key]) for key in HEADLINE_METRICS)
#: Rows of the headline table of a run with existing customers (after the CLV of acquired customers).
EXISTING_ROWS = (("existing_customers", "existing customers at the start"),
                 ("clv_per_existing_customer", "CLV per existing customer, from the start"))
#: The prudent incremental profit in vs_baseline and compare.json's differences: incremental profit minus the
#: incremental points liability at the horizon.
PRUDENT = "profit_net_of_liability"
#: Top-level scenario keys in the assumptions table, in this order, with their group titles.
GROUPS = (("run", "run settings"), ("economics", "economics"), ("segments", "customer segments"),
          ("acquisition", "acquisition channels"), ("existing_customers", "existing customers"),
          ("policy", "policy (levers)"),
          ("response", "response to the levers"))
RUN_KEYS = ("horizon_months", "replications", "seed", "baseline", "population_scale")


def amount(estimate: dict[str, Any] | None, digits: int = 0, level: str = "95%") -> str:
    """'1,234 (95% CI 1,100 to 1,368)' from {mean, ci_low, ci_high}; 'n/a' when undefined."""
    if not estimate or estimate.get("mean") is None:
        return "n/a"
    text = number(estimate["mean"], digits)
    low, high = estimate.get("ci_low"), estimate.get("ci_high")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return text
    return f"{text} ({level} CI {number(low, digits)} to {number(high, digits)})"


def interval_text(estimate: dict[str, Any] | None, digits: int = 0) -> str:
    """'1,100 .. 1,368', or '' without an interval."""
    if not estimate or estimate.get("ci_low") is None or estimate.get("ci_high") is None:
        return ""
    if not (math.isfinite(estimate["ci_low"]) and math.isfinite(estimate["ci_high"])):
        return ""
    return f"{number(estimate['ci_low'], digits)} .. {number(estimate['ci_high'], digits)}"


def verdict(estimate: dict[str, Any], better: str, worse: str) -> str:
    """Who wins at 95%: the interval of ``better - worse`` decides."""
    low, high = estimate.get("ci_low"), estimate.get("ci_high")
    if low is not None and low > 0:
        winner = f"{better} wins"
    elif high is not None and high < 0:
        winner = f"{worse} wins"
    else:
        return f"No clear winner between {better} and {worse} at 95%"
    return "The" + winner[3:] if winner.startswith("the ") else winner


def payback_text(payback: dict[str, Any] | None, replications: int, horizon_months: int,
                 paid_back: int | None = None, level: str = "95%") -> str:
    """The payback month with its interval, or how many replications did not pay back (``paid_back``,
    else summary.json's ``replications_paid_back``)."""
    if not payback:
        return "payback not computed"
    if payback.get("mean") is None:
        paid = payback.get("replications_paid_back", paid_back)
        missing = "some" if paid is None else f"{replications - paid} of {replications}"
        return f"no payback within the {horizon_months} months in {missing} replications"
    if payback.get("ci_low") == payback.get("ci_high") == payback["mean"]:
        return f"pays back in month {number(payback['mean'])} in every replication"
    return f"pays back in month {amount(payback, 1, level)}"


def run_summary(summary: dict[str, Any]) -> list[dict[str, str]]:
    """Executive summary bullets of a run: the program against its baseline, or the run alone."""
    name, months, reps = summary["scenario"], summary["horizon_months"], summary["replications"]
    metrics = summary["metrics"]
    vs = summary.get("vs_baseline")
    if vs is None:
        return [{"lead": f"{name}: no policy to compare",
                 "text": f"profit over {months} months {amount(metrics['profit'])} {CURRENCY}; CLV per customer "
                         f"{amount(metrics['clv_per_customer'], 2)}, after CAC "
                         f"{amount(metrics['clv_minus_cac_per_customer'], 2)}. Add a policy block (or compare "
                         f"scenarios) to see what a program would change."},
                _sureness(reps)]
    bullets = [{"lead": verdict(vs["profit"], name, "the baseline"),
                "text": f"incremental profit over {months} months against the same customers without the "
                        f"program: {amount(vs['profit'])} {CURRENCY}."},
               {"lead": "Return and payback",
                "text": f"ROI {amount(vs['roi'], 2)} (incremental profit per unit of program cost, which is "
                        f"{number(metrics['program_cost']['mean'])}); "
                        f"{payback_text(vs.get('payback_month'), reps, months)}."}]
    liability = metrics.get("points_liability", {}).get("mean")
    if liability:
        prudent = vs.get(PRUDENT)
        net = amount(prudent) if prudent else number(vs["profit"]["mean"] - liability)
        bullets.append({"lead": "Points liability",
                        "text": f"the points outstanding at the end will cost about {number(liability)} "
                                f"(net of expected breakage); profit does not charge them yet, so the prudent "
                                f"incremental profit (net of the incremental liability) is {net}."})
    member = summary.get("member_comparison")
    if member and member.get("overstatement_factor"):
        bullets.append({"lead": "Self-selection",
                        "text": f"comparing members with non-members would credit the program with "
                                f"{member['naive_effect_per_member']['mean']:.2f} extra repeat purchases per "
                                f"member; the true effect is {member['incremental_repeat_purchases_per_member']['mean']:.2f}"
                                f" (×{member['overstatement_factor']:.1f} overstated)."})
    bullets.append(_sureness(reps))
    return bullets


def _sureness(replications: int) -> dict[str, str]:
    return {"lead": "How sure",
            "text": f"{replications} replications; the 95% intervals measure simulation noise given the "
                    f"assumptions below, not doubt about the assumptions themselves (sweep those)."}


def run_headline(summary: dict[str, Any]) -> dict[str, Any]:
    """Headline table of a run: the scenario, its baseline and the paired difference."""
    metrics, vs = summary["metrics"], summary.get("vs_baseline")
    columns = ["metric", summary["scenario"], "95% CI"]
    if vs is not None:
        columns += ["difference vs baseline", "95% CI"]
    rows = []
    existing = bool(metrics.get("existing_customers", {}).get("mean"))
    shown = []
    for key, label in HEADLINE:   # the base's CLV apart from the acquired customers', when there is a base
        shown.append((key, label))
        if key == "clv_minus_cac_per_customer" and existing:
            shown += EXISTING_ROWS
    for key, label in shown:
        if key not in metrics or (key == "points_liability" and not metrics[key].get("mean")):
            continue
        digits = 2 if "per_customer" in key else 0
        row = [label, number(metrics[key].get("mean"), digits), interval_text(metrics[key], digits)]
        if vs is not None:
            row += [number(vs[key].get("mean"), digits), interval_text(vs[key], digits)]
        rows.append(row)
        if key == "profit" and vs is not None and vs.get(PRUDENT):
            rows.append(["profit net of points liability", "", "", number(vs[PRUDENT].get("mean")),
                         interval_text(vs[PRUDENT])])
    if vs is not None:
        rows.append(["ROI", "", "", number(vs["roi"].get("mean"), 2), interval_text(vs["roi"], 2)])
        rows.append(["payback month", "", "", number(vs["payback_month"].get("mean"), 1),
                     interval_text(vs["payback_month"], 1)])
    return {"columns": columns, "rows": rows}


def methods(kind: str, replications: int, seed: Any, horizon_months: int, *, baseline: str | None,
            confidence: float = 0.95) -> list[str]:
    """The methods note: replications, intervals, common random numbers, what the baseline is."""
    notes = [
        (f"Every figure is a mean over {replications} independent replications (seed {seed}) of a "
         f"{horizon_months}-month simulation in continuous time. Intervals are t-based: mean ± "
         f"t(0.975, n−1) × standard deviation / √n over the replications (Law & Kelton, ch. 9); they measure "
         "simulation noise, not uncertainty in the inputs."),
        ("Common random numbers: a customer's traits come from random streams keyed by (seed, replication, "
         "customer), so every scenario compared here faces the same customers, and differences are taken "
         "replication by replication (paired), which removes most of the noise."),
    ]
    if baseline:
        notes.append(baseline)
    if kind == "comparison" and confidence < 0.95:
        notes.append(f"With several comparisons each interval of a difference is a Bonferroni interval at "
                     f"{confidence:.2%}, so that all of them hold together with 95% confidence.")
    notes.append("Money is in the scenario's currency. Profit = gross margin − cost to serve − program costs − "
                 "acquisition cost; CLV per customer is discounted (continuously, at the scenario's annual rate) "
                 "from each customer's acquisition to the horizon and is before CAC, so it is truncated at the "
                 "horizon for customers still active then. The incremental-profit decomposition is documented "
                 "in docs/report.md.")
    return notes


def flatten(scenario: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(group, dotted key, value) rows of a scenario, keys as ``--set`` takes them (list items by index)."""
    rows: list[tuple[str, str, str]] = []
    for key in RUN_KEYS:
        if key in scenario:
            rows.append(("run", key, _value(scenario[key])))
    for group, _title in GROUPS[1:]:
        if scenario.get(group) is not None:
            _walk(group, group, scenario[group], rows)
    return rows


def _walk(group: str, prefix: str, value: Any, rows: list[tuple[str, str, str]]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _walk(group, f"{prefix}.{key}", item, rows)
    elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        for index, item in enumerate(value):
            _walk(group, f"{prefix}.{index}", item, rows)
    elif prefix == "existing_customers.file" and isinstance(value, str):
        rows.append((group, prefix, shown_path(value)))
    else:
        rows.append((group, prefix, _value(value)))


def shown_path(path: str) -> str:
    """A file the scenario read, as a reader of the report would find it: relative to the directory the report
    is written from when the file lies below it (the results store it resolved), else as stored."""
    import os

    absolute = os.path.abspath(path)
    here = os.getcwd()
    return os.path.relpath(absolute, here) if absolute.startswith(here + os.sep) else path


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (dict, list)) and not value:
        return "none"
    return str(value)


def assumptions(scenarios: dict[str, dict[str, Any]], swept: dict[str, str] | None = None) -> dict[str, Any]:
    """The assumptions table: a row per key, a column per scenario; rows that differ are flagged.

    ``swept`` maps dotted keys of a sweep to a description of their values, shown instead of the value.
    """
    names = list(scenarios)
    values: dict[str, dict[str, str]] = {}
    groups: dict[str, str] = {}
    for name, scenario in scenarios.items():
        for group, key, value in flatten(scenario):
            values.setdefault(key, {})[name] = value
            groups.setdefault(key, group)
    for key in swept or {}:
        if key not in values:
            values[key] = {}
            groups[key] = _group_of(key)
    titles = dict(GROUPS)
    order = {group: i for i, (group, _t) in enumerate(GROUPS)}
    keys = sorted(values, key=lambda k: order.get(groups[k], len(order)))
    rows = []
    for key in keys:
        cells = [values[key].get(name, "—") for name in names]
        if swept and key in swept:
            cells = [f"swept: {swept[key]}"] * len(names)
        rows.append({"group": titles.get(groups[key], groups[key]), "key": key, "values": cells,
                     "differs": len(set(cells)) > 1 or bool(swept and key in swept)})
    return {"columns": names, "rows": rows}


def _group_of(key: str) -> str:
    top = key.split(".")[0]
    return top if top in dict(GROUPS) else "run"


def scale_note(population_scale: Any) -> str:
    """'; one customer in 10 simulated, counts and money at the population's size' for a sampled run
    (``population_scale`` above 1), else empty: said in every report's subtitle."""
    scale = int(population_scale or 1)
    return "" if scale == 1 else (f"; one customer in {scale:,} simulated (population_scale {scale:,}), counts and "
                                  "money at the population's size")
