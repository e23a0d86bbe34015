"""Handing memory that batch-by-batch work freed back to the system."""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def _malloc_trim():
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc's; other C libraries lack it
    except (OSError, TypeError):  # no C library to open this way (Windows)
        return None


def return_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``; nothing elsewhere).

    Work done batch by batch (the input transform of a million rows: each batch's padded rows
    and TensorFlow's tensors for them; ranking a million labels a few rows at a time) leaves the
    heap with memory that is free but still held, in holes the C library does not return by
    itself; it would count in the process's memory from then on (for the whole of training, when
    validation ranks after each epoch).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
