"""Keep freed memory in the process, so that numpy's temporaries cost no page faults.

Most numpy operations allocate a new array. glibc's malloc serves requests of 128 KiB and more with
``mmap`` and gives freed memory at the top of the heap back to the kernel once it exceeds 128 KiB (its
thresholds adapt upward only partly), so a temporary of that size is page-faulted in afresh every time:
on the 2-core development machine, an operation over 65,536 doubles took ~10 ns per element instead of
~0.4 ns. Both engines call :func:`keep_freed_memory` before simulating; it raises the two thresholds,
which changes no result, only where freed memory waits for its reuse. Elsewhere than glibc it does nothing.

It also turns off numpy's hint that its arrays of 4 MiB and more should get huge pages (``madvise`` with
``MADV_HUGEPAGE`` on Linux), unless the ``NUMPY_MADVISE_HUGEPAGE`` environment variable chooses it. Kept on
the heap, those arrays leave the hint on the heap's memory once they are freed (numpy issue 31590), and
with the kernel's default policy (``/sys/kernel/mm/transparent_hugepage/defrag`` set to ``madvise``) a page
fault there may wait for the kernel to compact memory into a huge page. On the development machine, every
lever at 1M customers (the benchmark's) took 5% less time without the hint, whole process, and its first
join of 1.27M customers 0.24 s instead of 0.36 s; the engine without a program and a points program took
the same.
"""

from __future__ import annotations

import ctypes
import functools
import os

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
    """Raise glibc's mmap and trim thresholds for this process (once), and turn numpy's huge-page hint off
    (:func:`_no_huge_page_hint`); True if the C library took the thresholds."""
    _no_huge_page_hint()
    try:
        mallopt = ctypes.CDLL(GLIBC).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def _no_huge_page_hint() -> None:
    """numpy's huge-page hint off (see the module's docstring), unless ``NUMPY_MADVISE_HUGEPAGE`` sets it:
    the runtime switch of that variable, where this numpy has one."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    import numpy

    multiarray = numpy._core.multiarray if int(numpy.__version__.split(".")[0]) >= 2 else numpy.core.multiarray
    switch = getattr(multiarray, "_set_madvise_hugepage", None)
    if switch is not None:
        switch(False)
