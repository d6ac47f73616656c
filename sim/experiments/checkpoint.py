"""Finished replications kept on disk while a run is under way, so that a killed run loses nothing finished.

``loyalty-sim run`` (and ``sweep``) stores each replication as it finishes in ``DIR/.partial/`` and deletes
the folder once the result files are written. ``--resume`` reuses the stored replications of an interrupted
run of the *same* work: every stored file carries the fingerprint of what produced it (every value of the
scenarios, seed and replications included, the transactions flag, the engine and the package version), and
a file whose fingerprint differs, or that cannot be read whole and well-formed, is never used: it is
discarded and its replication simulated again.

A stored replication is data, never code: an ``.npz`` file (numpy arrays, read with ``allow_pickle=False``)
whose ``meta`` entry is JSON (fingerprint, numbering, totals, events, array names). The zip container checks
a CRC of every array, so a truncated or altered file is refused. Numbers round-trip exactly, so a resumed
run ends with the same files as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import zipfile
from collections import Counter
from importlib import metadata
from pathlib import Path

import numpy as np

from sim.accounting.tables import ReplicationResult
from sim.input.errors import Problem
from sim.output.files import atomic_write
from sim.schema import Scenario

FOLDER = ".partial"
SUFFIX = ".npz"
FORMAT = 1
TABLES = ("monthly", "cohorts", "transactions")

#: Why a stored file was not reused (keys of :attr:`Checkpoint.discarded`).
OTHER_WORK = "from other work (another scenario, seed, engine or version)"
DAMAGED = "damaged (truncated, altered or not a stored replication)"


def fingerprint(scenarios: list[Scenario], record_transactions: bool, engine: str = "fast") -> str:
    """What must be equal for a stored replication to be reused."""
    try:
        version = metadata.version("loyalty-sim")
    except metadata.PackageNotFoundError:  # running from a source tree
        version = "source"
    digest = hashlib.sha256(version.encode())
    digest.update(b"transactions" if record_transactions else b"totals")
    digest.update(engine.encode())
    for scenario in scenarios:
        digest.update(scenario.model_dump_json().encode())
    return digest.hexdigest()


class Checkpoint:
    """The ``.partial`` folder of one results directory, for one fingerprint."""

    def __init__(self, out_dir: str | os.PathLike[str], key: str) -> None:
        self.folder = Path(out_dir) / FOLDER
        self.key = key
        self.discarded: Counter[str] = Counter()

    def start(self, *, resume: bool) -> dict[tuple[int, int], ReplicationResult]:
        """Prepare the folder; with ``resume``, return the stored replications of the same work.

        Stored files that are not reused are deleted and counted in :attr:`discarded`, by reason.
        """
        self.discarded.clear()
        stored: dict[tuple[int, int], ReplicationResult] = {}
        if resume and self.folder.is_dir() and not self.folder.is_symlink():
            for path in sorted(self.folder.iterdir()):
                if path.name.startswith("."):   # the temporary file of a write that was cut short
                    _remove(path)
                    continue
                loaded = read_replication(path, self.key)
                if isinstance(loaded, str):
                    self.discarded[loaded] += 1
                    _remove(path)
                else:
                    stored[loaded[0], loaded[1].replication] = loaded[1]
            return stored
        _remove(self.folder)
        self.folder.mkdir(parents=True)
        return stored

    def save(self, index: int, result: ReplicationResult) -> None:
        """Store replication ``result`` of scenario ``index`` (atomically: a reader never sees half a file)."""
        arrays = replication_arrays(index, result, self.key)
        atomic_write(self.folder / f"{index}-{result.replication}{SUFFIX}", lambda p: _save_npz(p, arrays))

    def finish(self) -> None:
        _remove(self.folder)

    def kept(self) -> int:
        """How many replications are stored in the folder now."""
        try:
            return sum(1 for path in self.folder.glob(f"*{SUFFIX}") if not path.name.startswith("."))
        except OSError:
            return 0

    def resume_hint(self, what: str = "") -> Problem | None:
        """What an interrupted write leaves for ``--resume`` (None when nothing is stored), said after the
        problem that stopped it (a full disk, say). ``what`` is said first (a sweep's finished points)."""
        kept = self.kept()
        if not kept:
            return None
        return Problem(str(self.folder.parent), (), f"{what}the {kept} finished replication(s) are kept in "
                                                    f"{self.folder}: make room and run the same command again "
                                                    "with --resume")


def discarded_message(discarded: Counter[str]) -> str:
    """How many stored replications were not reused and why, e.g. for ``resuming: ...`` (empty if none)."""
    if not discarded:
        return ""
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(discarded.items()))
    return f"{sum(discarded.values())} stored replication(s) discarded and simulated again: {reasons}"


