"""Cross-field rules, stated once: the CEL the API server runs at `kubectl apply`, the same check in
Python for the models, and the message users read in both places.

A rule is attached to one model (its scope); `self` in the CEL expression is that object. Rules
with `old_self` set are transition rules: only the API server can check them (it has the old object).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic.alias_generators import to_snake

from secureml_operator.api.duration import parse_duration
from secureml_operator.api.presets import preset_rule_names
from secureml_operator.desired.azureml_network import derived_nsg_rule_names, derived_route_names

# Usable addresses of an IPv4 subnet by prefix length (Azure reserves 5 in every subnet), /8 to /29.
MIN_PREFIX, MAX_PREFIX = 8, 29
AZURE_RESERVED_ADDRESSES = 5
CAPACITY_BY_PREFIX = [2 ** (32 - prefix) - AZURE_RESERVED_ADDRESSES for prefix in range(MIN_PREFIX, MAX_PREFIX + 1)]

IPV6_UNSUPPORTED = "IPv6 is not supported yet"
# Where a next hop may be: RFC 1918 and RFC 6598's shared address space, which Azure accepts in a VNet.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
PRIVATE_RANGES_TEXT = ", ".join(PRIVATE_RANGES[:-1]) + f" or {PRIVATE_RANGES[-1]}"
SERVICE_TAG = "^[A-Za-z][A-Za-z0-9.]{1,79}$"
PORT_RANGE = "^[0-9]{1,5}(-[0-9]{1,5})?$"  # 443 or 8000-8080; the numbers are checked apart
MAX_PORT = 65535
WILDCARD_FQDN = "^[*][.][^.]+[.][^.]+"  # *.example.com: two labels at least below the wildcard
# Derived names that embed the region are reserved for every region: this location stands for any.
ANY_REGION = "anyregion"


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


def ipv4_address(text: str) -> ipaddress.IPv4Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address if isinstance(address, ipaddress.IPv4Address) else None


def is_ipv4_cidr(text: str) -> bool:
    return is_cidr(text) and ipaddress.ip_network(text, strict=False).version == 4


def is_private_ipv4(text: str) -> bool:
    address = ipv4_address(text)
    return address is not None and any(address in ipaddress.ip_network(prefix) for prefix in PRIVATE_RANGES)


def is_address_or_tag(text: str) -> bool:
    """An NSG rule's address prefix: *, an IPv4 address or CIDR range, or a service tag."""
    return text == "*" or bool(re.fullmatch(SERVICE_TAG, text)) or ipv4_address(text) is not None or is_ipv4_cidr(text)


def is_port_range(text: str) -> bool:
    """443 or 8000-8080: ports 1-65535, the low end first."""
    if not re.fullmatch(PORT_RANGE, text):
        return False
    low, _, high = text.partition("-")
    return 1 <= int(low) <= int(high or low) <= MAX_PORT


def reserved_names_pattern(names: Iterable[str]) -> str:
    """A regex (RE2 for CEL, and Python's) matching exactly these names, ignoring case as ARM does, any
    region standing where ANY_REGION is; the names hold only letters, digits and hyphens."""
    alternatives = sorted({name.lower().replace(ANY_REGION, "[a-z0-9]+") for name in names})
    return "(?i)^(" + "|".join(alternatives) + ")$"


def display_names(names: Iterable[str]) -> list[str]:
    """Reserved names as users read them: <Region> where any region goes."""
    return [name.replace(ANY_REGION, "<Region>") for name in names]


RESERVED_NSG_RULE_NAMES = derived_nsg_rule_names(ANY_REGION)
RESERVED_ROUTE_NAMES = derived_route_names(ANY_REGION)
RESERVED_OUTBOUND_RULE_NAMES = preset_rule_names()
RESERVED_NSG_RULE = reserved_names_pattern(RESERVED_NSG_RULE_NAMES)
RESERVED_ROUTE = reserved_names_pattern(RESERVED_ROUTE_NAMES)
RESERVED_OUTBOUND_RULE = reserved_names_pattern(RESERVED_OUTBOUND_RULE_NAMES)


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


def _ipv4_cel(value: str) -> str:
    return f"(isIP({value}) && ip({value}).family() == 4)"


def _ipv4_cidr_cel(value: str) -> str:
    return f"(isCIDR({value}) && cidr({value}).ip().family() == 4)"


def _private_ipv4_cel(value: str) -> str:
    inside = " || ".join(f"cidr('{prefix}').containsIP({value})" for prefix in PRIVATE_RANGES)
    return f"({_ipv4_cel(value)} && ({inside}))"


def _address_or_tag_cel(value: str) -> str:
    return f"({value} == '*' || {value}.matches('{SERVICE_TAG}') || {_ipv4_cel(value)} || {_ipv4_cidr_cel(value)})"


