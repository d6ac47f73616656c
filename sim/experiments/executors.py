"""Where independent units of work run: in this process, in a local process pool, or on a Dask cluster.

Replications, sweep points and customer shards are such units (``docs/model.md``, section 6): each depends only on
its arguments (scenario, seed, replication, shard), so the numbers are the same wherever it runs. Units
return small aggregated tables, never per-customer arrays.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sim.input.errors import InputError, Problem

_PR_SET_PDEATHSIG = 1   # linux/prctl.h
#: How often (seconds) the main thread waiting for a pool's units wakes up to take a Ctrl-C the kernel
#: delivered to another of the process's threads (Python runs signal handlers in the main thread only).
WAKE_SECONDS = 0.2


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

        futures = {client.submit(counted_on_dask, function, task, pure=False): i for i, task in enumerate(tasks)}
        for future in as_completed(futures):
            yield futures[future], future.result()
            future.release()
    elif workers <= 1 or len(tasks) == 1:
        freeze_imports()
        for i, task in enumerate(tasks):
            yield i, function(*task)
    else:
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        # The engines and their libraries, imported once here and inherited by forked workers instead of
        # imported again by each; likewise the compiled loops and draws.
        import sim.engines.calendar  # noqa: F401
        from sim.engines.loops import warm_up

        warm_up()
        freeze_imports()
        running = multiprocessing.get_context().Value("i", 0)   # units running in the workers (sim.engines.parts)
        pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), initializer=start_worker,
                                   initargs=(os.getpid(), running))
        try:
            futures = {pool.submit(counted, function, task): i for i, task in enumerate(tasks)}
            pending = set(futures)
            while pending:   # waking up now and then: a Ctrl-C the kernel gave another thread of this
                # process only sets a flag, which the main thread reads when it runs (not while it waits)
                done, pending = wait(pending, timeout=WAKE_SECONDS, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=futures.get):
                    yield futures[future], future.result()
        except BaseException:   # Ctrl-C, a failed unit, or the caller stopped: end the workers now
            stop(pool)
            raise
        pool.shutdown()


@functools.cache
def freeze_imports() -> None:
    """Move every object alive now, mostly the modules, classes and functions imported (numpy, scipy,
    pydantic, numba: 100,000-150,000 objects), out of reach of the garbage collector, once per process:
    its full collections stop walking them (20-70 ms each), and forked workers, which inherit them, do not
    write to their pages (copy-on-write). Reference counting still frees them; only garbage in reference
    cycles at that moment is never collected (CPython's ``gc.freeze``)."""
    gc.freeze()


def start_worker(parent: int, running) -> None:
    """Initializer of pool workers: :func:`die_with_parent`, and the count of units running in the pool's
    processes shared (:func:`sim.engines.parts.share`), which :func:`counted` keeps."""
    from sim.engines.parts import share

    die_with_parent(parent)
    share(running)


def counted(function: Callable[..., Any], task: tuple) -> Any:
    """``function(*task)`` in a pool worker, counted among the units running in the pool while it runs."""
    from sim.engines.parts import unit_running

    with unit_running():
        return function(*task)


_DASK_COUNT = threading.Lock()


def counted_on_dask(function: Callable[..., Any], task: tuple) -> Any:
    """``function(*task)`` on a Dask worker, counted among the units running in the worker's threads while it
    runs: while they are as many as the worker's threads (the cores Dask gives it, ``--nthreads``; at most
    the cores its process may use), a unit's parts run at once in its own thread instead of in two threads
    more each (:mod:`sim.engines.parts`)."""
    from distributed import get_worker

    from sim.engines import parts

    with _DASK_COUNT:
        if parts.running is None:   # the worker's first unit
            threads = get_worker().state.nthreads
            parts.share(multiprocessing.Value("i", 0), min(threads, parts.usable_cores()))
    return counted(function, task)


def die_with_parent(parent: int) -> None:
    """Initializer of pool workers: the kernel kills a worker when its parent dies (Linux's
    PR_SET_PDEATHSIG), so that a killed run leaves no workers behind; a worker whose parent is already gone
    exits. Workers ignore Ctrl-C: the parent, which receives it too, stops them (:func:`stop`)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):   # not Linux: the workers end when the parent closes the pool
        pass
    if os.getppid() != parent:
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop(pool) -> None:
    """End a process pool at once: cancel what has not started and kill the workers (a second Ctrl-C would
    otherwise wait for the running units, or deadlock in the pool's shutdown)."""
    workers = list((getattr(pool, "_processes", None) or {}).values())   # before shutdown forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.kill()
