"""Time units. Inside the engine every time is in **years**; every conversion happens here.

A year is 365.25 days, a month exactly 1/12 year, a week 7 days (docs/scenarios.md, "Units").
"""

from __future__ import annotations

from typing import Literal

DAYS_PER_YEAR = 365.25
MONTHS_PER_YEAR = 12
WEEKS_PER_YEAR = DAYS_PER_YEAR / 7.0

TimeUnit = Literal["day", "week", "month", "year"]

#: How many of each unit make one year.
UNITS_PER_YEAR: dict[str, float] = {
    "day": DAYS_PER_YEAR,
    "week": WEEKS_PER_YEAR,
    "month": float(MONTHS_PER_YEAR),
    "year": 1.0,
}


def years(amount: float, unit: str) -> float:
    """Convert ``amount`` of ``unit`` (day, week, month, year) to years."""
    return amount / UNITS_PER_YEAR[unit]


def days_to_years(days: float) -> float:
    return days / DAYS_PER_YEAR


def months_to_years(months: float) -> float:
    return months / MONTHS_PER_YEAR
