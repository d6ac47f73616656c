"""One implementation of every draw (:mod:`sim.random.compiled`), and its readable numpy references.

A scenario without a program runs in the compiled loop :func:`sim.engines.loops.lives`; the same scenario with a
program runs in numpy (:mod:`sim.engines.calendar`), whose draws come from the array functions of :mod:`sim.random.compiled`
that loop over the very scalar functions :func:`~sim.engines.loops.lives` calls. Common random numbers need
the two to agree bit for bit, so the compiled array draws are compared with the scalar ones with
``assert_array_equal`` (no tolerance), including the rare paths: rejected squeezes, the special first and
last cells, and shapes outside the table (Marsaglia-Tsang).

The numpy definitions (``*_reference``) are compared in ulp instead. numpy evaluates ``log``, ``log1p``,
``exp`` and powers with its own SIMD routines on CPUs with AVX-512 (about 1 ulp from the C library's), so
the references agree only to within a few ulp there; ``test_draws_pair_on_both_numpy_dispatch_paths`` runs
this module again with numpy's AVX-512 targets switched off, so both of numpy's paths are exercised on such
a machine. MAX_ULP below is what the error propagation of each draw allows, not a measured fit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.scenarios import scenario

from sim.engines import loops
from sim.random import compiled as kernels
from sim.random import streams as rng
from sim.random.gamma_table import CELLS, MeanOneGamma
from sim.random.streams import Purpose

KEYS = rng.customer_keys(0x5EED, 200_000)
ROOT = Path(__file__).resolve().parent.parent

#: How far a numpy reference may be from the compiled draw, in ulp of the draw:
#: -ln(1 - U): one log, each implementation within 1 ulp of the true value, so at most 2 apart.
MAX_ULP_EXPONENTIAL = 2
#: Gamma draws: Box-Muller sqrt(-2 log1p(-U)) cos(2 pi V) (log1p within 1 ulp of each, halved by the
#: square root), then v = (1 + c N)^3 and, for shape < 1, x U^(1/shape) (a power within 1 ulp of each).
#: The cube triples the relative error of 1 + c N, and 1 + c N loses relative precision when c N nears -1
#: (its absolute error stays about c N ulp of 1): the relative error of the draw is about
#: 3 |c N| / (1 + c N) ulp plus a few. Most draws are within a few ulp (TYPICAL_ULP, checked on the 99.9%
#: quantile); the few small draws where 1 + c N is near 0.01 reach about 300 ulp (MAX_ULP_GAMMA, 6.7e-14
#: relative). An acceptance decision flipped by an ulp would change the draw by its own order, far beyond.
TYPICAL_ULP = 8
MAX_ULP_GAMMA = 300


def _assert_ulp(drawn: np.ndarray, reference: np.ndarray) -> None:
    distance = np.abs(drawn - reference) / np.spacing(np.maximum(np.abs(drawn), np.abs(reference)))
    assert np.quantile(distance, 0.999) <= TYPICAL_ULP, np.quantile(distance, 0.999)
    assert distance.max() <= MAX_ULP_GAMMA, distance.max()


def test_uniform_words_are_exact_in_numpy_and_compiled() -> None:
    """Uniforms are integer arithmetic and an exactly rounded conversion: the same bits everywhere."""
    counters = np.arange(2000, dtype=np.uint64) % np.uint64(37)
    for purpose in (Purpose.INTERPURCHASE, Purpose.DROPOUT, Purpose.LIFETIME):
        step = rng.increment(purpose)
        compiled = np.array([kernels.uniform(k, step, c) for k, c in zip(KEYS[:2000], counters)])
        np.testing.assert_array_equal(compiled, rng.uniform(KEYS[:2000], purpose, counters))


def test_exponential_is_the_compiled_draw_and_its_reference() -> None:
    counters = np.arange(KEYS.size, dtype=np.uint64) % np.uint64(37)
    for purpose in (Purpose.INTERPURCHASE, Purpose.DROPOUT, Purpose.LIFETIME):
        step = rng.increment(purpose)
        drawn = rng.exponential(KEYS, purpose, counters)
        scalar = np.array([kernels.exponential(k, step, c) for k, c in zip(KEYS[:2000], counters[:2000])])
        np.testing.assert_array_equal(drawn[:2000], scalar)
        np.testing.assert_array_equal(rng.exponential(KEYS[:50], purpose, 3),
                                      [kernels.exponential(k, step, np.uint64(3)) for k in KEYS[:50]])
        np.testing.assert_array_max_ulp(drawn, rng.exponential_reference(KEYS, purpose, counters),
                                        maxulp=MAX_ULP_EXPONENTIAL)


@pytest.mark.parametrize("shapes", [(4.0, 6.25), (0.3, 1.0, None), (0.02, 3e7, 55.0)],
                         ids=["retail", "below-one-and-exponential", "outside-the-table"])
def test_table_gamma_is_the_compiled_draw_and_its_reference(shapes) -> None:
    """200k draws per case, of several rows and counters: about 600 settled by the exact test, ~100 in the
    special cells; the last case has rows drawn by Marsaglia-Tsang."""
    noise = MeanOneGamma(shapes)
    tables = (noise.left, noise.width, noise.squeeze, noise.kind, noise.ref, noise.log_coef, noise.lin_coef)
    rows = np.arange(KEYS.size) % len(shapes)
    counters = (np.arange(KEYS.size, dtype=np.uint64) * np.uint64(7)) % np.uint64(1000)
    step = rng.increment(Purpose.ORDER_VALUE)
    drawn = noise.draw(KEYS, Purpose.ORDER_VALUE, counters, rows)
    # the draw inside the engine loop: gamma_cell, then gamma_exact where the squeeze does not settle it
    left, width, squeeze = noise.left, noise.width, noise.squeeze
    scalar = []
    for k, c, r in zip(KEYS[:3000], counters[:3000], rows[:3000]):
        base, index, v, u = kernels.gamma_cell(k, step, c, np.intp(r))
        base, index = np.uint64(base), np.intp(index)   # numba hands integers back as Python int
        value = width[index] * v + left[index]
        if u >= squeeze[index]:
            value = kernels.gamma_exact(tables, noise.shapes, k, step, base, index, np.intp(r), v, u)
        scalar.append(value)
    np.testing.assert_array_equal(drawn[:3000], scalar)
    _assert_ulp(drawn, noise.draw_reference(KEYS, Purpose.ORDER_VALUE, counters, rows))
    # the rare paths really were taken
    first = rng.words(KEYS, Purpose.ORDER_VALUE, counters << np.uint64(20))
    cells = (first >> np.uint64(52)).astype(np.intp) + rows * CELLS
    assert np.count_nonzero(noise.squeeze[cells] < 1.0) > 0
    assert np.count_nonzero(cells % CELLS == CELLS - 1) > 10


@pytest.mark.parametrize("shape", [0.02, 0.7, 3.0, 2e7])
def test_marsaglia_tsang_is_the_compiled_draw_and_its_reference(shape: float) -> None:
    keys = KEYS[:50_000]
    offsets = np.arange(keys.size, dtype=np.uint64) << np.uint64(20)
    step = rng.increment(Purpose.ORDER_VALUE)
    drawn = rng.gamma(keys, Purpose.ORDER_VALUE, shape, offset=offsets)
    scalar = np.array([kernels.marsaglia_tsang(k, step, shape, o) for k, o in zip(keys[:3000], offsets)])
    np.testing.assert_array_equal(drawn[:3000], scalar)
    _assert_ulp(drawn, rng.gamma_reference(keys, Purpose.ORDER_VALUE, shape, offset=offsets))


def _avx512_targets() -> list[str]:
    """numpy's dispatch targets that use AVX-512 (their names changed in numpy 2.4: X86_V4, AVX512_*)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__

    return [name for name in __cpu_dispatch__ if name.startswith(("AVX512", "X86_V4"))]


