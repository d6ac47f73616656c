"""The compiled formulas that decide existing customers' draws (:mod:`sim.model.existing_compiled`): P(alive)
agrees with :mod:`sim.model.theory`'s vectorised closed forms, on CDNOW and on extreme histories, and the departure
time of a gone Pareto/NBD customer follows its density, nearly every proposal accepted."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats
from support.scenarios import ROOT, one_segment
from test_kernels import _avx512_targets
from test_theory import BGNBD, BGNBD_MLE, PARETO_CASES, cdnow_summary

from sim.engines.draws import Draws
from sim.model import existing, existing_compiled, theory
from sim.model.population import segment_laws
from sim.random import streams as rng
from sim.random.streams import Purpose
from sim.schema.existing import CustomerBase
from sim.schema.units import WEEKS_PER_YEAR

#: Below this both P(alive) are compared absolutely: a uniform coin (a multiple of 2^-53) tells them apart
#: only when it is 0.
TINY = 1e-250


def _extreme_histories() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Repeat counts from 0 to 10^4, ages from a second to 20 years (in weeks), the last purchase at the first
    one, just after it, midway, just before the end and at the end."""
    rows = []
    for x, T in itertools.product([0, 1, 2, 7, 50, 500, 10_000], [1e-6, 0.01, 1.0, 39.0, 1040.0]):
        for share in ([0.0] if x == 0 else [0.0, 1e-9, 0.5, 1.0 - 1e-9, 1.0]):
            rows.append((x, share * T, T))
    x, t_x, T = np.array(rows).T
    return x, t_x, T


def _histories() -> list[tuple[str, tuple]]:
    s = cdnow_summary()
    return [("cdnow", (s["x"], s["t_x"], s["T"])), ("extreme", _extreme_histories())]


def _assert_close(got: np.ndarray, expected: np.ndarray) -> None:
    assert np.all((got >= 0.0) & (got <= 1.0))
    small = expected < TINY
    np.testing.assert_allclose(got[~small], expected[~small], rtol=1e-12, atol=0.0)
    assert np.all(got[small] < 2 * TINY)


@pytest.mark.parametrize(("name", "history"), _histories())
@pytest.mark.parametrize("params", [BGNBD, BGNBD_MLE, {"r": 3.0, "alpha": 0.2, "a": 5.0, "b": 0.4},
                                    {"r": 0.05, "alpha": 90.0, "a": 0.01, "b": 40.0}])
def test_compiled_bgnbd_alive_agrees_with_theory(name, history, params) -> None:
    x, t_x, T = history
    got = existing_compiled.bgnbd_probability_alive(x, t_x, T, **params)
    _assert_close(got, theory.bgnbd_probability_alive(x, t_x, T, **params))
    assert np.all(got[x == 0] == 1.0)


@pytest.mark.parametrize(("name", "history"), _histories())
@pytest.mark.parametrize("params", PARETO_CASES)  # alpha < beta, alpha > beta and alpha == beta
def test_compiled_paretonbd_alive_agrees_with_theory(name, history, params) -> None:
    x, t_x, T = history
    got = existing_compiled.paretonbd_probability_alive(x, t_x, T, **params)
    _assert_close(got, theory.paretonbd_probability_alive(x, t_x, T, **params))
    assert np.all(got > 0.0) or name == "extreme"


@pytest.mark.parametrize("params", PARETO_CASES)
def test_departures_stay_in_their_interval_and_are_accepted_at_least_nine_times_in_ten(params) -> None:
    """Every CDNOW history and the extreme ones: tau within [t_x, T], and the hull's acceptance (at least
    e^-0.1 by construction) shows in the attempts taken: their mean is within 4 SE of at most 1/0.905, and none
    reaches the last attempt."""
    s, (ex, et_x, eT) = cdnow_summary(), _extreme_histories()
    x, t_x, T = np.concatenate([s["x"], ex]), np.concatenate([s["t_x"], et_x]), np.concatenate([s["T"], eT])
    keys = rng.customer_keys(20261202, len(x))
    tau, attempts = existing_compiled.pareto_departures(keys, rng.increment(Purpose.EXISTING_DEATH), x, t_x, T,
                                                        *params.values(), existing.DEPARTURE_ATTEMPTS)
    assert np.all((tau >= t_x) & (tau <= T))
    tried = attempts[T > t_x]
    assert tried.min() >= 1 and tried.max() < existing.DEPARTURE_ATTEMPTS
    assert tried.mean() <= 1.0 / np.exp(-existing_compiled.HULL_GAP) + 4.0 * tried.std() / np.sqrt(tried.size)


@pytest.mark.parametrize(("x", "t_x", "T"), [(2.0, 10.0, 39.0), (0.0, 0.0, 30.0), (6.0, 1.0, 39.0),
                                             (12.0, 1.0, 78.0), (60.0, 0.5, 78.0), (1.0, 38.9, 39.0)])
