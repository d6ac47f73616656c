"""Where independent units of work run: in this process, in a local process pool, or on a Dask cluster.

Replications, sweep points and customer shards are such units (``docs/model.md``, section 6): each depends only on
its arguments (scenario, seed, replication, shard), so the numbers are the same wherever it runs. Units
return small aggregated tables, never per-customer arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sim.input.errors import InputError, Problem


def connect(scheduler: str):
    """A client of the Dask distributed scheduler at ``scheduler``; bad input (exit 2) if it cannot be reached."""
    from distributed import Client

    try:
        return Client(scheduler, timeout="20s")
    except (OSError, ValueError) as exc:   # refused, timed out, or not an address
        raise InputError([Problem("--scheduler", (), f"cannot reach a Dask scheduler at {scheduler!r}: "
                                                     f"{exc}")]) from None


def execute(function: Callable[..., Any], tasks: Sequence[tuple], *, workers: int = 1,
            client=None) -> Iterator[tuple[int, Any]]:
    """Call ``function(*task)`` for every task, yielding ``(task index, result)`` as each finishes: in this
    process (``workers`` = 1, in order), in a pool of ``workers`` processes, or on the Dask cluster of
    ``client`` (a :class:`distributed.Client`)."""
    if not tasks:
        return
    if client is not None:
        from distributed import as_completed

        futures = {client.submit(function, *task, pure=False): i for i, task in enumerate(tasks)}
        for future in as_completed(futures):
            yield futures[future], future.result()
            future.release()
    elif workers <= 1 or len(tasks) == 1:
        for i, task in enumerate(tasks):
            yield i, function(*task)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # The engines and their libraries, imported once here and inherited by forked workers instead of
        # imported again by each; likewise the compiled loops and draws.
        import sim.engines.calendar  # noqa: F401
        from sim.engines.loops import warm_up

        warm_up()
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
            futures = {pool.submit(function, *task): i for i, task in enumerate(tasks)}
            for future in as_completed(futures):
                yield futures[future], future.result()
