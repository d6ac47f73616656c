"""The Gamma quantiles of the keyed tables (:mod:`sim.random.gamma_table`) and of the enrollment curve
(:mod:`sim.model.program`), kept on disk between runs.

A table's cell edges are scipy's ``gammaincinv`` at i/4096 (about 2 ms a shape), and the enrollment curve's
intercept averages over the quantiles at (i + 1/2)/4096; but importing ``scipy.special`` for them costs
0.05-0.2 s (the less when scipy.linalg, whose modules it shares, is imported already), much of a small run's
process. So the quantiles of a shape are kept in a file beside numba's cache of compiled functions (this
package's ``__pycache__``), named by the sha256 of what determines them (the shape's bits, the number of
cells, edges or midpoints, scipy's version, the platform) and opening with the sha256 of that name and of
the numbers: a file missing, truncated, corrupt or written for other inputs is recomputed and written again,
if the folder lets us. The digest is what makes a file trustworthy, so it is written in place, not renamed
into place: a reader that meets a file half written (by a process killed, or writing it at the same moment)
finds the digest wrong and recomputes. A read-only install recomputes them in every process; the numbers
are scipy's, bit for bit, either way. At most :data:`MAX_FILES` files are kept: writing one removes the
oldest beyond.
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path

import numpy as np

#: Where the quantiles are kept: next to numba's cache of this package's compiled functions (None: nowhere).
CACHE_DIRECTORY: Path | None = Path(__file__).resolve().parent / "__pycache__"
#: Files kept at most (32 KiB each for 4096 cells), the most recently written.
MAX_FILES = 256
_PREFIX = "gamma-quantiles-"
_DIGEST_BYTES = 32
_DTYPE = np.dtype("<f8")


def gamma_quantiles(shape: float, cells: int, midpoints: bool = False) -> np.ndarray:
    """Quantiles of Gamma(shape, 1), ``scipy.special.gammaincinv(shape, q)``: at q = i / cells for
    i = 1 ... cells - 1 (the edges of ``cells`` cells of equal probability) or, with ``midpoints``, at
    q = (i + 1/2) / cells for i = 0 ... cells - 1 (their middles). Read from :data:`CACHE_DIRECTORY` if there,
    else computed and written there (if it is None: computed)."""
    directory = CACHE_DIRECTORY
    if directory is None:
        return _compute(shape, cells, midpoints)
    key = _key(shape, cells, midpoints)
    path = directory / f"{_PREFIX}{hashlib.sha256(key).hexdigest()[:40]}.bin"
    quantiles = _read(path, key, cells if midpoints else cells - 1)
    if quantiles is None:
        quantiles = _compute(shape, cells, midpoints)
        _write(path, key, quantiles)
    return quantiles


def _compute(shape: float, cells: int, midpoints: bool = False) -> np.ndarray:
    from scipy.special import gammaincinv

    levels = (np.arange(cells) + 0.5) / cells if midpoints else np.arange(1, cells) / cells
    return gammaincinv(shape, levels)


def _key(shape: float, cells: int, midpoints: bool) -> bytes:
    """What the quantiles depend on: the shape's exact value, the cells, which levels, scipy's version, the
    platform."""
    import scipy  # its package module alone: a few milliseconds

    levels = "|midpoints" if midpoints else ""   # the edges' keys are those written before midpoints were kept
    return f"{float(shape).hex()}|{cells}{levels}|scipy {scipy.__version__}|{platform.machine()}".encode()


def _read(path: Path, key: bytes, count: int) -> np.ndarray | None:
    """The ``count`` quantiles in ``path`` if it holds exactly them for ``key`` (its digest checks), else None."""
    try:
        content = path.read_bytes()
    except OSError:
        return None
    digest, data = content[:_DIGEST_BYTES], content[_DIGEST_BYTES:]
    if len(data) != count * _DTYPE.itemsize or hashlib.sha256(key + data).digest() != digest:
        return None
    return np.frombuffer(data, dtype=_DTYPE).astype(np.float64)


def _write(path: Path, key: bytes, quantiles: np.ndarray) -> None:
    """Write ``quantiles`` to ``path`` after their digest; quietly nothing if it fails."""
    data = quantiles.astype(_DTYPE).tobytes()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(hashlib.sha256(key + data).digest() + data)
        _prune(path.parent)
    except OSError:   # a read-only install, a full disk: the quantiles were computed, that is enough
        pass


def _prune(directory: Path) -> None:
    """Remove the oldest quantile files beyond :data:`MAX_FILES` (other processes may remove them too)."""
    files = list(directory.glob(f"{_PREFIX}*.bin"))
    if len(files) <= MAX_FILES:
        return
    def written(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return float("inf")   # already gone
    for stale in sorted(files, key=written)[:len(files) - MAX_FILES]:
        try:
            stale.unlink()
        except OSError:
            pass
