"""The firm's scoring of customers for targeted offers, from what it can observe (``docs/levers.md``).

Times in years, money in the scenario's currency. A customer's observable history is ``repeats`` x,
``recency`` t_x (time of the last purchase since arrival; 0 without a repeat purchase), ``age`` T and
``repeat_spend`` (list value of the repeat orders). The scores are the BG/NBD or Pareto/NBD and Gamma-Gamma
conditional expectations (:mod:`sim.model.theory`): ``top_predicted_clv`` is the expected repeat purchases in the
next :data:`SCORING_WINDOW` times the expected order value; ``at_risk`` is 1 - P(alive) for past-valuable
customers (a repeat purchase and repeat spend at or above the median of the repeaters'), -inf for others.

Exact scores need a Gauss hypergeometric function per customer, about a microsecond each, and a round
scores everybody acquired so far. :func:`select_targets` therefore brackets every score between rough
bounds (:func:`~sim.model.score_bounds.score_bounds`: no logarithm, one compiled pass over the customers;
in the engines' rounds, a customer whose quick upper bound falls under a likely threshold gets that bound
alone, :func:`_likely_threshold`), keeps aside the customers whose bounds settle whether they are in the
top share, bounds the others more tightly (cheap, then tight bounds), and computes exact scores only for
the few left undecided (about 1% of the share), once per distinct history. The k-th highest bounds that
settle it are found from an evenly spaced sample's order statistics and a partition of the values near
them only. The selection is the one exact scores of
everybody would give: the bounds decide only with a slack of :data:`BOUND_SLACK` against rounding, so
whether the C library's ``log`` and ``exp`` in the compiled bounds agree with numpy's to the last bit
does not matter. The engines' rounds call :func:`select_observed`, the same selection reading the
population where it lies (:class:`Observed`: purchases made, first and last purchase times, as the engines
hold them): the rough bounds of everybody come from the parts' columns, in threads, and only the customers
they leave undecided have their history gathered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np

from sim.model import theory
from sim.model.population import SegmentLaws
from sim.model.score_bounds import (
    FRESH,
    NEGLIGIBLE_HAZARD,
    SCORING_WINDOW,
    SHARPEN,
    beta_parameters,
    cheap_pass,
    gamma_parameters,
    rough_observed_pass,
    rough_pass,
    segment_table,
    tight_pass,
)
from sim.random.compiled import OPTIONS

if TYPE_CHECKING:
    from concurrent.futures import Executor

#: Relative slack of the bounds against rounding (theirs and the exact scores': a few hundred ulps at most).
BOUND_SLACK = 1e-9
#: Values sampled (evenly spaced) to bracket the k-th largest bound, and the bracket's half-width in standard
#: deviations of the sample quantile (:func:`_kth_largest`).
THRESHOLD_SAMPLE = 4096
BRACKET_SPREAD = 5.0
#: Customers left undecided from which exact scores are computed once per distinct history.
DISTINCT_FROM = 1024
#: Customers from which the first pass runs in two halves at once when given threads (below: one call).
PARALLEL_FROM = 50_000
#: Pieces of as many customers each that :func:`select_observed` cuts the first pass into, given threads.
PIECES = 4
#: The share of customers (in the sample of :func:`_likely_threshold`) whose quick upper bound must fall
#: under the likely threshold for the first pass to take the quick bounds of everybody first (7 ns a
#: customer, against 28 ns for the rough bounds, on the 2-core development machine).
QUICK_FROM = 0.3
#: Customers still undecided from which the cheap and the tight passes (their histories gathered, then a
#: bound pass) run in two halves at once, given threads.
SHARPEN_PARALLEL_FROM = 5_000


def select_targets(laws: list[SegmentLaws], segment: np.ndarray, repeats: np.ndarray, recency: np.ndarray,
                   age: np.ndarray, repeat_spend: np.ndarray, *, target: str, share: float,
                   keys: np.ndarray | None = None, threads: Executor | None = None) -> np.ndarray:
    """Indices of the customers who get a targeted offer: the ``share`` with the highest
    :func:`score_customers` score among those with a score (ties broken deterministically: by the customers'
    ``keys``, the lower first, if given, so that the choice does not depend on the order the customers come
    in; else by their positions, the lower first). With ``threads`` (an executor of threads), the first
    pass, over everybody, runs in two halves at once (each customer's bounds are its own: the same choice),
    and so do the passes over many customers that find the thresholds and split them (:func:`_narrowed`).

    Passes of bounds (:func:`~sim.model.score_bounds.score_bounds`) narrow the customers down: those whose lower bound beats the
    (k+1)-th highest upper bound are in, those whose upper bound falls short of the k-th highest lower bound
    are out (k the places left). The rough bounds of everybody come first, then the cheap and the tight ones
    of those still undecided; exact scores decide among the rest.
    """
    history = (segment, repeats, recency, age, repeat_spend)
    undecided = _eligible(target, repeats, repeat_spend)
    places = round(share * undecided.size)
    if places == 0 or places >= undecided.size:
        return undecided[:places]
    table, at_risk = segment_table(laws), target == "at_risk"
    who = None if undecided.size == len(segment) else undecided      # (everybody: no indirection)
    lower, upper = np.empty(undecided.size), np.empty(undecided.size)
    _by_halves(threads, undecided.size, PARALLEL_FROM, lambda cut: rough_pass(
        table, at_risk, BOUND_SLACK, *(history if who is not None else (column[cut] for column in history)),
        None if who is None else who[cut], lower[cut], upper[cut], FRESH))
    return _narrowed(laws, target, places, undecided, lower, upper,
                     lambda positions: tuple(column[positions] for column in history),
                     None if keys is None else lambda positions: keys[positions], len(segment), threads)


@dataclass(frozen=True)
class Observed:
    """What a targeted-offer round reads of one part of the population, where it lies (nothing gathered):
    each customer's ``segment``, purchases ``made`` so far (the first included), times of its ``first`` and
    ``last`` purchases (``last`` is read only where ``made`` > 0), repeat ``spend`` (list value of the repeat
    orders) and ``keys`` (None: ties go by position); ``who``: the positions of the customers scored, in
    ascending order (None: all)."""

    segment: np.ndarray
    made: np.ndarray
    first: np.ndarray
    last: np.ndarray
    spend: np.ndarray
    keys: np.ndarray | None = None
    who: np.ndarray | None = None

    @property
    def size(self) -> int:
        """How many customers are scored."""
        return len(self.made) if self.who is None else self.who.size

    def positions(self, scored: np.ndarray) -> np.ndarray:
        """The positions in the part of the scored customers number ``scored``."""
        return scored if self.who is None else self.who[scored]

    def history(self, scored: np.ndarray, t: float) -> tuple[np.ndarray, ...]:
        """The observable history at ``t`` of the scored customers number ``scored``, as :func:`select_targets`
        reads it: segment, repeat purchases, recency (0 without a repeat purchase), age, repeat spend."""
        at = self.positions(scored)
        made, first = self.made[at].astype(np.int64), self.first[at]
        recency = np.where(made > 0, self.last[at] - first, 0.0)
        return self.segment[at], np.maximum(made - 1, 0), recency, t - first, self.spend[at]


def select_observed(laws: list[SegmentLaws], parts: list[Observed], t: float, *, target: str, share: float,
                    threads: Executor | None = None) -> list[np.ndarray]:
    """:func:`select_targets` of the customers of ``parts`` scored at ``t`` (taken part after part; ``keys``
    break ties if the parts have them), reading each part where it lies: the first pass, over everybody,
    computes each part's bounds from its columns (:func:`~sim.model.score_bounds.rough_observed_pass`; given
    ``threads``, in :data:`PIECES` pieces of as many customers, from :data:`PARALLEL_FROM` customers on), and
    only the customers it leaves undecided have their history gathered. Returns the positions of the chosen
    in each part, ascending: the choice :func:`select_targets` makes of the parts' histories gathered
    (:meth:`Observed.history`)."""
    if not parts:   # nobody acquired yet
        return []
    if target == "at_risk":   # the past-valuable only: their positions become the parts' scored customers
        parts = [Observed(part.segment, part.made, part.first, part.last, part.spend, part.keys, part.positions(mine))
                 for part, mine in zip(parts, _eligible_observed(target, parts), strict=True)]
    starts = np.cumsum([0] + [part.size for part in parts])
    total = int(starts[-1])
    places = round(share * total)
    if places == 0 or places >= total:
        return _per_part(parts, starts, np.arange(places))
    table, at_risk = segment_table(laws), target == "at_risk"
    lower, upper = np.empty(total), np.empty(total)
    # (part, its scored customers from, to): with threads, the population cut in pieces of as many customers
    # (parts are cut by the work of their lives, not by count), a part's pieces within it
    cuts = [] if threads is None or total < 2 * PARALLEL_FROM else [total * k // PIECES for k in range(1, PIECES)]
    pieces = []
    for part, start in zip(parts, starts[:-1], strict=True):
        within = [0] + [cut - start for cut in cuts if 0 < cut - start < part.size] + [part.size]
        pieces += [(part, start, a, b) for a, b in zip(within[:-1], within[1:], strict=True) if b > a]

    below = -np.inf if at_risk else _likely_threshold(table, parts, starts, t, places)

    def bounds(part: Observed, start: int, a: int, b: int) -> None:
        columns = (part.segment, part.made, part.first, part.last, part.spend)
        if part.who is None:   # (a piece of a part scored whole: its columns' piece, no indirection)
            columns = tuple(column[a:b] for column in columns)
        rough_observed_pass(table, at_risk, BOUND_SLACK, t, *columns, None if part.who is None else part.who[a:b],
                            lower[start + a:start + b], upper[start + a:start + b], below)

    if threads is None:
        for piece in pieces:
            bounds(*piece)
    else:
        for done in [threads.submit(bounds, *piece) for piece in pieces]:
            done.result()

    def history_of(scored: np.ndarray) -> tuple[np.ndarray, ...]:
        """The history of the scored customers number ``scored`` (ascending), gathered part by part."""
        histories = [part.history(mine, t) for part, mine in zip(parts, _per_part(parts, starts, scored, False),
                                                                  strict=True)]
        return tuple(np.concatenate(columns) for columns in zip(*histories, strict=True))

    def keys_of(scored: np.ndarray) -> np.ndarray:
        """The keys of the scored customers number ``scored`` (ascending), part by part."""
        return np.concatenate([part.keys[at] for part, at in zip(parts, _per_part(parts, starts, scored), strict=True)])

    keyed = all(part.keys is not None for part in parts)
    chosen = _narrowed(laws, target, places, None, lower, upper, history_of, keys_of if keyed else None,
                       total, threads)
    return _per_part(parts, starts, chosen)


def _likely_threshold(table: np.ndarray, parts: list[Observed], starts: np.ndarray, t: float, places: int) -> float:
    """A value the k-th highest rough lower bound (k = ``places``) of the customers of ``parts`` very likely
    lies above (-inf for fewer than 4 x :data:`THRESHOLD_SAMPLE` customers): a low order statistic of the
    rough lower bounds of :data:`THRESHOLD_SAMPLE` evenly spaced customers (:func:`_sample_bracket`). The
    first pass hands it to :func:`~sim.model.score_bounds.rough_observed_pass` as ``below``: the customers
    whose quick upper bound is under it get that bound alone (at 1M customers, about 57% of them at the
    quarterly rounds of every lever), which rules them out whenever the k-th highest lower bound is above
    it. Were it too high, the bounds would still hold and more customers would be left for the cheap pass:
    the choice does not depend on it. -inf too (no quick bounds) when under :data:`QUICK_FROM` of the sample
    would take the quick bound."""
    total = int(starts[-1])
    if total < 4 * THRESHOLD_SAMPLE:
        return -np.inf
    sample = np.arange(0, total, total // THRESHOLD_SAMPLE)
    lower, upper, zero, quick = (np.empty(sample.size) for _ in range(4))
    at = 0
    for part, mine in zip(parts, _per_part(parts, starts, sample), strict=True):
        for below, bounds in ((-np.inf, (lower, upper)), (np.inf, (zero, quick))):   # rough, quick
            rough_observed_pass(table, False, BOUND_SLACK, t, part.segment, part.made, part.first, part.last,
                                part.spend, mine, *(bound[at:at + mine.size] for bound in bounds), below)
        at += mine.size
    likely = _sample_bracket(lower, max(1, round(places * sample.size / total)))[0]
    # (the quick bounds of everybody pay only if enough customers are spared the rough bounds)
    return likely if np.mean(quick < likely) >= QUICK_FROM else -np.inf


def _per_part(parts: list[Observed], starts: np.ndarray, scored: np.ndarray, positions: bool = True
              ) -> list[np.ndarray]:
    """The scored customers number ``scored`` (ascending; ``starts``: where each part's begin) of ``parts``
    taken in order, part by part: their positions in the part, or with ``positions`` False their numbers
    among its scored customers."""
    cuts = np.searchsorted(scored, starts)
    mine = [scored[a:b] - start for a, b, start in zip(cuts[:-1], cuts[1:], starts[:-1], strict=True)]
    return [part.positions(numbers) for part, numbers in zip(parts, mine, strict=True)] if positions else mine


def _eligible_observed(target: str, parts: list[Observed]) -> list[np.ndarray]:
    """:func:`_eligible` of the scored customers of each part: which of them (their numbers) have a score."""
    made = [part.made[part.positions(np.arange(part.size))] for part in parts]
    spend = [part.spend[part.positions(np.arange(part.size))] for part in parts]
    eligible = _eligible(target, np.concatenate(made).astype(np.int64) - 1, np.concatenate(spend))
    return _per_part(parts, np.cumsum([0] + [part.size for part in parts]), eligible, False)


def _narrowed(laws: list[SegmentLaws], target: str, places: int, undecided: np.ndarray | None, lower: np.ndarray,
              upper: np.ndarray, history_of, keys_of, size: int, threads: Executor | None = None) -> np.ndarray:
    """The ``places`` customers with the highest scores among ``undecided`` (ascending positions; None: all
    ``size``, whose positions the first split gives without gathering them), whose rough bounds are ``lower``
    and ``upper``: the cheap and the tight bounds of those still undecided, then exact
    scores; ``history_of(positions)`` gives their history, ``keys_of(positions)`` their keys (None: ties go
    by position). Returns the chosen positions, ascending, out of ``size``. With ``threads``, the passes over
    many customers that find the thresholds and split them, and the cheap and tight passes from
    :data:`SHARPEN_PARALLEL_FROM` customers, run in halves at once (the same results)."""
    table, at_risk = segment_table(laws), target == "at_risk"
    chosen = []
    for sharper in (cheap_pass, tight_pass, None):
        kth_lower, next_upper = _kth_largest(lower, places, threads), _kth_largest(upper, places + 1, threads)

        def split(cut: slice, lower=lower, upper=upper, kth_lower=kth_lower, next_upper=next_upper) -> tuple:
            """:func:`_split` of the customers in ``cut``, their positions in the whole."""
            found = _split(lower[cut], upper[cut], kth_lower, next_upper)
            return tuple(positions + cut.start for positions in found) if cut.start else found

        halves = _by_halves(threads, lower.size, PARALLEL_FROM, split)
        sure, maybe = (_joined([half[which] for half in halves]) for which in (0, 1))
        chosen.append(sure if undecided is None else undecided[sure])
        places -= sure.size
        undecided, lower, upper = maybe if undecided is None else undecided[maybe], lower[maybe], upper[maybe]
        if places == 0 or places >= undecided.size or sharper is None:
            break
        def sharpen(cut: slice, sharper=sharper, undecided=undecided, lower=lower, upper=upper) -> None:
            """The sharper bounds of the customers in ``cut`` (each customer's are its own)."""
            sharper(table, at_risk, BOUND_SLACK, *history_of(undecided[cut]), None, lower[cut], upper[cut], SHARPEN)

        _by_halves(threads, undecided.size, SHARPEN_PARALLEL_FROM, sharpen)
    if 0 < places < undecided.size:
        exact = _distinct_scores(laws, list(history_of(undecided)), target)
        tie_break = undecided if keys_of is None else keys_of(undecided)
        undecided = undecided[np.lexsort((tie_break, -exact))[:places]]
    if places:
        chosen.append(undecided)
    picked = np.zeros(size, dtype=bool)      # (in order without sorting them)
    for part in chosen:
        picked[part] = True
    return np.flatnonzero(picked)


def _distinct_scores(laws: list[SegmentLaws], history: list[np.ndarray], target: str) -> np.ndarray:
    """Exact scores of eligible customers, computed once per distinct history when many are left: those tied
    at the threshold often share theirs (arrived together, no repeat purchase yet)."""
    if history[0].size < DISTINCT_FROM:
        return _scores(laws, *history, target=target)
    order = np.lexsort(history)
    new = np.zeros(order.size, dtype=bool)
    new[0] = True
    for column in history:
        ordered = column[order]
        new[1:] |= ordered[1:] != ordered[:-1]
    first = order[new]                                   # a customer of each distinct history
    score = np.empty(order.size)
    score[order] = _scores(laws, *(column[first] for column in history), target=target)[np.cumsum(new) - 1]
    return score


def _kth_largest(values: np.ndarray, k: int, threads: Executor | None = None) -> float:
    """The k-th largest of ``values`` (1 <= k <= len), as ``np.partition`` would give it, partitioning only
    the values near it: the order statistics of an evenly spaced sample bracket it (:func:`_sample_bracket`),
    one pass counts the values above the bracket and gathers those in it (given ``threads``, over many
    values, in two halves at once), and if the count shows that the k-th largest is not in the bracket (the
    sample was unrepresentative) all values are partitioned."""
    n = values.size
    if n <= 4 * THRESHOLD_SAMPLE:
        return np.partition(values, n - k)[n - k]
    low, high = _sample_bracket(values, k)
    # (counts add up, and the k-th largest of those near does not depend on their order)
    counted = _by_halves(threads, n, PARALLEL_FROM, lambda cut: _bracket(values[cut], low, high))
    above, at_high, at_low = (sum(half[at] for half in counted) for at in (0, 1, 3))
    near = _joined([half[2] for half in counted])
    if above < k <= above + at_high:
        return high
    rank = k - above - at_high           # of the k-th largest among those below ``high``
    if 0 < rank <= near.size:
        return np.partition(near, near.size - rank)[near.size - rank]
    if 0 < rank - near.size <= at_low:
        return low
    return np.partition(values, n - k)[n - k]


def _sample_bracket(values: np.ndarray, k: int) -> tuple[float, float]:
    """Likely bounds of the k-th largest of ``values`` (1 <= k <= len) from :data:`THRESHOLD_SAMPLE` evenly
    spaced ones: their order statistics :data:`BRACKET_SPREAD` standard deviations of the sample quantile
    either side of its rank (-inf, inf past the sample's ends). The sample is fixed by the values' order: no
    randomness enters."""
    n = values.size
    sample = np.sort(values[::max(n // THRESHOLD_SAMPLE, 1)])
    rank = sample.size * (1.0 - k / n)                   # of the k-th largest, in the ascending sample
    spread = BRACKET_SPREAD * math.sqrt(sample.size * (k / n) * (1.0 - k / n)) + 2.0
    low_rank, high_rank = math.floor(rank - spread), math.ceil(rank + spread)
    low = sample[low_rank] if low_rank >= 0 else -np.inf
    high = sample[high_rank] if high_rank < sample.size else np.inf
    return low, high


@numba.njit(**OPTIONS)
def _bracket(values, low, high):
    """How many ``values`` are above ``high`` and equal to it, those strictly between ``low`` and ``high``, and
    how many equal ``low`` (equal values are counted, not gathered: np.partition is slow on many ties)."""
    near = np.empty(values.size)
    above = count = 0
    for i in range(values.size):    # (stores without branches: few values are near)
        value = values[i]
        above += value > high
        near[count] = value
        count += (value <= high) & (value >= low)
    at_high = at_low = between = 0
    for value in near[:count]:
        if value == high:
            at_high += 1
        elif value == low:
            at_low += 1
        else:
            near[between] = value
            between += 1
    return above, at_high, near[:between], at_low


def _by_halves(threads: Executor | None, size: int, smallest: int, work) -> list:
    """``work(cut)`` of the slice of ``size`` positions it is handed: of all of them in one call, or, given
    ``threads`` and at least twice ``smallest`` positions, of each half at once. Returns the calls' results,
    in the order of the positions."""
    if threads is None or size < 2 * smallest:
        return [work(slice(0, size))]
    halves = [threads.submit(work, cut) for cut in (slice(0, size // 2), slice(size // 2, size))]
    return [half.result() for half in halves]


def _joined(pieces: list[np.ndarray]) -> np.ndarray:
    """The arrays ``pieces`` one after the other (the one itself, not a copy, if it is alone)."""
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


@numba.njit(**OPTIONS)
def _split(lower, upper, kth_lower, next_upper):
    """Positions surely among the top scores (lower bound above ``next_upper``, the (k+1)-th highest upper
    bound), and those that may be (upper bound at least ``kth_lower``, the k-th highest lower bound)."""
    sure, maybe = np.empty(lower.size, np.int64), np.empty(lower.size, np.int64)
    surely = maybes = 0
    for i in range(lower.size):     # (stores without branches: which way a customer goes is unpredictable)
        is_sure = lower[i] > next_upper
        sure[surely] = maybe[maybes] = i
        surely += is_sure
        maybes += (not is_sure) & (upper[i] >= kth_lower)
    return sure[:surely], maybe[:maybes]


def _eligible(target: str, repeats: np.ndarray, repeat_spend: np.ndarray) -> np.ndarray:
    """Who has a score: everybody for ``top_predicted_clv``, the past-valuable for ``at_risk``."""
    if target != "at_risk":
        return np.arange(len(repeats))
    repeaters = repeats > 0
    if not repeaters.any():
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(repeaters & (repeat_spend >= _median(repeat_spend[repeaters])))


def _median(values: np.ndarray) -> float:
    """``np.median(values)`` (the middle value, or the mean of the two middle ones), from one or two k-th
    largest values (:func:`_kth_largest`) instead of a partition of all."""
    n = values.size
    if np.isnan(values).any():
        return np.nan
    upper_middle = _kth_largest(values, n - n // 2)
    if n % 2:
        return upper_middle
    return (_kth_largest(values, n - n // 2 + 1) + upper_middle) / 2.0


def score_customers(laws: list[SegmentLaws], segment: np.ndarray, repeats: np.ndarray, recency: np.ndarray,
                    age: np.ndarray, repeat_spend: np.ndarray, *, target: str) -> np.ndarray:
    """The firm's exact score of each customer (higher = more deserving of the offer); -inf for the
    customers ``at_risk`` does not consider (see the module docstring)."""
    score = np.full(len(segment), -np.inf)
    eligible = _eligible(target, repeats, repeat_spend)
    score[eligible] = _scores(laws, segment[eligible], repeats[eligible], recency[eligible], age[eligible],
                              repeat_spend[eligible], target=target)
    return score


def _scores(laws: list[SegmentLaws], segment: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
            spend: np.ndarray, *, target: str) -> np.ndarray:
    """Exact scores of eligible customers."""
    score = np.empty(len(segment))
    for chosen, law in _by_segment(laws, segment):
        cx, ct_x, cT = x[chosen], t_x[chosen], T[chosen]
        special = _special_case(law, cx, cT, spend[chosen], target)
        if special is not None:
            score[chosen] = special
            continue
        r, alpha = gamma_parameters(law.purchase_rate)
        if law.dropout is not None:
            a, b = beta_parameters(law.dropout)
            if target == "at_risk":
                score[chosen] = theory.bgnbd_probability_dead(cx, ct_x, cT, r, alpha, a, b)
                continue
            purchases = theory.bgnbd_conditional_expected_purchases(SCORING_WINDOW, cx, ct_x, cT, r, alpha, a, b)
        else:
            s, beta = gamma_parameters(law.hazard)
            if target == "at_risk":
                score[chosen] = theory.paretonbd_probability_dead(cx, ct_x, cT, r, alpha, s, beta)
                continue
            purchases = theory.paretonbd_conditional_expected_purchases(SCORING_WINDOW, cx, ct_x, cT, r, alpha,
                                                                        s, beta)
        score[chosen] = purchases * _expected_order_value(law, cx, spend[chosen])
    return score


def _special_case(law: SegmentLaws, x: np.ndarray, T: np.ndarray, spend: np.ndarray, target: str) -> np.ndarray | None:
    """Exact scores of segments whose closed forms degenerate (no purchases, certain or no dropout). A purchase
    rate whose Gamma rate parameter overflows counts as none, and a dropout hazard below
    :data:`NEGLIGIBLE_HAZARD` as none (P(alive) is 1 to double precision; the Pareto/NBD 2F1 overflows)."""
    r, alpha = gamma_parameters(law.purchase_rate) if law.purchase_rate.mean else (0.0, np.inf)
    if not np.isfinite(alpha):  # nobody in the segment ever buys again
        return np.zeros(len(x))
    never_drop = ((law.hazard is not None and law.hazard.mean < NEGLIGIBLE_HAZARD)
                  or (law.dropout is not None and law.dropout.mean == 0))
    if never_drop:  # the gamma-Poisson posterior mean
        if target == "at_risk":
            return np.zeros(len(x))
        return (r + x) / (alpha + T) * SCORING_WINDOW * _expected_order_value(law, x, spend)
    if law.dropout is not None and law.dropout.mean == 1:  # gone right after the first repeat purchase
        if target == "at_risk":
            return np.where(x > 0, 1.0, 0.0)
        # only those without a repeat purchase yet can still make one (exactly one)
        one_more = -np.expm1(r * np.log((alpha + T) / (alpha + T + SCORING_WINDOW)))
        return np.where(x > 0, 0.0, one_more) * _expected_order_value(law, x, spend)
    return None


def _by_segment(laws: list[SegmentLaws], segment: np.ndarray):
    """(positions, law) of every segment with customers."""
    if len(laws) == 1:
        if len(segment):
            yield np.arange(len(segment)), laws[0]
        return
    for index, law in enumerate(laws):
        chosen = np.flatnonzero(segment == index)
        if chosen.size:
            yield chosen, law


def _expected_order_value(law: SegmentLaws, x: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """E[the customer's mean order value | x repeat orders of total list value ``spend``] (Gamma-Gamma)."""
    law = law.spend
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.where(x > 0, spend / np.maximum(x, 1), law.mean)
    if law.q is None:           # every customer has the same mean
        return np.full(len(x), law.mean)
    if law.p is None:           # no within-customer variation: the observed mean is the customer's mean
        return observed
    gamma = law.mean * (law.q - 1.0) / law.p
    return theory.gamma_gamma_conditional_mean_spend(law.p, law.q, gamma, x, observed)
