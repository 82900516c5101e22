"""Giving freed memory back to the system. glibc keeps what a process frees for its own reuse, so a
process that once held a batch's activations (the embedder) or a long PDF's objects (the file
reader) would otherwise stay at its high-water mark for the rest of a long ingest."""

from __future__ import annotations

import ctypes
import gc

_malloc_trim = None


def trim() -> None:
    """Collect Python's garbage, then return glibc's free heap pages (a no-op elsewhere)."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc
            _malloc_trim = False
    gc.collect()
    if _malloc_trim:
        _malloc_trim(0)
