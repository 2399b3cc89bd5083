"""Freed heap pages go back to the system (glibc's malloc_trim), so RSS falls after a burst; what
lives from startup is frozen out of the collector's walks, and cycles are still collected unasked."""

from __future__ import annotations

import asyncio
import gc
import ssl
import weakref
from asyncio import sslproto
from pathlib import Path

import pytest

from secureml_operator import memory


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(memory._malloc_trim() is None, reason="not glibc: nothing to release")
def test_freed_heap_memory_leaves_the_process() -> None:
    # 200 MiB in 2 KiB blocks: malloc's heap (above pymalloc's small objects, below its mmap
    # threshold), freed all but every 64th, so the heap cannot shrink from its top alone.
    blocks = [bytes(2048) for _ in range(100_000)]
    kept = blocks[::64]
    del blocks
    before = _rss_mib()
    assert memory.release_freed_memory()
    after = _rss_mib()
    assert before - after > 100, f"RSS {before:.0f} -> {after:.0f} MiB"
    assert len(kept) == 1563


async def test_the_release_repeats_until_cancelled() -> None:
    task = asyncio.create_task(memory.release_periodically(interval=0.01))
    await asyncio.sleep(0.1)
    assert not task.done(), "still releasing"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_startup_objects_are_frozen_and_garbage_made_later_is_still_collected() -> None:
    before = _Node()
    try:
        frozen = memory.freeze_startup_objects()
        assert frozen > 0  # fewer later: a frozen object freed by its last reference leaves the count
        assert not any(obj is before for obj in gc.get_objects()), "alive at startup: out of the collector's walk"
        later = weakref.ref(_Node())
        gc.collect()
        assert later() is None, "a cycle made after startup is collected"
    finally:
        gc.unfreeze()


def test_cycles_are_still_collected_on_their_own_with_a_wider_young_generation() -> None:
    default = gc.get_threshold()
    try:
        memory.widen_young_generation()
        assert gc.get_threshold() == (memory.YOUNG_GENERATION, *default[1:])
        first = weakref.ref(_Node())
        for _ in range(2 * memory.YOUNG_GENERATION):
            _Node()
        assert first() is None, "a collection ran without being asked for"
    finally:
        gc.set_threshold(*default)


async def test_tls_connections_read_into_a_smaller_buffer() -> None:
    default = sslproto.SSLProtocol.max_size
    loop = asyncio.get_running_loop()

    def read_buffer() -> int:
        protocol = sslproto.SSLProtocol(loop, asyncio.Protocol(), ssl.create_default_context(), loop.create_future())
        return len(protocol.get_buffer(-1))  # what the event loop hands the socket to read into

    try:
        sslproto.SSLProtocol.max_size = 256 * 1024  # asyncio's own: an operator run in this process shrank it
        assert read_buffer() == 256 * 1024
        memory.shrink_tls_read_buffers()
        assert read_buffer() == memory.TLS_READ_BUFFER
    finally:
        sslproto.SSLProtocol.max_size = default
