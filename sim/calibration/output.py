"""What ``calibrate`` hands back: the ``segments:`` YAML block, and the printed fit and holdout report.

The YAML is written in the models' native parameters (times in weeks, as fitted), each line followed by a
comment with the same law in the scenario's strategist-friendly form (``mean`` / ``cv`` per year,
``annual_churn``), which :mod:`sim.schema.behaviour` maps back onto exactly these native parameters.
"""

from __future__ import annotations

import datetime as dt
import math

import yaml

from sim.calibration.log import to_date
from sim.calibration.mle import Fit, FitError
from sim.calibration.models import BGNBD, GAMMA_GAMMA
from sim.calibration.pipeline import Calibration, SegmentFit
from sim.schema.units import WEEKS_PER_YEAR


def segments_yaml(calibration: Calibration) -> str:
    """The ``segments:`` block (with a comment header) ready to paste into a scenario file.

    Raises
    ------
    ValueError
        If a segment's Gamma-Gamma ``q`` is at most 1 (an infinite mean spend, which a scenario refuses).
    """
    summary = calibration.summary
    cohort = (f"#   {summary.size:,} customers with a first purchase by {summary.calibration_end}, "
              f"{int(summary.x.sum()):,} repeat purchases in the calibration period;")
    lines = [f"# Calibrated by loyalty-sim calibrate from {calibration.source}:", cohort,
             "#   native parameters with times in weeks, as fitted.",
             "#   " + _model_line(calibration),
             "# The comment after each line is the same law in the strategist-friendly form.",
             "segments:"]
    for part in calibration.segments:
        lines += _segment_lines(part, calibration.chosen, several=len(calibration.segments) > 1)
    if len(calibration.segments) > 1:
        mix = ", ".join(f"{name}: {share}" for name, share in _shares(calibration.segments).items())
        lines += ["# The segments' shares of the cohort, for an acquisition channel:", f"#   segments: {{{mix}}}"]
    return "\n".join(lines) + "\n"


#: How far a scenario that starts from the customer table looks ahead, in months.
FORWARD_MONTHS = 36


def scenario_yaml(calibration: Calibration, name: str, customers: str | None = None) -> str:
    """A complete scenario that runs as it is: the calibrated ``segments:`` block, and its customers.

    With ``customers`` (the path of the customer table ``--customers`` wrote, relative to the scenario) and one
    segment, the scenario starts from the firm's customers as they stand at the end of the calibration period
    (``existing_customers``) and goes on for :data:`FORWARD_MONTHS` months, new customers arriving at the
    log's rate of first purchases (an assumption, marked as such). Otherwise customers arrive as the log's
    cohort did (its first purchases spread evenly over the months they span), over the months from the first
    purchase to the end of the log. Economics are not in a transaction log: the margin written is an
    assumption, marked as such, to be replaced by the firm's own.

    Raises
    ------
    ValueError
        As :func:`segments_yaml`.
    """
    summary = calibration.summary
    first, last_first = to_date(int(summary.first_day.min())), to_date(int(summary.first_day.max()))
    arrival_months = _months_between(first, last_first) + 1
    horizon = max(_months_between(first, summary.log_end) + 1, arrival_months, 12)
    per_month = max(1, round(summary.size / arrival_months))
    channel = {"channel": "calibrated", "cac": 0.0, "new_per_month": per_month, "months": arrival_months}
    if len(calibration.segments) > 1:
        channel["segments"] = _shares(calibration.segments)
    else:
        channel["segments"] = {calibration.segments[0].name: 1.0}
    from_base = customers is not None and len(calibration.segments) == 1
    if from_base:
        horizon = FORWARD_MONTHS
        channel = {"channel": "new", "cac": 0.0, "new_per_month": per_month, "segments": channel["segments"]}
    head = yaml.safe_dump({"name": name, "description": f"customers as calibrated from {calibration.source}",
                           "horizon_months": horizon, "replications": 20, "seed": 1},
                          sort_keys=False, default_flow_style=False, width=1000)
    economics = ("economics:                 # not in a transaction log: the firm's own figures go here\n"
                 "  gross_margin: 0.30         # an assumption: the margin rate on list-price revenue\n"
                 "  cost_to_serve_per_order: 0.0\n"
                 "  annual_discount_rate: 0.10\n")
    arrivals = (f"# {summary.size:,} customers made their first purchase from {first} to {last_first}: about "
                f"{per_month:,} a month over {arrival_months} month(s).\n")
    if from_base:
        end = summary.calibration_end.isoformat()
        arrivals += (f"# The simulation starts from them as they stood on {end} (the customer table), and new "
                     f"customers go on\n# arriving at that rate (an assumption: set your own rate and CAC).\n"
                     + yaml.safe_dump({"existing_customers": {"file": customers,
                                                              "segment": calibration.segments[0].name}},
                                      sort_keys=False, default_flow_style=None, width=1000))
    elif customers is not None:
        arrivals += ("# The customer table holds several segments; existing_customers takes one segment a table, so "
                     "this scenario\n# replays the log's cohort instead.\n")
    return (head + economics + segments_yaml(calibration) + arrivals
            + yaml.safe_dump({"acquisition": [channel]}, sort_keys=False, default_flow_style=None, width=1000))


def _months_between(start: dt.date, end: dt.date) -> int:
    """Whole calendar months from ``start``'s month to ``end``'s."""
    return (end.year - start.year) * 12 + end.month - start.month


def _model_line(calibration: Calibration) -> str:
    fits = [f"{name} {fit.log_likelihood:,.2f}" if isinstance(fit, Fit) else f"{name} did not converge"
            for name, fit in calibration.candidates.items()]
    if len(fits) == 1 and isinstance(calibration.candidates[calibration.chosen], Fit):
        fits = [f"log-likelihood {calibration.candidates[calibration.chosen].log_likelihood:,.2f}"]
    how = "the better log-likelihood of " if len(fits) > 1 else ""
    return (f"purchases and dropout: {calibration.chosen} ({how}{', '.join(fits)});\n#   spend: {GAMMA_GAMMA} "
            f"(log-likelihood {calibration.spend.log_likelihood:,.2f})")


def _segment_lines(part: SegmentFit, model: str, *, several: bool) -> list[str]:
    b, spend = part.behaviour.params, part.spend.params
    if spend["q"] <= 1:
        raise ValueError(f"segment {part.name}: the fitted Gamma-Gamma q = {spend['q']:.4g} is not above 1, "
                         "so the mean spend is infinite and no scenario can use it")
    rate = {"r": b["r"], "alpha": b["alpha"], "alpha_unit": "week"}
    friendly_rate = {"mean": b["r"] / b["alpha"] * WEEKS_PER_YEAR, "cv": 1 / math.sqrt(b["r"])}
    if model == BGNBD:
        dropout = {"model": "per_purchase", "a": b["a"], "b": b["b"]}
        friendly_dropout = {"model": "per_purchase", "mean": b["a"] / (b["a"] + b["b"]),
                            "cv": math.sqrt(b["b"] / (b["a"] * (b["a"] + b["b"] + 1)))}
    else:
        beta_years = b["beta"] / WEEKS_PER_YEAR
        dropout = {"model": "hazard", "s": b["s"], "beta": b["beta"], "beta_unit": "week"}
        friendly_dropout = {"model": "hazard", "annual_churn": -math.expm1(b["s"] * math.log1p(-1 / (beta_years + 1))),
                            "cv": 1 / math.sqrt(b["s"])}
    order_value = {"p": spend["p"], "q": spend["q"], "gamma": spend["gamma"]}
    friendly_value = {"mean": spend["p"] * spend["gamma"] / (spend["q"] - 1), "cv": 1 / math.sqrt(spend["p"])}
    if spend["q"] > 2:
        friendly_value["between_cv"] = 1 / math.sqrt(spend["q"] - 2)
    head = [f"  # {part.share:.1%} of the cohort ({part.customers:,} customers)"] if several else []
    return head + [
        f"  {part.name}:",
        _pair("purchases_per_year", rate, friendly_rate, "(purchases per year while active)"),
        _pair("dropout", dropout, friendly_dropout, "(chance of leaving after each repeat purchase)"
              if model == BGNBD else "(share of new customers gone within a year)"),
        _pair("order_value", order_value, friendly_value,
              "" if spend["q"] > 2 else "(q <= 2: the customers' means have no finite cv)"),
    ]


def _pair(key: str, native: dict, friendly: dict, note: str) -> str:
    line = f"    {key}: {_flow(native, 6)}"
    return f"{line:<78}  # = {_flow(friendly, 4)}" + (f" {note}" if note else "")


def _flow(values: dict, digits: int) -> str:
    return "{" + ", ".join(f"{k}: {_yaml_float(v, digits)}" if isinstance(v, float) else f"{k}: {v}"
                           for k, v in values.items()) + "}"


def _yaml_float(value: float, digits: int) -> str:
    """A float YAML 1.1 reads as a float: with a decimal point and a signed exponent (1.0e-05, not 1e-05)."""
    text = f"{value:.{digits}g}"
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}e{exponent}" if exponent else mantissa


def _shares(parts: list[SegmentFit]) -> dict[str, float]:
    """Shares rounded to 3 decimals that still sum to exactly 1 (the largest absorbs the rounding)."""
    shares = {p.name: round(p.share, 3) for p in parts}
    largest = max(shares, key=shares.get)
    shares[largest] = round(1.0 - sum(v for k, v in shares.items() if k != largest), 3)
    return shares


# ---------------------------------------------------------------------------------------------- report


def print_report(calibration: Calibration, console) -> None:
    """Print the fits (estimates with standard errors, log-likelihoods, AIC, the choice) and the holdout check."""
    from rich.markup import escape
    from rich.table import Table

    summary = calibration.summary
    console.print(f"{escape(str(calibration.source))}: {summary.size:,} customers with a first purchase by "
                  f"{summary.calibration_end}; {int(summary.x.sum()):,} repeat purchases by "
                  f"{int((summary.x > 0).sum()):,} of them in the calibration period; T from "
                  f"{summary.T.min():.2f} to {summary.T.max():.2f} weeks")
    later = calibration.log_customers - summary.size
    if later:
        console.print(f"{later:,} customers whose first purchase came after {summary.calibration_end} are left out")
    fits = Table(title="Maximum-likelihood fits (times in weeks; standard errors from the Hessian)")
    for column in ("model", "parameter", "estimate", "std. error", "log-likelihood", "AIC"):
        fits.add_column(column, justify="left" if column in ("model", "parameter") else "right")
    for name, fit in [*calibration.candidates.items(), (GAMMA_GAMMA, calibration.spend)]:
        _fit_rows(fits, name + (" (chosen)" if name == calibration.chosen else ""), fit)
    console.print(fits)
    for fit in calibration.candidates.values():
        if isinstance(fit, FitError):
            console.print(f"note: {fit}; {calibration.chosen} is used")
    if len(calibration.segments) > 1:
        console.print(_segments_table(calibration))
    if calibration.holdout is None:
        console.print("no holdout check: give --calibration-end before the log's last day for one")
        return
    for table in _holdout_tables(calibration):
        console.print(table)


def _fit_rows(table, label: str, fit: Fit | FitError) -> None:
    if isinstance(fit, FitError):
        table.add_row(label, "did not converge", "-", "-", "-", "-")
        return
    for i, (name, value) in enumerate(fit.params.items()):
        last = i == len(fit.params) - 1
        table.add_row(label if i == 0 else "", name, f"{value:.4f}", f"{fit.std_errors[name]:.4f}",
                      f"{fit.log_likelihood:,.2f}" if i == 0 else "", f"{fit.aic:,.2f}" if i == 0 else "",
                      end_section=last)


def _segments_table(calibration: Calibration):
    from rich.table import Table

    table = Table(title=f"RFM segments: laws of each segment's customers under the pooled {calibration.chosen} "
                        f"and {GAMMA_GAMMA} fits (± standard errors, delta method)")
    names = [*calibration.segments[0].behaviour.params, *calibration.segments[0].spend.params]
    for column in ("segment", "share", *names):
        table.add_column(column, justify="right")
    for part in calibration.segments:
        values = {**part.behaviour.params, **part.spend.params}
        errors = {**part.behaviour.std_errors, **part.spend.std_errors}
        table.add_row(part.name, f"{part.share:.1%}", *(f"{values[n]:.4g} ± {errors[n]:.2g}" for n in names))
    return table


def _holdout_tables(calibration: Calibration) -> list:
    from rich.table import Table

    check = calibration.holdout
    title = (f"Holdout check: repeat purchases in the {check.weeks:.1f} weeks after "
             f"{calibration.summary.calibration_end}: actual {check.actual:,.0f}, predicted {check.predicted:,.1f}")
    tables = []
    for key, frame in (("calibration repeat purchases", check.by_repeat_purchases), ("segment", check.by_segment)):
        if frame is None:
            continue
        table = Table(title=title if not tables else f"Holdout check by RFM segment ({calibration.chosen})")
        for column in (key, "customers", "actual per customer", "predicted per customer"):
            table.add_column(column, justify="right")
        for row in frame.itertuples(index=False):
            table.add_row(str(row[0]), f"{row.customers:,}", f"{row.actual:.3f}", f"{row.predicted:.3f}")
        tables.append(table)
    return tables
