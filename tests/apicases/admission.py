# ruff: noqa: E501  (a table reads best one case per line)
"""Input that passes a looser schema but cannot work in Azure (issue #12), as a table used by the unit
tests (pydantic models) and the integration tests (kubectl against the real API server): each refusal
breaks one rule of a valid example with one bad value; each acceptance sets edge values that must
still pass, so the rules cannot pass the refusals by refusing everything."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apicases import CUSTOMER, FIREWALL_POLICY_ID, MANAGED, Case, Manifest, _customer, _managed, _spec

Mutation = Callable[[Manifest], None]

FIREWALL = "04-customer-vnet-hub-firewall.yaml"
SELECTED_IPS = "06-selected-ips.yaml"


def _firewall_ip(address: str) -> Mutation:
    def mutate(manifest: Manifest) -> None:
        firewall = _customer(manifest)["egress"]["firewall"]
        firewall.pop("id")
        firewall["privateIpAddress"] = address

    return mutate


def _outbound_rule(**rule: Any) -> Mutation:
    return lambda manifest: _managed(manifest)["rules"].append(rule)


def _service_tag_ports(port_ranges: str) -> Mutation:
    return _outbound_rule(name="sql", serviceTag={"tag": "Sql.BrazilSouth", "portRanges": port_ranges})


def _nsg_rule(**fields: Any) -> Mutation:
    rule = {"name": "AllowHttpsToHub", "priority": 300, "direction": "Outbound", "access": "Allow", **fields}
    return lambda manifest: (
        _customer(manifest).setdefault("networkSecurity", {}).setdefault("extraRules", []).append(rule)
    )


def _route(**fields: Any) -> Mutation:
    route = {
        "name": "to-hub",
        "addressPrefix": "10.2.0.0/16",
        "nextHopType": "VirtualAppliance",
        "nextHopIpAddress": "10.1.0.4",
        **fields,
    }
    return lambda manifest: (
        _customer(manifest).setdefault("extraRoutes", []).append({k: v for k, v in route.items() if v is not None})
    )


REFUSALS = [
    # wildcard FQDNs keep two labels below the wildcard
    Case("fqdn-wildcard-tld", MANAGED, _outbound_rule(name="any-com", fqdn="*.com"), rule="fqdn-wildcard-depth"),
    Case("fqdn-wildcard-one-label", MANAGED, _outbound_rule(name="any-windows", fqdn="*.windows"), rule="fqdn-wildcard-depth"),
    # FQDN rules have no ports in Azure: refused, never dropped
    Case("fqdn-port-443", MANAGED, _outbound_rule(name="pypi-https", fqdn="pypi.org", ports=[443]), rule="fqdn-ports"),
    Case("ports-on-service-tag", MANAGED, _outbound_rule(name="sql", serviceTag={"tag": "Sql"}, ports=[1433]), rule="fqdn-ports"),
    # next hops are private IPv4 addresses
    Case("firewall-public-ip", FIREWALL, _firewall_ip("8.8.8.8"), rule="firewall-ip"),
    Case("firewall-ipv6", FIREWALL, _firewall_ip("fd00::4"), rule="firewall-ip"),
    Case("route-public-next-hop", CUSTOMER, _route(nextHopIpAddress="20.1.2.3"), rule="route-next-hop-private"),
    Case("route-ipv6-next-hop", CUSTOMER, _route(nextHopIpAddress="fd00::4"), rule="route-next-hop-private"),
    # IPv6 wherever an address or range is taken
    Case("allowlist-ipv6", SELECTED_IPS, lambda m: _spec(m)["inbound"].update(allowedIpRanges=["2001:db8::/32"]), rule="ip-ranges-are-cidrs"),
    Case("allowlist-ipv6-address", SELECTED_IPS, lambda m: _spec(m)["inbound"].update(allowedIpRanges=["2001:db8::7"]), rule="ip-ranges-are-cidrs"),
    Case("address-space-ipv6", CUSTOMER, lambda m: _customer(m)["virtualNetwork"]["addressSpace"].append("fd00::/48"), rule="address-space-cidrs"),
    Case("subnet-ipv6", CUSTOMER, lambda m: _customer(m)["subnets"]["scoring"].update(addressPrefix="fd00::/64"), rule="subnet-prefix-cidr"),
    Case("route-prefix-ipv6", CUSTOMER, _route(addressPrefix="2001:db8::/32"), rule="route-address-prefix"),
    Case("route-prefix-malformed", CUSTOMER, _route(addressPrefix="10.2.0.0/33"), rule="route-address-prefix"),
    Case("nsg-source-ipv6", CUSTOMER, _nsg_rule(sourceAddressPrefix="2001:db8::/32"), rule="nsg-rule-source-prefix"),
    Case("nsg-destination-malformed", CUSTOMER, _nsg_rule(destinationAddressPrefix="10.2.0.0/33"), rule="nsg-rule-destination-prefix"),
    # VirtualAppliance needs a next hop IP, other hop types take none
    Case("appliance-without-ip", CUSTOMER, _route(nextHopIpAddress=None), rule="route-next-hop-ip"),
    Case("internet-with-ip", CUSTOMER, _route(nextHopType="Internet"), rule="route-next-hop-ip"),
    # names the operator derives
    Case("nsg-rule-derived-name", CUSTOMER, _nsg_rule(name="DenyAllOutbound"), rule="nsg-rule-name-reserved"),
    Case("nsg-rule-derived-regional-name", CUSTOMER, _nsg_rule(name="allowstoragebrazilsouthoutbound"), rule="nsg-rule-name-reserved"),
    Case("route-derived-name", FIREWALL, _route(name="Default-To-Firewall"), rule="route-name-reserved"),
    Case("outbound-rule-preset-name", MANAGED, _outbound_rule(name="pythonpackag-pypi-org", fqdn="pypi.org"), rule="outbound-rule-name-reserved"),
    # every port 1-65535, low end first, in every field and form
    Case("service-tag-port-zero", MANAGED, _service_tag_ports("0"), rule="service-tag-port-ranges"),
    Case("service-tag-port-too-high", MANAGED, _service_tag_ports("443,65536"), rule="service-tag-port-ranges"),
    Case("service-tag-range-reversed", MANAGED, _service_tag_ports("8080-80"), rule="service-tag-port-ranges"),
    Case("nsg-port-zero", CUSTOMER, _nsg_rule(destinationPortRanges=["0"]), rule="nsg-rule-ports"),
    Case("nsg-port-too-high", CUSTOMER, _nsg_rule(destinationPortRanges=["443", "99999"]), rule="nsg-rule-ports"),
    Case("nsg-range-reversed", CUSTOMER, _nsg_rule(destinationPortRanges=["9000-8000"]), rule="nsg-rule-ports"),
    Case("nsg-range-too-high", CUSTOMER, _nsg_rule(destinationPortRanges=["8000-70000"]), rule="nsg-rule-ports"),
    Case("nsg-port-not-a-number", CUSTOMER, _nsg_rule(destinationPortRanges=["https"]), rule="nsg-rule-ports"),
    Case("nsg-any-port-among-others", CUSTOMER, _nsg_rule(destinationPortRanges=["*", "443"]), rule="nsg-rule-ports"),
]  # fmt: skip

ACCEPTED = [
    Case("fqdn-wildcards", MANAGED, lambda m: _managed(m)["rules"].extend([
        {"name": "blob", "fqdn": "*.blob.core.windows.net"}, {"name": "hf-any", "fqdn": "*.hf.co"}])),
    Case("firewall-ip-shared-space", FIREWALL, _firewall_ip("100.64.0.4")),
    Case("firewall-ip-rfc1918-edge", FIREWALL, _firewall_ip("172.31.255.254")),
    Case("firewall-policy-any-casing", FIREWALL, lambda m: _customer(m)["egress"]["firewall"].update(
        policyId=FIREWALL_POLICY_ID.replace("Microsoft.Network/firewallPolicies", "microsoft.network/firewallpolicies"))),
    Case("service-tag-port-edges", MANAGED, _service_tag_ports("1,443,8000-8080,65535")),
    Case("service-tag-all-ports", MANAGED, _service_tag_ports("1-65535")),
    Case("nsg-rule-edges", CUSTOMER, _nsg_rule(
        name="MyDenyAllOutbound", sourceAddressPrefix="VirtualNetwork", destinationAddressPrefix="10.2.0.4",
        destinationPortRanges=["1", "65535", "1024-65535"])),
    Case("nsg-rule-any", CUSTOMER, _nsg_rule(destinationAddressPrefix="Storage.BrazilSouth", destinationPortRanges=["*"])),
    Case("routes-edges", CUSTOMER, lambda m: _customer(m).update(extraRoutes=[
        {"name": "to-nva", "addressPrefix": "10.2.0.0/16", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "192.168.0.1"},
        {"name": "monitor-direct", "addressPrefix": "AzureMonitor", "nextHopType": "Internet"},
        {"name": "blackhole", "addressPrefix": "10.3.0.0/16", "nextHopType": "None"},
        {"name": "default-to-firewall-2", "addressPrefix": "10.4.0.0/16", "nextHopType": "VnetLocal"}])),
]  # fmt: skip
