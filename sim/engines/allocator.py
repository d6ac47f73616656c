"""Keep freed memory in the process, so that numpy's temporaries cost no page faults.

Most numpy operations allocate a new array. glibc's malloc serves requests of 128 KiB and more with
``mmap`` and gives freed memory at the top of the heap back to the kernel once it exceeds 128 KiB (its
thresholds adapt upward only partly), so a temporary of that size is page-faulted in afresh every time:
on the 2-core development machine, an operation over 65,536 doubles took ~10 ns per element instead of
~0.4 ns. Both engines call :func:`keep_freed_memory` before simulating; it raises the two thresholds,
which changes no result, only where freed memory waits for its reuse. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import functools

#: glibc's name on every Linux of the last two decades; asked for by name because
#: ``ctypes.util.find_library`` starts processes (ldconfig, else a compiler) to look for it.
GLIBC = "libc.so.6"
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap (larger ones, like big population columns, from mmap).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of the heap kept for reuse.
TRIM_THRESHOLD = 256 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once); True if the C library took them."""
    try:
        mallopt = ctypes.CDLL(GLIBC).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
