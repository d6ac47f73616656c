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


# ---- the report's first screen ------------------------------------------------------------------------------

DECISION_CAPTION = (
    "Left: the acceptability curve — the chance that the ROI (incremental profit per unit of program cost) "
    "exceeds the value on the horizontal axis, over the replications, each a joint draw of the uncertain "
    "assumptions and the customers. Right: what learning each uncertain assumption before deciding is worth "
    "(EVPPI, in currency): the expected gain from choosing with that assumption known instead of uncertain; "
    "the top bar is the assumption to test first. See docs/decisions.md.")


def decision_bullets(decision: dict[str, Any], name: str) -> list[dict[str, str]]:
    """The executive summary's first bullets: the recommendation with its chance of paying, what must be
    true for it to pay (break-even values) and what to learn first."""
    figures = decision if "p_positive" in decision else None
    bullets: list[dict[str, str]] = []
    if figures is not None:
        chance = figures["p_positive"]
        verdict = "Go" if chance >= 0.8 else "Do not go" if chance <= 0.2 else "Undecided"
        profit = figures["incremental_profit"]
        over = ("over the uncertain assumptions and the customers." if decision.get("assumptions") else
                "over the customers' chance alone: no assumption of this scenario is written as a distribution "
                "(docs/decisions.md), so this is not yet the chance that it pays whatever the reactions are.")
        bullets.append({"lead": f"{verdict}: {name} pays in {chance:.0%} of the replications",
                        "text": f"incremental profit {_money(profit['p5'])} to {_money(profit['p95'])} "
                                f"(5%–95%), median {_money(profit['p50'])}, {over}"})
        evens = [f"{key} {'≤' if even['pays_when'] == 'below' else '≥'} {_value(even['value'])}"
                 for key, even in (figures.get("break_even") or {}).items() if even.get("value") is not None]
        if evens:
            bullets.append({"lead": "It pays when", "text": "; ".join(evens) + " (break-even values, each "
                            "with the other assumptions as uncertain as they are)."})
    else:
        options = decision.get("options") or {}
        best = max(options, key=lambda n: options[n]["p_best"]) if options else None
        if best is not None:
            bullets.append({"lead": f"Best bet: {best}", "text": (
                f"the most profitable option in {options[best]['p_best']:.0%} of the replications; expected "
                f"loss of choosing it {_money(options[best]['expected_loss'])}.")})
    evppi = {k: v for k, v in (decision.get("evppi") or {}).items() if v}
    if evppi:
        first = max(evppi, key=evppi.get)
        bullets.append({"lead": f"Learn {first} first", "text": (
            f"knowing it before deciding is worth about {_money(evppi[first])}; all assumptions together "
            f"{_money(decision.get('evpi'))} (EVPI).")})
    elif decision.get("assumptions"):
        bullets.append({"lead": "Nothing worth learning first",
                        "text": "no uncertain assumption could change the decision (EVPI 0)."})
    return bullets


def decision_chart(decision: dict[str, Any]):
    """The acceptability curve (left) and the EVPPI bars (right) of a ``decision`` block."""
    from sim.report.style import PROGRAM, money_axis, new_figure, styled

    @styled
    def draw():
        figure, (left, right) = new_figure(3.6, ncols=2)
        curves = {"": decision["acceptability"]} if "acceptability" in decision else {
            name: option["acceptability"] for name, option in decision.get("by_option", {}).items()}
        for label, curve in curves.items():
            left.plot([p["roi"] for p in curve], [p["probability"] for p in curve], label=label or None)
        left.set_xlabel("ROI threshold k")
        left.set_ylabel("chance ROI > k")
        left.set_ylim(0, 1.02)
        if len(curves) > 1:
            left.legend(frameon=False)
        evppi = {k: v or 0.0 for k, v in (decision.get("evppi") or {}).items()}
        keys = sorted(evppi, key=evppi.get)
        right.barh(keys, [evppi[k] for k in keys], color=PROGRAM)
        money_axis(right.xaxis, "EVPPI")
        right.set_xlim(left=0.0, right=max([*evppi.values(), 0.0]) * 1.1 or 1.0)
        if not keys:   # no axes to read: a sentence in the panel, its title short enough to fit
            right.set_axis_off()
            right.text(0.5, 0.5, "no assumption is written as a distribution,\nso there is nothing to learn first",
                       ha="center", va="center", transform=right.transAxes)
        right.set_title(f"EVPI {_money(decision.get('evpi'))}" if decision.get("assumptions")
                        else "value of information", fontsize="medium")
        return figure

    return draw()
