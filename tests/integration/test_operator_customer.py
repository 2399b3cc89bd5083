"""Customer-managed VNet examples end to end: the seeds' reference layout, and NAT egress."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from operatorharness import OperatorEnv

from armemu.seed import DEPENDENCIES, HUB_FIREWALL, HUB_VNET

pytestmark = pytest.mark.integration
NET = "/providers/Microsoft.Network/"


def _props(operator: OperatorEnv, suffix: str) -> dict[str, Any]:
    body = operator.arm_resource(suffix)
    assert body is not None, f"{suffix} was not created"
    return dict(body["properties"])


def test_hub_firewall_example_builds_the_reference_layout(operator: OperatorEnv) -> None:
    operator.apply(operator.manifest("04-customer-vnet-hub-firewall.yaml"))
    body = operator.wait_ready("litware-hub")
    vnet = f"{NET}virtualNetworks/vnet-litware-spoke"
    assert _props(operator, vnet)["addressSpace"]["addressPrefixes"] == ["10.0.0.0/16"]
    prefixes = {name: _props(operator, f"{vnet}/subnets/{name}")["addressPrefix"] for name in
                ("training", "scoring", "private-endpoints")}  # fmt: skip
    assert prefixes == {"training": "10.0.40.0/24", "scoring": "10.0.90.0/24", "private-endpoints": "10.0.20.0/24"}
    nsg = f"{NET}networkSecurityGroups/nsg-mlw-litware-hub-compute"
    allow, deny = (
        _props(operator, f"{nsg}/securityRules/AllowVnetOutbound"),
        _props(operator, f"{nsg}/securityRules/DenyAllOutbound"),
    )
    assert (allow["priority"], allow["access"], allow["direction"], allow["destinationAddressPrefix"]) == (
        100, "Allow", "Outbound", "VirtualNetwork")  # fmt: skip
    assert (deny["priority"], deny["access"], deny["direction"], deny["destinationAddressPrefix"]) == (
        200, "Deny", "Outbound", "*")  # fmt: skip
    route = _props(operator, f"{NET}routeTables/rt-mlw-litware-hub-compute/routes/default-to-firewall")
    assert (route["addressPrefix"], route["nextHopType"], route["nextHopIpAddress"]) == (
        "0.0.0.0/0", "VirtualAppliance", "10.1.0.4")  # fmt: skip
    training = _props(operator, f"{vnet}/subnets/training")
    assert training["routeTable"]["id"].endswith("rt-mlw-litware-hub-compute")
    assert training["networkSecurityGroup"]["id"].endswith("nsg-mlw-litware-hub-compute")
    assert {e["service"] for e in training["serviceEndpoints"]} == {"Microsoft.Storage", "Microsoft.KeyVault"}
    assert training["serviceEndpointPolicies"][0]["id"].endswith("sep-mlw-litware-hub-exfiltration")
    for zone in ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"):
        link = _props(operator, f"{NET}privateDnsZones/{zone}/virtualNetworkLinks/vnet-litware-spoke-link")
        assert link["virtualNetwork"]["id"].endswith(vnet)
    peering = _props(operator, f"{vnet}/virtualNetworkPeerings/to-hub")
    assert peering["remoteVirtualNetwork"]["id"].lower() == HUB_VNET.lower(), "the hub, in its own subscription"
    reads = {r["path"].lower() for r in operator.arm.requests() if r["method"] == "GET"}
    assert HUB_FIREWALL.lower() in reads, "the firewall is read in the connectivity subscription"
    workspace = _props(operator, "/workspaces/mlw-litware-hub")
    assert workspace["managedNetwork"]["isolationMode"] == "Disabled"
    assert body["status"]["isolation"] == "CustomerVNet"
    assert ipaddress.ip_address(body["status"]["privateEndpoint"]["ipAddress"]) in ipaddress.ip_network("10.0.20.0/24")


def test_nat_example_reports_its_egress_ip(operator: OperatorEnv) -> None:
    operator.apply(operator.manifest("03-customer-vnet-nat.yaml"))
    body = operator.wait_ready("litware-nat")
    ip = _props(operator, f"{NET}publicIPAddresses/pip-mlw-litware-nat-egress-1")["ipAddress"]
    assert body["status"]["egressIPs"] == [ip]
    nat = _props(operator, f"{NET}natGateways/ng-mlw-litware-nat-egress")
    assert nat["publicIpAddresses"][0]["id"].endswith("pip-mlw-litware-nat-egress-1")
    for subnet in ("training", "scoring"):
        gateway = _props(operator, f"{NET}virtualNetworks/vnet-litware/subnets/{subnet}")["natGateway"]["id"]
        assert gateway.endswith("ng-mlw-litware-nat-egress")
    names = {r["id"].rsplit("/", 1)[-1] for r in operator.arm.resources() if "/securityRules/" in r["id"]}
    assert "AllowStorageBrazilSouthOutbound" in names and "DenyAllOutbound" in names


ZONES = (
    "privatelink.api.azureml.ms",
    "privatelink.notebooks.azure.net",
    "privatelink.blob.core.windows.net",
    "privatelink.file.core.windows.net",
    "privatelink.vaultcore.azure.net",
    "privatelink.azurecr.io",
)


def _created(operator: OperatorEnv) -> set[str]:
    """Every resource the seed did not put there, as `type/name` paths (without what Azure itself
    writes: the A records of the endpoints' DNS zone groups, the workspace's endpoint connections)."""
    seeded = {resource_id.lower() for resource_id, _ in DEPENDENCIES}
    azure_made = ("/A/", "/privateEndpointConnections/")
    return {
        r["id"].split("/providers/", 1)[1]
        for r in operator.arm.resources()
        if "/providers/" in r["id"] and r["id"].lower() not in seeded and not any(p in r["id"] for p in azure_made)
    }


def _zone(name: str, vnet: str) -> set[str]:
    zone = f"Microsoft.Network/privateDnsZones/{name}"
    return {zone, f"{zone}/virtualNetworkLinks/{vnet}-link"}


def _endpoint(name: str) -> set[str]:
    endpoint = f"Microsoft.Network/privateEndpoints/{name}"
    return {endpoint, f"{endpoint}/privateDnsZoneGroups/default"}


def _topology(ws: str, vnet: str) -> set[str]:
    """What both customer-VNet examples have in common: VNet, subnets, NSG, endpoints, zones."""
    net = f"Microsoft.Network/virtualNetworks/{vnet}"
    return {
        f"Microsoft.MachineLearningServices/workspaces/{ws}",
        net,
        *(f"{net}/subnets/{name}" for name in ("training", "scoring", "private-endpoints")),
        f"Microsoft.Network/networkSecurityGroups/nsg-{ws}-compute",
        *(rule for name in ("AllowVnetOutbound", "DenyAllOutbound")
          for rule in [f"Microsoft.Network/networkSecurityGroups/nsg-{ws}-compute/securityRules/{name}"]),
        *(item for zone in ZONES for item in _zone(zone, vnet)),
        *(item for suffix in ("", "-st-blob", "-st-file", "-kv", "-cr") for item in _endpoint(f"pe-{ws}{suffix}")),
    }  # fmt: skip


def _nat_topology(operator: OperatorEnv) -> set[str]:
    nat = _topology("mlw-litware-nat", "vnet-litware")
    nat_rules = {name for name in _created(operator) if "/securityRules/Allow" in name and "Vnet" not in name}
    assert nat_rules, "no-public-IP compute behind NAT gets Azure ML's service-tag rules"
    nat |= nat_rules | {
        "Microsoft.Network/publicIPAddresses/pip-mlw-litware-nat-egress-1",
        "Microsoft.Network/natGateways/ng-mlw-litware-nat-egress",
    }
    return nat


def test_examples_hold_exactly_the_expected_topology(operator: OperatorEnv) -> None:
    operator.apply(operator.manifest("03-customer-vnet-nat.yaml"))
    operator.wait_ready("litware-nat")
    nat = _nat_topology(operator)
    assert _created(operator) == nat

    operator.apply(operator.manifest("04-customer-vnet-hub-firewall.yaml"))
    operator.wait_ready("litware-hub")
    hub = _topology("mlw-litware-hub", "vnet-litware-spoke") | {
        "Microsoft.Network/routeTables/rt-mlw-litware-hub-compute",
        "Microsoft.Network/routeTables/rt-mlw-litware-hub-compute/routes/default-to-firewall",
        "Microsoft.Network/serviceEndpointPolicies/sep-mlw-litware-hub-exfiltration",
        *(f"Microsoft.Network/serviceEndpointPolicies/sep-mlw-litware-hub-exfiltration/serviceEndpointPolicyDefinitions/{d}"
          for d in ("azureml-alias", "workspace-storage")),
        "Microsoft.Network/virtualNetworks/vnet-litware-spoke/virtualNetworkPeerings/to-hub",
        "Microsoft.Network/virtualNetworks/vnet-hub/virtualNetworkPeerings/to-vnet-litware-spoke",  # peerFromHub
        "Microsoft.Network/firewallPolicies/afwp-hub/ruleCollectionGroups/secureml-mlw-litware-hub",  # policyId
    }  # fmt: skip
    # The private DNS zones are shared: the second example only links its own VNet to them.
    assert _created(operator) == nat | hub


def test_failed_writes_and_operations_lose_and_duplicate_nothing(operator: OperatorEnv) -> None:
    """500s beyond the SDK's own retries on subnet writes, a private endpoint whose operation ends
    Failed, and a throttled NAT gateway: Ready in the end, with exactly the expected resources."""
    operator.arm.fault(method="PUT", path="/subnets/scoring$", status=500, count=5)
    operator.arm.fault(method="PUT", path="/privateEndpoints/pe-mlw-litware-nat-kv$", status=200, failLro=True, count=1)
    operator.arm.fault(method="PUT", path="/natGateways/", status=429, count=2, retryAfter=1)
    operator.apply(operator.manifest("03-customer-vnet-nat.yaml"))
    operator.wait_ready("litware-nat", timeout=120)
    statuses = [(r["method"], r["status"]) for r in operator.arm.requests()]
    assert statuses.count(("PUT", 500)) == 5 and statuses.count(("PUT", 429)) == 2
    assert _created(operator) == _nat_topology(operator)
