"""Where the parts of a run go: to threads, or run at once in the calling thread while the other processes
of a pool keep every core busy.

The engines cut their work into parts whose results are combined in a fixed order (``docs/model.md``,
section 6), so the numbers do not depend on where or when each part runs. Alone in a process, a run hands
its parts to threads and the cores share them out. But a process pool's workers each run a unit of their
own (a replication, a sweep point): with two processes on two cores, each run's threads compete with the
other process for the cores, and every hand-over to a thread and back is a wait. A pool's workers count
the units running in all of them (:func:`share`); a part submitted while every core has a unit runs at once
in the calling thread, and once the others have finished (the last units of a pool), it goes to a thread
again. A Dask worker counts the units running in its own threads against its number of threads, the cores
Dask gives it (``sim.experiments.executors.counted_on_dask``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager

#: In a pool's worker: the units running in the pool's processes (a shared integer, :func:`share`); in a Dask
#: worker, those running in its threads; else None.
running = None
_cores = 1


def usable_cores() -> int:
    """The cores this process may run on (its affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def share(shared, cores: int | None = None) -> None:
    """In a pool worker: ``shared`` (a :func:`multiprocessing.Value` of an integer, shared by the pool's
    processes) counts the units running in the pool; parts run at once while it is at least ``cores`` (the
    cores this process may use, if not given)."""
    global running, _cores
    running, _cores = shared, cores or usable_cores()


@contextmanager
def unit_running() -> Iterator[None]:
    """In a pool or Dask worker: a unit (a replication, a sweep point) counted among those running in the pool
    (the Dask worker) while it runs."""
    with running.get_lock():
        running.value += 1
    try:
        yield
    finally:
        with running.get_lock():
            running.value -= 1


def cores_taken() -> bool:
    """Whether the pool's units (this one with them) are at least as many as the cores."""
    return running is not None and running.value >= _cores


class PartExecutor(Executor):
    """A thread pool of ``threads`` threads whose :meth:`submit` runs the call at once in the calling
    thread, and returns it done, while :func:`cores_taken`."""

    def __init__(self, threads: int) -> None:
        self._threads = ThreadPoolExecutor(max_workers=threads)

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if not cores_taken():
            return self._threads.submit(fn, *args, **kwargs)
        done: Future = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except Exception as exc:   # raised by result(), where a thread's would be
            done.set_exception(exc)
        return done

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._threads.shutdown(wait=wait, cancel_futures=cancel_futures)
