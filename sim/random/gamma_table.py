"""Exact Gamma variates from the customers' keyed streams, fast enough to draw one per order.

A Gamma(p) variate divided by p (mean 1) by the table method of Ahrens (1993), "Sampling from general
distributions by suboptimal division of domains", Grazer Math. Berichte 319; see Hörmann, Leydold &
Derflinger (2004), *Automatic Nonuniform Random Variate Generation*, Springer, sec. 5.1 and 6.1. The
support is cut at the quantiles i/4096 into 4096 cells of probability exactly 1/4096 each, so the top 12
bits of a 64-bit keyed word pick the cell, and the variate is drawn inside its cell by rejection:

* an inner cell [y_i, y_{i+1}) proposes a uniform point and accepts it with probability f(y) / max f over
  the cell. The squeeze min f / max f (above 0.99 in most cells) accepts without evaluating f.
* the last cell [y_4095, inf) proposes y_4095 + an exponential whose rate is the slope of -ln f at y_4095,
  a hat above f because ln f is concave (p >= 1); for p < 1 the rate p, above f because y^(p-1) falls.
* the first cell [0, y_1) proposes, for p < 1, from the density proportional to y^(p-1) and accepts with
  e^(-p y); for p >= 1 left of the mode, y_1 minus an exponential (the tangent of ln f at y_1 again).

Every rejection sampler is exact, so the variate has exactly the Gamma law; the cells' probabilities are
exact up to scipy's ``gammaincinv`` (below 1e-13 here; kept on disk between runs by
:mod:`sim.random.quantile_cache`). Attempt *j* of draw *k* of a customer uses words
``k * 2^20 + 2j`` and ``+ 2j + 1`` of its stream, so each draw stays keyed to (customer, purpose, k):
a scenario and its baseline get the same variate for the same order. About 20 ns a draw, against 50-70 ns
for numerical inversion and 150-400 ns for a keyed Marsaglia-Tsang with Box-Muller normals.

Shapes outside [MIN_TABLE_SHAPE, MAX_TABLE_SHAPE] (cv above 4.5 or below 3e-4), where quantiles underflow
or cells become needlessly thin, fall back to the keyed Marsaglia-Tsang of :func:`sim.random.streams.gamma`. The draws are computed by
:func:`sim.random.compiled.table_gamma`; :meth:`MeanOneGamma.draw_reference` is the same in numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim.random import compiled
from sim.random import streams as rng
from sim.random.compiled import CELL_BITS, CELLS, DRAW_SHIFT
from sim.random.compiled import CELL_EXPONENTIAL as _EXPONENTIAL
from sim.random.compiled import CELL_FALLBACK as _FALLBACK
from sim.random.compiled import CELL_POWER as _POWER
from sim.random.compiled import CELL_UNIFORM as _UNIFORM
from sim.random.quantile_cache import gamma_quantiles
from sim.random.streams import Purpose

MIN_TABLE_SHAPE = 0.05
MAX_TABLE_SHAPE = 1e7
#: Attempts drawn at once for the draws the squeeze did not settle.
RETRY_BATCH = 8

_FRACTION_MASK = np.uint64((1 << 52) - 1)
_TOP_SHIFT = np.uint64(64 - CELL_BITS)


class MeanOneGamma:
    """Keyed Gamma(shape, rate shape) variates (mean 1) for a few shapes, one table row per shape.

    ``shapes[row]`` is None (or inf) for a row that is exactly 1 (no variation).
    """

    def __init__(self, shapes: Sequence[float | None]) -> None:
        rows = len(shapes)
        self.shapes = np.array([np.inf if s is None else float(s) for s in shapes])
        # per cell: the proposal y = left + width * h(v), its kind, the squeeze, and the acceptance test
        # ln u <= log_coef * log1p((y - ref) / ref) - lin_coef * (y - ref)
        self.left = np.ones((rows, CELLS))
        self.width = np.zeros((rows, CELLS))
        self.squeeze = np.ones((rows, CELLS))
        self.kind = np.zeros((rows, CELLS), dtype=np.int8)
        self.ref = np.zeros((rows, CELLS))
        self.log_coef = np.zeros((rows, CELLS))
        self.lin_coef = np.zeros((rows, CELLS))
        for row, shape in enumerate(self.shapes):
            if not np.isfinite(shape):
                continue
            if MIN_TABLE_SHAPE <= shape <= MAX_TABLE_SHAPE:
                self._fill_row(row, shape)
            else:
                self.kind[row] = _FALLBACK
                self.squeeze[row] = 0.0
        self.has_fallback = bool(np.any(self.kind == _FALLBACK))
        for name in ("left", "width", "squeeze", "kind", "ref", "log_coef", "lin_coef"):
            setattr(self, name, getattr(self, name).ravel())

    def _fill_row(self, row: int, p: float) -> None:
        y = np.concatenate([[0.0], gamma_quantiles(p, CELLS) / p, [np.inf]])
        mode = max(p - 1.0, 0.0) / p

        def log_f(x: np.ndarray) -> np.ndarray:  # ln of the density, up to a constant
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(x > 0, (p - 1.0) * np.log(np.where(x > 0, x, 1.0)) - p * x,
                                0.0 if p == 1.0 else (np.inf if p < 1.0 else -np.inf))

        lo, hi = y[:-1], y[1:]
        ref = np.clip(mode, lo, hi)                       # where f peaks within the cell (f is unimodal)
        with np.errstate(invalid="ignore"):
            squeeze = np.exp(np.minimum(log_f(lo), log_f(hi)) - log_f(ref))
        self.left[row], self.width[row], self.ref[row] = lo, hi - lo, ref
        self.squeeze[row] = squeeze
        self.log_coef[row], self.lin_coef[row] = p - 1.0, p
        self.kind[row] = _UNIFORM
        # the tail: y_top + Exp(rate) with the slope of -ln f at y_top (p - (p - 1) / y_top), or p if p < 1
        top = y[-2]
        rate = p - (p - 1.0) / top if p >= 1.0 else p
        self._special(row, CELLS - 1, _EXPONENTIAL, left=top, width=1.0 / rate, ref=top, lin_coef=p - rate)
        # the head: below the mode, y_1 - Exp(slope of ln f at y_1); for p < 1 the power law y^(p-1)
        first = y[1]
        if p < 1.0:   # y_1 (1 - v)^(1/p) = y_1 exp(-E / p)
            self._special(row, 0, _POWER, left=first, width=1.0 / p, ref=0.0, lin_coef=p, log_coef=0.0)
        elif first < mode:
            slope = (p - 1.0) / first - p
            self._special(row, 0, _EXPONENTIAL, left=first, width=-1.0 / slope, ref=first, lin_coef=p + slope)

    def _special(self, row: int, cell: int, kind: int, *, left: float, width: float, ref: float,
                 lin_coef: float, log_coef: float | None = None) -> None:
        self.kind[row, cell] = kind
        self.squeeze[row, cell] = 0.0   # always the exact test
        self.left[row, cell], self.width[row, cell], self.ref[row, cell] = left, width, ref
        self.lin_coef[row, cell] = lin_coef
        if log_coef is not None:
            self.log_coef[row, cell] = log_coef

    def draw(self, keys: np.ndarray, purpose: Purpose, counter: np.ndarray | int,
             row: np.ndarray | int = 0) -> np.ndarray:
        """The ``counter``-th variate of each customer's ``purpose`` stream, of the shape of ``row``.

        Drawn by the compiled loop :func:`sim.random.compiled.table_gamma` (one pass, about 8 ns a draw), the one
        implementation both engines call; :meth:`draw_reference` writes it out in numpy."""
        n = len(keys)
        counters = np.full(n, counter, dtype=np.uint64) if np.ndim(counter) == 0 else counter.astype(np.uint64)
        rows = np.full(n, row, dtype=np.intp) if np.ndim(row) == 0 else np.asarray(row).astype(np.intp)
        tables = (self.left, self.width, self.squeeze, self.kind, self.ref, self.log_coef, self.lin_coef)
        return compiled.table_gamma(tables, self.shapes, np.ascontiguousarray(keys, dtype=np.uint64),
                                   rng.increment(purpose), counters, rows)

    def draw_reference(self, keys: np.ndarray, purpose: Purpose, counter: np.ndarray | int,
                       row: np.ndarray | int = 0) -> np.ndarray:
        """:meth:`draw` as numpy passes over all customers: the method written out, and the check of the
        compiled loop (equal within a few ulp: numpy's ``log``/``exp`` may be its own SIMD routines)."""
        if isinstance(counter, (int, np.integer)):
            base = int(counter) << DRAW_SHIFT
        else:
            base = np.asarray(counter, dtype=np.uint64) << np.uint64(DRAW_SHIFT)
        state = rng.counter_state(keys, purpose, base)        # the state of word 0 of the draw
        word = rng.mix64(state.copy())
        index = (word >> _TOP_SHIFT).astype(np.intp)
        if np.ndim(row) or row:
            index += np.asarray(row, dtype=np.intp) * CELLS
        v = _fraction(word)
        y = self.width[index] * v
        y += self.left[index]
        state += rng.increment(purpose)                      # word 1
        u = rng.to_unit(rng.mix64(state))
        pending = np.flatnonzero(u >= self.squeeze[index])
        if pending.size:
            y[pending] = self._slow(keys[pending], purpose, np.broadcast_to(base, keys.shape)[pending],
                                    index[pending], v[pending], u[pending])
        return y

    def _slow(self, keys: np.ndarray, purpose: Purpose, base: np.ndarray, index: np.ndarray, v: np.ndarray,
              u: np.ndarray) -> np.ndarray:
        """Draws the squeeze did not settle: the exact test of the first attempt (uniforms ``v``, ``u``,
        proposing from the special cells' own hats), then RETRY_BATCH further attempts at once for those
        rejected, the first accepted winning; fallback rows by Marsaglia-Tsang."""
        out = np.empty(len(keys))
        todo = np.arange(len(keys))
        if self.has_fallback:
            fallback = self.kind[index] == _FALLBACK
            shape = self.shapes[index // CELLS]
            for p in np.unique(shape[fallback]):
                chosen = np.flatnonzero(fallback & (shape == p))
                out[chosen] = rng.gamma_reference(keys[chosen], purpose, p, offset=base[chosen]) / p
            todo = np.flatnonzero(~fallback)
        y = self._propose(index[todo], v[todo])
        accept = self._accept(index[todo], y, u[todo])
        out[todo[accept]] = y[accept]
        todo = todo[~accept]
        attempt = 1
        while todo.size:
            counter = base[todo, None] + np.uint64(2) * np.arange(attempt, attempt + RETRY_BATCH, dtype=np.uint64)
            cell, key = index[todo, None], keys[todo, None]
            y = self._propose(cell, _fraction(rng.words(key, purpose, counter)))
            accept = self._accept(cell, y, rng.uniform(key, purpose, counter + np.uint64(1)))
            settled = accept.any(axis=1)
            first = accept.argmax(axis=1)
            out[todo[settled]] = y[settled, first[settled]]
            todo = todo[~settled]
            attempt += RETRY_BATCH
        return out

    def _propose(self, cell: np.ndarray, v: np.ndarray) -> np.ndarray:
        """A proposal from each cell's hat, from a uniform ``v`` in [0, 1)."""
        kind, left, width = self.kind[cell], self.left[cell], self.width[cell]
        step = np.where(kind == _UNIFORM, v, -np.log1p(-v))          # uniform, or exponential
        return np.where(kind == _POWER, left * np.exp(-width * step),  # left (1 - v)^(1/p)
                        left + width * step)

    def _accept(self, cell: np.ndarray, y: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Whether ``u`` accepts ``y``: u < f(y) / hat(y), by the squeeze or else exactly."""
        ref, log_coef = self.ref[cell], self.log_coef[cell]
        gap = y - ref
        with np.errstate(divide="ignore", invalid="ignore"):  # y <= 0 (rejected) and ref = 0 (log_coef 0)
            log_term = np.where(log_coef != 0.0, log_coef * np.log1p(gap / ref), 0.0)
            return (u < self.squeeze[cell]) | ((y > 0.0) & (np.log(u) <= log_term - self.lin_coef[cell] * gap))


def _fraction(word: np.ndarray) -> np.ndarray:
    """The low 52 bits of a word as a uniform in [0, 1) (the top 12 chose the cell)."""
    return (word & _FRACTION_MASK).astype(np.float64) * 2.0**-52
