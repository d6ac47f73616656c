"""Parameter sweeps (``docs/scenarios.md`` "Sweep files", ``docs/results.md``).

A sweep file names a scenario, the parameters to vary (dotted keys of the scenario, each a list of values or a
``{low, high}`` range) and a design (``grid``, ``random``, ``latin_hypercube``, ``sobol``). Every point is the
scenario with those values, validated through the same door as a scenario file. All points run with the
sweep's seed and replications, so replication *i* of every point faces the same customers (common random
numbers) and differences between points are paired.

Besides the design, a sweep runs one-at-a-time (OAT) points around the scenario's own values (each parameter
at its low and high end, the others as the scenario has them), the data of a tornado chart; a ``sobol`` design
also gets Sobol indices (:mod:`sim.experiments.sensitivity`).

The work is split into units (one replication of one distinct scenario: points that coincide and baselines
that points share run once) and batches of units, which run in this process, in a process pool or on a Dask
cluster. Each unit depends only on its scenario, seed and replication index, so the numbers are the same
whatever the executor and the number of workers.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.input.errors import InputError, Problem
from sim.output.files import atomic_write
from sim.output.layout import (
    SCENARIO_FILE,
    SWEEP_POINT_PATTERN,
    remove_stale,
)
from sim.schema import Scenario

if TYPE_CHECKING:   # numpy is imported where it is used, so that `validate` stays light
    pass

from sim.experiments.sweep_plan import MANIFEST, RESULTS, SENSITIVITY, SweepPlan, plan_sweep
from sim.experiments.sweep_results import point_file, read_results, write_point

__all__ = ["plan_sweep", "read_results", "run_sweep"]


def run_units(scenarios: dict[int, Scenario], units: Sequence[tuple[int, int]], engine: str = "fast"):
    """Simulate a batch of units (scenario index, replication): the task every executor runs.

    Returns ``[(index, ReplicationResult)]`` trimmed to what a sweep keeps (totals and monthly profit)."""
    from sim.accounting.tables import ReplicationResult
    from sim.experiments.replications import run_replication

    out = []
    for index, replication in units:
        rep = run_replication(scenarios[index], replication, engine=engine)
        out.append((index, ReplicationResult(rep.replication, rep.totals, {"profit": rep.monthly["profit"]},
                                             {}, rep.events)))
    return out


def batches(units: Sequence[tuple[int, int]], workers: int) -> list[list[tuple[int, int]]]:
    """Consecutive units grouped so that there are about eight tasks per worker (tiny units are not
    dominated by the cost of shipping a task), yet a point's work is not held back by a huge batch."""
    size = max(1, min(64, len(units) // (8 * max(workers, 1))))
    return [list(units[i:i + size]) for i in range(0, len(units), size)]


@dataclass
class SweepProgress:
    """Callbacks of :func:`run_sweep`; each is optional."""

    on_start: Callable[[int, int], None] | None = None          # (units to run, units already done)
    on_units: Callable[[int], None] | None = None               # units just finished
    on_point: Callable[[int], None] | None = None               # a point's results were written
    on_discarded: Callable[[str], None] | None = None           # stored replications not reused, and why


def run_sweep(plan: SweepPlan, out: str | os.PathLike[str], *, workers: int = 1, scheduler: str | None = None,
              resume: bool = False, engine: str = "fast", progress: SweepProgress | None = None) -> dict:
    """Run every point of ``plan`` not finished yet, writing each point's rows as soon as it is complete.

    ``out/scenario.yaml`` is the scenario every point starts from (the sweep's ``set`` values, seed and
    replications applied); ``out/results.parquet/`` holds one Parquet file per finished point (never
    rewritten); ``out/sweep.json``
    lists the points and which are finished; ``out/.partial/`` keeps finished replications of unfinished
    points, so a killed sweep loses nothing finished and ``resume`` runs only what is missing. Once every
    point is finished, ``out/sensitivity.json`` is written. Returns the final manifest.
    """
    progress = progress or SweepProgress()
    from sim.experiments.executors import connect

    client = connect(scheduler) if scheduler is not None else None   # before anything on disk is touched
    try:
        return _run(plan, Path(out), workers, client, resume, engine, progress)
    finally:
        if client is not None:
            client.close()


def _run(plan: SweepPlan, out: Path, workers: int, client, resume: bool, engine: str,
         progress: SweepProgress) -> dict:
    from sim.experiments.checkpoint import Checkpoint

    out.mkdir(parents=True, exist_ok=True)
    key = plan.fingerprint(engine)
    manifest_path = out / MANIFEST
    results_dir = out / RESULTS
    if resume and manifest_path.is_file():
        previous = _read_json(manifest_path)
        if previous.get("fingerprint") != key:
            raise InputError([Problem(str(manifest_path), (), (
                "holds the results of a different sweep (the sweep file, its scenario or the program changed "
                "since); run without --resume to start over, or choose another --out"))])
        if previous.get("complete") and (out / SENSITIVITY).is_file():
            return previous
        kept = [manifest_path, out / SENSITIVITY, *results_dir.glob(SWEEP_POINT_PATTERN)]
    else:
        kept = []
    if plan.base is not None:
        from sim.output.run_files import scenario_yaml

        text = scenario_yaml(plan.base, f"{plan.scenario_path} with the sweep's fixed values ({plan.source})")
        atomic_write(out / SCENARIO_FILE, lambda p: p.write_text(text))
        kept.append(out / SCENARIO_FILE)
    remove_stale(out, kept)   # an earlier sweep's points (unless resumed), a run's or a comparison's files
    results_dir.mkdir(exist_ok=True)
    finished = {i for i in range(len(plan.points)) if point_file(results_dir, i).is_file()}
    checkpoint = Checkpoint(out, key)
    stored = checkpoint.start(resume=resume)
    if checkpoint.discarded and progress.on_discarded:
        from sim.experiments.checkpoint import discarded_message

        progress.on_discarded(discarded_message(checkpoint.discarded))
    try:
        return _simulate(plan, out, workers, client, engine, progress, finished, checkpoint, stored)
    except InputError as exc:   # a file that cannot be written (a full disk): say what is kept for --resume
        points = f"{len(finished)} of {len(plan.points)} point(s) are written in {results_dir} and "
        hint = checkpoint.resume_hint(points)
        raise InputError(exc.problems + ([hint] if hint else [])) from None


def _simulate(plan: SweepPlan, out: Path, workers: int, client, engine: str, progress: SweepProgress,
              finished: set[int], checkpoint, stored: dict) -> dict:
    """Simulate what the points still need, writing each point as soon as its replications are done."""
    manifest_path = out / MANIFEST
    results_dir = out / RESULTS
    _write_json(manifest_path, plan.manifest(finished, engine))

    done: dict[tuple[int, int], Any] = dict(stored)
    needed_by: dict[int, list[int]] = {}
    for number, (arm, base) in enumerate(zip(plan.point_arm, plan.point_base)):
        if number in finished:
            continue
        for index in (arm,) if base is None else (base, arm):
            needed_by.setdefault(index, []).append(number)
    needed = list(needed_by)
    for entry in plan.oat:
        for index in (entry["arm"], entry["base"]):
            if index is not None and index not in needed_by:
                needed_by[index] = []
                needed.append(index)
    units = [(index, r) for index in needed for r in range(plan.replications) if (index, r) not in done]
    if progress.on_start:
        progress.on_start(len(units), len(needed) * plan.replications - len(units))

    def complete(index: int) -> bool:
        return all((index, r) in done for r in range(plan.replications))

    def write_ready(indices: set[int]) -> None:
        for number in sorted({n for i in indices for n in needed_by.get(i, ())}):
            if number in finished:
                continue
            arm, base = plan.point_arm[number], plan.point_base[number]
            if complete(arm) and (base is None or complete(base)):
                write_point(results_dir, plan, number, done)
                finished.add(number)
                if progress.on_point:
                    progress.on_point(number)

    write_ready(set(needed))          # points whose replications were all stored by an interrupted sweep
    tasks = [({i: plan.scenarios[i] for i in {u[0] for u in batch}}, batch, engine)
             for batch in batches(units, workers if client is None else 2 * workers)]
    last_manifest = 0.0
    from sim.experiments.executors import execute

    for _, result in execute(run_units, tasks, workers=workers, client=client):
        for index, rep in result:
            done[index, rep.replication] = rep
            checkpoint.save(index, rep)
        if progress.on_units:
            progress.on_units(len(result))
        write_ready({index for index, _ in result})
        if time.monotonic() - last_manifest > 1.0:
            _write_json(manifest_path, plan.manifest(finished, engine))
            last_manifest = time.monotonic()
    from sim.experiments.sensitivity import analyse

    _write_json(out / SENSITIVITY, analyse(plan, done, out))
    manifest = plan.manifest(finished, engine)
    _write_json(manifest_path, manifest)
    checkpoint.finish()
    return manifest


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError([Problem(str(path), (), f"cannot be read: {exc}")]) from None


def _write_json(path: Path, content: dict) -> None:
    text = json.dumps(_plain(content), indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda p: p.write_text(text))


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python numbers, undefined numbers (NaN, infinities) as null."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):   # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
