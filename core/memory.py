"""Giving freed heap memory back to the operating system.

glibc's malloc keeps memory freed in the middle of its heap for reuse instead of returning it,
so a process that briefly needed a lot (loading the catalog's read model decodes every published
summary) keeps that peak as resident memory for its lifetime. `malloc_trim(0)` returns the free
pages; on other C libraries it is absent and this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def trim_heap() -> bool:
    """Return free heap pages to the operating system; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
