"""Freed heap pages go back to the system (glibc's malloc_trim), so RSS falls after a burst."""

from __future__ import annotations

import asyncio
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
