"""The one implementation of every random draw that needs ``log``, ``exp`` and the like: compiled (numba).

**One implementation per draw.** Every draw that needs a transcendental function (the exponential
-ln(1 - U), the keyed Marsaglia-Tsang Gamma, the exact test of the Gamma table's cells) is computed here,
with the C library's ``log``, ``log1p``, ``exp``, ``cos`` and ``pow``, whoever asks for it: the engine's
compiled loop :func:`sim.engines.loops.lives` calls the scalar functions, the vectorised engine calls the array functions
(:func:`exponentials`, :func:`gammas`, :func:`table_gamma`) through :mod:`sim.random.streams` and
:mod:`sim.random.gamma_table`, which loop over the same scalar functions. numpy is not used for these on purpose:
on CPUs with AVX-512 it evaluates ``log``/``exp`` with its own SIMD routines, which differ from the C
library's by an ulp, so two implementations would pair only on some machines. What numpy still computes
in the draws is exact integer arithmetic (SplitMix64) and exactly rounded conversions (a 53-bit integer
times 2^-53), identical in both by IEEE 754. The same goes for the model formula that changes an order's
value in both engines, the growth of spend with tenure (:func:`grow_order_values`).

No fast-math: the compiler may not reassociate or fuse floating-point operations. Intel's SVML is
switched off below (before numba is imported) so that a loop over customers is never vectorised with
vector ``log``/``exp`` routines that differ from the scalar ones.

The functions release the GIL, so that the loops of :mod:`sim.engines.loops` that call them can run in
threads. The readable numpy definitions of
the draws are kept in :mod:`sim.random.streams` and :mod:`sim.random.gamma_table` as references (``*_reference``);
``tests/test_kernels.py`` checks them against these to a stated number of ulp.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("NUMBA_DISABLE_INTEL_SVML", "1")   # see the module docstring

import numba
import numpy as np


def _without_blas_check() -> None:
    """numba's array functions look for a BLAS when their module is first imported (at numba's first
    compilation or loading of compiled code in a process), by importing scipy.linalg: about 0.13 s of a
    process's start on the development machines, on the main thread before the first customer of a program
    with targeted offers. Only their ``np.correlate`` and ``np.convolve`` inside compiled code would use it
    (through ``np.dot``), and none of ours calls them: that module's look is answered "none" (those two then
    run numba's own inner product). numba's ``np.dot`` and linear algebra still find scipy when they are
    compiled (they ask ``ensure_blas`` themselves). A numba without these names is left as it is."""
    import sys

    if "numba.np.arraymath" in sys.modules:
        return
    try:
        from numba.np import linalg
    except ImportError:
        return
    check = getattr(linalg, "ensure_blas", None)
    if check is None:
        return

    def ensure_blas() -> None:
        if sys._getframe(1).f_code.co_name == "_check_blas":   # numba.np.arraymath's look at its import
            raise ImportError("not looked for: see sim.random.compiled._without_blas_check")
        check()

    linalg.ensure_blas = ensure_blas


_without_blas_check()

#: The Gamma table (:class:`sim.random.gamma_table.MeanOneGamma`): 2^CELL_BITS cells of equal probability.
CELL_BITS = 12
CELLS = 1 << CELL_BITS
#: Words of a Gamma draw's stream: draw k uses words k << DRAW_SHIFT onwards (2 per attempt).
DRAW_SHIFT = 20
#: How a table cell proposes: y = left + width * h(v) for a uniform v in [0, 1)
CELL_UNIFORM, CELL_EXPONENTIAL, CELL_POWER, CELL_FALLBACK = 0, 1, 2, 3

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_ONE, _TWO, _THREE = np.uint64(1), np.uint64(2), np.uint64(3)
_TOP = np.uint64(64 - CELL_BITS)
_FRACTION_MASK = np.uint64((1 << 52) - 1)
_DRAW_SHIFT = np.uint64(DRAW_SHIFT)
_TWO_PI = 2.0 * np.pi
OPTIONS = {"nogil": True, "cache": True, "error_model": "numpy"}
#: For the small helpers of the engines' per-customer loops that take arrays: inlined where numba compiles the
#: caller. numba raises and lowers an array's reference count, atomically, when the array is handed to a
#: function or a view of it is taken: in a loop run by two threads that cost more than the rest of a
#: purchase (about 36% of a points program's loop, measured with perf). Inlined, numba can drop some of those
#: counts (a points program's loop: 2.3 s of CPU called, 1.9 s inlined), not all: an inlined helper handed
#: arrays still counts them at every call. Helpers that take only scalars need nothing (LLVM inlines them);
#: a caller reads a table row itself rather than pass the table (:func:`gamma_cell`); and a helper that must
#: write to arrays is best a closure over them inside the loop's function, which numba inlines counting
#: nothing (the charges of :func:`sim.engines.program_loops.program_lives`).
INLINED = {**OPTIONS, "inline": "always"}


@numba.njit(**OPTIONS)
def mix64(z):
    """SplitMix64's output function (as :func:`sim.random.streams.mix64`)."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@numba.njit(**OPTIONS)
