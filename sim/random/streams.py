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

Draws that need ``log``, ``exp`` and the like (:func:`exponential`, :func:`gamma`) are computed by the
compiled functions of :mod:`sim.random.compiled`, the one implementation that every engine calls, so a scenario
and its baseline pair draw for draw on any CPU; their numpy definitions are kept here as
``*_reference``, the method written out and the check of the compiled one.
"""

from __future__ import annotations

import zlib
from enum import IntEnum

import numpy as np

from sim.random import compiled

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SHIFT1, _SHIFT2, _SHIFT3 = np.uint64(30), np.uint64(27), np.uint64(31)
_TO_UNIT = 2.0**-53
_MASK64 = (1 << 64) - 1


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
    EXISTING_ALIVE = 14      # existing customers (sim.model.existing): alive at the start or not
    EXISTING_RATE = 15       # their purchase rate given their history
    EXISTING_DROPOUT = 16    # their dropout chance or hazard given their history
    EXISTING_SPEND = 17      # their own mean order value given their history
    EXISTING_DEATH = 18      # when a Pareto/NBD customer who is gone left
    EXISTING_REFERRAL = 19   # their referral rate (no history informs it)


def _increment(purpose: int) -> np.uint64:
    """An odd 64-bit increment per purpose, fixed forever (changing it changes every result)."""
    state = np.random.SeedSequence(entropy=0x10CA17, spawn_key=(int(purpose),)).generate_state(1, np.uint64)
    return np.uint64(state[0] | np.uint64(1))


_INCREMENTS = {p: _increment(p) for p in Purpose}


def mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function, in place on a uint64 array (returns it)."""
    shifted = z >> _SHIFT1
    z ^= shifted
    z *= _MIX1
    np.right_shift(z, _SHIFT2, out=shifted)
    z ^= shifted
    z *= _MIX2
    np.right_shift(z, _SHIFT3, out=shifted)
    z ^= shifted
    return z


def customer_keys(base: int, count: int, *, start: int = 0) -> np.ndarray:
    """Keys of customers ``start`` .. ``start + count - 1`` of a batch whose stream base is ``base``."""
    z = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    z *= _GOLDEN
    z += np.uint64(base)
    return mix64(z)


def counter_state(keys: np.ndarray, purpose: Purpose, counter: np.ndarray | int) -> np.ndarray:
    """SplitMix64 state of the ``counter``-th draw: key + (counter + 1) x the purpose's increment.

    The next draw's state is this plus :func:`increment` ``(purpose)``.
    """
    step = _INCREMENTS[purpose]
    if isinstance(counter, (int, np.integer)):  # in Python: numpy warns about uint64 scalars wrapping around
        return keys + np.uint64((int(counter) + 1) * int(step) & _MASK64)
    z = np.asarray(counter, dtype=np.uint64) * step
    z += step
    z += keys
    return z


def increment(purpose: Purpose) -> np.uint64:
    """How far apart the states of a purpose's consecutive draws are."""
    return _INCREMENTS[purpose]


def words(keys: np.ndarray, purpose: Purpose, counter: np.ndarray | int) -> np.ndarray:
    """The ``counter``-th 64-bit word of each customer's ``purpose`` stream."""
    return mix64(counter_state(keys, purpose, counter))


def to_unit(word: np.ndarray) -> np.ndarray:
    """Uniforms in [0, 1) from 64-bit words (their top 53 bits)."""
    word >>= np.uint64(11)
    u = word.astype(np.float64)
    u *= _TO_UNIT
    return u


def uniform(keys: np.ndarray, purpose: Purpose, counter: np.ndarray | int) -> np.ndarray:
    """The ``counter``-th uniform in [0, 1) of each customer's ``purpose`` stream."""
    return to_unit(words(keys, purpose, counter))


def _counters(counter: np.ndarray | int, count: int) -> np.ndarray:
    """A counter per customer, as the compiled draws take them."""
    if np.ndim(counter) == 0:
        return np.full(count, counter, dtype=np.uint64)
    return np.ascontiguousarray(counter, dtype=np.uint64)


