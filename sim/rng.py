"""Randomness: explicit, keyed, and the same whatever the executor (no global state anywhere).

Two kinds of streams:

* **Batch streams** for latent traits. Each acquisition batch (replication, channel, month, segment) has
  its own :class:`numpy.random.SeedSequence`, spawned into one child per trait, so customer *j* of a batch
  has the same traits in every scenario that has that batch, whatever else differs (common random numbers).
* **Counter-based per-customer streams** for events. Every customer carries a 64-bit key; the *k*-th draw of
  a purpose (the k-th inter-purchase time, the dropout coin after the k-th purchase, …) is
  ``splitmix64(key + (k + 1) * increment[purpose])``. This is SplitMix64 (Steele, Lea & Flood 2014,
  "Fast splittable pseudorandom number generators", OOPSLA) with a per-purpose increment, evaluated
  vectorised over customers. A policy that changes what one customer does never shifts another's draws,
  and a purpose never shifts another purpose's draws.
"""

from __future__ import annotations

import functools
import warnings
import zlib
from enum import IntEnum

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 2.0**-53


class Purpose(IntEnum):
    """What a per-customer draw is for. Each has its own odd increment (its own stream)."""

    INTERPURCHASE = 1
    DROPOUT = 2
    LIFETIME = 3
    REFERRAL_TIME = 4
    CHILD_KEY = 5
    CHILD_RATE = 6
    CHILD_DROPOUT = 7
    CHILD_SPEND = 8
    CHILD_REFERRAL = 9
    ENROLLMENT = 10
    REDEEMER = 11
    REACTIVATION = 12
    ORDER_VALUE = 13


def _increment(purpose: int) -> np.uint64:
    """An odd 64-bit increment per purpose, fixed forever (changing it changes every result)."""
    state = np.random.SeedSequence(entropy=0x10CA17, spawn_key=(int(purpose),)).generate_state(1, np.uint64)
    return np.uint64(state[0] | np.uint64(1))


_INCREMENTS = {p: _increment(p) for p in Purpose}


def mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function, in place on a uint64 array (returns it)."""
    z ^= z >> np.uint64(30)
    z *= _MIX1
    z ^= z >> np.uint64(27)
    z *= _MIX2
    z ^= z >> np.uint64(31)
    return z


def customer_keys(base: int, count: int) -> np.ndarray:
    """Keys of ``count`` customers of a batch whose stream base is ``base``."""
    z = np.arange(1, count + 1, dtype=np.uint64)
    z *= _GOLDEN
    z += np.uint64(base)
    return mix64(z)


def _counter_state(keys: np.ndarray, purpose: Purpose, counter: np.ndarray | int) -> np.ndarray:
    """SplitMix64 state of the ``counter``-th draw: key + (counter + 1) x the purpose's increment."""
    # at least 1-d: numpy warns about the (intended) wrap-around of uint64 scalars, not arrays
    z = np.atleast_1d(np.asarray(counter, dtype=np.uint64)) + np.uint64(1)
    z = z * _INCREMENTS[purpose]
    return z + keys


def uniform(keys: np.ndarray, purpose: Purpose, counter: np.ndarray | int) -> np.ndarray:
    """The ``counter``-th uniform in [0, 1) of each customer's ``purpose`` stream."""
    z = mix64(_counter_state(keys, purpose, counter))
    z >>= np.uint64(11)
    return z.astype(np.float64) * _TO_UNIT


def exponential(keys: np.ndarray, purpose: Purpose, counter: np.ndarray | int) -> np.ndarray:
    """The ``counter``-th standard exponential of each customer's ``purpose`` stream."""
    u = uniform(keys, purpose, counter)
    np.negative(u, out=u)
    return -np.log1p(u, out=u)


def child_keys(parent_keys: np.ndarray, referral_index: np.ndarray) -> np.ndarray:
    """Keys of referred customers: drawn from their referrer's stream, keyed by the referral's index."""
    return mix64(mix64(_counter_state(parent_keys, Purpose.CHILD_KEY, referral_index)))


def name_key(name: str) -> int:
    """A stable integer for a channel or segment name (spawn keys must not depend on list order)."""
    return zlib.crc32(name.encode("utf-8"))


def batch_sequence(seed: int, replication: int, channel: str, month: int, segment: str,
                   block: int = 0) -> np.random.SeedSequence:
    """The seed sequence of one acquisition batch (SPEC "Common random numbers"); a batch larger than
    :data:`sim.engine.BLOCK` is drawn in blocks, block ``b`` > 0 from its own sequence."""
    key = (replication, name_key(channel), month, name_key(segment))
    return np.random.SeedSequence(entropy=seed, spawn_key=key if block == 0 else (*key, block))


