"""The keyed random streams: right distributions, independent purposes, reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim import rng
from sim.rng import Purpose

KEYS = rng.customer_keys(0x5EED, 40_000)


def test_uniforms_are_uniform_and_purposes_independent() -> None:
    u = rng.uniform(KEYS, Purpose.INTERPURCHASE, 0)
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    v = rng.uniform(KEYS, Purpose.DROPOUT, 0)
    w = rng.uniform(KEYS, Purpose.INTERPURCHASE, 1)
    # correlations of independent uniforms have standard error 1/sqrt(n)
    for other in (v, w):
        assert abs(np.corrcoef(u, other)[0, 1]) < 4 / np.sqrt(len(KEYS))
    np.testing.assert_array_equal(u, rng.uniform(KEYS, Purpose.INTERPURCHASE, 0))


def test_exponential_mean() -> None:
    e = rng.exponential(KEYS, Purpose.LIFETIME, 3)
    assert stats.kstest(e, "expon").pvalue > 1e-3


@pytest.mark.parametrize("shape", [0.243, 0.8, 1.0, 3.74, 25.0])
def test_keyed_gamma_matches_the_gamma_distribution(shape: float) -> None:
    draws = rng.gamma(KEYS, Purpose.CHILD_RATE, shape)
    assert stats.kstest(draws, "gamma", args=(shape,)).pvalue > 1e-3
    se = np.sqrt(shape / len(KEYS))
    assert abs(draws.mean() - shape) < 4 * se


def test_keyed_beta_matches_the_beta_distribution() -> None:
    draws = rng.beta(KEYS, Purpose.CHILD_DROPOUT, 0.793, 2.426)
    assert stats.kstest(draws, "beta", args=(0.793, 2.426)).pvalue > 1e-3


def test_child_keys_are_distinct() -> None:
    parents = np.repeat(KEYS[:1000], 5)
    numbers = np.tile(np.arange(5), 1000)
    children = rng.child_keys(parents, numbers)
    assert len(np.unique(np.concatenate([children, KEYS]))) == len(children) + len(KEYS)
