"""The ownership ledger: what goes into status, what comes back, and what a create announces."""

from __future__ import annotations

import asyncio
from typing import Any

from secureml_operator.engine.ledger import IP_RULE, Entry, Ledger, Origin, identity_of

SUB = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
VNET = f"{SUB}/providers/Microsoft.Network/virtualNetworks/vnet"
WORKSPACE = f"{SUB}/providers/Microsoft.MachineLearningServices/workspaces/mlw"
ZONE = f"{SUB}/providers/Microsoft.Network/privateDnsZones/privatelink.api.azureml.ms"
STORAGE = f"{SUB}/providers/Microsoft.Storage/storageAccounts/st"


def test_entries_survive_the_round_trip_through_status() -> None:
    ledger = Ledger()
    ledger.confirm(VNET, "Microsoft.Network/virtualNetworks", Origin.CREATED, {"properties": {"resourceGuid": "g-1"}})
    ledger.confirm(WORKSPACE, "Microsoft.MachineLearningServices/workspaces", Origin.ADOPTED, None, changed=["a"])
    ledger.record(Entry(STORAGE, IP_RULE, Origin.CLAIMED, name="203.0.113.7"))
    again = Ledger.from_status({"ledger": ledger.as_status()})
    assert again.entries == ledger.entries
    assert again.get(VNET.upper()) == ledger.get(VNET), "ARM ids compare case-insensitively"
    assert again.get(VNET) == Entry(VNET, "Microsoft.Network/virtualNetworks", Origin.CREATED, "g-1")
    assert [entry.name for entry in again.ip_rules(STORAGE)] == ["203.0.113.7"]


def test_what_only_created_and_confirmed_entries_vouch_for() -> None:
    ledger = Ledger()
    ledger.confirm(VNET, "t", Origin.CREATED, {})
    ledger.confirm(WORKSPACE, "t", Origin.ADOPTED, {})
    assert ledger.owns(VNET) and not ledger.owns(WORKSPACE)
    assert ledger.manages(VNET) and ledger.manages(WORKSPACE)
    ledger.record(Entry(ZONE, "t", Origin.CREATED, pending=True))
    assert not ledger.owns(ZONE) and not ledger.manages(ZONE), "a pending create is not ours until confirmed"


def test_a_create_is_written_to_status_before_it_is_sent() -> None:
    written: list[list[dict[str, Any]]] = []

    async def persist(entries: list[dict[str, Any]]) -> None:
        written.append(entries)

    ledger = Ledger(persist=persist)
    asyncio.run(ledger.intend(VNET, "Microsoft.Network/virtualNetworks"))
    assert written == [
        [{"id": VNET, "type": "Microsoft.Network/virtualNetworks", "origin": "Created", "changed": [], "pending": True}]
    ]


def test_concurrent_announcements_never_lose_one_to_a_slower_older_write() -> None:
    landed: list[list[str]] = []

    async def persist(entries: list[dict[str, Any]]) -> None:
        snapshot = [entry["id"] for entry in entries]
        await asyncio.sleep(0.05 if len(snapshot) == 1 else 0)  # the older write is the slower one
        landed.append(snapshot)

    async def announce_both() -> None:
        ledger = Ledger(persist=persist)
        await asyncio.gather(ledger.intend(VNET, "t"), ledger.intend(ZONE, "t"))

    asyncio.run(announce_both())
    assert sorted(landed[-1]) == sorted([VNET, ZONE]), "the last write holds both announcements"


def test_adopted_entries_collect_the_fields_we_changed_and_created_ones_do_not() -> None:
    ledger = Ledger()
    ledger.confirm(WORKSPACE, "t", Origin.ADOPTED, {})
    ledger.confirm(VNET, "t", Origin.CREATED, {})
    ledger.with_changes(WORKSPACE, ["properties.publicNetworkAccess"])
    ledger.with_changes(WORKSPACE, ["properties.publicNetworkAccess", "tags"])
    ledger.with_changes(VNET, ["properties.addressSpace"])
    assert ledger.get(WORKSPACE) is not None and ledger.get(WORKSPACE).changed == (  # type: ignore[union-attr]
        "properties.publicNetworkAccess",
        "tags",
    )
    assert ledger.get(VNET).changed == ()  # type: ignore[union-attr]


def test_a_status_from_before_the_ledger_is_migrated_as_pending_without_shared_dns() -> None:
    status = {
        "ledger": [],
        "resources": [
            {"id": VNET, "type": "Microsoft.Network/virtualNetworks", "state": "Succeeded"},
            {"id": ZONE, "type": "Microsoft.Network/privateDnsZones", "state": "Succeeded"},
        ],
    }
    ledger = Ledger.from_status(status)
    assert list(ledger.entries.values()) == [
        Entry(VNET, "Microsoft.Network/virtualNetworks", Origin.CREATED, pending=True)
    ]


def test_identity_is_azures_guid_for_the_resource() -> None:
    assert identity_of({"properties": {"resourceGuid": "a"}}) == "a"
    assert identity_of({"properties": {"workspaceId": "w"}}) == "w"
    assert identity_of({"properties": {}}) is None