def word(key, step, counter):
    """The ``counter``-th word of the stream of increment ``step`` (as :func:`sim.random.streams.words`)."""
    return mix64(key + counter * step + step)


@numba.njit(**OPTIONS)
def to_unit(bits):
    """As :func:`sim.random.streams.to_unit`: the top 53 bits of a word, as a uniform in [0, 1)."""
    return np.float64(bits >> _S11) * 2.0**-53


@numba.njit(**OPTIONS)
def fraction(bits):
    """As ``sim.random.gamma_table._fraction``: the low 52 bits of a word, as a uniform in [0, 1)."""
    return np.float64(bits & _FRACTION_MASK) * 2.0**-52


@numba.njit(**OPTIONS)
def uniform(key, step, counter):
    """As :func:`sim.random.streams.uniform`: the ``counter``-th uniform of the stream."""
    return to_unit(word(key, step, counter))


@numba.njit(**OPTIONS)
def exponential(key, step, counter):
    """The ``counter``-th standard exponential of the stream: -ln(1 - U).

    1 - U is exact (U is a multiple of 2^-53), and ``log`` is about twice as fast as ``log1p``."""
    return -math.log(1.0 - uniform(key, step, counter))


@numba.njit(**OPTIONS)
def marsaglia_tsang(key, step, shape, offset):
    """A standard Gamma(shape) variate on counters from ``offset`` of the stream (exact).

    Marsaglia & Tsang (2000), "A simple method for generating gamma variables", ACM TOMS 26(3): a normal by
    Box-Muller and an acceptance uniform per attempt, attempt j on counters offset + 3j + 1 .. + 3j + 3, so
    the draw stays keyed to the customer. For shape < 1, Gamma(shape + 1) x U^(1/shape), U on counter
    ``offset``. :func:`sim.random.streams.gamma_reference` writes the same out in numpy."""
    boosted = shape + 1.0 if shape < 1.0 else shape
    d = boosted - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    attempt = np.uint64(0)
    while True:
        base = offset + (_ONE + _THREE * attempt)
        radius = math.sqrt(-2.0 * math.log1p(-uniform(key, step, base)))
        normal = radius * math.cos(_TWO_PI * uniform(key, step, base + _ONE))
        v = math.pow(1.0 + c * normal, 3.0)
        accept_u = uniform(key, step, base + _TWO)
        if v > 0 and math.log1p(-accept_u) < 0.5 * (normal * normal) + d - d * v + d * math.log(v):
            result = d * v
            break
        attempt += _ONE
    if shape < 1.0:
        result *= math.pow(1.0 - uniform(key, step, offset), 1.0 / shape)
    return result


@numba.njit(**OPTIONS)
def exponentials(keys, step, counters):
    """:func:`exponential` over arrays: draw ``counters[i]`` of ``keys[i]``'s stream of increment ``step``."""
    out = np.empty(len(keys))
    for i in range(len(keys)):
        out[i] = exponential(keys[i], step, counters[i])
    return out