def _port_range_cel(value: str) -> str:
    low, high = f"int({value}.split('-')[0])", f"int({value}.substring({value}.lastIndexOf('-') + 1))"
    return f"({value}.matches('{PORT_RANGE}') && {low} >= 1 && {high} <= {MAX_PORT} && {low} <= {high})"


def _address_or_tag_rule(field: str, attribute: str) -> Rule:
    return Rule(
        f"nsg-rule-{field.removesuffix('AddressPrefix')}-prefix",
        "SecurityRule",
        _address_or_tag_cel(f"self.{field}"),
        f"extraRules[].{field} must be *, an IPv4 address or CIDR range, or a service tag, e.g. 10.2.0.0/16 or "
        f"AzureMonitor ({IPV6_UNSUPPORTED})",
        lambda rule: is_address_or_tag(getattr(rule, attribute)),
    )


def _id_type_rule(rule_id: str, scope: str, path: str, arm_type: str) -> Rule:
    """An optional ARM id field (the last segment of `path`) that must name a resource of `arm_type`."""
    field = path.rsplit(".", 1)[-1]
    attribute = to_snake(field)
    pattern = f"(?i)/providers/{arm_type}/[^/]+$"
    return Rule(
        rule_id,
        scope,
        f"!has(self.{field}) || self.{field}.matches('{pattern}')",
        f"{path} must be the id of a {arm_type} resource",
        lambda model: getattr(model, attribute) is None or bool(re.search(pattern, getattr(model, attribute))),
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
        "size(self.ports) == 0",
        "managedNetwork.rules[].ports cannot be set: Azure's FQDN rules have no port setting and always allow "
        "ports 80 and 443 only (a serviceTag rule takes serviceTag.portRanges); remove ports",
        lambda r: not r.ports,
    ),
    Rule(
        "fqdn-wildcard-depth",
        "OutboundRule",
        f"!has(self.fqdn) || !self.fqdn.startsWith('*') || self.fqdn.matches('{WILDCARD_FQDN}')",
        "a wildcard managedNetwork.rules[].fqdn must keep at least two labels below the wildcard, e.g. "
        "*.blob.core.windows.net, not *.com",
        lambda r: r.fqdn is None or not r.fqdn.startswith("*") or bool(re.search(WILDCARD_FQDN, r.fqdn)),
    ),
    Rule(
        "outbound-rule-name-reserved",
        "OutboundRule",
        f"!self.name.matches('{RESERVED_OUTBOUND_RULE}')",
        "managedNetwork.rules[].name is a name the operator gives a preset's rules (<preset>-<host>, e.g. "
        "pythonpackag-pypi-org): choose another name",
        lambda r: not re.fullmatch(RESERVED_OUTBOUND_RULE, r.name),
    ),
    Rule(
        "service-tag-port-ranges",
        "ServiceTagDestination",
        f"self.portRanges == '*' || self.portRanges.split(',').all(p, {_port_range_cel('p')})",
        f"serviceTag.portRanges must be * or ports 1-{MAX_PORT} and ranges low-high, comma-separated, e.g. "
        "443 or 80,443 or 8000-8080",
        lambda t: t.port_ranges == "*" or all(is_port_range(part) for part in t.port_ranges.split(",")),
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
        f"self.allowedIpRanges.all(r, {_ipv4_cidr_cel('r')} || {_ipv4_cel('r')})",
        f"every allowedIpRanges entry must be an IPv4 address or CIDR range, e.g. 203.0.113.0/24 ({IPV6_UNSUPPORTED})",
        lambda i: all(is_ipv4_cidr(r) or ipv4_address(r) is not None for r in i.allowed_ip_ranges),
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
        f"self.addressSpace.all(s, {_ipv4_cidr_cel('s')})",
        f"every addressSpace entry must be an IPv4 CIDR range, e.g. 10.0.0.0/16 ({IPV6_UNSUPPORTED})",
        lambda v: all(is_ipv4_cidr(s) for s in v.address_space),
    ),
    Rule(
        "subnet-prefix-cidr",
        "Subnet",
        f"isCIDR(self.addressPrefix) && cidr(self.addressPrefix).ip().family() == 4 && "
        f"cidr(self.addressPrefix).prefixLength() >= {MIN_PREFIX} && "
        f"cidr(self.addressPrefix).prefixLength() <= {MAX_PREFIX}",
        f"addressPrefix must be an IPv4 CIDR from /{MIN_PREFIX} to /{MAX_PREFIX}, e.g. 10.0.40.0/24 "
        f"({IPV6_UNSUPPORTED})",
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
        f"!has(self.privateIpAddress) || {_private_ipv4_cel('self.privateIpAddress')}",
        f"egress.firewall.privateIpAddress must be the firewall's private IPv4 address, in {PRIVATE_RANGES_TEXT}, "
        f"e.g. 10.1.0.4 ({IPV6_UNSUPPORTED})",
        lambda f: f.private_ip_address is None or is_private_ipv4(f.private_ip_address),
    ),
    Rule(
        "firewall-named",
        "Firewall",
        "has(self.id) != has(self.privateIpAddress)",
        "set exactly one of egress.firewall.id (an Azure Firewall) or egress.firewall.privateIpAddress",
        lambda f: (f.id is None) != (f.private_ip_address is None),
    ),
    Rule(
        "firewall-peer-from-hub",
        "Firewall",
        "!self.peerFromHub || (self.peering && has(self.hubVirtualNetworkId))",
        "egress.firewall.peerFromHub needs peering: true and a hubVirtualNetworkId",
        lambda f: not f.peer_from_hub or (f.peering and f.hub_virtual_network_id is not None),
    ),
    _id_type_rule("firewall-id-type", "Firewall", "egress.firewall.id", "Microsoft.Network/azureFirewalls"),
    _id_type_rule(
        "firewall-policy-id-type", "Firewall", "egress.firewall.policyId", "Microsoft.Network/firewallPolicies"
    ),
    Rule(
        "nsg-rule-name-reserved",
        "SecurityRule",
        f"!self.name.matches('{RESERVED_NSG_RULE}')",
        f"extraRules[].name must differ (ignoring case) from the NSG rules the operator derives: "
        f"{', '.join(display_names(RESERVED_NSG_RULE_NAMES))}",
        lambda r: not re.fullmatch(RESERVED_NSG_RULE, r.name),
    ),
    _address_or_tag_rule("sourceAddressPrefix", "source_address_prefix"),
    _address_or_tag_rule("destinationAddressPrefix", "destination_address_prefix"),
    Rule(
        "nsg-rule-ports",
        "SecurityRule",
        f"self.destinationPortRanges == ['*'] || self.destinationPortRanges.all(p, {_port_range_cel('p')})",
        f"extraRules[].destinationPortRanges must be [*] or ports 1-{MAX_PORT} and ranges low-high, e.g. "
        "[443, 8000-8080]",
        lambda r: r.destination_port_ranges == ["*"] or all(is_port_range(p) for p in r.destination_port_ranges),
    ),
    Rule(
        "route-name-reserved",
        "Route",
        f"!self.name.matches('{RESERVED_ROUTE}')",
        f"extraRoutes[].name must differ (ignoring case) from the routes the operator derives: "
        f"{', '.join(display_names(RESERVED_ROUTE_NAMES))}",
        lambda r: not re.fullmatch(RESERVED_ROUTE, r.name),
    ),
    Rule(
        "route-address-prefix",
        "Route",
        f"{_ipv4_cidr_cel('self.addressPrefix')} || self.addressPrefix.matches('{SERVICE_TAG}')",
        f"extraRoutes[].addressPrefix must be an IPv4 CIDR range or a service tag, e.g. 10.2.0.0/16 or "
        f"AzureMonitor ({IPV6_UNSUPPORTED})",
        lambda r: is_ipv4_cidr(r.address_prefix) or bool(re.fullmatch(SERVICE_TAG, r.address_prefix)),
    ),
    Rule(
        "route-next-hop-ip",
        "Route",
        "(self.nextHopType == 'VirtualAppliance') == has(self.nextHopIpAddress)",
        "extraRoutes[].nextHopIpAddress is required with nextHopType VirtualAppliance and refused with any "
        "other next hop type",
        lambda r: (r.next_hop_type == "VirtualAppliance") == (r.next_hop_ip_address is not None),
    ),
    Rule(
        "route-next-hop-private",
        "Route",
        f"!has(self.nextHopIpAddress) || {_private_ipv4_cel('self.nextHopIpAddress')}",
        f"extraRoutes[].nextHopIpAddress must be the appliance's private IPv4 address, in {PRIVATE_RANGES_TEXT}, "
        f"e.g. 10.1.0.4 ({IPV6_UNSUPPORTED})",
        lambda r: r.next_hop_ip_address is None or is_private_ipv4(r.next_hop_ip_address),
    ),
)


@functools.cache
def rules_for(scope: str) -> tuple[Rule, ...]:
    """A model's rules; cached, as every instance a spec parses into asks for its model's."""
    return tuple(rule for rule in RULES if rule.scope == scope)


def cel_rules_for(scope: str) -> list[dict[str, str]]:
    return [rule.x_kubernetes_validation() for rule in rules_for(scope) if rule.cel is not None]
