"""Acquisition traits kept between runs in one process (sim.model.population.acquisition_traits): the same
customers as drawn slice by slice, and the same results whether a run finds them kept or draws them."""

from __future__ import annotations

import numpy as np
import pytest

from sim.experiments.replications import run_replication
from sim.input.scenarios import load_scenario
from sim.model import population
from sim.model.population import BatchTraits, acquisition_traits, segment_laws
from sim.random import streams as rng


@pytest.fixture
def empty_store(monkeypatch):
    """No traits kept yet, and none left behind for the other tests."""
    monkeypatch.setattr(population, "_KEPT", type(population._KEPT)())
    monkeypatch.setattr(population, "_kept", [0])
    return population._KEPT


def _laws():
    scenario = load_scenario("scenarios/points_program.yaml", ["population_scale=10"])
    return segment_laws(scenario)


def test_a_kept_batch_hands_out_the_customers_of_slices(empty_store) -> None:
    laws = _laws()
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
    assert len(empty_store) == 1
    assert not any(column.flags.writeable for column in next(iter(empty_store.values())).values())


def test_the_store_keeps_at_most_its_customers(empty_store, monkeypatch) -> None:
    monkeypatch.setattr(population, "KEPT_CUSTOMERS", 250)
    laws = _laws()
    for batch in range(4):
        acquisition_traits(laws[0], 0, 100, (1, 0, "web", batch, laws[0].name, 0), keep=True).take(100)
    assert [key[6] for key in empty_store] == [2, 3]   # the batches used least recently went first
    assert population._kept[0] == 200


def test_a_run_gives_the_same_numbers_with_its_batches_kept_or_drawn(empty_store, monkeypatch) -> None:
    scenario = load_scenario("scenarios/points_program.yaml", ["population_scale=10"])
    assert scenario.sample().planned_customers() <= population.KEEP_RUN_CUSTOMERS
    first = run_replication(scenario, 1).totals     # draws its batches whole, and keeps them
    assert empty_store
    again = run_replication(scenario, 1).totals     # finds them kept
    monkeypatch.setattr(population, "KEEP_RUN_CUSTOMERS", 0)
    sliced = run_replication(scenario, 1).totals    # draws them slice by slice, as a large run does
    assert first == again == sliced
