"""Draws kept between runs in one process (sim.model.population.KeptDraws): acquisition traits and simulated
existing histories are the same customers as drawn afresh, and a run gives the same results whether it finds
them kept or draws them."""

from __future__ import annotations

import numpy as np
import pytest

from sim.experiments.replications import run_replication
from sim.input.scenarios import load_scenario
from sim.model import existing, population
from sim.model.population import BatchTraits, KeptDraws, acquisition_traits, segment_laws
from sim.random import streams as rng


@pytest.fixture
def empty_stores(monkeypatch):
    """Nothing kept yet, and nothing left behind for the other tests."""
    batches, histories = KeptDraws(population.KEPT_BATCHES.limit), KeptDraws(existing.KEPT_HISTORIES.limit)
    monkeypatch.setattr(population, "KEPT_BATCHES", batches)
    monkeypatch.setattr(existing, "KEPT_HISTORIES", histories)
    return batches, histories


def _scenario():
    return load_scenario("scenarios/points_program.yaml", ["population_scale=10"])


def test_a_kept_batch_hands_out_the_customers_of_slices(empty_stores) -> None:
    laws = segment_laws(_scenario())
    where = (7, 3, "web", 5, laws[0].name, 0)
    drawn = BatchTraits(laws[0], 0, rng.batch_sequence(*where))
    slices = [drawn.take(n) for n in (1, 40, 259)]
    for _ in range(2):   # drawn once, then found kept
        kept = acquisition_traits(laws[0], 0, 300, where, keep=True)
        for expected in slices:
            got = kept.take(len(expected["key"]))
            assert got.keys() == expected.keys()
            for name in expected:
                np.testing.assert_array_equal(got[name], expected[name])
                got[name][:] = 0   # a run's own copy: the kept batch is not touched
    batches, _ = empty_stores
    assert len(batches.items) == 1 and batches.customers == 300
    (traits, _), = batches.items.values()
    assert not any(column.flags.writeable for column in traits.values())


def test_a_store_keeps_at_most_its_customers_the_least_recently_used_dropped() -> None:
    store, made = KeptDraws(250), []

    def make(name):
        made.append(name)
        return name

    for name in ("a", "b", "a", "c"):   # "a" used again before "c" comes
        assert store.get((name,), lambda name=name: make(name), 100) == name
    assert made == ["a", "b", "c"] and list(store.items) == [("a",), ("c",)] and store.customers == 200


def test_a_run_gives_the_same_numbers_with_its_draws_kept_or_made(empty_stores, monkeypatch) -> None:
    scenario = _scenario()   # acquisition batches and a simulated existing base
    assert scenario.existing_customers is not None
    first = run_replication(scenario, 1).totals     # draws its batches whole and simulates the base; keeps both
    batches, histories = empty_stores
    assert batches.items and histories.items
    again = run_replication(scenario, 1).totals     # finds them kept
    monkeypatch.setattr(population, "KEEP_RUN_CUSTOMERS", 0)
    unkept = run_replication(scenario, 1).totals    # draws them afresh, the batches slice by slice
    assert first == again == unkept
    other = run_replication(scenario, 2).totals     # another replication: other customers
    assert other != first
