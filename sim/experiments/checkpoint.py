"""Finished replications kept on disk while a run is under way, so that a killed run loses nothing finished.

``loyalty-sim run`` stores each replication as it finishes in ``DIR/.partial/`` (one file each, written
atomically) and deletes the folder once the result files are written. ``run --resume`` reuses the stored
replications of an interrupted run of the *same* work: the folder carries a fingerprint of the scenarios
(every value, seed and replications included), the transactions flag and the package version, and
replications stored under another fingerprint are never reused.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
from importlib import metadata
from pathlib import Path

from sim.accounting.tables import ReplicationResult
from sim.output.files import atomic_write
from sim.schema import Scenario

FOLDER = ".partial"


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

    def start(self, *, resume: bool) -> dict[tuple[int, int], ReplicationResult]:
        """Prepare the folder; with ``resume``, return the stored replications of the same work."""
        stored: dict[tuple[int, int], ReplicationResult] = {}
        same_work = (self.folder / "fingerprint").is_file() and \
            (self.folder / "fingerprint").read_text() == self.key
        if resume and same_work:
            for path in sorted(self.folder.glob("*.pkl")):
                index, replication = (int(part) for part in path.stem.split("-"))
                with path.open("rb") as handle:
                    stored[index, replication] = pickle.load(handle)
        else:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True)
            (self.folder / "fingerprint").write_text(self.key)
        return stored

    def save(self, index: int, result: ReplicationResult) -> None:
        """Store replication ``result`` of scenario ``index`` (atomically: a reader never sees half a file)."""
        path = self.folder / f"{index}-{result.replication}.pkl"
        atomic_write(path, lambda p: p.write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)))

    def finish(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
