"""``loyalty-sim run`` as a function: a scenario and its baseline simulated into a results directory.

The replications run on local processes or a Dask cluster (:mod:`sim.experiments.executors`); each one is
kept in ``DIR/.partial`` as it finishes (:mod:`sim.experiments.checkpoint`), so that a killed run loses
nothing finished and ``resume=True`` simulates only what is missing; the result files are written once at
the end (:mod:`sim.output.run_files`). The command line adds the arguments, the lock on the directory, the
progress bar and the printed table (:mod:`sim.cli`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sim.accounting.runs import RunResult
from sim.accounting.tables import ReplicationResult
from sim.experiments.checkpoint import Checkpoint, fingerprint
from sim.experiments.replications import run_scenario
from sim.input.errors import InputError
from sim.output.run_files import write_run
from sim.schema import Scenario


@dataclass
class RunProgress:
    """What a caller hears while a run goes on: ``on_start(reused, total)`` once, with the replications
    reused from an interrupted run (and ``discarded``: stored replications that could not be reused, with
    the reason), then ``on_replication()`` as each finishes."""

    on_start: Callable[[int, int], None] | None = None
    on_replication: Callable[[], None] | None = None
    discarded: dict[str, int] = field(default_factory=dict)


def run_to_directory(scenario: Scenario, baseline: Scenario | None, out: str | os.PathLike[str], *,
                     transactions: bool = False, workers: int = 1, resume: bool = False, engine: str = "fast",
                     shards: int = 1, scheduler: str | None = None, source: str | os.PathLike[str] | None = None,
                     progress: RunProgress | None = None, hurdle: float = 0.0) -> RunResult:
    """Simulate ``scenario`` (and ``baseline`` on the same customers) into ``out``; returns the result.

    ``source`` is the scenario file, recorded beside the results; ``hurdle`` is the incremental profit whose
    chance of being exceeded summary.json's ``decision`` block gives. Bad input (an unreachable scheduler, an
    unwritable directory) raises :class:`sim.input.errors.InputError`.
    """
    progress = progress or RunProgress()
    arms = [scenario] if baseline is None else [scenario, baseline]
    checkpoint = Checkpoint(out, fingerprint(arms, transactions, engine if shards == 1 else f"{engine}/{shards}"))
    finished = checkpoint.start(resume=resume)
    progress.discarded = dict(checkpoint.discarded)
    if progress.on_start:
        progress.on_start(len(finished), scenario.replications * len(arms))

    def done(arm: int, replication: ReplicationResult) -> None:
        checkpoint.save(arm, replication)
        if progress.on_replication:
            progress.on_replication()

    client = None
    if scheduler is not None:
        from sim.experiments.executors import connect

        client = connect(scheduler)
    try:
        result = run_scenario(scenario, baseline=baseline, record_transactions=transactions, workers=workers,
                              on_replication=done, finished=finished, engine=engine, shards=shards,
                              client=client)
        write_run(result, Path(out), with_transactions=transactions, source=source, hurdle=hurdle)
    except InputError as exc:   # a file that cannot be written (a full disk): say what is kept for --resume
        hint = checkpoint.resume_hint()
        raise InputError(exc.problems + ([hint] if hint else [])) from None
    finally:
        if client is not None:
            client.close()
    checkpoint.finish()
    return result
