"""The compiled loop of the engine without a program draws exactly what the numpy draws give.

A scenario without a program runs in :mod:`sim.kernels`; the same scenario with a program runs in numpy
(:mod:`sim.engine`). Common random numbers need the two to agree bit for bit, so every draw is compared
with ``assert_array_equal`` (no tolerance), including the rare paths: rejected squeezes, the special first
and last cells, and shapes outside the table (Marsaglia-Tsang).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import scenario

from sim import kernels, rng
from sim.keyed_gamma import CELLS, MeanOneGamma
from sim.rng import Purpose

KEYS = rng.customer_keys(0x5EED, 200_000)


def test_uniform_and_exponential_words_are_the_numpy_ones() -> None:
    counters = np.arange(KEYS.size, dtype=np.uint64) % np.uint64(37)
    for purpose in (Purpose.INTERPURCHASE, Purpose.DROPOUT, Purpose.LIFETIME):
        step = rng.increment(purpose)
        compiled_u = np.array([kernels.uniform(k, step, c) for k, c in zip(KEYS[:2000], counters[:2000])])
        np.testing.assert_array_equal(compiled_u, rng.uniform(KEYS[:2000], purpose, counters[:2000]))
        compiled_e = np.array([kernels.exponential(k, step, c) for k, c in zip(KEYS[:2000], counters[:2000])])
        np.testing.assert_array_equal(compiled_e, rng.exponential(KEYS[:2000], purpose, counters[:2000]))


@pytest.mark.parametrize("shapes", [(4.0, 6.25), (0.3, 1.0, None), (0.02, 3e7, 55.0)],
                         ids=["retail", "below-one-and-exponential", "outside-the-table"])
def test_table_gamma_is_the_numpy_draw(shapes) -> None:
    """200k draws per case, of several rows and counters: about 600 settled by the exact test, ~100 in the
    special cells; the last case has rows drawn by Marsaglia-Tsang."""
    noise = MeanOneGamma(shapes)
    tables = (noise.left, noise.width, noise.squeeze, noise.kind, noise.ref, noise.log_coef, noise.lin_coef)
    rows = np.arange(KEYS.size) % len(shapes)
    counters = (np.arange(KEYS.size, dtype=np.uint64) * np.uint64(7)) % np.uint64(1000)
    step = rng.increment(Purpose.ORDER_VALUE)
    compiled = kernels.table_gamma(tables, noise.shapes, KEYS, step, counters, rows)
    np.testing.assert_array_equal(compiled, noise.draw_vectorised(KEYS, Purpose.ORDER_VALUE, counters, rows))
    np.testing.assert_array_equal(noise.draw(KEYS, Purpose.ORDER_VALUE, counters, rows), compiled)
    # the rare paths really were taken
    first = rng.words(KEYS, Purpose.ORDER_VALUE, counters << np.uint64(20))
    cells = (first >> np.uint64(52)).astype(np.intp) + rows * CELLS
    assert np.count_nonzero(noise.squeeze[cells] < 1.0) > 0
    assert np.count_nonzero(cells % CELLS == CELLS - 1) > 10


@pytest.mark.parametrize("shape", [0.02, 0.7, 3.0, 2e7])
def test_marsaglia_tsang_is_the_numpy_draw(shape: float) -> None:
    keys = KEYS[:5000]
    offsets = np.arange(keys.size, dtype=np.uint64) << np.uint64(20)
    step = rng.increment(Purpose.ORDER_VALUE)
    compiled = np.array([kernels.marsaglia_tsang(k, step, shape, o) for k, o in zip(keys, offsets)])
    np.testing.assert_array_equal(compiled, rng.gamma(keys, Purpose.ORDER_VALUE, shape, offset=offsets))


def test_threads_change_nothing() -> None:
    """The loop runs in threads, or (with ``--transactions``) in order in the main thread: same numbers to
    the last bit; and the transaction log adds up to the monthly purchases and revenue."""
    from sim.experiment import run_replication

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
    from sim.experiment import run_replication

    kernels.warm_up()
    run_replication(scenario(), 0)
    assert len(kernels.lives.signatures) == 1, kernels.lives.signatures
