"""core.memory: freed heap goes back to the operating system where the C library allows it."""

from __future__ import annotations

import platform

import pytest

from core import memory


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_heap_is_returned_to_the_system() -> None:
    # 64 MiB in 4 KiB chunks comes from the brk heap; the last chunk keeps the heap from
    # shrinking on its own when the rest is freed (the catalog's snapshot plays that part).
    chunks = [bytearray(4000) for _ in range(16_000)]
    keep = bytearray(4000)
    del chunks
    before = _rss_kib()
    assert memory.trim_heap() is True
    assert before - _rss_kib() > 30_000
    del keep


def test_without_a_trimmable_c_library_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    memory._malloc_trim.cache_clear()
    monkeypatch.setattr(memory.ctypes.util, "find_library", lambda _name: None)
    try:
        assert memory.trim_heap() is False
    finally:
        memory._malloc_trim.cache_clear()
