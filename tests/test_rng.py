"""The keyed random streams: right distributions, independent purposes, reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim.random import streams as rng
from sim.random.gamma_table import MeanOneGamma
from sim.random.streams import Purpose

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


# shapes exercising every kind of cell: power-law head (p < 1), the mode in the first cell (p near 1),
# an exponential head (p > 1), and the Marsaglia-Tsang fallback outside the table's range
TABLE_SHAPES = [0.02, 0.3, 1.0, 1.0000001, 2.5, 6.25, 400.0, 5e8]


@pytest.mark.parametrize("row", range(len(TABLE_SHAPES)))
def test_keyed_table_gamma_matches_the_gamma_distribution(row: int) -> None:
    shape = TABLE_SHAPES[row]
    noise = MeanOneGamma(TABLE_SHAPES + [None])
    counters = np.arange(len(KEYS)) % 5
    draws = noise.draw(KEYS, Purpose.ORDER_VALUE, counters, row) * shape
    assert stats.kstest(draws, "gamma", args=(shape,)).pvalue > 1e-3
    assert abs(draws.mean() - shape) < 4 * np.sqrt(shape / len(KEYS))
    np.testing.assert_array_equal(noise.draw(KEYS, Purpose.ORDER_VALUE, counters, len(TABLE_SHAPES)), 1.0)


@pytest.mark.parametrize("shape", [0.3, 6.25])
def test_keyed_table_gamma_tails(shape: float) -> None:
    """The first and last of the 4096 cells (drawn by their own rejection samplers) hold 1/4096 each, and
    beyond the last cell's start the upper tail keeps the Gamma law (mass beyond the 1 - 1/40960 quantile)."""
    keys = rng.customer_keys(0x7A11, 1_000_000)
    y = MeanOneGamma([shape]).draw(keys, Purpose.ORDER_VALUE, 3) * shape
    n = len(keys)
    for quantile, below in ((1 / 4096, True), (1 - 1 / 4096, False), (1 - 1 / 40960, False)):
        share = 1 / 4096 if quantile < 0.5 else 1 - quantile
        cut = stats.gamma.ppf(quantile, shape)
        observed = np.mean(y < cut) if below else np.mean(y > cut)
        assert abs(observed - share) < 4 * np.sqrt(share * (1 - share) / n)


def test_keyed_table_gamma_is_keyed() -> None:
    """A customer's k-th variate depends on its key, purpose, k and row only, not on who else is drawn."""
    noise = MeanOneGamma([0.7, 3.0])
    counters, rows = np.arange(len(KEYS)) % 7, np.arange(len(KEYS)) % 2
    every = noise.draw(KEYS, Purpose.ORDER_VALUE, counters, rows)
    some = np.arange(0, len(KEYS), 3)
    np.testing.assert_array_equal(noise.draw(KEYS[some], Purpose.ORDER_VALUE, counters[some], rows[some]),
                                  every[some])
    assert not np.array_equal(noise.draw(KEYS, Purpose.ORDER_VALUE, counters + 1, rows), every)
