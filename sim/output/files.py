"""Writing an output file: atomically, and only over a plain file.

Every file the program writes goes through :func:`atomic_write`. Kept free of numpy and pandas, so that
light commands can use it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from sim.input.errors import InputError, Problem

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"))


def check_target(path: str | os.PathLike[str]) -> Path:
    """The file to write for ``path``: ``path`` itself, or the file a symbolic link there points to.

    Raises
    ------
    InputError
        When ``path`` exists and is not a regular file (a device such as /dev/full, a named pipe, a
        directory, or a link to one of them): renaming a new file over it would replace it, not write to it.
    """
    target = Path(os.path.realpath(path)) if Path(path).is_symlink() else Path(path)
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise InputError([Problem(str(path), (), f"cannot be written: {exc.strerror}")]) from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise InputError([Problem(str(path), (), f"is {kind}; results are written to regular files only")])
    return target


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` are the same existing file (through links too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Write a file through a temporary sibling and a rename, so that a reader never sees half a file.

    ``write`` is given the temporary path and writes the whole content there. A symbolic link to a regular
    file is followed (the link stays, its file gets the content). Returns the path written.

    Raises
    ------
    InputError
        When ``path`` is not a regular file (see :func:`check_target`) or cannot be written (disk full,
        no permission, no such folder).
    """
    target = check_target(path)
    tmp = target.with_name(f".{target.name}.tmp")   # a leading '.': Parquet readers of a folder skip it
    try:
        if tmp.is_symlink() or (tmp.exists() and not tmp.is_dir()):
            tmp.unlink()   # ours, left by a killed writer; opening a planted pipe there would hang
        write(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        _discard(tmp)
        raise InputError([Problem(str(path), (), f"cannot be written: {exc.strerror or exc}")]) from None
    except BaseException:
        _discard(tmp)
        raise
    return target


def _discard(tmp: Path) -> None:
    try:
        if tmp.is_symlink() or tmp.is_file():
            tmp.unlink()
    except OSError:
        pass