def replication_arrays(index: int, result: ReplicationResult, key: str) -> dict[str, np.ndarray]:
    """The entries of a stored replication: ``meta`` (JSON) and one array per table column."""
    meta = {"format": FORMAT, "fingerprint": key, "index": index, "replication": result.replication,
            "events": int(result.events), "totals": {name: _number(v) for name, v in result.totals.items()},
            "strings": []}
    arrays: dict[str, np.ndarray] = {}
    for table in TABLES:
        columns = getattr(result, table)
        meta[table] = None if columns is None else list(columns)
        for name, column in (columns or {}).items():
            column = np.asarray(column)
            if column.dtype == object:   # strings (channel, segment names): stored as unicode, not pickled
                column = column.astype(str)
                meta["strings"].append(f"{table}.{name}")
            arrays[f"{table}.{name}"] = column
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def read_replication(path: Path, key: str) -> tuple[int, ReplicationResult] | str:
    """The scenario index and replication stored in ``path``, or why it cannot be reused."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):   # opening a planted pipe would hang
            return DAMAGED
        with np.load(path, allow_pickle=False) as archive:
            entries = {name: archive[name] for name in archive.files}   # reading checks every CRC
        meta = json.loads(str(entries.pop("meta")[()]))
        if meta["fingerprint"] != key:
            return OTHER_WORK
        result = _result(meta, entries)
        if path.name != f"{meta['index']}-{result.replication}{SUFFIX}":
            return DAMAGED
        return meta["index"], result
    except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError, AttributeError, zipfile.BadZipFile):
        return DAMAGED


def _result(meta: dict, entries: dict[str, np.ndarray]) -> ReplicationResult:
    """The replication of a parsed file; ValueError (or KeyError, TypeError) when it is not well-formed."""
    if meta["format"] != FORMAT or not isinstance(meta["index"], int) or not isinstance(meta["replication"], int):
        raise ValueError("unknown format")
    totals = meta["totals"]
    if not isinstance(meta["events"], int) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in totals.values()):
        raise ValueError("totals")
    expected = {f"{table}.{name}" for table in TABLES for name in (meta[table] or ())}
    if set(entries) != expected or meta["monthly"] is None or meta["cohorts"] is None:
        raise ValueError("columns")
    tables: dict[str, dict[str, np.ndarray] | None] = {}
    for table in TABLES:
        if meta[table] is None:
            tables[table] = None
            continue
        columns = {name: entries[f"{table}.{name}"] for name in meta[table]}
        if len({column.shape for column in columns.values()}) > 1 or any(c.ndim != 1 for c in columns.values()):
            raise ValueError(f"{table}: columns of different lengths")
        for name in columns:
            if f"{table}.{name}" in meta["strings"]:
                columns[name] = columns[name].astype(object)
            elif columns[name].dtype.kind not in "biuf":
                raise ValueError(f"{table}.{name}: not numbers")
        tables[table] = columns
    return ReplicationResult(meta["replication"], {str(k): v for k, v in totals.items()}, tables["monthly"],
                             tables["cohorts"], meta["events"], tables["transactions"])


def _number(value) -> int | float:
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else float(value)


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with path.open("wb") as handle:   # a handle, so that numpy does not append '.npz' to the temporary name
        np.savez(handle, **arrays)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