@numba.njit(**OPTIONS)
def gammas(keys, step, shape, offsets):
    """:func:`marsaglia_tsang` over arrays: a standard Gamma(shape) of ``keys[i]``'s stream from counter
    ``offsets[i]``."""
    out = np.empty(len(keys))
    for i in range(len(keys)):
        out[i] = marsaglia_tsang(keys[i], step, shape, offsets[i])
    return out


@numba.njit(**OPTIONS)
def _propose(kind, left, width, v):
    step = v if kind == CELL_UNIFORM else -math.log1p(-v)
    if kind == CELL_POWER:
        return left * math.exp(-width * step)
    return left + width * step


@numba.njit(**OPTIONS)
def _accept(squeeze, ref, log_coef, lin_coef, y, u):
    if u < squeeze:
        return True
    gap = y - ref
    log_term = log_coef * math.log1p(gap / ref) if log_coef != 0.0 else 0.0
    return y > 0.0 and math.log(u) <= log_term - lin_coef * gap


@numba.njit(**OPTIONS)
def gamma_cell(key, step, counter, row):
    """Where the ``counter``-th mean-one Gamma of table ``row`` starts (as
    :meth:`sim.random.gamma_table.MeanOneGamma.draw`): the first word of the draw picks the cell ``index`` and the
    uniform ``v`` within it, the second the acceptance uniform ``u``. The variate is
    ``width[index] * v + left[index]`` if ``u < squeeze[index]``, else :func:`gamma_exact`.

    Only scalars cross this call: arrays passed to a compiled function that is not inlined cost reference
    counting, more than the draw itself, so the caller reads the table."""
    base = counter << _DRAW_SHIFT
    state = key + base * step + step
    first = mix64(state)
    v = fraction(first)
    u = to_unit(mix64(state + step))
    return base, np.intp(first >> _TOP) + row * CELLS, v, u


@numba.njit(**OPTIONS)
def gamma_exact(tables, shapes, key, step, base, index, row, v, u):
    """The draws the squeeze did not settle (as ``MeanOneGamma._slow``): the exact test of the first
    attempt, then attempt j on words ``base + 2j`` and ``base + 2j + 1``; Marsaglia-Tsang for the shapes
    outside the table's range."""
    left, width, squeeze, kind, ref, log_coef, lin_coef = tables
    cell_kind = kind[index]
    if cell_kind == CELL_FALLBACK:
        shape = shapes[row]
        return marsaglia_tsang(key, step, shape, base) / shape
    attempt = np.uint64(0)
    while True:
        y = _propose(cell_kind, left[index], width[index], v)
        if _accept(squeeze[index], ref[index], log_coef[index], lin_coef[index], y, u):
            return y
        attempt += _ONE
        v = fraction(word(key, step, base + _TWO * attempt))
        u = uniform(key, step, base + _TWO * attempt + _ONE)


@numba.njit(**OPTIONS)
def table_gamma(tables, shapes, keys, step, counters, rows):
    """As :meth:`sim.random.gamma_table.MeanOneGamma.draw` over arrays: variate ``counters[i]`` of ``keys[i]``'s
    stream of increment ``step``, of the shape of table row ``rows[i]``. ``tables`` = (left, width,
    squeeze, kind, ref, log_coef, lin_coef)."""
    left, width, squeeze = tables[0], tables[1], tables[2]
    out = np.empty(len(keys))
    for i in range(len(keys)):
        base, index, v, u = gamma_cell(keys[i], step, counters[i], rows[i])
        out[i] = width[index] * v + left[index]
        if u >= squeeze[index]:
            out[i] = gamma_exact(tables, shapes, keys[i], step, base, index, rows[i], v, u)
    return out


def warm_up() -> None:
    """Loads the compiled draws (compiling them, the first time on a machine, into ``__pycache__``) with the
    engines' argument types, so that processes forked afterwards inherit them."""
    f64, u64 = np.empty(0), np.empty(0, dtype=np.uint64)
    tables = (f64, f64, f64, np.empty(0, dtype=np.int8), f64, f64, f64)
    step = np.uint64(1)
    exponentials(u64, step, u64)
    gammas(u64, step, 2.0, u64)
    table_gamma(tables, f64, u64, step, u64, np.empty(0, dtype=np.intp))