def replication_generator(seed: int, replication: int, purpose: str) -> np.random.Generator:
    """A per-replication generator for draws that need no per-customer pairing (e.g. order values)."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(replication, name_key(purpose))))


def gamma(keys: np.ndarray, purpose: Purpose, shape: float, *, offset: int = 0) -> np.ndarray:
    """One standard Gamma(shape) variate per customer from its ``purpose`` stream (exact).

    Marsaglia & Tsang (2000), "A simple method for generating gamma variables", ACM TOMS 26(3): a
    normal by Box-Muller and an acceptance uniform per attempt, each attempt on fresh counters, so the
    draw stays keyed to the customer. For shape < 1, Gamma(shape + 1) x U^(1/shape).
    ``offset`` separates several gamma draws on one purpose (counters offset .. offset + 3 x attempts).
    """
    boosted = shape + 1.0 if shape < 1.0 else shape
    d = boosted - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    result = np.empty(len(keys))
    pending = np.arange(len(keys))
    attempt = 0
    while pending.size:
        k = keys[pending]
        base = offset + 1 + 3 * attempt
        radius = np.sqrt(-2.0 * np.log1p(-uniform(k, purpose, base)))
        normal = radius * np.cos(2.0 * np.pi * uniform(k, purpose, base + 1))
        v = (1.0 + c * normal) ** 3
        accept_u = uniform(k, purpose, base + 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            accepted = (v > 0) & (np.log1p(-accept_u) < 0.5 * normal**2 + d - d * v + d * np.log(v))
        result[pending[accepted]] = d * v[accepted]
        pending = pending[~accepted]
        attempt += 1
    if shape < 1.0:
        result *= (1.0 - uniform(keys, purpose, offset)) ** (1.0 / shape)
    return result


def beta(keys: np.ndarray, purpose: Purpose, a: float, b: float) -> np.ndarray:
    """One Beta(a, b) variate per customer, as Ga / (Ga + Gb) from two gamma draws of the stream."""
    first = gamma(keys, purpose, a)
    second = gamma(keys, purpose, b, offset=1_000_000)
    return first / (first + second)


@functools.lru_cache(maxsize=64)
def _gamma_inversion(shape: float):
    """scipy's PINV (Derflinger, Hoermann & Leydold 2010, ACM TOMACS 20(4)) for Gamma(shape, 1).

    A polynomial interpolation of the inverse CDF with u-error below 1e-12: numerically exact, and a
    monotone map from uniforms, so a keyed uniform gives a keyed, paired gamma at ~30 ns a draw.
    """
    from scipy import stats
    from scipy.stats.sampling import NumericalInversePolynomial

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return NumericalInversePolynomial(stats.gamma(shape), center=max(shape - 1.0, shape / 2.0),
                                          u_resolution=1e-12)


#: Above this shape the Wilson-Hilferty cube of a normal quantile is within 2e-9 (relative) of the
#: exact gamma quantile, from u = 1e-9 to 1 - 1e-9.
_WILSON_HILFERTY_SHAPE = 1e6


def gamma_by_inversion(keys: np.ndarray, purpose: Purpose, counter: np.ndarray | int, shape: float) -> np.ndarray:
    """The ``counter``-th standard Gamma(shape) variate of each customer's ``purpose`` stream."""
    return gamma_quantile(open_uniform(keys, purpose, counter), shape)


def open_uniform(keys: np.ndarray, purpose: Purpose, counter: np.ndarray | int) -> np.ndarray:
    """:func:`uniform` moved to the midpoint of its cell: strictly inside (0, 1), for inversion."""
    u = uniform(keys, purpose, counter)
    u += 2.0**-54
    return u


def gamma_quantile(u: np.ndarray, shape: float) -> np.ndarray:
    """The standard Gamma(shape) quantile of ``u`` in (0, 1) (PINV; Wilson-Hilferty for huge shapes)."""
    if shape > _WILSON_HILFERTY_SHAPE:  # PINV cannot set up; the gamma is all but normal here
        from scipy.special import ndtri

        spread = 1.0 / (9.0 * shape)
        return shape * (1.0 - spread + ndtri(u) * np.sqrt(spread)) ** 3
    return _gamma_inversion(float(shape)).ppf(u)