def exponential(keys: np.ndarray, purpose: Purpose, counter: np.ndarray | int) -> np.ndarray:
    """The ``counter``-th standard exponential of each customer's ``purpose`` stream: -ln(1 - U).

    Computed by :func:`sim.random.compiled.exponentials`, the implementation the compiled engine loop shares."""
    return compiled.exponentials(np.ascontiguousarray(keys, dtype=np.uint64), _INCREMENTS[purpose],
                                _counters(counter, len(keys)))


def exponential_reference(keys: np.ndarray, purpose: Purpose, counter: np.ndarray | int) -> np.ndarray:
    """:func:`exponential` in numpy: -ln(1 - U), 1 - U exact since U is a multiple of 2^-53.

    Equal to it within an ulp or two (numpy's ``log`` may be its own SIMD routine); not used by the engines.
    """
    u = uniform(keys, purpose, counter)
    np.subtract(1.0, u, out=u)
    np.log(u, out=u)
    return np.negative(u, out=u)


def child_keys(parent_keys: np.ndarray, referral_index: np.ndarray) -> np.ndarray:
    """Keys of referred customers: drawn from their referrer's stream, keyed by the referral's index."""
    return mix64(mix64(counter_state(parent_keys, Purpose.CHILD_KEY, referral_index)))


def name_key(name: str) -> int:
    """A stable integer for a channel or segment name (spawn keys must not depend on list order)."""
    return zlib.crc32(name.encode("utf-8"))


def batch_sequence(seed: int, replication: int, channel: str, month: int, segment: str,
                   block: int = 0) -> np.random.SeedSequence:
    """The seed sequence of one acquisition batch (``docs/model.md``, section 7); a batch larger than
    :data:`sim.model.acquisition.BLOCK` is drawn in blocks, block ``b`` > 0 from its own sequence."""
    key = (replication, name_key(channel), month, name_key(segment))
    return np.random.SeedSequence(entropy=seed, spawn_key=key if block == 0 else (*key, block))


def existing_keys(seed: int, replication: int, channel: str, id_hash: np.ndarray) -> np.ndarray:
    """Keys of existing customers (``existing_customers``), from a stable hash of each one's id: the same
    customer has the same streams in a scenario and its baseline, whatever the order of the table's rows."""
    base = np.random.SeedSequence(entropy=seed, spawn_key=(replication, name_key(channel), 0xE715))
    z = np.asarray(id_hash, dtype=np.uint64) * _GOLDEN
    z += base.generate_state(1, np.uint64)[0]
    return mix64(mix64(z))


def replication_generator(seed: int, replication: int, purpose: str) -> np.random.Generator:
    """A per-replication generator for draws that need no per-customer pairing (e.g. order values)."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(replication, name_key(purpose))))


def gamma(keys: np.ndarray, purpose: Purpose, shape: float, *, offset: np.ndarray | int = 0) -> np.ndarray:
    """One standard Gamma(shape) variate per customer from its ``purpose`` stream (exact).

    Keyed Marsaglia & Tsang (2000), computed by :func:`sim.random.compiled.gammas` (see
    :func:`sim.random.compiled.marsaglia_tsang` and :func:`gamma_reference`). ``offset`` separates several gamma
    draws on one purpose (counters offset .. offset + 3 x attempts); an array gives each customer its own.
    """
    return compiled.gammas(np.ascontiguousarray(keys, dtype=np.uint64), _INCREMENTS[purpose], float(shape),
                          _counters(offset, len(keys)))


def gamma_reference(keys: np.ndarray, purpose: Purpose, shape: float, *,
                    offset: np.ndarray | int = 0) -> np.ndarray:
    """:func:`gamma` in numpy, attempts vectorised over customers: the method written out.

    Marsaglia & Tsang (2000), "A simple method for generating gamma variables", ACM TOMS 26(3): a
    normal by Box-Muller and an acceptance uniform per attempt, each attempt on fresh counters, so the
    draw stays keyed to the customer. For shape < 1, Gamma(shape + 1) x U^(1/shape). Equal to
    :func:`gamma` within a few ulp (numpy's ``log1p``, ``log`` and powers may be its own SIMD routines).
    """
    boosted = shape + 1.0 if shape < 1.0 else shape
    d = boosted - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    result = np.empty(len(keys))
    pending = np.arange(len(keys))
    attempt = 0
    while pending.size:
        k = keys[pending]
        base = (offset[pending] if isinstance(offset, np.ndarray) else offset) + np.uint64(1 + 3 * attempt)
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
