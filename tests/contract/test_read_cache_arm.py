"""`ArmClient.get(..., max_age=)` against the emulator: a target many workspaces share is read from
ARM once per window, and a write through the client drops what it changed."""

from __future__ import annotations

import asyncio
from collections import Counter

from armemu import Emulator
from armemu.seed import HUB_VNET, PROVIDERS
from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.ids import ArmId, id_key

STORAGE = ArmId.parse(f"{PROVIDERS}/Microsoft.Storage/storageAccounts/stlitware")  # by the generic route
TABLE = ArmId.parse(f"{PROVIDERS}/Microsoft.Network/routeTables/rt-cached")
ROUTE = TABLE.child("routes", "to-hub")
ABSENT = ArmId.parse(f"{PROVIDERS}/Microsoft.Storage/storageAccounts/stabsent")
LOCATION = {"location": "brazilsouth"}


async def _reads(emulator: Emulator, arm: ArmClient, *ids: ArmId) -> Counter[str]:
    """The GETs ARM saw while each id is read once with a minute's max_age, by id key."""
    emulator.clear_requests()
    for arm_id in ids:
        await arm.get(arm_id, max_age=60)
    return Counter(id_key(request["path"]) for request in emulator.requests() if request["method"] == "GET")


async def test_a_shared_target_is_read_once_per_window(arm_emulator: Emulator, arm: ArmClient) -> None:
    assert await _reads(arm_emulator, arm, STORAGE, ABSENT) == {STORAGE.key: 1, ABSENT.key: 1}
    first = await arm.get(ArmId.parse(str(STORAGE).lower()), max_age=60)  # ids compare case-insensitively
    assert first is not None
    first["tags"] = {"mutated": "by a caller"}
    assert await _reads(arm_emulator, arm, STORAGE, ABSENT, STORAGE) == {}, "no ARM call, a 404 included"
    assert "mutated" not in ((await arm.get(STORAGE, max_age=60)) or {}).get("tags", {})
    hub = ArmId.parse(HUB_VNET)
    arm_emulator.clear_requests()
    answers = await asyncio.gather(*(arm.get(hub, max_age=60) for _ in range(10)))
    assert len({str(answer) for answer in answers}) == 1
    assert [request["path"] for request in arm_emulator.requests()] == [HUB_VNET], "callers at once share one GET"
    arm_emulator.clear_requests()
    await arm.get(STORAGE)
    await arm.get(STORAGE, max_age=0)
    assert len(arm_emulator.requests()) == 2, "without max_age, every get reads ARM as before"


async def test_a_write_drops_the_resource_its_children_and_its_parents(arm_emulator: Emulator, arm: ArmClient) -> None:
    await arm.put(TABLE, LOCATION)
    route = {
        "properties": {"addressPrefix": "10.0.0.0/8", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.1.0.4"}
    }
    await arm.put(ROUTE, route)
    cached = (TABLE, ROUTE, STORAGE)
    assert await _reads(arm_emulator, arm, *cached) == {TABLE.key: 1, ROUTE.key: 1, STORAGE.key: 1}

    await arm.put(ROUTE, {"properties": {**route["properties"], "addressPrefix": "10.0.0.0/9"}})
    assert await _reads(arm_emulator, arm, *cached) == {TABLE.key: 1, ROUTE.key: 1}, "a child's write: its parent"
    assert ((await arm.get(TABLE, max_age=60)) or {})["properties"]["routes"][0]["properties"]["addressPrefix"] == (
        "10.0.0.0/9"
    )
    await arm.put(TABLE, {**LOCATION, "tags": {"v": "2"}})
    assert await _reads(arm_emulator, arm, *cached) == {TABLE.key: 1, ROUTE.key: 1}, "a parent's write: its children"
    await arm.patch(STORAGE, {"tags": {"v": "2"}})
    assert await _reads(arm_emulator, arm, *cached) == {STORAGE.key: 1}, "nothing else"
    await arm.delete(ROUTE)
    assert await _reads(arm_emulator, arm, *cached) == {TABLE.key: 1, ROUTE.key: 1}
    assert await arm.get(ROUTE, max_age=60) is None
