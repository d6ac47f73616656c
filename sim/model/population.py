"""Customer state as columns: one numpy array per attribute over all customers of a replication.

Times are in years from the scenario start; rates per year; money in the scenario's currency.
No per-customer Python objects: a customer is an index into these arrays.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.random import streams as rng
from sim.random.gamma_table import MeanOneGamma
from sim.random.streams import Purpose
from sim.schema import BetaLaw, GammaLaw, Scenario, SpendLaw
from sim.schema.behaviour import HazardDropout

#: name -> dtype of every per-customer column.
COLUMNS: dict[str, type] = {
    "key": np.uint64,            # random-stream key (sim.random.streams)
    "segment": np.uint8,
    "cohort": np.int32,          # index into the run's cohort table
    "acquired_at": np.float64,   # years
    "next_purchase": np.float64,  # years; inf = no further purchase
    "death": np.float64,         # years; inf = alive (so far)
    "referral_due": np.float64,  # years; next organic referral, inf = none
    "last_purchase": np.float64,  # years; -inf before the first
    "rate": np.float32,          # purchases per year while active
    "dropout_p": np.float32,     # chance of dropping out after a repeat purchase (BG/NBD)
    "hazard": np.float32,        # dropout hazard per year (Pareto/NBD)
    "spend_mean": np.float32,    # the customer's own mean order value
    "referral_rate": np.float32,  # referrals per year while active
    "purchases": np.int32,       # purchases made so far, acquisition purchase included
    "referrals": np.int32,       # referrals made so far
    "parent_cohort": np.int32,   # cohort of the referrer (network value), -1 for acquired customers
}
#: Columns only a scenario with a ``policy`` block carries: name -> (dtype, columns per customer).
PROGRAM_COLUMNS: dict[str, tuple[type, int]] = {
    "member": (np.bool_, 1),
    "redeemer": (np.bool_, 1),
    "tier": (np.int8, 1),           # 0 = no tier, k = the k-th tier of the policy
    "lives": (np.uint8, 1),         # win-back reactivations so far
    "discounted": (np.int32, 1),    # discounted purchases so far (habituation)
    "points": (np.int64, 1),        # points balance (integer points, so conservation is exact)
    "mult": (np.float64, 1),        # purchase-rate multiplier the pending purchase time was drawn at
    "deadline": (np.float64, 1),    # earliest own deadline: offer end, win-back send, points expiry; inf = none
    "offer_until": (np.float64, 1),  # personal offer valid until (years); -inf = none held
    "offer_depth": (np.float64, 1),
    "winback_at": (np.float64, 1),  # when a win-back offer goes out unless the customer buys first; inf = none
    "repeat_spend": (np.float64, 1),  # list value of repeat orders (what the firm sees, for scoring)
    "spell_start": (np.float64, 1),   # start of the current active spell: arrival or the last win-back
    "arrival_discount": (np.float64, 1),  # present value at the scenario start of 1 at the arrival
    "spend12": (np.float32, 12),    # net spend per month, ring buffer over the trailing 12 months (tiers)
    "spend_12m": (np.float64, 1),   # their sum, kept as purchases come in and months leave the window
    "first_purchase": (np.float64, 1),  # years; the first purchase (before the start for existing customers)
}
BYTES_PER_CUSTOMER = sum(np.dtype(t).itemsize for t in COLUMNS.values())
#: Bytes of a customer's program state (the columns above), not the engine's measured peak
#: (:data:`sim.engines.memory.PEAK_BYTES_PER_CUSTOMER_WITH_PROGRAM`).
PROGRAM_STATE_BYTES_PER_CUSTOMER = sum(np.dtype(t).itemsize * width for t, width in PROGRAM_COLUMNS.values())


@dataclass(frozen=True)
class SegmentLaws:
    """A segment's behaviour as the laws the engine draws from (per year)."""

    name: str
    purchase_rate: GammaLaw
    dropout: BetaLaw | None        # per-purchase dropout (BG/NBD)
    hazard: GammaLaw | None        # hazard dropout (Pareto/NBD)
    spend: SpendLaw
    referral_rate: GammaLaw
    referral_segment: int          # index of the segment referred customers join


