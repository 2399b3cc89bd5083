"""Example 4's shared and cross-subscription pieces in the ownership ledger. Deleting it takes the
private DNS VNet links the operator made to the VNet it deletes, the zones it made that nobody else
uses, and the hub's peering back to the spoke it made (peerFromHub); a zone another team links to or
keeps a record in stays, and so does another spoke's peering on the same hub, unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from operatorharness import OperatorEnv

from armemu.seed import HUB_VNET, PROVIDERS

pytestmark = pytest.mark.integration
HUB = "litware-hub"
SPOKE = f"{PROVIDERS}/Microsoft.Network/virtualNetworks/vnet-litware-spoke"
CLIENTS_VNET = f"{PROVIDERS}/Microsoft.Network/virtualNetworks/vnet-litware-clients"
ZONES = "microsoft.network/privatednszones"
LINKS = f"{ZONES}/virtualnetworklinks"


def _of_type(operator: OperatorEnv, kind: str) -> dict[str, dict[str, Any]]:
    """Emulator resources of one ARM type, by lower-cased id."""
    found = {}
    for resource in operator.arm.resources():
        segments = resource["id"].strip("/").split("/")
        if len(segments) >= 8 and "/".join([segments[5], *segments[6::2]]).lower() == kind:
            found[resource["id"].lower()] = resource["body"]
    return found


def test_deleting_example_4_removes_its_links_unused_zones_and_hub_peering_only(operator: OperatorEnv) -> None:
    # The team next door's spoke, already peered with the hub.
    their_peering = f"{HUB_VNET}/virtualNetworkPeerings/to-litware-clients"
    operator.az_rest("PUT", their_peering, {"properties": {"remoteVirtualNetwork": {"id": CLIENTS_VNET}}})
    operator.apply(operator.manifest("04-customer-vnet-hub-firewall.yaml", deletionPolicy="Delete"))
    status = operator.wait_ready(HUB, timeout=120)["status"]
    our_hub_side = f"{HUB_VNET}/virtualNetworkPeerings/to-vnet-litware-spoke"
    assert (status["hubPeering"]["remoteName"], status["hubPeering"]["remoteState"]) == (
        "to-vnet-litware-spoke",
        "Connected",
    ), "the operator peered the hub back (peerFromHub)"
    zones = sorted(_of_type(operator, ZONES))
    links = _of_type(operator, LINKS)
    assert len(zones) >= 2 and len(links) == len(zones), "one link to the spoke per zone"
    ledger = {entry["id"].lower(): entry["origin"] for entry in operator.get(HUB)["status"]["ledger"]}
    assert {ledger.get(zone) for zone in zones} == {"Shared"}, "zones the operator created are in its ledger"

    # The team next door: their clients VNet resolves through the first zone, their app has a
    # record in the second.
    linked, recorded = zones[0], zones[1]
    their_link = f"{linked}/virtualNetworkLinks/clients-link"
    operator.az_rest(
        "PUT",
        their_link,
        {"location": "global", "properties": {"virtualNetwork": {"id": CLIENTS_VNET}, "registrationEnabled": False}},
        api_version="2024-06-01",
    )
    their_record = f"{recorded}/A/their-app"
    operator.az_rest(
        "PUT", their_record, {"properties": {"ttl": 300, "aRecords": [{"ipv4Address": "10.2.1.9"}]}}, "2024-06-01"
    )
    theirs_before = {key: operator.arm_resource(key) for key in (their_link, their_record, their_peering)}

    operator.kube.kubectl("delete", "smlw", HUB, "-n", operator.namespace, "--timeout=120s")

    left_links = _of_type(operator, LINKS)
    to_spoke = [
        key for key, body in left_links.items() if body["properties"]["virtualNetwork"]["id"].lower() == SPOKE.lower()
    ]
    assert to_spoke == [], "links to the VNet the operator deleted went with it"
    assert sorted(_of_type(operator, ZONES)) == sorted([linked, recorded]), "unused zones went; used ones stayed"
    assert list(left_links) == [their_link.lower()]
    assert operator.arm_resource(our_hub_side) is None, "the hub's side the operator made went with it"
    assert {key: operator.arm_resource(key) for key in theirs_before} == theirs_before, "theirs unchanged"
