"""The decision in words: what a ``decision`` block (summary.json, compare.json) says, line by line, for the
command line's table and the report (``docs/results.md``, "The decision block")."""

from __future__ import annotations

from typing import Any


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def decision_rows(decision: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows: the chance of paying, its distribution, the options, the value of learning
    each assumption and the break-even values."""
    rows: list[tuple[str, str]] = []
    figures = decision if "p_positive" in decision else None
    for name, option in (decision.get("by_option") or {}).items():
        rows += [(f"{name}: chance incremental profit > 0", f"{option['p_positive']:.0%}")]
    if figures is not None:
        rows += _option_rows(figures, decision["hurdle"])
    options = decision.get("options") or {}
    if len(options) > 2:
        for name, option in options.items():
            rows.append((f"{name}: chance it is the best option / expected loss of choosing it",
                         f"{option['p_best']:.0%} / {_money(option['expected_loss'])}"))
    if not decision.get("assumptions"):
        rows.append(("uncertain assumptions", "none: the spread is simulation noise only"))
        return rows
    rows.append(("value of perfect information (EVPI)", _money(decision.get("evpi"))))
    ranked = sorted((decision.get("evppi") or {}).items(), key=lambda kv: -(kv[1] or 0.0))
    for key, value in ranked:
        rows.append((f"worth learning {key} first (EVPPI)", _money(value)))
    return rows


def _option_rows(figures: dict[str, Any], hurdle: float) -> list[tuple[str, str]]:
    profit = figures["incremental_profit"]
    rows = [("chance incremental profit > 0", f"{figures['p_positive']:.0%}")]
    if hurdle:
        rows.append((f"chance incremental profit > {_money(hurdle)}", f"{figures['p_above_hurdle']:.0%}"))
    rows.append(("incremental profit 5% / 50% / 95%",
                 f"{_money(profit['p5'])} / {_money(profit['p50'])} / {_money(profit['p95'])}"))
    spread = figures.get("spread") or {}
    if spread.get("simulation_noise_share") is not None:
        rows.append(("share of its variance from simulation noise", f"{spread['simulation_noise_share']:.0%}"))
    for key, even in (figures.get("break_even") or {}).items():
        if even["value"] is None:
            text = {"always": "pays over the whole range drawn", "never": "never pays over the range drawn"}.get(
                even["pays_when"], "too few replications")
        else:
            text = (f"{_value(even['value'])} [{_value(even['ci_low'])} .. {_value(even['ci_high'])}], "
                    f"pays {even['pays_when']}")
        rows.append((f"break-even {key}", text))
    return rows