@pytest.mark.slow
def test_draws_pair_on_both_numpy_dispatch_paths() -> None:
    """This module and the exact pairing of a program with its baseline, run again in a process where
    numpy may not use its AVX-512 routines (``NPY_DISABLE_CPU_FEATURES``); the suite itself runs with
    whatever numpy picks on this machine. The child checks that the targets really are off."""
    targets = _avx512_targets()
    assert targets, "this numpy build dispatches no AVX-512 code: nothing to switch off"
    check = ("from numpy._core._multiarray_umath import __cpu_features__ as f; "
             f"on = [t for t in {targets!r} if f.get(t)]; assert not on, on")
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(targets)}
    subprocess.run([sys.executable, "-c", check], env=env, check=True, cwd=ROOT)
    tests = ["tests/test_kernels.py", "-k", "not dispatch_paths and not threads",
             "tests/test_policy.py::test_program_without_response_adds_no_purchases_and_costs_exactly_its_cost"]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                            env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


def test_threads_change_nothing() -> None:
    """The loop runs in threads, or (with ``--transactions``) in order in the main thread: same numbers to
    the last bit; and the transaction log adds up to the monthly purchases and revenue."""
    from sim.experiments.replications import run_replication

    segments = {
        "bg": {"purchases_per_year": {"mean": 5.0, "cv": 0.8},
               "dropout": {"model": "per_purchase", "mean": 0.2, "cv": 0.5},
               "order_value": {"mean": 40.0, "cv": 0.6, "between_cv": 0.3, "growth_per_year": 0.05},
               "referrals_per_year": {"mean": 0.3}},
        "haz": {"purchases_per_year": {"mean": 9.0, "cv": 0.7}, "dropout": {"model": "hazard", "annual_churn": 0.4},
                "order_value": {"mean": 60.0, "cv": 5.0}},    # cv 5: order values by Marsaglia-Tsang
    }
    sc = scenario(segments=segments, horizon_months=24, acquisition=[
        {"channel": "web", "initial_customers": 150_000, "new_per_month": 2000, "segments": {"bg": 0.7, "haz": 0.3}}])
    threaded = run_replication(sc, 0)
    ordered = run_replication(sc, 0, record_transactions=True)
    for name, column in threaded.monthly.items():
        np.testing.assert_array_equal(column, ordered.monthly[name], err_msg=name)
    for name, column in threaded.cohorts.items():
        np.testing.assert_array_equal(column, ordered.cohorts[name], err_msg=name)
    tx = ordered.transactions
    month = np.minimum((tx["time"] * 12).astype(int), 23)
    np.testing.assert_array_equal(np.bincount(month, minlength=24), ordered.monthly["purchases"])
    np.testing.assert_allclose(np.bincount(month, tx["amount"], minlength=24), ordered.monthly["gross_revenue"],
                               rtol=1e-12)


def test_warm_up_loads_the_loop_the_engine_calls() -> None:
    """Process pools call ``warm_up`` before forking so that workers inherit the loaded loop; that only
    helps if it is the very specialisation the engine calls (same argument types), not a second one."""
    from sim.experiments.replications import run_replication

    loops.warm_up()
    run_replication(scenario(), 0)
    for function in (loops.lives, loops.referrals, loops.months_of, kernels.exponentials):
        assert len(function.signatures) == 1, (function, function.signatures)
