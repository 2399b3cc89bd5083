"""Isolation conditions tell the truth: holes made in Azure behind the operator's back (routes that
beat the firewall route, an NSG allow above the deny, an allowlist covering the internet) read
False while they exist, and the hub peering must be Connected on both sides before Ready."""

from __future__ import annotations

import json
import urllib.error

import pytest
from operatorharness import HUB, NET, NSG, ROUTES, SPOKE, Manifest, OperatorEnv

from armemu import Emulator
from armemu.seed import HUB_VNET, PROVIDERS

pytestmark = pytest.mark.integration
INTERVAL = 10
WITHIN_A_SWEEP = 3 * INTERVAL  # a sweep or a retry
OUR_SIDE = f"{SPOKE}/virtualNetworkPeerings/to-hub"
HUB_SIDE = f"{HUB_VNET}/virtualNetworkPeerings/to-litware-spoke"
SPLIT = (("split-low", "0.0.0.0/1"), ("split-high", "128.0.0.0/1"))
ALLOW_WEB_OUT = {
    "properties": {
        "priority": 150,
        "direction": "Outbound",
        "access": "Allow",
        "protocol": "Tcp",
        "sourceAddressPrefix": "*",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "Internet",
        "destinationPortRange": "443",
    }
}


def _hub(operator: OperatorEnv, rules_policy: str = "Authoritative") -> Manifest:
    manifest = operator.manifest("04-customer-vnet-hub-firewall.yaml", drift={"interval": f"{INTERVAL}s"})
    manifest["spec"]["outbound"]["customerNetwork"]["networkSecurity"]["rulesPolicy"] = rules_policy
    manifest["spec"]["outbound"]["customerNetwork"]["egress"]["firewall"]["peerFromHub"] = False  # the hub's owner's
    return manifest


def _peer_back(operator: OperatorEnv) -> None:
    """What the hub's owner (the platform team) does once the spoke exists: peer the hub back to it."""
    operator.wait_for("the spoke VNet", lambda: operator.arm_resource(SPOKE) is not None)
    peering = {"remoteVirtualNetwork": {"id": SPOKE}, "allowVirtualNetworkAccess": True, "allowForwardedTraffic": True}
    operator.az_rest("PUT", HUB_SIDE, {"properties": peering})


def _split_routes(operator: OperatorEnv) -> None:
    for name, prefix in SPLIT:
        operator.az_rest(
            "PUT", f"{ROUTES}/routes/{name}", {"properties": {"addressPrefix": prefix, "nextHopType": "Internet"}}
        )


def _peering_state(operator: OperatorEnv, peering: str) -> str:
    return str(operator.az_rest("GET", peering)["properties"]["peeringState"])


def test_routes_and_nsg_rules_past_the_firewall_read_outbound_false(operator: OperatorEnv) -> None:
    operator.apply(_hub(operator, rules_policy="Additive"))
    _peer_back(operator)
    operator.wait_ready(HUB, timeout=120)
    isolated = operator.condition(HUB, "OutboundIsolated")
    assert (isolated["status"], isolated["reason"]) == ("True", "CustomerVNet"), isolated
    assert "only through the firewall 10.1.0.4" in isolated["message"]

    _split_routes(operator)  # together they beat 0.0.0.0/0 -> firewall for every address
    # a sweep between the two PUTs reports the first route alone: the next one sees both
    message = operator.wait_condition(
        HUB, "OutboundIsolated", "False", "RouteBypassesEgress", WITHIN_A_SWEEP, saying="route split-high (128.0.0.0/1)"
    )["message"]
    low = "route split-low (0.0.0.0/1) sends public addresses to the internet, not through the firewall 10.1.0.4"
    assert low in message and "route split-high (128.0.0.0/1)" in message, message
    assert operator.arm_resource(f"{ROUTES}/routes/split-low") is not None, "the Additive policy keeps them"

    for name, _ in SPLIT:
        operator.az_rest("DELETE", f"{ROUTES}/routes/{name}")
    operator.az_rest("PUT", f"{NSG}/securityRules/AllowWebOut", ALLOW_WEB_OUT)  # above DenyAllOutbound (200)
    message = operator.wait_condition(HUB, "OutboundIsolated", "False", "NsgAllowsInternet", timeout=WITHIN_A_SWEEP)[
        "message"
    ]
    assert "rule AllowWebOut (priority 150) allows outbound traffic to Internet" in message, message

    operator.az_rest("DELETE", f"{NSG}/securityRules/AllowWebOut")
    operator.wait_condition(HUB, "OutboundIsolated", "True", "CustomerVNet", timeout=WITHIN_A_SWEEP)


