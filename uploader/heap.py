"""Keep freed memory returnable to the system (glibc only; elsewhere nothing to do).

CPython hands objects over 512 bytes to malloc. glibc serves a large allocation (a batch's
request body of about a megabyte, a chunk's arrays) with mmap, and gives it back to the
system when freed, until it frees one larger than its current threshold: then it raises the
threshold to that size (up to 32 MB), and later allocations of that size come from the heap,
where freed memory is kept for reuse and the heap fragments. A run allocates and frees such
blocks all the time, and its resident memory grew by about 36 MB for nothing (measured on the
million-row benchmark: 352 MB for the whole process tree with this, 388 MB without). Setting the
threshold explicitly turns that adjustment off. The price is a page fault per page of each such
block (3 s more system time per million rows, about 4% of the run); a fixed 1 MB threshold
saved only a third of the memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value


def keep_heap_small() -> None:
    """Fix glibc's mmap threshold at its default, for this process."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # no C library by that name, or one without mallopt
        return
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
