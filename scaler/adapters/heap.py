"""Give freed heap memory back to the operating system after a bulk load.

CPython passes every object over 512 bytes to the C allocator. A full list of the cluster
decodes hundreds of megabytes of JSON, one page at a time, and frees it again. glibc keeps
the freed pages: live objects sit above them, so the heap cannot shrink from its top, and
the process stays resident for memory it no longer uses. After listing 5,000 nodes and 20,000
pods that is 10 MiB (benchmarks/controller_memory.py). ``malloc_trim(0)`` hands back every
wholly free page in the heap, not only those at the top, in well under a millisecond. It is
called after the two bulk loads: a reflector's full list (at start, and after a watch
expires; never per event) and the ASG discovery of each tick, which parses every instance
of every group. Where the C library is not glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    return trim


def release_free_memory() -> bool:
    """Return the C heap's free pages to the OS; False where that is not possible."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