def test_an_allowlist_covering_the_internet_reads_inbound_false(operator: OperatorEnv) -> None:
    manifest = operator.manifest("06-selected-ips.yaml", drift={"mode": "Detect", "interval": f"{INTERVAL}s"})
    operator.apply(manifest)
    operator.wait_ready("litware-selected-ips")
    inbound = operator.condition("litware-selected-ips", "InboundIsolated")
    assert (inbound["status"], inbound["reason"]) == ("True", "SelectedIPsOnly"), inbound
    outbound = operator.condition("litware-selected-ips", "OutboundIsolated")
    assert (outbound["status"], outbound["reason"]) == ("False", "AllowInternetOutbound"), "the mode lets compute out"

    workspace = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces/mlw-litware-ips"
    rules = operator.az_rest("GET", workspace)["properties"]["networkAcls"]["ipRules"]
    opened = [*rules, {"value": "0.0.0.0/0", "action": "Allow"}]
    operator.az_rest("PATCH", workspace, {"properties": {"networkAcls": {"ipRules": opened}}})
    message = operator.wait_condition(
        "litware-selected-ips", "InboundIsolated", "False", "AllowlistTooBroad", timeout=3 * INTERVAL
    )["message"]
    assert message == "IP allowlist entries that cover the whole internet: 0.0.0.0/0", message

    manifest["spec"]["drift"]["mode"] = "Enforce"  # the entry is taken out, and the condition follows
    operator.apply(manifest)
    operator.wait_condition(
        "litware-selected-ips", "InboundIsolated", "True", "SelectedIPsOnly", timeout=WITHIN_A_SWEEP
    )


def test_the_hub_peering_must_be_connected_on_both_sides_for_ready(operator: OperatorEnv) -> None:
    operator.apply(_hub(operator))
    message = operator.wait_condition(HUB, "Ready", "False", "PeeringNotConnected", timeout=120)["message"]
    assert "peering to-hub from vnet-litware-spoke to the hub vnet-hub is Initiated" in message, message
    assert "the hub has no peering back" in message
    assert _peering_state(operator, OUR_SIDE) == "Initiated"
    assert operator.get(HUB)["status"]["hubPeering"] == {
        "hubVirtualNetworkId": HUB_VNET,
        "name": "to-hub",
        "state": "Initiated",
        "remoteState": "Missing",
    }

    _peer_back(operator)
    status = operator.wait_ready(HUB, timeout=WITHIN_A_SWEEP)["status"]
    assert status["hubPeering"] == {
        "hubVirtualNetworkId": HUB_VNET,
        "name": "to-hub",
        "state": "Connected",
        "remoteName": "to-litware-spoke",
        "remoteState": "Connected",
    }
    assert (_peering_state(operator, OUR_SIDE), _peering_state(operator, HUB_SIDE)) == ("Connected", "Connected")
    hub_writes = [
        w for w in operator.writes() if w["caller"] == "client" and w["path"].lower().startswith(HUB_VNET.lower())
    ]
    assert hub_writes == [], "the hub is read, never written"

    _split_routes(operator)  # the Authoritative policy takes them out, and the condition says so
    operator.wait_for(
        "the split routes removed",
        lambda: all(operator.arm_resource(f"{ROUTES}/routes/{name}") is None for name, _ in SPLIT),
        3 * INTERVAL,
    )
    operator.wait_condition(HUB, "OutboundIsolated", "True", "CustomerVNet", timeout=WITHIN_A_SWEEP)

    operator.az_rest("DELETE", HUB_SIDE)  # the hub's owner takes its side away
    # A sweep in flight may have read our side just before the DELETE and the hub just after it: it
    # reports that moment (Connected, no peering back), and the next sweep reads our side Disconnected.
    disconnected = "is Disconnected: the hub's side was deleted"
    operator.wait_condition(HUB, "Ready", "False", "PeeringNotConnected", timeout=WITHIN_A_SWEEP, saying=disconnected)
    assert _peering_state(operator, OUR_SIDE) == "Disconnected"


def test_the_emulator_reports_peering_states_as_azure_does(arm_emulator: Emulator) -> None:
    """Initiated while one side exists, Connected once the other peers back, Disconnected when the
    other side or its VNet goes; a Disconnected side must be written again before it can pair."""
    vnet = f"{NET}/virtualNetworks/vnet-a"
    ours, theirs = f"{vnet}/virtualNetworkPeerings/to-hub", f"{HUB_VNET}/virtualNetworkPeerings/to-a"

    def peer(peering: str, remote: str) -> None:
        arm_emulator.rest("PUT", peering, {"properties": {"remoteVirtualNetwork": {"id": remote}}})

    def states() -> tuple[str | None, ...]:
        found = {r["id"].lower() for r in arm_emulator.resources()}
        return tuple(
            arm_emulator.rest("GET", peering)["properties"]["peeringState"] if peering.lower() in found else None
            for peering in (ours, theirs)
        )

    arm_emulator.rest(
        "PUT", vnet, {"location": "brazilsouth", "properties": {"addressSpace": {"addressPrefixes": ["10.50.0.0/16"]}}}
    )
    peer(ours, HUB_VNET)
    assert states() == ("Initiated", None)
    peer(theirs, vnet)
    assert states() == ("Connected", "Connected")
    arm_emulator.rest("DELETE", theirs)
    assert states() == ("Disconnected", None)
    with pytest.raises(urllib.error.HTTPError) as refused:
        peer(theirs, vnet)
    assert refused.value.code == 400
    assert json.loads(refused.value.read())["error"]["code"] == "RemotePeeringIsDisconnected"
    peer(ours, HUB_VNET)  # written again: back to Initiated
    assert states() == ("Initiated", None)
    peer(theirs, vnet)
    assert states() == ("Connected", "Connected")
    arm_emulator.rest("DELETE", vnet)
    assert states() == (None, "Disconnected")