def segment_laws(scenario: Scenario) -> list[SegmentLaws]:
    names = list(scenario.segments)
    laws = []
    for index, (name, seg) in enumerate(scenario.segments.items()):
        hazard = isinstance(seg.dropout, HazardDropout)
        target = seg.referrals_per_year.segment
        laws.append(SegmentLaws(
            name=name,
            purchase_rate=seg.purchases_per_year.law(),
            dropout=None if hazard else seg.dropout.law(),
            hazard=seg.dropout.law() if hazard else None,
            spend=seg.order_value.law(),
            referral_rate=seg.referrals_per_year.law(),
            referral_segment=index if target is None else names.index(target),
        ))
    return laws


class Population:
    """Growable struct-of-arrays; ``size`` customers are live in the first rows.

    ``extra`` names the :data:`PROGRAM_COLUMNS` this population also carries; those not given to
    :meth:`append` start at their neutral value (see ``_PROGRAM_DEFAULTS``). A column of width w > 1 is
    a (w, capacity) array: each of its w rows is contiguous over customers.
    """

    def __init__(self, capacity: int, *, extra: tuple[str, ...] = ()) -> None:
        self.size = 0
        capacity = max(capacity, 16)
        self.columns = {name: np.empty(capacity, dtype=dtype) for name, dtype in COLUMNS.items()}
        for name in extra:
            dtype, width = PROGRAM_COLUMNS[name]
            self.columns[name] = np.empty((capacity,) if width == 1 else (width, capacity), dtype=dtype)

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.__dict__["columns"][name]
        except KeyError:
            raise AttributeError(name) from None

    def view(self, name: str) -> np.ndarray:
        """The live customers of a column."""
        return self.columns[name][..., : self.size]

    def append(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Add customers (one array per column, all the same length); returns their indices."""
        count = len(values["key"])
        if self.size + count > len(self.columns["key"]):
            self._grow(self.size + count)
        rows = slice(self.size, self.size + count)
        for name, column in self.columns.items():
            column[..., rows] = values[name] if name in values else _PROGRAM_DEFAULTS[name]
        self.size += count
        return np.arange(rows.start, rows.stop)

    def _grow(self, needed: int) -> None:
        capacity = max(needed, int(len(self.columns["key"]) * 1.5))
        for name, column in self.columns.items():
            grown = np.empty(column.shape[:-1] + (capacity,), dtype=column.dtype)
            grown[..., : self.size] = column[..., : self.size]
            self.columns[name] = grown


_PROGRAM_DEFAULTS = {
    "member": False, "redeemer": False, "tier": 0, "lives": 0, "discounted": 0, "points": 0, "mult": 1.0,
    "deadline": np.inf, "offer_until": -np.inf, "offer_depth": 0.0, "winback_at": np.inf, "repeat_spend": 0.0,
    "spend12": 0.0, "spend_12m": 0.0, "spell_start": 0.0, "arrival_discount": 1.0, "first_purchase": 0.0,
}


class BatchTraits:
    """Latent traits of one acquisition batch, one child stream per trait, drawn in slices.

    Each trait's generator draws customer after customer, so slices of any sizes give exactly the customers
    of one draw of the whole batch (and the first n customers of a batch do not depend on its size).
    """

    def __init__(self, laws: SegmentLaws, segment: int, sequence: np.random.SeedSequence) -> None:
        rate_ss, drop_ss, spend_ss, ref_ss, key_ss = sequence.spawn(5)
        self.laws, self.segment = laws, segment
        self.key_base = int(key_ss.generate_state(1, np.uint64)[0])
        self.rate_rng, self.drop_rng = np.random.default_rng(rate_ss), np.random.default_rng(drop_ss)
        self.spend_rng, self.ref_rng = np.random.default_rng(spend_ss), np.random.default_rng(ref_ss)
        self.taken = 0

    def take(self, count: int) -> dict[str, np.ndarray]:
        """The traits of the next ``count`` customers of the batch."""
        laws = self.laws
        traits = {
            "key": rng.customer_keys(self.key_base, count, start=self.taken),
            "segment": np.full(count, self.segment, dtype=np.uint8),
            "rate": _gamma(laws.purchase_rate, count, self.rate_rng),
            "spend_mean": _spend_means(laws.spend, count, self.spend_rng),
            "referral_rate": _gamma(laws.referral_rate, count, self.ref_rng),
        }
        if laws.dropout is not None:
            traits["dropout_p"] = _beta(laws.dropout, count, self.drop_rng)
            traits["hazard"] = np.zeros(count)
        else:
            traits["dropout_p"] = np.zeros(count)
            traits["hazard"] = _gamma(laws.hazard, count, self.drop_rng)
        self.taken += count
        return traits


class DrawnBatch:
    """The traits of a whole acquisition batch drawn at once (read only), handed out in slices as
    :meth:`BatchTraits.take` hands them out: copies, which the engines may write to and which their compiled
    loops take as the arrays they were compiled for (a read-only array is another type to numba)."""

    def __init__(self, traits: dict[str, np.ndarray]) -> None:
        self.traits, self.taken = traits, 0

    def take(self, count: int) -> dict[str, np.ndarray]:
        part = {name: column[self.taken:self.taken + count].copy() for name, column in self.traits.items()}
        self.taken += count
        return part


#: A run of at most this many customers (acquired and existing) keeps the traits of its acquisition batches
#: (and the histories of its simulated existing customers, :mod:`sim.model.existing`) for later runs in the
#: same process that draw the same ones: the points of a sweep, a scenario and its baseline, on the same
#: seed and replication. Setting up a batch's streams costs about 0.1 ms, a third of a replication of the
#: example's points program at 1/10 (122 batches).
KEEP_RUN_CUSTOMERS = 250_000


class KeptDraws:
    """Draws kept for the later runs of this process that make the same ones (looked up by a key that
    holds everything they depend on), of at most ``limit`` customers, those used least recently dropped
    first. What is kept is shared: its arrays are read only, and callers hand out copies."""

    def __init__(self, limit: int) -> None:
        self.limit, self.customers = limit, 0
        self.items: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple, make: Callable[[], Any], customers: int) -> Any:
        """The draws kept under ``key``, or ``make()``'s (of ``customers`` customers), then kept."""
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
                return found[0]
        made = make()
        with self.lock:
            if key not in self.items:   # (another thread may have made them meanwhile)
                self.items[key] = (made, customers)
                self.customers += customers
            while self.customers > self.limit and len(self.items) > 1:
                self.customers -= self.items.popitem(last=False)[1][1]
        return made


#: The acquisition batches kept (about 50 bytes a customer).
KEPT_BATCHES = KeptDraws(1_000_000)


def read_only(columns: Iterable[np.ndarray | None]) -> None:
    """Marks ``columns`` (None: no column) read only, as draws kept in a :class:`KeptDraws` are."""
    for column in columns:
        if column is not None:
            column.flags.writeable = False


def keeps_traits(scenario: Scenario) -> bool:
    """Whether a run of ``scenario`` keeps the traits of its acquisition batches (:data:`KEEP_RUN_CUSTOMERS`)."""
    return scenario.planned_customers() <= KEEP_RUN_CUSTOMERS


def acquisition_traits(laws: SegmentLaws, segment: int, count: int, where: tuple, keep: bool = False
                       ) -> BatchTraits | DrawnBatch:
    """The traits of the ``count`` customers of one acquisition batch, whose stream is
    :func:`sim.random.streams.batch_sequence` ``(*where)`` (seed, replication, channel, batch, segment name,
    block), to be taken in slices. With ``keep`` (a small run: :func:`keeps_traits`), the whole batch
    is drawn at once and kept for the next run in this process that draws it (the same customers as
    slices of any sizes give)."""
    if not keep:
        return BatchTraits(laws, segment, rng.batch_sequence(*where))

    def drawn() -> dict[str, np.ndarray]:
        traits = BatchTraits(laws, segment, rng.batch_sequence(*where)).take(count)
        read_only(traits.values())
        return traits

    return DrawnBatch(KEPT_BATCHES.get((laws, segment, count, *where), drawn, count))


def draw_batch(laws: SegmentLaws, segment: int, count: int, where: tuple, keep: bool = False) -> dict[str, np.ndarray]:
    """Latent traits of one whole acquisition batch (see :func:`acquisition_traits`)."""
    return acquisition_traits(laws, segment, count, where, keep).take(count)


#: Rows of the Gamma tables of referred customers' traits (sim.engines.draws.Draws.child_noise).
CHILD_RATE_ROW, CHILD_REFERRAL_ROW, CHILD_HAZARD_ROW, CHILD_SPEND_ROW, CHILD_BETA_A_ROW, CHILD_BETA_B_ROW = range(6)


def draw_children(laws: SegmentLaws, segment: int, keys: np.ndarray, noise: MeanOneGamma) -> dict[str, np.ndarray]:
    """Latent traits of referred customers from their own keyed streams.

    Each child's traits are keyed to its referrer and referral index, so the same referral brings the
    same customer in both arms of a comparison, whatever else happened in the round. ``noise`` holds the
    segment's trait laws as mean-one Gamma tables (rows ``CHILD_*_ROW``; a constant trait's row is 1).
    """
    count = len(keys)
    spend = laws.spend
    if spend.q is None:
        spend_means = np.full(count, spend.mean)
    else:  # mean (q - 1) / Gamma(q, 1)
        spend_means = spend.mean * (spend.q - 1.0) / (spend.q * noise.draw(keys, Purpose.CHILD_SPEND, 0,
                                                                           CHILD_SPEND_ROW))
    traits = {
        "key": keys,
        "segment": np.full(count, segment, dtype=np.uint8),
        "rate": laws.purchase_rate.mean * noise.draw(keys, Purpose.CHILD_RATE, 0, CHILD_RATE_ROW),
        "spend_mean": spend_means,
        "referral_rate": laws.referral_rate.mean * noise.draw(keys, Purpose.CHILD_REFERRAL, 0, CHILD_REFERRAL_ROW),
    }
    if laws.dropout is not None:
        law = laws.dropout
        if law.a is None:
            traits["dropout_p"] = np.full(count, law.mean)
        else:  # Beta(a, b) = Ga / (Ga + Gb), the gammas as a x and b x mean-one variates
            first = law.a * noise.draw(keys, Purpose.CHILD_DROPOUT, 0, CHILD_BETA_A_ROW)
            second = law.b * noise.draw(keys, Purpose.CHILD_DROPOUT, 1, CHILD_BETA_B_ROW)
            traits["dropout_p"] = first / (first + second)
        traits["hazard"] = np.zeros(count)
    else:
        traits["dropout_p"] = np.zeros(count)
        traits["hazard"] = laws.hazard.mean * noise.draw(keys, Purpose.CHILD_DROPOUT, 0, CHILD_HAZARD_ROW)
    return traits


def _gamma(law: GammaLaw, count: int, generator: np.random.Generator) -> np.ndarray:
    if law.shape is None:
        return np.full(count, law.mean)
    return generator.gamma(law.shape, law.mean / law.shape, size=count)


def _beta(law: BetaLaw, count: int, generator: np.random.Generator) -> np.ndarray:
    if law.a is None:
        return np.full(count, law.mean)
    return generator.beta(law.a, law.b, size=count)


def _spend_means(law: SpendLaw, count: int, generator: np.random.Generator) -> np.ndarray:
    """Customers' own mean order values: mean * (q - 1) / Gamma(q, 1) (Gamma-Gamma), or all ``mean``."""
    if law.q is None:
        return np.full(count, law.mean)
    return law.mean * (law.q - 1.0) / generator.standard_gamma(law.q, size=count)
