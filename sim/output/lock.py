"""One writer per results directory.

A command that writes into a results directory first takes an exclusive ``flock`` on a lock file inside
it, without waiting: a second ``run``, ``compare`` or ``sweep`` into the same directory is refused instead
of mixing its files (and, on ``--resume``, its stored replications) with the first one's. The kernel
releases the lock when its process ends, however it ends, so a killed run leaves no stale lock behind; the
file itself stays (removing it would let two processes lock two different files of the same name).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sim.input.errors import InputError, Problem

LOCK_FILE = ".loyalty-sim.lock"


class ResultsLock:
    """An exclusive lock on a results directory, held until :meth:`release` or the end of the process."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._fd: int | None = None

    def acquire(self) -> ResultsLock:
        """Take the lock, or raise :class:`InputError` naming the directory when another process holds it."""
        path = self.folder / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            raise InputError([Problem(str(self.folder), (), f"cannot lock the results directory ({LOCK_FILE}): "
                                                             f"{exc.strerror}")]) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            who = "another loyalty-sim process" + (f" (pid {holder})" if holder else "")
            raise InputError([Problem(str(self.folder), (), (
                f"is in use: {who} is writing its results there; wait for it to end or choose another "
                "--out"))]) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)   # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> ResultsLock:
        return self if self._fd is not None else self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
