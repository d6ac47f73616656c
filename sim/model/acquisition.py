"""The acquisition plan: which customers arrive when, in which blocks, and how shards split them.

Batch 0 of a channel is its initial customers (at time 0), batch m + 1 its new customers of month m (evenly
over the month). A batch is split among segments exactly (largest remainder) and drawn in blocks of at most
:data:`BLOCK` customers, each from its own seed sequence (:func:`sim.random.streams.batch_sequence`), so
that shards can split a large batch and still draw the same customers. Times in years.
"""

from __future__ import annotations

import numpy as np

from sim.schema import REFERRAL_CHANNEL, Scenario


def channel_names(scenario: Scenario) -> list[str]:
    """The scenario's channels in cohort order: its acquisition channels, the existing customers' channel
    (if it has them), then ``referral``."""
    existing = [] if scenario.existing_customers is None else [scenario.existing_customers.channel]
    return [a.channel for a in scenario.acquisition] + existing + [REFERRAL_CHANNEL]


def cohort_index(month, channel, segment, channels: int, segments: int):
    """The index of the cohort (acquisition month, channel, segment) in a run's cohort arrays: months
    outermost, segments innermost (numbers or arrays)."""
    return (month * channels + channel) * segments + segment


#: Customers of an acquisition batch drawn from one seed sequence: larger batches are drawn in blocks of
#: this size (each its own sequence), so that shards can split them.
BLOCK = 2**18

BatchKey = tuple[int, int, int, int]   # channel index, batch, segment index, block


def month_batches(scenario: Scenario, month: int) -> list[tuple[BatchKey, tuple[int, int, int]]]:
    """The acquisition blocks drawn at the start of ``month``: key -> (offset in the batch, customers, the
    batch's customers). Batch 0 is the initial customers, batch m + 1 month m's new customers."""
    names = list(scenario.segments)
    found = []
    for channel_index, acq in enumerate(scenario.acquisition):
        mix = scenario.segment_mix(acq)
        batches = [(0, acq.initial_customers)] if month == 0 else []
        if month < scenario.acquisition_months(acq):
            batches.append((month + 1, acq.new_per_month))
        for batch, total in batches:
            for segment, count in enumerate(allocate(total, [mix.get(n, 0.0) for n in names])):
                for block, offset in enumerate(range(0, count, BLOCK)):
                    found.append(((channel_index, batch, segment, block),
                                  (offset, min(BLOCK, count - offset), count)))
    return found


def acquisition_batches(scenario: Scenario) -> dict[BatchKey, int]:
    """Every acquisition block of the scenario and its customers (see :func:`month_batches`)."""
    return {key: size for month in range(scenario.horizon_months)
            for key, (_, size, _) in month_batches(scenario, month)}


def shards(scenario: Scenario, count: int) -> list[dict[BatchKey, int]]:
    """The acquisition blocks split into ``count`` shards of about equal customers (largest block first to
    the least loaded shard). Customers are independent but for referrals, and referred customers are drawn
    from their referrer's stream, so shards run apart add up exactly to the whole (:func:`merge_shards`).
    A block (at most :data:`BLOCK` customers) is never split."""
    loads = [0] * count
    assigned: list[dict[BatchKey, int]] = [{} for _ in range(count)]
    for key, customers in sorted(acquisition_batches(scenario).items(), key=lambda item: (-item[1], item[0])):
        target = loads.index(min(loads))
        assigned[target][key] = customers
        loads[target] += customers
    return assigned


def allocate(total: int, shares: list[float]) -> list[int]:
    """Split ``total`` customers by ``shares`` exactly (largest remainder), so counts never drift."""
    raw = np.array(shares) * total
    counts = np.floor(raw).astype(np.int64)
    short = total - int(counts.sum())
    if short:
        counts[np.argsort(-(raw - counts), kind="stable")[:short]] += 1
    return counts.tolist()


def arrival_times(batch: int, month: int, count: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Arrival times (years) of customers ``start`` .. ``stop - 1`` of a batch of ``count``: initial
    customers (batch 0) at time 0; a month's new customers evenly over the month."""
    stop = count if stop is None else stop
    if batch == 0:
        return np.zeros(stop - start)
    return (month + (np.arange(start, stop) + 0.5) / count) / 12.0
