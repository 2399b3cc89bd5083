"""Cross-field rules, stated once: the CEL the API server runs at `kubectl apply`, the same check in
Python for the models, and the message users read in both places.

A rule is attached to one model (its scope); `self` in the CEL expression is that object. Rules
with `old_self` set are transition rules: only the API server can check them (it has the old object).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from secureml_operator.api.duration import parse_duration

# Usable addresses of an IPv4 subnet by prefix length (Azure reserves 5 in every subnet), /8 to /29.
MIN_PREFIX, MAX_PREFIX = 8, 29
AZURE_RESERVED_ADDRESSES = 5
CAPACITY_BY_PREFIX = [2 ** (32 - prefix) - AZURE_RESERVED_ADDRESSES for prefix in range(MIN_PREFIX, MAX_PREFIX + 1)]


@dataclass(frozen=True)
class Rule:
    id: str
    scope: str  # the model class the rule is attached to
    cel: str | None  # None: the structural schema already enforces it on the server
    message: str
    check: Callable[[Any], bool] | None = None  # Python twin; None for transition rules
    transition: bool = False

    def x_kubernetes_validation(self) -> dict[str, str]:
        assert self.cel is not None
        return {"rule": self.cel, "message": self.message}


def is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


def overlaps(left: str, right: str) -> bool:
    return ipaddress.ip_network(left, strict=False).overlaps(ipaddress.ip_network(right, strict=False))


def contains(outer: str, inner: str) -> bool:
    inner_net, outer_net = (
        ipaddress.ip_network(inner, strict=False),
        ipaddress.ip_network(outer, strict=False),
    )
    return inner_net.version == outer_net.version and inner_net.subnet_of(outer_net)  # type: ignore[arg-type]


def usable_addresses(prefix: str) -> int:
    """Addresses a subnet has for NICs: Azure reserves 5 in every subnet."""
    return (1 << (32 - ipaddress.ip_network(prefix, strict=False).prefixlen)) - AZURE_RESERVED_ADDRESSES


def subnet_fits(prefix: str, needed: int) -> bool:
    length = ipaddress.ip_network(prefix, strict=False).prefixlen
    return MIN_PREFIX <= length <= MAX_PREFIX and needed <= usable_addresses(prefix)


def _seconds(duration: str) -> float:
    return parse_duration(duration).total_seconds() if duration else 0


def _named_subnets(network: Any) -> list[tuple[str, str]]:
    return [(role, subnet.address_prefix) for role, subnet in network.subnets.roles()]


def _subnets_disjoint(network: Any) -> bool:
    prefixes = [prefix for _, prefix in _named_subnets(network) if is_cidr(prefix)]
    return not any(overlaps(a, b) for i, a in enumerate(prefixes) for b in prefixes[i + 1 :])


def _subnets_inside(network: Any) -> bool:
    space = [prefix for prefix in network.virtual_network.address_space if is_cidr(prefix)]
    if not space:
        return True
    return all(
        any(contains(outer, prefix) for outer in space) for _, prefix in _named_subnets(network) if is_cidr(prefix)
    )


SUBNET_ROLES = ("training", "scoring", "privateEndpoints")


def _prefix(role: str) -> str:
    return f"self.subnets.{role}.addressPrefix"


def _disjoint_cel(a: str, b: str) -> str:
    pa, pb = _prefix(a), _prefix(b)
    return (
        f"(!has(self.subnets.{a}) || !has(self.subnets.{b}) || !isCIDR({pa}) || !isCIDR({pb}) || "
        f"!(cidr({pa}).containsCIDR({pb}) || cidr({pb}).containsCIDR({pa})))"
    )


def _inside_cel(role: str) -> str:
    prefix = _prefix(role)
    return (
        f"(!has(self.subnets.{role}) || !isCIDR({prefix}) || "
        f"self.virtualNetwork.addressSpace.exists(s, isCIDR(s) && cidr(s).containsCIDR({prefix})))"
    )


_DISJOINT_CEL = " && ".join(_disjoint_cel(a, b) for i, a in enumerate(SUBNET_ROLES) for b in SUBNET_ROLES[i + 1 :])
_INSIDE_CEL = (
    "size(self.virtualNetwork.addressSpace) == 0 || (" + " && ".join(_inside_cel(role) for role in SUBNET_ROLES) + ")"
)

RULES: tuple[Rule, ...] = (
    Rule(
        "outbound-exactly-one",
        "Outbound",
        "has(self.managedNetwork) != has(self.customerNetwork)",
        "set exactly one of spec.outbound.managedNetwork or spec.outbound.customerNetwork",
        lambda o: (o.managed_network is None) != (o.customer_network is None),
    ),
    Rule(
        "outbound-no-switch",
        "Outbound",
        "has(self.managedNetwork) == has(oldSelf.managedNetwork)",
        "a workspace cannot move between a managed network and a customer VNet: create a new SecureMLWorkspace",
        transition=True,
    ),
    Rule(
        "isolation-no-downgrade",
        "ManagedNetwork",
        "oldSelf.isolationMode != 'AllowOnlyApprovedOutbound' || self.isolationMode == 'AllowOnlyApprovedOutbound'",
        "Azure cannot relax isolationMode from AllowOnlyApprovedOutbound back to AllowInternetOutbound",
        transition=True,
    ),
    Rule(
        "fqdn-needs-approved-outbound",
        "ManagedNetwork",
        "self.isolationMode == 'AllowOnlyApprovedOutbound' || "
        "(self.rules.all(r, !has(r.fqdn) && !has(r.serviceTag)) && size(self.presets) == 0)",
        "FQDN rules, service tag rules and presets need isolationMode AllowOnlyApprovedOutbound",
        lambda m: (
            m.isolation_mode == "AllowOnlyApprovedOutbound"
            or (all(r.fqdn is None and r.service_tag is None for r in m.rules) and not m.presets)
        ),
    ),
    Rule(
        "firewall-sku-needs-approved-outbound",
        "ManagedNetwork",
        "!has(self.firewallSku) || self.isolationMode == 'AllowOnlyApprovedOutbound'",
        "firewallSku applies only with isolationMode AllowOnlyApprovedOutbound",
        lambda m: m.firewall_sku is None or m.isolation_mode == "AllowOnlyApprovedOutbound",
    ),
    Rule(
        "rule-names-unique",
        "ManagedNetwork",
        None,  # the API server enforces it through the list-map key `name` ("Duplicate value")
        "outbound rule names must be unique",
        lambda m: len({r.name for r in m.rules}) == len(m.rules),
    ),
    Rule(
        "rule-exactly-one-destination",
        "OutboundRule",
        "[has(self.fqdn), has(self.privateEndpoint), has(self.serviceTag)].filter(x, x).size() == 1",
        "an outbound rule needs exactly one of fqdn, privateEndpoint or serviceTag",
        lambda r: sum(x is not None for x in (r.fqdn, r.private_endpoint, r.service_tag)) == 1,
    ),
    Rule(
        "fqdn-ports",
        "OutboundRule",
        "!has(self.fqdn) || !has(self.ports) || self.ports.all(p, p == 80 || p == 443)",
        "FQDN rules allow only ports 80 and 443 (Azure's managed firewall filters HTTP/S by name)",
        lambda r: r.fqdn is None or all(port in (80, 443) for port in r.ports or ()),
    ),
    Rule(
        "private-access-needs-endpoint",
        "Inbound",
        "self.publicNetworkAccess != 'Disabled' || has(self.privateEndpoint)",
        "publicNetworkAccess Disabled needs spec.inbound.privateEndpoint, or nobody can reach the workspace",
        lambda i: i.public_network_access != "Disabled" or i.private_endpoint is not None,
    ),
    Rule(
        "ip-ranges-need-selected-ips",
        "Inbound",
        "self.publicNetworkAccess == 'EnabledFromSelectedIPs' || size(self.allowedIpRanges) == 0",
        "allowedIpRanges apply only with publicNetworkAccess EnabledFromSelectedIPs",
        lambda i: i.public_network_access == "EnabledFromSelectedIPs" or not i.allowed_ip_ranges,
    ),
    Rule(
        "selected-ips-need-ranges",
        "Inbound",
        "self.publicNetworkAccess != 'EnabledFromSelectedIPs' || size(self.allowedIpRanges) > 0",
        "publicNetworkAccess EnabledFromSelectedIPs needs at least one entry in allowedIpRanges",
        lambda i: i.public_network_access != "EnabledFromSelectedIPs" or bool(i.allowed_ip_ranges),
    ),
    Rule(
        "ip-ranges-are-cidrs",
        "Inbound",
        "self.allowedIpRanges.all(r, isCIDR(r) || isIP(r))",
        "every allowedIpRanges entry must be an IP address or CIDR range, e.g. 203.0.113.0/24",
        lambda i: all(is_cidr(r) or is_cidr(f"{r}/32") for r in i.allowed_ip_ranges),
    ),
    Rule(
        "endpoint-exactly-one-subnet",
        "PrivateEndpoint",
        "has(self.subnetId) != has(self.subnetName)",
        "set exactly one of privateEndpoint.subnetId or privateEndpoint.subnetName",
        lambda p: (p.subnet_id is None) != (p.subnet_name is None),
    ),
    Rule(
        "subnet-name-needs-customer-network",
        "Spec",
        "!has(self.inbound.privateEndpoint) || !has(self.inbound.privateEndpoint.subnetName) || "
        "(has(self.outbound.customerNetwork) && has(self.outbound.customerNetwork.subnets.privateEndpoints))",
        "privateEndpoint.subnetName names the privateEndpoints subnet of outbound.customerNetwork: declare that "
        "subnet, or use subnetId",
        lambda s: (
            s.inbound.private_endpoint is None
            or s.inbound.private_endpoint.subnet_name is None
            or (s.outbound.customer_network is not None and s.outbound.customer_network.subnets.private_endpoints)
        ),
    ),
    Rule(
        "workspace-name-immutable",
        "Spec",
        "self.workspace.name == oldSelf.workspace.name && "
        "self.azure.subscriptionId == oldSelf.azure.subscriptionId"
        " && self.azure.resourceGroup == oldSelf.azure.resourceGroup",
        "workspace.name, azure.subscriptionId and azure.resourceGroup cannot change: that would orphan the "
        "workspace; create a new SecureMLWorkspace instead",
        transition=True,
    ),
    Rule(
        "vnet-exactly-one",
        "VirtualNetwork",
        "has(self.name) != has(self.existingId)",
        "set exactly one of virtualNetwork.name (created) or virtualNetwork.existingId (adopted)",
        lambda v: (v.name is None) != (v.existing_id is None),
    ),
    Rule(
        "vnet-created-needs-space",
        "VirtualNetwork",
        "!has(self.name) || size(self.addressSpace) > 0",
        "a created virtualNetwork needs addressSpace, e.g. [10.0.0.0/16]",
        lambda v: v.name is None or bool(v.address_space),
    ),
    Rule(
        "address-space-cidrs",
        "VirtualNetwork",
        "self.addressSpace.all(s, isCIDR(s) && cidr(s).ip().family() == 4)",
        "every addressSpace entry must be an IPv4 CIDR range, e.g. 10.0.0.0/16",
        lambda v: all(is_cidr(s) and ipaddress.ip_network(s, strict=False).version == 4 for s in v.address_space),
    ),
    Rule(
        "subnet-prefix-cidr",
        "Subnet",
        f"isCIDR(self.addressPrefix) && cidr(self.addressPrefix).ip().family() == 4 && "
        f"cidr(self.addressPrefix).prefixLength() >= {MIN_PREFIX} && "
        f"cidr(self.addressPrefix).prefixLength() <= {MAX_PREFIX}",
        f"addressPrefix must be an IPv4 CIDR from /{MIN_PREFIX} to /{MAX_PREFIX}, e.g. 10.0.40.0/24",
        lambda s: (
            is_cidr(s.address_prefix)
            and ipaddress.ip_network(s.address_prefix, strict=False).version == 4
            and MIN_PREFIX <= ipaddress.ip_network(s.address_prefix, strict=False).prefixlen <= MAX_PREFIX
        ),
    ),
    Rule(
        "subnet-capacity",
        "Subnet",
        f"!isCIDR(self.addressPrefix) || cidr(self.addressPrefix).prefixLength() < {MIN_PREFIX} || "
        f"cidr(self.addressPrefix).prefixLength() > {MAX_PREFIX} || "
        f"self.expectedAddresses <= "
        f"{CAPACITY_BY_PREFIX}[cidr(self.addressPrefix).prefixLength() - {MIN_PREFIX}]",
        "the subnet is too small for expectedAddresses (Azure reserves 5 addresses per subnet): "
        "use a shorter prefix or lower expectedAddresses",
        lambda s: (
            not is_cidr(s.address_prefix)
            or subnet_fits(s.address_prefix, s.expected_addresses)
            or not MIN_PREFIX <= ipaddress.ip_network(s.address_prefix, strict=False).prefixlen <= MAX_PREFIX
        ),
    ),
    Rule(
        "subnets-disjoint",
        "CustomerNetwork",
        _DISJOINT_CEL,
        "subnets training, scoring and privateEndpoints must not overlap",
        _subnets_disjoint,
    ),
    Rule(
        "subnets-inside-space",
        "CustomerNetwork",
        _INSIDE_CEL,
        "every subnet must lie inside virtualNetwork.addressSpace",
        _subnets_inside,
    ),
    Rule(
        "egress-needed",
        "CustomerNetwork",
        "self.computePublicIp || !has(self.egress.none)",
        "compute without a public IP needs a way out: egress natGateway or firewall (egress none needs "
        "computePublicIp: true)",
        lambda n: n.compute_public_ip or n.egress.none is None,
    ),
    Rule(
        "egress-exactly-one",
        "Egress",
        "[has(self.natGateway), has(self.firewall), has(self.none)].filter(x, x).size() == 1",
        "set exactly one of egress.natGateway, egress.firewall or egress.none",
        lambda e: sum(x is not None for x in (e.nat_gateway, e.firewall, e.none)) == 1,
    ),
    Rule(
        "drift-interval-minimum",
        "Drift",
        "!has(self.interval) || duration(self.interval) >= duration('10s')",
        "drift.interval must be at least 10s, e.g. 60s",
        lambda d: d.interval is None or _seconds(d.interval) >= 10,
    ),
    Rule(
        "firewall-ip",
        "Firewall",
        "!has(self.privateIpAddress) || (isIP(self.privateIpAddress) && ip(self.privateIpAddress).family() == 4)",
        "egress.firewall.privateIpAddress must be the firewall's private IPv4 address, e.g. 10.1.0.4",
        lambda f: f.private_ip_address is None or is_cidr(f"{f.private_ip_address}/32"),
    ),
    Rule(
        "firewall-named",
        "Firewall",
        "has(self.id) != has(self.privateIpAddress)",
        "set exactly one of egress.firewall.id (an Azure Firewall) or egress.firewall.privateIpAddress",
        lambda f: (f.id is None) != (f.private_ip_address is None),
    ),
    Rule(
        "firewall-id-type",
        "Firewall",
        "!has(self.id) || self.id.matches('(?i)/providers/Microsoft.Network/azureFirewalls/[^/]+$')",
        "egress.firewall.id must be the id of a Microsoft.Network/azureFirewalls resource",
        lambda f: f.id is None or bool(re.search(r"(?i)/providers/Microsoft.Network/azureFirewalls/[^/]+$", f.id)),
    ),
)


def rules_for(scope: str) -> list[Rule]:
    return [rule for rule in RULES if rule.scope == scope]


def cel_rules_for(scope: str) -> list[dict[str, str]]:
    return [rule.x_kubernetes_validation() for rule in rules_for(scope) if rule.cel is not None]
