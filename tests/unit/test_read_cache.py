"""`ReadCache`, behind `ArmClient.get(..., max_age=)`: who shares a read, how long it is kept, what
drops it. The reads here are counted coroutines; tests/contract/test_read_cache_arm.py has ARM's."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from secureml_operator.azure import arm
from secureml_operator.azure.arm import ReadCache

VNET = "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/virtualnetworks/vnet-hub"
SUBNET = f"{VNET}/subnets/firewall"
SIBLING = f"{VNET}-2"  # its id starts with the VNet's: not a child
Read = Callable[[], Coroutine[Any, Any, bytes | None]]


class Arm:
    """Reads that count themselves, each answering its id's body after `seconds` (or failing)."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.reads: Counter[str] = Counter()
        self.failing: set[str] = set()

    def read(self, key: str) -> Read:
        async def read() -> bytes | None:
            self.reads[key] += 1
            await asyncio.sleep(self.seconds)
            if key in self.failing:
                raise ConnectionResetError(key)
            return None if key.endswith("absent") else json.dumps({"id": key, "tags": {}}).encode()

        return read


async def test_one_read_per_window_shared_by_callers_at_once_each_with_its_own_copy() -> None:
    cache, azure = ReadCache(), Arm(seconds=0.05)
    answers = await asyncio.gather(*(cache.get(VNET, 60, azure.read(VNET)) for _ in range(10)))
    assert azure.reads == {VNET: 1} and all(answer == {"id": VNET, "tags": {}} for answer in answers)
    answers[0]["tags"]["changed"] = "by a caller"  # type: ignore[index]
    assert await cache.get(VNET, 60, azure.read(VNET)) == {"id": VNET, "tags": {}}
    absent = f"{VNET}-absent"
    assert [await cache.get(absent, 60, azure.read(absent)) for _ in range(2)] == [None, None]
    assert azure.reads == {VNET: 1, absent: 1}, "a 404 is kept too"


async def test_an_entry_older_than_max_age_is_read_again() -> None:
    cache, azure = ReadCache(), Arm()
    await cache.get(VNET, 0.05, azure.read(VNET))
    await cache.get(VNET, 10, azure.read(VNET))
    await asyncio.sleep(0.1)
    await cache.get(VNET, 10, azure.read(VNET))
    assert azure.reads[VNET] == 1, "a caller's own max_age decides"
    await cache.get(VNET, 0.05, azure.read(VNET))
    assert azure.reads[VNET] == 2


async def test_a_failed_read_reaches_every_caller_and_is_not_kept() -> None:
    cache, azure = ReadCache(), Arm(seconds=0.01)
    azure.failing.add(VNET)
    failures = await asyncio.gather(*(cache.get(VNET, 60, azure.read(VNET)) for _ in range(3)), return_exceptions=True)
    assert [type(failure) for failure in failures] == [ConnectionResetError] * 3
    azure.failing.clear()
    assert await cache.get(VNET, 60, azure.read(VNET)) is not None
    assert azure.reads[VNET] == 2


async def test_a_caller_cancelled_does_not_cancel_the_read_the_others_wait_for() -> None:
    cache, azure = ReadCache(), Arm(seconds=0.05)
    first = asyncio.create_task(cache.get(VNET, 60, azure.read(VNET)))
    second = asyncio.create_task(cache.get(VNET, 60, azure.read(VNET)))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == {"id": VNET, "tags": {}} and azure.reads[VNET] == 1


async def test_forget_drops_the_id_its_children_and_its_parents_only() -> None:
    for written, dropped in [
        (VNET, {VNET, SUBNET}),
        (SUBNET, {VNET, SUBNET}),
        (f"{SUBNET}/ipconfigurations/a", {VNET, SUBNET}),
        (SIBLING, {SIBLING}),
    ]:
        cache, azure = ReadCache(), Arm()
        for key in (VNET, SUBNET, SIBLING):
            await cache.get(key, 60, azure.read(key))
        cache.forget(written)
        for key in (VNET, SUBNET, SIBLING):
            await cache.get(key, 60, azure.read(key))
        assert {key for key, reads in azure.reads.items() if reads == 2} == dropped, written


async def test_entries_are_bounded_the_oldest_dropped_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arm, "READ_CACHE_ENTRIES", 3)
    cache, azure = ReadCache(), Arm()
    keys = [f"{VNET}-{n}" for n in range(4)]
    for key in keys:
        await cache.get(key, 60, azure.read(key))
    for key in reversed(keys):
        await cache.get(key, 60, azure.read(key))
    assert azure.reads[keys[0]] == 2 and all(azure.reads[key] == 1 for key in keys[1:]), "only the oldest went"
    assert len(cache._reads) == 3


async def test_close_cancels_reads_still_out() -> None:
    cache, azure = ReadCache(), Arm(seconds=10)
    waiting = asyncio.create_task(cache.get(VNET, 60, azure.read(VNET)))
    await asyncio.sleep(0.01)
    cache.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting
