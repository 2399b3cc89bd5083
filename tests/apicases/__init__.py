# ruff: noqa: E501  (a table reads best one case per line)
"""One table of invalid manifests, used by the unit tests (pydantic models) and the integration tests
(kubectl against the real API server): each case breaks one rule of a valid example."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from secureml_operator.api.rules import RULES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MESSAGES = {rule.id: rule.message for rule in RULES}
Manifest = dict[str, Any]


def example(name: str) -> Manifest:
    loaded: Manifest = yaml.safe_load((EXAMPLES / name).read_text())
    return loaded


MANAGED = "02-managed-approved-outbound.yaml"
CUSTOMER = "03-customer-vnet-nat.yaml"
FIREWALL_ID = (  # the hub firewall of example 4, in the connectivity subscription
    "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-connectivity/providers/"
    "Microsoft.Network/azureFirewalls/fw-hub"
)
FIREWALL_POLICY_ID = FIREWALL_ID.replace("azureFirewalls/fw-hub", "firewallPolicies/afwp-hub")  # fw-hub's policy


@dataclass(frozen=True)
class Case:
    id: str
    base: str
    mutate: Callable[[Manifest], None]
    rule: str | None = None  # a rule of api/rules.py, whose message must be shown
    fragment: str | None = None  # or a schema error fragment (patterns, enums)
    server_fragment: str | None = None  # what the API server says, when it is not the rule's message

    def manifest(self) -> Manifest:
        manifest = copy.deepcopy(example(self.base))
        manifest["metadata"]["name"] = f"bad-{self.id}"
        self.mutate(manifest)
        return manifest

    @property
    def expected(self) -> str:
        return MESSAGES[self.rule] if self.rule else str(self.fragment)

    @property
    def server_expected(self) -> str:
        return self.server_fragment or self.expected


def _spec(manifest: Manifest) -> Any:
    return manifest["spec"]


def _managed(manifest: Manifest) -> Any:
    return manifest["spec"]["outbound"]["managedNetwork"]


def _customer(manifest: Manifest) -> Any:
    return manifest["spec"]["outbound"]["customerNetwork"]


CASES = [
    Case("both-outbound", MANAGED, lambda m: _spec(m)["outbound"].update(
        customerNetwork=_customer(example(CUSTOMER))), rule="outbound-exactly-one"),
    Case("no-outbound", MANAGED, lambda m: _spec(m)["outbound"].pop("managedNetwork"), rule="outbound-exactly-one"),
    Case("fqdn-internet-outbound", MANAGED, lambda m: _managed(m).update(
        isolationMode="AllowInternetOutbound", firewallSku=None, presets=[],
        rules=[{"name": "pypi", "fqdn": "pypi.org"}]), rule="fqdn-needs-approved-outbound"),
    Case("presets-internet-outbound", MANAGED, lambda m: _managed(m).update(
        isolationMode="AllowInternetOutbound", firewallSku=None, rules=[]), rule="fqdn-needs-approved-outbound"),
    Case("service-tag-internet-outbound", MANAGED, lambda m: _managed(m).update(
        isolationMode="AllowInternetOutbound", firewallSku=None, presets=[],
        rules=[{"name": "monitor", "serviceTag": {"tag": "AzureMonitor"}}]), rule="fqdn-needs-approved-outbound"),
    Case("firewall-sku-internet-outbound", MANAGED, lambda m: _managed(m).update(
        isolationMode="AllowInternetOutbound", presets=[], rules=[]), rule="firewall-sku-needs-approved-outbound"),
    Case("rule-two-destinations", MANAGED, lambda m: _managed(m)["rules"].append(
        {"name": "both", "fqdn": "x.org", "serviceTag": {"tag": "AzureMonitor"}}),
        rule="rule-exactly-one-destination"),
    Case("rule-no-destination", MANAGED, lambda m: _managed(m)["rules"].append({"name": "empty"}),
         rule="rule-exactly-one-destination"),
    Case("fqdn-port-22", MANAGED, lambda m: _managed(m)["rules"].append(
        {"name": "ssh", "fqdn": "git.example.com", "ports": [22]}), rule="fqdn-ports"),
    Case("disabled-without-endpoint", MANAGED, lambda m: _spec(m)["inbound"].pop("privateEndpoint"),
         rule="private-access-needs-endpoint"),
    Case("ranges-without-selected-ips", MANAGED, lambda m: _spec(m)["inbound"].update(
        allowedIpRanges=["203.0.113.0/24"]), rule="ip-ranges-need-selected-ips"),
    Case("selected-ips-without-ranges", MANAGED, lambda m: _spec(m)["inbound"].update(
        publicNetworkAccess="EnabledFromSelectedIPs"), rule="selected-ips-need-ranges"),
    Case("malformed-ip-range", MANAGED, lambda m: _spec(m)["inbound"].update(
        publicNetworkAccess="EnabledFromSelectedIPs", allowedIpRanges=["203.0.113.0/33"]),
        rule="ip-ranges-are-cidrs"),
    Case("endpoint-two-subnets", CUSTOMER, lambda m: _spec(m)["inbound"]["privateEndpoint"].update(
        subnetId=_spec(example(MANAGED))["inbound"]["privateEndpoint"]["subnetId"]),
        rule="endpoint-exactly-one-subnet"),
    Case("subnet-name-managed", MANAGED, lambda m: _spec(m)["inbound"].update(
        privateEndpoint={"subnetName": "privateEndpoints"}), rule="subnet-name-needs-customer-network"),
    Case("vnet-name-and-id", CUSTOMER, lambda m: _customer(m)["virtualNetwork"].update(
        existingId="/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
        "Microsoft.Network/virtualNetworks/v"), rule="vnet-exactly-one"),
    Case("vnet-without-space", CUSTOMER, lambda m: _customer(m)["virtualNetwork"].update(addressSpace=[]),
         rule="vnet-created-needs-space"),
    Case("malformed-space", CUSTOMER, lambda m: _customer(m)["virtualNetwork"].update(addressSpace=["10.0.0/16"]),
         rule="address-space-cidrs"),
    Case("malformed-subnet", CUSTOMER, lambda m: _customer(m)["subnets"]["scoring"].update(addressPrefix="10.0.90.0"),
         rule="subnet-prefix-cidr"),
    Case("subnet-too-small", CUSTOMER, lambda m: _customer(m)["subnets"]["training"].update(
        addressPrefix="10.0.40.0/28", expectedAddresses=20), rule="subnet-capacity"),
    Case("subnets-overlap", CUSTOMER, lambda m: _customer(m)["subnets"]["scoring"].update(addressPrefix="10.0.40.128/25"),
         rule="subnets-disjoint"),
    Case("subnet-outside-space", CUSTOMER, lambda m: _customer(m)["subnets"]["scoring"].update(
        addressPrefix="10.9.0.0/24"), rule="subnets-inside-space"),
    Case("no-way-out", CUSTOMER, lambda m: _customer(m).update(egress={"none": {}}), rule="egress-needed"),
    Case("two-egress", CUSTOMER, lambda m: _customer(m)["egress"].update(
        firewall={"privateIpAddress": "10.1.0.4"}), rule="egress-exactly-one"),
    Case("firewall-bad-ip", CUSTOMER, lambda m: _customer(m).update(
        egress={"firewall": {"privateIpAddress": "10.1.0.400"}}), rule="firewall-ip"),
    Case("firewall-ip-and-id", CUSTOMER, lambda m: _customer(m).update(egress={"firewall": {
        "privateIpAddress": "10.1.0.4", "id": FIREWALL_ID}}), rule="firewall-named"),
    Case("firewall-nameless", CUSTOMER, lambda m: _customer(m).update(egress={"firewall": {"peering": False}}),
         rule="firewall-named"),
    Case("firewall-not-a-firewall", CUSTOMER, lambda m: _customer(m).update(egress={"firewall": {
        "id": FIREWALL_ID.replace("azureFirewalls", "networkVirtualAppliances")}}), rule="firewall-id-type"),
    Case("firewall-policy-not-a-policy", CUSTOMER, lambda m: _customer(m).update(egress={"firewall": {
        "id": FIREWALL_ID, "policyId": FIREWALL_ID}}), rule="firewall-policy-id-type"),
    Case("peer-from-hub-without-hub", CUSTOMER, lambda m: _customer(m).update(egress={"firewall": {
        "privateIpAddress": "10.1.0.4", "peerFromHub": True}}), rule="firewall-peer-from-hub"),
    Case("drift-too-fast", MANAGED, lambda m: _spec(m)["drift"].update(interval="5s"), rule="drift-interval-minimum"),
    Case("bad-workspace-name", MANAGED, lambda m: _spec(m)["workspace"].update(name="x"), fragment="name"),
    Case("bad-isolation-mode", MANAGED, lambda m: _managed(m).update(isolationMode="Disabled"),
         fragment="isolationMode"),
    Case("duplicate-rule-names", MANAGED, lambda m: _managed(m)["rules"].append(
        {"name": "monitor", "fqdn": "dup.example.com"}), rule="rule-names-unique",
        server_fragment='Duplicate value: {"name":"monitor"}'),
]  # fmt: skip

TRANSITIONS = [
    Case("managed-to-customer", MANAGED, lambda m: _spec(m).update(outbound=_spec(example(CUSTOMER))["outbound"]),
         rule="outbound-no-switch"),
    Case("approved-to-internet", MANAGED, lambda m: _managed(m).update(
        isolationMode="AllowInternetOutbound", firewallSku=None, presets=[], rules=[]), rule="isolation-no-downgrade"),
    Case("rename-workspace", MANAGED, lambda m: _spec(m)["workspace"].update(name="mlw-renamed"),
         rule="workspace-name-immutable"),
]  # fmt: skip
