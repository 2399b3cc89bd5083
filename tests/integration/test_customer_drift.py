"""Customer-VNet drift, made out of band the way a person with `az rest` would: each change is
corrected within one drift interval and reported (status.drift and a DriftDetected event), except
what the Additive policy keeps; resources owned by someone else are never deleted."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from operatorharness import EXTRA_INBOUND, HUB, NET, NSG, ROUTES, SPOKE, Manifest, OperatorEnv

from armemu.seed import HUB_VNET, PROVIDERS

pytestmark = pytest.mark.integration
INTERVAL = 10
NAT_VNET = f"{NET}/virtualNetworks/vnet-litware"
TARGET = f"{PROVIDERS}/Microsoft.Storage/storageAccounts/dlslitware"
FOREIGN_IP = "198.51.100.10"  # seeded on the target by its owner: never ours to remove


def _with_interval(manifest: Manifest) -> Manifest:
    manifest["spec"]["drift"] = {"mode": "Enforce", "interval": f"{INTERVAL}s"}
    return manifest


def _after_corrections(operator: OperatorEnv, name: str, count: int) -> set[tuple[str, str, str]]:
    """Wait (at most one interval plus a walk) for `count` more corrections; return every drift item."""
    before = int(operator.drift(name).get("correctionsTotal") or 0)
    drift = operator.wait_for(
        f"{count} corrections",
        lambda: (d := operator.drift(name)).get("correctionsTotal", 0) >= before + count and d,
        INTERVAL + 10,
    )
    return {(item["resource"].rsplit("/", 1)[-1], item["field"], item["action"]) for item in drift["items"]}


def _rewrite(operator: OperatorEnv, resource: str, change: Callable[[dict[str, Any]], None]) -> None:
    """PUT the resource back with `change` applied to its properties, as an operator of Azure would."""
    body = operator.arm_resource(resource)
    assert body is not None, resource
    properties = copy.deepcopy(body["properties"])
    change(properties)
    operator.az_rest("PUT", resource, {"properties": properties})


def _props(operator: OperatorEnv, resource: str) -> dict[str, Any]:
    body = operator.arm_resource(resource)
    assert body is not None, f"{resource} is missing"
    return dict(body["properties"])


def test_hub_routes_nsg_and_service_endpoints_are_corrected(operator: OperatorEnv) -> None:
    operator.apply(_with_interval(operator.manifest("04-customer-vnet-hub-firewall.yaml")))
    operator.wait_ready(HUB)
    operator.next_sweep(HUB, 3 * INTERVAL)

    # Round 1: things removed or added.
    operator.az_rest("DELETE", f"{ROUTES}/routes/default-to-firewall")
    operator.az_rest("DELETE", f"{NSG}/securityRules/DenyAllOutbound")
    operator.az_rest("PUT", f"{NSG}/securityRules/AllowSshFromInternet", EXTRA_INBOUND)

    def detach(properties: dict[str, Any]) -> None:
        del properties["routeTable"]
        properties["serviceEndpoints"] = [
            e for e in properties["serviceEndpoints"] if e["service"] != "Microsoft.Storage"
        ]

    _rewrite(operator, f"{SPOKE}/subnets/training", detach)
    items = _after_corrections(operator, HUB, 5)
    assert {
        ("default-to-firewall", "resource", "Corrected"),
        ("DenyAllOutbound", "resource", "Corrected"),
        ("AllowSshFromInternet", "resource", "Corrected"),
        ("training", "properties.routeTable.id", "Corrected"),
        ("training", "properties.serviceEndpoints", "Corrected"),
    } <= items
    training = _props(operator, f"{SPOKE}/subnets/training")
    assert training["routeTable"]["id"].lower() == ROUTES.lower()
    assert "Microsoft.Storage" in {e["service"] for e in training["serviceEndpoints"]}
    assert operator.arm_resource(f"{NSG}/securityRules/AllowSshFromInternet") is None
    assert _props(operator, f"{NSG}/securityRules/DenyAllOutbound")["access"] == "Deny"
    assert _props(operator, f"{ROUTES}/routes/default-to-firewall")["nextHopIpAddress"] == "10.1.0.4"

    # Round 2: things loosened in place.
    _rewrite(
        operator,
        f"{ROUTES}/routes/default-to-firewall",
        lambda p: p.update(nextHopType="Internet", nextHopIpAddress=None),
    )
    _rewrite(operator, f"{NSG}/securityRules/DenyAllOutbound", lambda p: p.update(access="Allow"))
    _rewrite(operator, f"{NSG}/securityRules/AllowVnetOutbound", lambda p: p.update(sourceAddressPrefix="*"))
    items = _after_corrections(operator, HUB, 3)
    assert {
        ("default-to-firewall", "properties.nextHopType", "Corrected"),
        ("DenyAllOutbound", "properties.access", "Corrected"),
        ("AllowVnetOutbound", "properties.sourceAddressPrefix", "Corrected"),
    } <= items
    route = _props(operator, f"{ROUTES}/routes/default-to-firewall")
    assert (route["nextHopType"], route["nextHopIpAddress"]) == ("VirtualAppliance", "10.1.0.4")
    assert _props(operator, f"{NSG}/securityRules/DenyAllOutbound")["access"] == "Deny"
    assert _props(operator, f"{NSG}/securityRules/AllowVnetOutbound")["sourceAddressPrefix"] == "VirtualNetwork"

    drift_events = [event["message"] for event in operator.events(HUB) if event["reason"] == "DriftDetected"]
    for reported in ("default-to-firewall", "DenyAllOutbound", "AllowSshFromInternet", "routeTable", "nextHopType"):
        assert any(reported in message for message in drift_events), reported
    status = operator.get(HUB)["status"]
    assert status["defaultRoute"] == {
        "nextHopType": "VirtualAppliance",
        "nextHopIpAddress": "10.1.0.4",
        "source": "User",
    }
    assert operator.condition(HUB, "Ready")["status"] == "True"


def test_nat_detachment_and_allowlist_removal_are_corrected(operator: OperatorEnv) -> None:
    operator.apply(_with_interval(operator.manifest("03-customer-vnet-nat.yaml")))
    body = operator.wait_ready("litware-nat")
    (egress_ip,) = body["status"]["egressIPs"]
    assert _allowlist(operator) == {FOREIGN_IP, egress_ip}, "our egress IP is allowlisted on the first reconcile"
    operator.next_sweep("litware-nat", 3 * INTERVAL)

    _rewrite(operator, f"{NAT_VNET}/subnets/training", lambda p: p.pop("natGateway"))
    operator.az_rest(
        "PATCH",
        TARGET,
        {"properties": {"networkAcls": {"ipRules": [{"value": FOREIGN_IP, "action": "Allow"}]}}},
        api_version="2023-05-01",
    )
    items = _after_corrections(operator, "litware-nat", 2)
    assert ("training", "properties.natGateway.id", "Corrected") in items
    assert ("dlslitware", "properties.networkAcls.ipRules", "Corrected") in items
    assert _props(operator, f"{NAT_VNET}/subnets/training")["natGateway"]["id"].endswith("ng-mlw-litware-nat-egress")
    assert _allowlist(operator) == {FOREIGN_IP, egress_ip}


def test_allowlist_entries_leave_with_the_spec_and_with_the_resource(operator: OperatorEnv) -> None:
    manifest = operator.manifest("03-customer-vnet-nat.yaml", deletionPolicy="Delete")
    operator.apply(manifest)
    (egress_ip,) = operator.wait_ready("litware-nat")["status"]["egressIPs"]
    assert operator.get("litware-nat")["status"]["allowlistedEgress"] == [{"target": TARGET, "ips": [egress_ip]}]

    manifest["spec"]["outbound"]["customerNetwork"]["allowlistEgressOn"] = []
    operator.apply(manifest)
    body = operator.wait_ready("litware-nat")
    assert _allowlist(operator) == {FOREIGN_IP}, "removed from the target once the spec no longer lists it"
    assert body["status"].get("allowlistedEgress", []) == []

    manifest["spec"]["outbound"]["customerNetwork"]["allowlistEgressOn"] = [TARGET]
    operator.apply(manifest)
    operator.wait_ready("litware-nat")
    assert _allowlist(operator) == {FOREIGN_IP, egress_ip}
    operator.kube.kubectl("delete", "smlw", "litware-nat", "-n", operator.namespace, "--timeout=90s")
    assert _allowlist(operator) == {FOREIGN_IP}, "deleting the resource takes our IP off the target"
    assert operator.arm_resource(f"{NET}/natGateways/ng-mlw-litware-nat-egress") is None


def _allowlist(operator: OperatorEnv) -> set[str]:
    return {rule["value"] for rule in _props(operator, TARGET)["networkAcls"]["ipRules"]}


def test_additive_policy_keeps_foreign_rules_and_routes(operator: OperatorEnv) -> None:
    manifest = _with_interval(operator.manifest("04-customer-vnet-hub-firewall.yaml"))
    manifest["spec"]["outbound"]["customerNetwork"]["networkSecurity"]["rulesPolicy"] = "Additive"
    operator.apply(manifest)
    operator.wait_ready(HUB)
    operator.az_rest("PUT", f"{NSG}/securityRules/AllowSshFromInternet", EXTRA_INBOUND)
    operator.az_rest(
        "PUT", f"{ROUTES}/routes/onprem", {"properties": {"addressPrefix": "192.168.0.0/16", "nextHopType": "None"}}
    )
    operator.wait_for(
        "both extras reported",
        lambda: (
            {"AllowSshFromInternet", "onprem"}
            <= {
                i["resource"].rsplit("/", 1)[-1]
                for i in operator.drift(HUB).get("items", [])
                if i["action"] == "Reported"
            }
        ),
        INTERVAL + 10,
    )
    assert operator.arm_resource(f"{NSG}/securityRules/AllowSshFromInternet") is not None
    assert operator.arm_resource(f"{ROUTES}/routes/onprem") is not None
    assert operator.condition(HUB, "InSync")["reason"] == "InSyncWithExtras"


ADOPTED = f"{NET}/virtualNetworks/vnet-platform"


def _adopted_manifest(operator: OperatorEnv, training: str = "10.5.40.0/24") -> Manifest:
    manifest = operator.manifest("04-customer-vnet-hub-firewall.yaml", deletionPolicy="Delete")
    network = manifest["spec"]["outbound"]["customerNetwork"]
    network["virtualNetwork"] = {"existingId": ADOPTED}
    network["subnets"] = {
        "training": {"addressPrefix": training},
        "scoring": {"addressPrefix": "10.5.90.0/24"},
        "privateEndpoints": {"addressPrefix": "10.5.20.0/24"},
    }
    network["egress"]["firewall"].update(peering=False, peerFromHub=False)
    return manifest


def _platform_vnet(operator: OperatorEnv) -> None:
    """A VNet the platform team already runs: a subnet and a peering of its own."""
    operator.az_rest(
        "PUT",
        ADOPTED,
        {"location": "brazilsouth", "properties": {"addressSpace": {"addressPrefixes": ["10.5.0.0/16"]}}},
    )
    operator.az_rest("PUT", f"{ADOPTED}/subnets/legacy", {"properties": {"addressPrefix": "10.5.1.0/24"}})
    operator.az_rest(
        "PUT",
        f"{ADOPTED}/virtualNetworkPeerings/platform-to-hub",
        {"properties": {"remoteVirtualNetwork": {"id": HUB_VNET}}},
    )


def test_adopted_vnet_keeps_its_other_subnets_and_peerings(operator: OperatorEnv) -> None:
    _platform_vnet(operator)
    operator.apply(_adopted_manifest(operator))
    status = operator.wait_ready(HUB)["status"]
    assert {s["name"] for s in status["subnets"]} == {"training", "scoring", "private-endpoints"}
    training = next(s for s in status["subnets"] if s["role"] == "training")
    assert (training["capacity"], training["used"]) == (251, 0)
    endpoints = next(s for s in status["subnets"] if s["role"] == "privateEndpoints")
    assert endpoints["used"] == 5, "the workspace endpoint and four dependency endpoints"
    assert status["egressIPs"] == ["203.0.113.40"], "the firewall's public IP"
    assert operator.arm_resource(f"{ADOPTED}/subnets/legacy") is not None

    operator.kube.kubectl("delete", "smlw", HUB, "-n", operator.namespace, "--timeout=90s")
    assert operator.arm_resource(ADOPTED) is not None
    assert operator.arm_resource(f"{ADOPTED}/subnets/legacy") is not None
    assert operator.arm_resource(f"{ADOPTED}/virtualNetworkPeerings/platform-to-hub") is not None
    assert operator.arm_resource(f"{ADOPTED}/subnets/training") is None, "our subnets leave with the resource"


@pytest.mark.parametrize(
    ("reason", "prepare"),
    [
        ("VirtualNetworkTooSmall", lambda m: m["spec"]["outbound"]["customerNetwork"]["subnets"]["training"].update(
            addressPrefix="10.6.40.0/24")),
        ("SubnetOverlaps", lambda m: m["spec"]["outbound"]["customerNetwork"]["subnets"]["training"].update(
            addressPrefix="10.5.1.0/25")),
        ("FirewallHasNoPrivateIP", lambda m: m["spec"]["outbound"]["customerNetwork"]["egress"]["firewall"].update(
            id=f"{NET}/azureFirewalls/fw-unfinished")),
    ],
)  # fmt: skip
def test_azure_side_problems_stall_without_writes(
    operator: OperatorEnv, reason: str, prepare: Callable[[Manifest], None]
) -> None:
    _platform_vnet(operator)
    operator.az_rest("PUT", f"{NET}/azureFirewalls/fw-unfinished", {"location": "brazilsouth", "properties": {}})
    manifest = _adopted_manifest(operator)
    prepare(manifest)
    operator.arm.clear_requests()
    operator.apply(manifest)
    operator.wait_for("Stalled", lambda: operator.condition(HUB, "Stalled").get("status") == "True")
    condition = operator.condition(HUB, "Stalled")
    assert condition["reason"] == reason, condition
    assert operator.writes() == [], [(w["method"], w["path"]) for w in operator.writes()]
