"""Process set-up done by flows.settings."""

from __future__ import annotations

import platform

import pytest

from flows.settings import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt arenas are a glibc setting")
def test_malloc_arenas_are_capped_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas(2) is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_release_returns_freed_heap_pages() -> None:
    from flows import memory

    memory.release()
    # ~200 MiB of 2 KiB blocks (glibc's heap, not mmap), then free all but every 64th:
    # the heap is left full of holes that glibc keeps until it is asked to trim
    blocks = [bytes(2048) + i.to_bytes(4, "little") for i in range(100_000)]
    kept = blocks[::64]
    del blocks
    before = _rss_kib()
    memory.release()
    after = _rss_kib()
    assert len(kept) == 1563
    assert before - after > 100 * 1024, (before, after)
