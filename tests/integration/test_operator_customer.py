"""Customer-managed VNet examples end to end: the seeds' reference layout, and NAT egress."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from operatorharness import OperatorEnv

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
    assert peering["remoteVirtualNetwork"]["id"].endswith("virtualNetworks/vnet-hub")
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
