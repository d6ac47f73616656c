"""One look for every chart: sizes, colours, fonts, and number formats for money and counts.

Charts are built on :class:`matplotlib.figure.Figure` directly (no pyplot, so no global figure registry
and no interactive backend); saving renders with Agg.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

#: What money is measured in: scenarios have no currency code, every amount is in the scenario's currency.
CURRENCY = "currency units"

#: Colour-blind-safe palette (Okabe & Ito 2008), in the order scenarios and series take them.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
PROGRAM = PALETTE[0]
BASELINE = "#8C8C8C"
GAIN = "#009E73"
LOSS = "#D55E00"
TOTAL = "#4D4D4D"
FRONTIER = "#D55E00"

#: Width of a chart in inches; PNGs are saved at :data:`DPI` (so 8 in = 1,040 px, sharp on most screens).
WIDTH = 8.0
DPI = 130

RC = {
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#E3E3E3",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}

F = TypeVar("F", bound=Callable[..., Figure])


def styled(chart: F) -> F:
    """Run a chart function under the house style (rcParams are read when artists are created)."""

    @functools.wraps(chart)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(RC):
            return chart(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def new_figure(height: float = 4.2, width: float = WIDTH, **subplots) -> tuple[Figure, object]:
    """A figure with constrained layout and its axes (``subplots`` as for ``Figure.subplots``)."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return figure, figure.subplots(**subplots)


def compact(value: float) -> str:
    """1,234,567 -> '1.23M', 45,600 -> '45.6k', 12.5 -> '12.5' (for tick labels and bar labels)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    magnitude = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return _minus(f"{value / limit:.3g}{suffix}")
    if magnitude >= 100 or value == int(value):
        return _minus(f"{value:,.0f}")
    return _minus(f"{value:.3g}")


def _minus(text: str) -> str:
    """The typographic minus sign, as matplotlib's own tick labels have it."""
    return text.replace("-", "\u2212", 1) if text.startswith("-") else text


def number(value: float | None, digits: int = 0) -> str:
    """A number for text: thousands separators; ``digits`` decimals below 1,000 (none above)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if abs(value) >= 1000:
        return _minus(f"{value:,.0f}")
    return _minus(f"{value:,.{digits}f}")


def tick(value: float) -> str:
    """A tick label: like :func:`compact` but with up to 4 significant digits (10.25M, not 10.2M)."""
    magnitude = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return _minus(f"{value / limit:.4g}{suffix}")
    return _minus(f"{value:.4g}")


COMPACT = FuncFormatter(lambda value, _pos: tick(value))


def money_axis(axis, label: str) -> None:
    """Label an axis as an amount of money and format its ticks compactly."""
    axis.set_label_text(f"{label} ({CURRENCY})")
    axis.set_major_formatter(COMPACT)


def sentence(text: str) -> str:
    """``text`` with its first letter capitalised and the rest untouched (CLV stays CLV)."""
    return text[:1].upper() + text[1:]


def colours(count: int) -> Sequence[str]:
    """``count`` distinct colours from the palette (cycled)."""
    return [PALETTE[i % len(PALETTE)] for i in range(count)]


def arm_colours(names: Sequence[str]) -> list[str]:
    """A colour per scenario: grey for a baseline, the palette in order for the others."""
    others = iter(PALETTE * (1 + len(names) // len(PALETTE)))
    return [BASELINE if "baseline" in name else next(others) for name in names]