def test_departures_follow_their_density(x, t_x, T) -> None:
    """tau has density proportional to (alpha + tau)^-(r+x) (beta + tau)^-(s+1) on (t_x, T): Kolmogorov-Smirnov
    against its CDF (by Simpson's rule on a fine grid) over 20,000 customers, at the 0.1% level. Among the
    histories, those where the Pareto proposal used before accepted under 2% of its attempts (x = 12 and 60
    repeat purchases soon after the first, then a long silence), and a last purchase just before T."""
    r, alpha, s, beta = PARETO_CASES[0].values()
    n = 20_000
    keys = rng.customer_keys(7, n)
    tau = existing._pareto_departure(keys, np.full(n, x), np.full(n, t_x), np.full(n, T), r, alpha, s, beta)
    grid = np.linspace(t_x, T, 20_001)
    cumulative = integrate.cumulative_simpson((alpha + grid) ** -(r + x) * (beta + grid) ** -(s + 1.0), x=grid,
                                              initial=0.0)
    result = stats.kstest(tau, lambda v: np.interp(v, grid, cumulative / cumulative[-1]))
    assert result.pvalue > 1e-3, result


#: The CDNOW segments in weeks (published estimates, tests/data/cdnow/README.md).
CDNOW_SEGMENTS = {
    "bgnbd": {"purchases_per_year": {"r": 0.243, "alpha": 4.414, "alpha_unit": "week"},
              "dropout": {"model": "per_purchase", "a": 0.793, "b": 2.426},
              "order_value": {"p": 6.25, "q": 3.74, "gamma": 15.44}},
    "paretonbd": {"purchases_per_year": {"r": 0.553, "alpha": 10.578, "alpha_unit": "week"},
                  "dropout": {"model": "hazard", "s": 0.606, "beta": 11.669, "beta_unit": "week"},
                  "order_value": {"p": 6.25, "q": 3.74, "gamma": 15.44}},
}

GROWING = {"purchases_per_year": {"mean": 6.0, "cv": 0.8}, "dropout": {"model": "per_purchase", "mean": 0.2, "cv": 0.5},
           "order_value": {"mean": 40.0, "cv": 0.6, "between_cv": 0.3, "growth_per_year": 0.093}}


def opening_traits() -> dict[str, np.ndarray]:
    """The CDNOW customers' traits and state at the start (:func:`sim.model.existing.draw_base`) under both
    models, and those of a simulated base (:func:`sim.model.existing.simulate_histories`), as one flat dict."""
    s = cdnow_summary()
    keys = rng.customer_keys(20261202, len(s["x"]))
    base = CustomerBase(id_hash=keys, repeat_purchases=s["x"].astype(np.int64),
                        recency_years=s["t_x"] / WEEKS_PER_YEAR, age_years=s["T"] / WEEKS_PER_YEAR,
                        mean_repeat_spend=s["mean_spend"], spend_12m=np.zeros(len(keys)))
    found = {}
    for model, segment in CDNOW_SEGMENTS.items():
        laws = segment_laws(one_segment(segment, customers=1, months=12))[0]
        for name, column in existing.draw_base(laws, 0, base, keys).items():
            found[f"{model}.{name}"] = np.asarray(column)
    # a base without a log, its histories simulated with order values growing with tenure (numpy's SIMD log1p
    # and the C library's differ at 9.3%)
    sc = one_segment(GROWING, customers=1, months=12, existing_customers={"count": 3000, "history_months": 24})
    laws = segment_laws(sc)
    for _, simulated, traits in existing.opening_base(sc, 0, laws, Draws(laws)):
        found.update({f"simulated.{name}": np.asarray(column) for name, column in traits.items()})
        found.update({"simulated.spend_12m": simulated.spend_12m, "simulated.repeat": simulated.mean_repeat_spend})
    return found


@pytest.mark.slow
def test_existing_customers_are_the_same_on_both_numpy_dispatch_paths(tmp_path: Path) -> None:
    """Who starts alive, when the gone left, every trait drawn and a simulated base's histories, to the last
    bit, in this process and in one
    where numpy may not use its AVX-512 routines (``NPY_DISABLE_CPU_FEATURES``, as in tests/test_kernels.py)."""
    targets = _avx512_targets()
    assert targets, "this numpy build dispatches no AVX-512 code: nothing to switch off"
    out = tmp_path / "child.npz"
    code = ("import sys; sys.path[:0] = ['tests']; import numpy as np; "
            "from numpy._core._multiarray_umath import __cpu_features__ as f; "
            f"on = [t for t in {targets!r} if f.get(t)]; assert not on, on; "
            "from test_existing_compiled import opening_traits; "
            f"np.savez({str(out)!r}, **opening_traits())")
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(targets)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)
    here, child = opening_traits(), np.load(out)
    assert set(here) == set(child.files)
    assert 0 < here["paretonbd.alive"].sum() < len(here["paretonbd.alive"])
    for name, column in here.items():
        np.testing.assert_array_equal(column, child[name], err_msg=name)
