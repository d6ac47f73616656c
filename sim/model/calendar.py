"""The calendar of a run: months from the scenario start, in years (a month is exactly 1/12 year).

Month k is the interval [k/12, (k+1)/12): a time at a month start belongs to the month it opens, and the
last month of the horizon takes everything after it. Every engine and every table finds the month of a
time with :func:`month_of` (compiled, for the loops) or :func:`months_of` (its array form), one formula:
``floor(12 t)`` corrected by a comparison with the month starts themselves, so that the rounding of
``12 t`` never moves a time that lies exactly on a month start ``k / 12.0`` into the month before.
"""

from __future__ import annotations

import numba
import numpy as np

from sim.random.compiled import INLINED, OPTIONS


def month_starts(months: int) -> np.ndarray:
    """The start of each month of a horizon of ``months`` (years), and +inf after the last: ``months + 1``
    values, month k is ``[starts[k], starts[k + 1])``."""
    return np.append(np.arange(months) / 12.0, np.inf)


@numba.njit(**INLINED)
def month_of(t, starts):
    """The 0-based month of a time ``t`` (years), given the :func:`month_starts` of the horizon; a time
    before 0 counts in month 0, one after the horizon in the last month."""
    months = len(starts) - 1
    month = min(max(np.intp(t * 12.0), 0), months - 1)
    if t < starts[month] and month > 0:
        month -= 1
    if t >= starts[month + 1]:
        month += 1
    return month


@numba.njit(**OPTIONS)
def months_of(times, starts):
    """:func:`month_of` of every time of an array."""
    out = np.empty(len(times), dtype=np.intp)
    for i in range(len(times)):
        out[i] = month_of(times[i], starts)
    return out
