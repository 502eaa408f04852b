"""Give freed memory back to the operating system between the units of work of a run.

A month written by ingest, extract or aggregate frees everything it allocated, but the
allocators keep the pages: Python's object arenas stay fragmented, glibc keeps freed heap
pages, and Arrow's memory pool (mimalloc) keeps its segments. On a million-ad run the
command's process held ~40 % more than it used (benchmarks/README.md). ``release`` asks
all three to return what is free; it costs a garbage collection (tens of milliseconds),
so it runs once per month written, never per record.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release() -> None:
    """Collect garbage and return free pages of the Python heap, glibc and Arrow's pool."""
    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:  # glibc only
        libc.malloc_trim(0)
