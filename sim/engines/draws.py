"""The draws of customers' events, shared by both fast engines so that they pair draw for draw.

Every draw comes from the customer's own keyed stream (:mod:`sim.random.streams`): the k-th inter-purchase time, the
dropout coin after the k-th purchase, the k-th order's value, the lifetime, the j-th referral time and the
traits of the j-th referred customer. The engine with a program (:mod:`sim.engines.calendar`) calls these functions;
the engine without one (:mod:`sim.engines.lifetimes`) calls them for traits, lifetimes and referrals and makes the
per-purchase draws in its compiled loop (:mod:`sim.random.compiled`); both reach the same compiled code for the
same (customer, purpose, counter), the one implementation of each draw. So a program with no behavioural response reproduces its baseline exactly
(``docs/model.md``, section 7).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from sim.engines import loops
from sim.model.population import SegmentLaws, draw_children
from sim.random import streams as rng
from sim.random.gamma_table import MeanOneGamma
from sim.random.streams import Purpose


@functools.lru_cache(maxsize=32)
def gamma_tables(shapes: tuple[float | None, ...]) -> MeanOneGamma:
    """The (read-only) keyed Gamma tables of these shapes, built once a process."""
    return MeanOneGamma(shapes)


class Draws:
    """Event draws for the segments ``laws`` (times in years, rates per year, money in currency)."""

    def __init__(self, laws: list[SegmentLaws]) -> None:
        self.laws = laws
        self.order_noise = gamma_tables(tuple(law.spend.p for law in laws))  # one row per segment
        # the C library's log1p (Python's math), not numpy's SIMD one: a model number feeding order values
        self.log_growth = np.array([math.log1p(law.spend.growth_per_year) for law in laws])
        self.has_growth = bool(self.log_growth.any())
        self.referral_segment = np.array([law.referral_segment for law in laws])
        self._child_noise: dict[int, MeanOneGamma] = {}

    def order_values(self, keys: np.ndarray, made: np.ndarray, segment: np.ndarray, spend_mean: np.ndarray,
                     t: np.ndarray, arrival: np.ndarray) -> np.ndarray:
        """List-price values of orders number ``made`` at ``t``: own mean x Gamma(p, rate p) x (1 + g)^tenure.

        The Gamma factor of a customer's k-th order is the k-th of its order-value stream, so the same
        order is worth the same in a scenario and its baseline (growth aside: it follows the order's date).
        """
        row = segment if len(self.laws) > 1 else 0
        value = self.order_noise.draw(keys, Purpose.ORDER_VALUE, made, row)
        value *= spend_mean
        if self.has_growth:   # the engine loop's formula, by the same compiled code
            loops.grow_order_values(value, self.log_growth, np.ascontiguousarray(segment, dtype=np.uint8),
                                      np.ascontiguousarray(t, dtype=np.float64),
                                      np.ascontiguousarray(arrival, dtype=np.float64))
        return value

    @staticmethod
    def next_purchase(keys: np.ndarray, made: np.ndarray, t: np.ndarray, rate: np.ndarray) -> np.ndarray:
        """The purchase after the ``made``-th (counting from 0) at ``t``, at purchase rate ``rate``."""
        gap = rng.exponential(keys, Purpose.INTERPURCHASE, made)
        gap /= rate
        gap += t
        return gap

    @staticmethod
    def drops(keys: np.ndarray, made: np.ndarray, chance: np.ndarray) -> np.ndarray:
        """Whether the customer drops out right after purchase number ``made`` (a repeat purchase if > 0)."""
        return (rng.uniform(keys, Purpose.DROPOUT, made) < chance) & (made > 0)

    @staticmethod
    def lifetime_end(keys: np.ndarray, arrival: np.ndarray, hazard: np.ndarray) -> np.ndarray:
        """When a customer arriving at ``arrival`` drops out under ``hazard``: inf if the hazard is 0, without
        a draw (a segment whose dropout comes per purchase has none; each draw is keyed, so those skipped
        move no other)."""
        dropping = hazard > 0
        if dropping.all():
            return arrival + rng.exponential(keys, Purpose.LIFETIME, 0) / hazard
        end = np.full(len(keys), np.inf)
        at = np.flatnonzero(dropping)
        if at.size:
            end[at] = arrival[at] + rng.exponential(keys[at], Purpose.LIFETIME, 0) / hazard[at]
        return end

    @staticmethod
    def referral_after(keys: np.ndarray, number: np.ndarray | int, t: np.ndarray, rate: np.ndarray) -> np.ndarray:
        """When referral ``number`` (from 0) comes, ``t`` being the arrival (number 0) or the previous one."""
        return t + rng.exponential(keys, Purpose.REFERRAL_TIME, number) / rate

    def children(self, parent_keys: np.ndarray, numbers: np.ndarray, parent_segment: np.ndarray):
        """The customers brought by referrals ``numbers`` of their referrers: yields (positions in the
        input, segment, traits) per segment of the referred customers."""
        keys = rng.child_keys(parent_keys, numbers)
        target = self.referral_segment[parent_segment]
        for segment in np.unique(target):
            chosen = np.flatnonzero(target == segment)
            yield chosen, int(segment), draw_children(self.laws[segment], int(segment), keys[chosen],
                                                      self.child_noise(int(segment)))

    def child_noise(self, segment: int) -> MeanOneGamma:
        """The Gamma tables of the traits of referred customers of ``segment`` (built on first use)."""
        if segment not in self._child_noise:
            law = self.laws[segment]
            dropout = law.dropout
            self._child_noise[segment] = gamma_tables((
                law.purchase_rate.shape, law.referral_rate.shape, law.hazard.shape if law.hazard else None,
                law.spend.q, dropout.a if dropout else None, dropout.b if dropout else None,
            ))
        return self._child_noise[segment]
