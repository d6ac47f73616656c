"""The firm's targeted-offer scoring (sim/model/scoring.py): the customers ``select_targets`` picks through its
bounds are exactly the top share of the exact scores of everybody (``score_customers``), ties broken by the
customers' keys or else their positions; the bounds hold; the k-th largest found from a sample is
``np.partition``'s."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.model import scoring
from sim.model.population import SegmentLaws
from sim.model.score_bounds import rough_observed_pass, score_bounds, segment_table
from sim.model.scoring import BOUND_SLACK, score_customers, select_targets
from sim.schema import BetaLaw, GammaLaw, SpendLaw

NO_REFERRALS = GammaLaw(mean=0.0, shape=None)


def law(purchases: tuple[float, float | None], *, dropout: tuple[float, float, float] | float | None = None,
        hazard: tuple[float, float | None] | None = None,
        spend: tuple[float, float | None, float | None] = (50.0, 4.0, 8.0)) -> SegmentLaws:
    """A segment's laws: purchase rate (mean per year, Gamma shape or None), BG/NBD dropout (mean, a, b; or a
    mean alone: no spread) or Pareto/NBD hazard (mean per year, shape), order value (mean, p, q)."""
    if isinstance(dropout, tuple):
        dropout = BetaLaw(mean=dropout[0], a=dropout[1], b=dropout[2])
    elif dropout is not None:
        dropout = BetaLaw(mean=dropout)
    return SegmentLaws(name="s", purchase_rate=GammaLaw(*purchases), dropout=dropout,
                       hazard=None if hazard is None else GammaLaw(*hazard), spend=SpendLaw(*spend),
                       referral_rate=NO_REFERRALS, referral_segment=0)


BGNBD = law((5.0, 1.5), dropout=(0.2, 2.0, 8.0), spend=(40.0, 4.0, 6.0))
PARETO = law((8.0, 2.8), hazard=(0.3, 1.2), spend=(60.0, 6.0, 13.0))
#: Segments whose closed forms degenerate or lack a mix, and order values without Gamma-Gamma.
SPECIAL = [
    law((0.0, None), dropout=(0.2, 2.0, 8.0)),              # nobody buys again
    law((4.0, 2.0), hazard=(1e-20, 1.0)),                    # no dropout to speak of
    law((4.0, 2.0), dropout=0.0),                            # never drops out
    law((4.0, 2.0), dropout=1.0),                            # gone after the first repeat purchase
    law((3.0, None), dropout=0.3, spend=(30.0, None, 5.0)),  # no spread: scored with cv 0.1; own mean
    law((6.0, 1.0), hazard=(0.5, None), spend=(30.0, 3.0, None)),   # the same mean for all
]
LAW_SETS = {"bgnbd": [BGNBD], "pareto": [PARETO], "mixed": [BGNBD, PARETO], "special": [BGNBD, PARETO, *SPECIAL]}
TARGETS = ("top_predicted_clv", "at_risk")


def histories(gen: np.random.Generator, customers: int, segments: int) -> tuple[np.ndarray, ...]:
    """(segment, repeats, recency, age, repeat_spend): ages up to 3 years, a third of them on a few arrival
    dates, repeats Poisson with Gamma rates, the last purchase late in the span for most."""
    segment = gen.integers(0, segments, customers).astype(np.uint8)
    age = np.where(gen.random(customers) < 0.3, gen.integers(0, 6, customers) / 2.0, gen.uniform(0.0, 3.0, customers))
    repeats = gen.poisson(gen.gamma(1.5, 4.0, customers) * age)
    recency = np.where(repeats > 0, age * gen.beta(3.0, 1.0, customers), 0.0)
    spend = repeats * gen.gamma(4.0, 12.0, customers)
    return segment, repeats, recency, age, spend


def scoring_everybody(laws, history, *, target: str, share: float, keys: np.ndarray | None = None) -> np.ndarray:
    """The top ``share`` of the exact scores of everybody (ties: lower key, else lower position), sorted."""
    score = score_customers(laws, *history, target=target)
    eligible = np.flatnonzero(np.isfinite(score))
    count = round(share * eligible.size)
    tie_break = eligible if keys is None else keys[eligible]
    return np.sort(eligible[np.lexsort((tie_break, -score[eligible]))[:count]])


def quick_bounds(laws, segment, repeats, recency, age, spend) -> tuple[np.ndarray, np.ndarray]:
    """The first pass's bounds of customers it spares the rough bounds (``below`` above every quick upper
    bound): 0 and the quick upper bound of each ``top_predicted_clv`` score, read as a round at 0 reads
    customers who arrived ``age`` years before it (their age to the bit)."""
    lower, upper = np.empty(len(segment)), np.empty(len(segment))
    first = -np.asarray(age, dtype=np.float64)
    rough_observed_pass(segment_table(laws), False, BOUND_SLACK, 0.0, segment, (repeats + 1).astype(np.uint64), first,
                        first + recency, spend.astype(np.float64), None, lower, upper, np.inf)
    return lower, upper


def assert_same_choice(laws, history, *, target: str, share: float, keys: np.ndarray | None = None) -> np.ndarray:
    chosen = select_targets(laws, *history, target=target, share=share, keys=keys)
    np.testing.assert_array_equal(chosen, scoring_everybody(laws, history, target=target, share=share, keys=keys))
    return chosen


@pytest.mark.parametrize("laws", LAW_SETS.values(), ids=LAW_SETS.keys())
@pytest.mark.parametrize("target", TARGETS)
def test_selection_equals_scoring_everybody(laws: list[SegmentLaws], target: str) -> None:
    """40,000 customers (the thresholds come from a sample of the bounds), shares from 1 customer to all but a
    few, with and without keys."""
    gen = np.random.default_rng(11)
    history = histories(gen, 40_000, len(laws))
    keys = gen.permutation(40_000).astype(np.uint64)
    score = score_customers(laws, *history, target=target)
    eligible = np.flatnonzero(np.isfinite(score))
    for share in (1.0 / eligible.size, 0.01, 0.2, 0.5, 0.9, 1.0 - 3.0 / eligible.size):
        for with_keys in (None, keys):
            chosen = assert_same_choice(laws, history, target=target, share=share, keys=with_keys)
            assert chosen.size == round(share * eligible.size) > 0


@pytest.mark.parametrize("target", TARGETS)
def test_first_pass_in_two_threads_chooses_the_same(target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With threads the first pass, and the passes that find the thresholds and split the customers, run in two
    halves at once (from PARALLEL_FROM customers on, here 2,000), and so do the cheap and tight passes (from
    SHARPEN_PARALLEL_FROM, here 100): the same customers are chosen, the exact top share of everybody's
    scores."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(scoring, "PARALLEL_FROM", 2_000)
    monkeypatch.setattr(scoring, "SHARPEN_PARALLEL_FROM", 100)
    gen = np.random.default_rng(23)
    customers = 30_001
    history = histories(gen, customers, 2)
    keys = gen.permutation(customers).astype(np.uint64)
    with ThreadPoolExecutor(max_workers=2) as threads:
        for share in (0.05, 0.3):
            alone = select_targets([BGNBD, PARETO], *history, target=target, share=share, keys=keys)
            halves = select_targets([BGNBD, PARETO], *history, target=target, share=share, keys=keys, threads=threads)
            np.testing.assert_array_equal(halves, alone)
            np.testing.assert_array_equal(alone, scoring_everybody([BGNBD, PARETO], history, target=target,
                                                                   share=share, keys=keys))


@pytest.mark.parametrize("target", TARGETS)
def test_ties_at_the_threshold_go_by_key_or_position(target: str) -> None:
    """Half the customers share one of four histories, so that the threshold falls among equal scores: the
    lower keys win (the choice follows the customers, not their order), or the lower positions without keys."""
    gen = np.random.default_rng(5)
    segment, repeats, recency, age, spend = histories(gen, 30_000, 2)
    twins = gen.random(30_000) < 0.5
    kind = gen.integers(0, 4, 30_000)
    segment[twins] = kind[twins] % 2
    repeats[twins] = np.where(kind[twins] < 2, 0, 3)
    recency[twins] = np.where(kind[twins] < 2, 0.0, 1.0)
    age[twins] = 1.5
    spend[twins] = np.where(kind[twins] < 2, 0.0, 5000.0)   # past-valuable (at_risk)
    history = (segment, repeats, recency, age, spend)
    laws = [BGNBD, PARETO]
    score = score_customers(laws, *history, target=target)
    eligible = np.flatnonzero(np.isfinite(score))
    keys = gen.choice(2**40, 30_000, replace=False).astype(np.uint64)
    tied_values = np.unique(score[twins & np.isfinite(score)])
    assert tied_values.size == (4 if target == "top_predicted_clv" else 2)
    for value in tied_values:
        above, tied = np.count_nonzero(score > value), np.count_nonzero(score == value)
        share = (above + tied // 2) / eligible.size       # the threshold in the middle of the tied ones
        chosen = assert_same_choice(laws, history, target=target, share=share, keys=keys)
        assert 0 < np.count_nonzero(score[chosen] == value) < tied
        assert_same_choice(laws, history, target=target, share=share)
        order = gen.permutation(30_000)                  # the same customers in another order
        moved = select_targets(laws, *(column[order] for column in history), target=target, share=share,
                               keys=keys[order])
        np.testing.assert_array_equal(np.sort(order[moved]), chosen)


@pytest.mark.parametrize("target", TARGETS)
def test_edge_cases(target: str) -> None:
    """Share 0 and 1, populations of 0 to 5 customers, and at_risk with nobody or one past-valuable."""
    laws = [BGNBD, PARETO]
    gen = np.random.default_rng(2)
    for customers in range(6):
        history = histories(gen, customers, 2)
        for share in (0.0, 0.2, 0.5, 0.7, 1.0):
            assert_same_choice(laws, history, target=target, share=share)
    history = histories(gen, 500, 2)
    eligible = np.flatnonzero(np.isfinite(score_customers(laws, *history, target=target)))
    np.testing.assert_array_equal(select_targets(laws, *history, target=target, share=1.0), eligible)
    assert select_targets(laws, *history, target=target, share=0.0).size == 0
    no_repeats = (history[0], np.zeros(500, dtype=np.int64), np.zeros(500), history[3], np.zeros(500))
    chosen = select_targets(laws, *no_repeats, target=target, share=0.5)
    assert chosen.size == (0 if target == "at_risk" else 250)
    one = (history[0], (np.arange(500) == 7).astype(np.int64), np.where(np.arange(500) == 7, 0.5, 0.0), history[3],
           np.where(np.arange(500) == 7, 80.0, 0.0))
    chosen = assert_same_choice(laws, one, target=target, share=1.0 if target == "at_risk" else 0.01)
    assert chosen.size == (1 if target == "at_risk" else 5)


def test_past_valuable_are_repeaters_at_or_above_the_median_spend() -> None:
    """at_risk scores the customers with a repeat purchase and repeat spend at least the median of the
    repeaters' (np.median's: the mean of the two middle ones for an even count), also when many tie with it."""
    gen = np.random.default_rng(8)
    for customers in (1, 2, 7, 40_000, 40_001, 90_000):
        repeats = gen.poisson(0.8, customers)
        for spend in (repeats * gen.gamma(2.0, 30.0, customers), repeats * gen.integers(1, 4, customers) * 10.0):
            history = (np.zeros(customers, dtype=np.uint8), repeats, np.where(repeats > 0, 0.5, 0.0),
                       np.full(customers, 1.0), spend)
            repeaters = repeats > 0
            expected = repeaters & (spend >= np.median(spend[repeaters])) if repeaters.any() else repeaters
            np.testing.assert_array_equal(np.isfinite(score_customers([BGNBD], *history, target="at_risk")), expected)


laws_strategy = st.lists(st.one_of(
    st.builds(lambda mean, shape, p_mean, concentration, value: law(
        (mean, shape), dropout=(p_mean, p_mean * concentration, (1 - p_mean) * concentration), spend=value),
        st.floats(0.05, 40.0), st.floats(0.2, 30.0), st.floats(0.01, 0.95), st.floats(0.2, 50.0),
        st.sampled_from([(50.0, 4.0, 8.0), (20.0, 1.5, 2.5), (80.0, None, 3.0), (10.0, 2.0, None)])),
    st.builds(lambda mean, shape, hazard, hazard_shape, value: law(
        (mean, shape), hazard=(hazard, hazard_shape), spend=value),
        st.floats(0.05, 40.0), st.floats(0.2, 30.0), st.floats(0.05, 5.0), st.floats(0.2, 20.0),
        st.sampled_from([(50.0, 4.0, 8.0), (20.0, 1.5, 2.5), (80.0, None, 3.0), (10.0, 2.0, None)])),
    st.sampled_from(SPECIAL)), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(laws=laws_strategy, seed=st.integers(0, 2**32 - 1), customers=st.integers(1, 400),
       share=st.floats(0.0, 1.0), target=st.sampled_from(TARGETS), with_keys=st.booleans(),
       busy=st.floats(0.1, 20.0))
def test_random_populations_match_scoring_everybody(laws, seed, customers, share, target, with_keys, busy) -> None:
    """Random segments (BG/NBD, Pareto/NBD, degenerate), histories from none to a hundred repeat purchases,
    ages from 0 (arriving at the round) to 5 years, last purchases anywhere in the span, repeated histories:
    the choice is scoring everybody's, and every precision's bounds hold the exact scores. Dropout Betas
    reach a + b = 0.2 (U-shaped, and a + b = 1 exactly). (The exact scores of :mod:`sim.model.theory` are NaN
    for Pareto/NBD segments whose alpha is far below beta (a hazard below 0.05 a year, or scored with shape
    100) with a hundred or more repeat purchases: outside this domain; the choice among NaN scores is not
    defined.)"""
    gen = np.random.default_rng(seed)
    segment = gen.integers(0, len(laws), customers).astype(np.uint8)
    age = np.where(gen.random(customers) < 0.2, 0.0, gen.uniform(0.0, 5.0, customers))
    repeats = gen.poisson(busy * age * gen.random(customers))
    recency = np.where(repeats > 0, age * gen.random(customers) ** 0.3, 0.0)
    spend = repeats * gen.gamma(2.0, 25.0, customers)
    copies = gen.integers(0, customers, customers // 3)   # customers with another's history
    copies_of = gen.integers(0, customers, copies.size)
    history = [segment, repeats, recency, age, spend]
    for column in history:
        column[copies] = column[copies_of]
    keys = gen.integers(0, 2**63, customers, dtype=np.uint64) if with_keys else None
    score = score_customers(laws, *history, target=target)
    assert not np.isnan(score).any()
    assert_same_choice(laws, history, target=target, share=share, keys=keys)
    eligible = np.isfinite(score)
    for precision in ("rough", "cheap", "tight"):
        lower, upper = score_bounds(laws, *(column[eligible] for column in history), target=target,
                                    precision=precision)
        slack = BOUND_SLACK * np.abs(score[eligible])
        assert np.all(lower <= score[eligible] + slack) and np.all(score[eligible] <= upper + slack)
    if target == "top_predicted_clv":
        lower, upper = quick_bounds(laws, *history)
        assert np.all(lower == 0.0) and np.all(score <= upper + BOUND_SLACK * np.abs(score))


def test_bounds_hold_for_bgnbd_and_pareto_at_40000() -> None:
    """Each precision's bounds hold every exact score (within the slack the selection allows), and each
    precision is at least as tight as the one before for most customers (where the passes' work is saved)."""
    gen = np.random.default_rng(4)
    laws = [BGNBD, PARETO]
    history = histories(gen, 40_000, 2)
    for target in TARGETS:
        score = score_customers(laws, *history, target=target)
        eligible = np.isfinite(score)
        columns = [column[eligible] for column in history]
        widths = []
        for precision in ("rough", "cheap", "tight") if target == "top_predicted_clv" else ("cheap", "tight"):
            lower, upper = score_bounds(laws, *columns, target=target, precision=precision)
            slack = BOUND_SLACK * np.abs(score[eligible])
            assert np.all(lower <= score[eligible] + slack) and np.all(score[eligible] <= upper + slack)
            widths.append(upper - lower)
        assert np.all(np.diff(np.median(widths, axis=1)) <= 0)
    score = score_customers(laws, *history, target="top_predicted_clv")
    lower, upper = quick_bounds(laws, *history)   # what the first pass spares most customers: 0 and a quick bound
    assert np.all(lower == 0.0) and np.all(score <= upper + BOUND_SLACK * score)
    assert np.median(upper / np.maximum(score, 1e-300)) < 10.0   # not so loose as to spare nobody


@pytest.mark.parametrize("customers", [20_000, 100_003])
def test_kth_largest_is_partitions(customers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The k-th largest from the sample bracket equals np.partition's on shuffled, sorted, reversed, heavily
    tied and infinite values, and on values periodic with the sample's stride (the sample misses the
    k-th largest's neighbourhood: the fallback); with threads too, the bracket's pass in two halves."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(scoring, "PARALLEL_FROM", 1_000)
    gen = np.random.default_rng(9)
    stride = customers // scoring.THRESHOLD_SAMPLE
    periodic = np.where(np.arange(customers) % stride == 0, 1e6, gen.random(customers))
    tied = gen.integers(0, 3, customers).astype(float)
    tied[::7] = -np.inf
    cases = [gen.random(customers), np.sort(gen.random(customers)), np.sort(gen.random(customers))[::-1],
             tied, periodic, np.full(customers, 2.5), np.where(gen.random(customers) < 0.9, -np.inf, np.inf)]
    with ThreadPoolExecutor(max_workers=2) as threads:
        for values in cases:
            for k in (1, 2, customers // 100, customers // 5, customers // 2, customers - 1, customers):
                expected = np.partition(values, customers - k)[customers - k]
                assert scoring._kth_largest(values, k) == expected
                assert scoring._kth_largest(values, k, threads) == expected


def observed_parts(gen: np.random.Generator, sizes: list[int], t: float, *, keyed: bool,
                   scored_some: bool) -> list[scoring.Observed]:
    """Parts of a population as a round at ``t`` reads them: purchases made (0 for some: a customer whose first
    purchase is pending), first and last purchase times (the last garbage where none was made), repeat spend,
    keys; with ``scored_some`` a random subset of each part is scored, else all of it."""
    parts = []
    for size in sizes:
        segment, repeats, recency, age, spend = histories(gen, size, 2)
        made = (repeats + (gen.random(size) < 0.95)).astype(np.uint64)
        first = t - age
        last = np.where(made > 0, first + recency, np.nan)
        who = np.flatnonzero(gen.random(size) < 0.7) if scored_some else None
        parts.append(scoring.Observed(segment, made, first, last, np.where(made > 1, spend, 0.0),
                                      gen.choice(2**40, size, replace=False).astype(np.uint64) if keyed else None,
                                      who))
    return parts


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("scored_some", [False, True], ids=["all scored", "some scored"])
def test_selection_of_parts_is_that_of_their_histories(target: str, scored_some: bool,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """select_observed reads parts where they lie (the first pass in pieces across part boundaries, in threads
    or not) and chooses, part by part, the customers select_targets chooses of the parts' histories gathered:
    the exact top share of everybody's scores, ties by key, or by position without keys."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(scoring, "PARALLEL_FROM", 1_000)
    monkeypatch.setattr(scoring, "SHARPEN_PARALLEL_FROM", 100)
    gen = np.random.default_rng(31)
    t, laws = 3.0, [BGNBD, PARETO]
    assert scoring.select_observed(laws, [], t, target=target, share=0.2) == []   # no part: nobody acquired yet
    with ThreadPoolExecutor(max_workers=2) as threads:
        for sizes in ([9_000, 3, 0, 14_000, 2_500], [30_001], [1, 2]):
            for keyed in (True, False):
                parts = observed_parts(gen, sizes, t, keyed=keyed, scored_some=scored_some)
                history = [np.concatenate(column) for column in
                           zip(*(part.history(np.arange(part.size), t) for part in parts), strict=True)]
                keys = np.concatenate([part.keys[part.positions(np.arange(part.size))] for part in parts]) if keyed else None
                starts = np.cumsum([0] + [part.size for part in parts])
                for share in (0.0, 0.01, 0.2, 0.7, 1.0):
                    expected = assert_same_choice(laws, history, target=target, share=share, keys=keys)
                    for pool in (None, threads):
                        picked = scoring.select_observed(laws, parts, t, target=target, share=share, threads=pool)
                        assert len(picked) == len(parts)
                        for part, mine, start, end in zip(parts, picked, starts[:-1], starts[1:], strict=True):
                            np.testing.assert_array_equal(
                                mine, part.positions(expected[(expected >= start) & (expected < end)] - start))


def test_quick_bounds_spare_most_customers_at_a_small_share() -> None:
    """The first pass takes the quick upper bound alone for the customers under the likely threshold when
    enough of them are (a top share of 10%: most), and no quick bounds when few would be (a top share of
    90%): the threshold is then -inf. Either way the choice is that of the histories gathered."""
    gen = np.random.default_rng(5)
    t, laws = 3.0, [BGNBD, PARETO]
    parts = observed_parts(gen, [20_000, 15_000], t, keyed=True, scored_some=False)
    starts = np.cumsum([0] + [part.size for part in parts])
    history = [np.concatenate(column) for column in
               zip(*(part.history(np.arange(part.size), t) for part in parts), strict=True)]
    keys = np.concatenate([part.keys for part in parts])
    table = segment_table(laws)
    for share, quick in ((0.1, True), (0.9, False)):
        places = round(share * starts[-1])
        below = scoring._likely_threshold(table, parts, starts, t, places)
        assert np.isfinite(below) == quick
        score = np.sort(score_customers(laws, *history, target="top_predicted_clv"))
        assert below < score[-places]   # under the k-th highest score, as it is meant to be
        if quick:
            _, upper = quick_bounds(laws, *history)
            assert np.mean(upper < below) > 0.5
        expected = assert_same_choice(laws, history, target="top_predicted_clv", share=share, keys=keys)
        picked = scoring.select_observed(laws, parts, t, target="top_predicted_clv", share=share)
        np.testing.assert_array_equal(np.concatenate([mine + start for mine, start in zip(picked, starts)]),
                                      expected)
