"""Rules the resource providers enforce on a body that deserialized fine: NSG rule priorities,
address prefixes and port ranges; routes and their next hop; service endpoint policy definitions;
Azure ML outbound rule destinations; Azure Firewall policy rule collection groups. Each type's
behaviour (armemu/kinds/) says which of them its bodies (and the children it lists inline) must pass.

Each refusal carries the code and message Azure answers with where a public report shows it;
docs/emulator.md lists the ones whose exact answer is not verified.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from typing import Any

from armemu.arm import ArmError, get_path, type_of
from armemu.state import Json, Resource, State

PRIORITIES = range(100, 4097)
TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)*$")  # a service tag: Storage, Storage.westeurope
FQDN = re.compile(r"^(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")  # a host name, no scheme, port or path
SUBSCRIPTION_SCOPE = re.compile(r"^/subscriptions/[0-9A-Fa-f-]{36}(/resourceGroups/[^/]+)?$")
STORAGE_ACCOUNT = re.compile(
    r"^/subscriptions/[0-9A-Fa-f-]{36}/resourceGroups/[^/]+/providers/Microsoft\.Storage/storageAccounts/[^/]+$",
    re.IGNORECASE,
)
SERVICE_ALIAS = re.compile(r"^/services/Azure(/[A-Za-z]+)?$")
POLICY_SERVICES = {"microsoft.storage": "Microsoft.Storage", "global": "Global"}


def check(state: State, resource_id: str, body: Json) -> None:
    """Raise the provider's 400 for a PUT (or merged PATCH) body that breaks one of its rules."""
    from armemu import kinds  # the behaviours build on these rules

    kinds.behaviour(type_of(resource_id)).check_body(state, resource_id, body)


def inline_children(parent_id: str, body: Json, prop: str) -> list[tuple[str, Json]]:
    """Children listed inline in a parent's PUT, with the ids they will get."""
    return [(f"{parent_id}/{prop}/{child.get('name')}", child) for child in get_path(body, f"properties.{prop}") or []]


# network security groups ------------------------------------------------------------------------


def check_security_rules(rules: list[tuple[str, Json]], others: list[tuple[str, Json]]) -> None:
    """Each rule well formed; no two rules of one NSG with the same priority and direction."""
    seen: dict[tuple[int, str], str] = {
        (priority, str(get_path(body, "properties.direction")).lower()): rule_id
        for rule_id, body in others
        if isinstance(priority := get_path(body, "properties.priority"), int)
    }
    for rule_id, body in rules:
        properties = body.get("properties") or {}
        priority = properties.get("priority")
        if not isinstance(priority, int) or priority not in PRIORITIES:
            raise ArmError(
                400,
                "SecurityRuleInvalidPriority",
                f"Security rule has invalid Priority. Value provided: {priority} Allowed range 100-4096.",
            )
        for port in _values(properties, "sourcePortRange", "destinationPortRange"):
            if not _port_range(port):
                raise ArmError(
                    400,
                    "SecurityRuleInvalidPortRange",
                    f"Security rule has invalid Port range. Value provided: {port}. Value should be an integer OR "
                    "integer range with '-' delimiter. Valid range 0-65535.",
                )
        for side in ("source", "destination"):
            _check_rule_prefixes(rule_id, properties, side)
        key = (priority, str(properties.get("direction")).lower())
        if key in seen:
            raise ArmError(
                400,
                "SecurityRuleConflict",
                f"Security rule {_name(seen[key])} conflicts with rule {_name(rule_id)}. Rules cannot have the same "
                "Priority and Direction. To learn more, see aka.ms/nsgrules.",
            )
        seen[key] = rule_id


def _check_rule_prefixes(rule_id: str, properties: Json, side: str) -> None:
    """`<side>AddressPrefix` is `*`, a service tag, an address or a CIDR; the plural list takes only
    addresses and CIDRs."""
    single = properties.get(f"{side}AddressPrefix")
    if single is not None and single != "*" and not TAG.match(single) and not _cidr(single):
        raise ArmError(
            400,
            "SecurityRuleInvalidAddressPrefix",
            f"Security rule {rule_id} has invalid Address prefix. Value provided: {single}",
        )
    for prefix in properties.get(f"{side}AddressPrefixes") or []:
        if _cidr(prefix):
            continue
        if prefix == "*" or TAG.match(prefix):
            raise ArmError(
                400,
                "SecurityRuleParameterContainsUnsupportedValue",
                f"Security rule parameter {side.capitalize()}AddressPrefix for rule with Id {rule_id} cannot specify "
                f"existing VIRTUALNETWORK, INTERNET, AZURELOADBALANCER, '*' or system tags. Unsupported value used: "
                f"{prefix}.",
            )
        raise ArmError(
            400,
            "SecurityRuleInvalidAddressPrefix",
            f"Security rule {rule_id} has invalid Address prefix. Value provided: {prefix}",
        )


def _values(properties: Json, *singles: str) -> Iterable[Any]:
    """The values of each single property and of its plural list (`sourcePortRange(s)`)."""
    for single in singles:
        if properties.get(single) is not None:
            yield properties[single]
        yield from properties.get(f"{single}s") or []


def _port_range(value: Any) -> bool:
    if value == "*":
        return True
    parts = str(value).split("-")
    if len(parts) > 2 or not all(part.isdigit() and int(part) <= 65535 for part in parts):
        return False
    return int(parts[0]) <= int(parts[-1])


def _cidr(value: Any) -> bool:
    """An address or a prefix without host bits (Azure refuses 10.0.0.5/24)."""
    try:
        ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        return False
    return True


def _name(resource_id: str) -> str:
    return resource_id.rsplit("/", 1)[-1]


# routes -----------------------------------------------------------------------------------------


def check_route(route_id: str, body: Json) -> None:
    """An address prefix (CIDR or service tag); VirtualAppliance needs a next-hop IP, no other type may
    have one."""
    properties = body.get("properties") or {}
    prefix = properties.get("addressPrefix")
    if not (_cidr(prefix) or (isinstance(prefix, str) and TAG.match(prefix))):
        raise ArmError(
            400,
            "InvalidRouteAddressPrefix",
            f"Route {route_id} has an invalid address prefix. Value provided: {prefix}",
        )
    hop_type = str(properties.get("nextHopType"))
    hop_ip = properties.get("nextHopIpAddress")
    if hop_type.lower() == "virtualappliance" and not hop_ip:
        raise ArmError(
            400,
            "NextHopIpAddressRequired",
            "NextHopIpAddress cannot be Null or Empty in route when NextHopType is VirtualAppliance.",
        )
    if hop_type.lower() != "virtualappliance" and hop_ip:
        raise ArmError(
            400,
            "NextHopIpAddressNotAllowed",
            f"Route {route_id} has next hop IP address {hop_ip}, which is allowed only when the next hop type is "
            f"VirtualAppliance; the next hop type is {hop_type}.",
        )
    if hop_ip and not _address(hop_ip):
        raise ArmError(400, "InvalidNextHopIpAddress", f"Route {route_id} has an invalid next hop IP address {hop_ip}.")


def _address(value: Any) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


# service endpoint policies ----------------------------------------------------------------------


def check_policy_definition(definition_id: str, body: Json) -> None:
    """Service Microsoft.Storage with subscription, resource group or storage account ids, or Global
    with service aliases (/services/Azure/<service>)."""
    properties = body.get("properties") or {}
    service = POLICY_SERVICES.get(str(properties.get("service")).lower())
    if service is None:
        raise ArmError(
            400,
            "ServiceEndpointPolicyDefinitionInvalidService",
            f"Service endpoint policy definition {definition_id} has service {properties.get('service')}; the "
            "supported services are Microsoft.Storage and Global.",
        )
    resources = properties.get("serviceResources") or []
    for resource in resources:
        allowed = (
            SERVICE_ALIAS.match(str(resource))
            if service == "Global"
            else SUBSCRIPTION_SCOPE.match(str(resource)) or STORAGE_ACCOUNT.match(str(resource))
        )
        if not allowed:
            raise ArmError(
                400,
                "ServiceEndpointPolicyDefinitionInvalidServiceResource",
                f"Service endpoint policy definition {definition_id} has an invalid service resource {resource} for "
                f"service {service}.",
            )
    if not resources:
        raise ArmError(
            400,
            "ServiceEndpointPolicyDefinitionInvalidServiceResource",
            f"Service endpoint policy definition {definition_id} lists no service resources.",
        )


# Azure ML managed network outbound rules --------------------------------------------------------


def check_outbound_rule(state: State, rule_id: str, body: Json) -> None:
    """A well-formed destination for the rule's type, and none Azure already has a Required rule for."""
    properties = body.get("properties") or {}
    kind = str(properties.get("type"))
    destination = properties.get("destination")
    if kind == "FQDN" and not (isinstance(destination, str) and FQDN.match(destination)):
        raise ArmError(400, "ValidationError", f"Outbound rule {_name(rule_id)}: {destination!r} is not an FQDN.")
    if kind == "ServiceTag":
        for port in str(get_path(properties, "destination.portRanges") or "*").split(","):
            if not _port_range(port.strip()):
                raise ArmError(
                    400, "ValidationError", f"Outbound rule {_name(rule_id)}: port range {port!r} is not valid."
                )
    if kind == "PrivateEndpoint" and not get_path(properties, "destination.subresourceTarget"):
        raise ArmError(400, "ValidationError", f"Outbound rule {_name(rule_id)} names no subresourceTarget.")
    if str(properties.get("category")).lower() == "required":
        return
    workspace_id = rule_id.rsplit("/", 2)[0]
    for required in _required_rules(state, workspace_id):
        if required.key != rule_id.lower() and _destination_key(required.body) == _destination_key(body):
            raise ArmError(
                400,
                "ValidationError",
                f"Outbound rule {_name(rule_id)} duplicates the destination of the Required rule "
                f"{_name(required.id)}, which Azure manages.",
            )


def _required_rules(state: State, workspace_id: str) -> list[Resource]:
    return [
        rule
        for rule in state.children(workspace_id, "outboundRules")
        if str(get_path(rule.body, "properties.category")).lower() == "required"
    ]


def _destination_key(body: Json) -> tuple[str, ...]:
    """What a rule reaches, whatever its name: the FQDN, the service tag, or the target and sub-resource."""
    properties = body.get("properties") or {}
    destination = properties.get("destination")
    if isinstance(destination, str):
        return ("fqdn", destination.lower())
    destination = destination or {}
    if "serviceTag" in destination:
        return ("servicetag", str(destination["serviceTag"]).lower())
    target = str(destination.get("serviceResourceId", "")).lower()
    return ("privateendpoint", target, str(destination.get("subresourceTarget", "")).lower())


# Azure Firewall policy rule collection groups ---------------------------------------------------

FIREWALL_PRIORITIES = range(100, 65001)  # groups and collections: the spec's minimum and maximum
APPLICATION_PORTS = range(0, 64001)  # FirewallPolicyRuleApplicationProtocol.port
RULE_TYPES = {  # the rules a collection of each type may hold, one type per collection
    "firewallpolicyfilterrulecollection": ("applicationrule", "networkrule"),
    "firewallpolicynatrulecollection": ("natrule",),
}


class FirewallPolicyRefusal(ArmError):
    """The firewall policy provider's 400: not ARM's error object but ASP.NET's ModelState, holding the
    inner error as a JSON string (Azure/azure-cli#24493, #18932)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(400, code, message)

    def body(self) -> Json:
        inner = {"Status": "Failed", "Error": {"Code": self.code, "Message": self.message, "Target": None}}
        return {"Message": "The request is invalid.", "ModelState": {"resource": [json.dumps(inner)]}}


def check_rule_collection_group(group_id: str, body: Json, others: list[tuple[str, Json]], dns_proxy: bool) -> None:
    """A priority in range and unique in the policy; collections in range, named uniquely, each holding
    well-formed rules of its own type; FQDNs in network rules only where the policy's DNS proxy is on."""
    properties = body.get("properties") or {}
    name, priority = _name(group_id), properties.get("priority")
    if not isinstance(priority, int) or priority not in FIREWALL_PRIORITIES:
        raise FirewallPolicyRefusal(
            "FirewallPolicyRuleCollectionGroupInvalidPriority",
            f"Rule Collection Group {name} has invalid priority {priority}. Valid range is 100-65000.",
        )
    for other_id, other in others:
        if get_path(other, "properties.priority") == priority:
            raise FirewallPolicyRefusal(
                "FirewallPolicyRuleCollectionGroupPriorityConflict",
                f"Rule Collection Group {name} has the same priority {priority} as Rule Collection Group "
                f"{_name(other_id)} of the firewall policy. Priorities must be unique within a firewall policy.",
            )
    seen: set[str] = set()
    for collection in properties.get("ruleCollections") or []:
        collection_name = str(collection.get("name") or "")
        if collection_name.lower() in seen:
            raise FirewallPolicyRefusal(
                "FirewallPolicyRuleCollectionNameNotUnique",
                f"Rule Collection Group {name} has more than one Rule Collection named {collection_name}.",
            )
        seen.add(collection_name.lower())
        _check_rule_collection(name, collection_name, collection)
        for rule in collection.get("rules") or []:
            if rule.get("destinationFqdns") and str(rule.get("ruleType")).lower() == "networkrule" and not dns_proxy:
                raise FirewallPolicyRefusal(
                    "FirewallPolicyNetworkRuleFqdnsNeedDnsProxy",
                    f"Firewall Policy Network Rule {rule.get('name') or ''} uses destinationFqdns, which needs the "
                    "firewall policy's DNS proxy (dnsSettings.enableProxy).",
                )


def _check_rule_collection(group: str, name: str, collection: Json) -> None:
    priority = collection.get("priority")
    if not isinstance(priority, int) or priority not in FIREWALL_PRIORITIES:
        raise FirewallPolicyRefusal(
            "FirewallPolicyRuleCollectionInvalidPriority",
            f"Rule Collection {name} of Rule Collection Group {group} has invalid priority {priority}. Valid range "
            "is 100-65000.",
        )
    kind = str(collection.get("ruleCollectionType")).lower()
    if kind == "firewallpolicyfilterrulecollection" and not get_path(collection, "action.type"):
        raise FirewallPolicyRefusal(
            "FirewallPolicyFilterRuleCollectionActionMissing",
            f"Rule Collection {name} of Rule Collection Group {group} must have an action: Allow or Deny.",
        )
    rules = collection.get("rules") or []
    types = {str(rule.get("ruleType")).lower() for rule in rules}
    if len(types) > 1 or not types <= set(RULE_TYPES.get(kind, ())):
        raise FirewallPolicyRefusal(
            "FirewallPolicyRuleCollectionRuleTypeMismatch",
            f"Rule Collection {name} of Rule Collection Group {group} holds rules of types {sorted(types)}: a "
            f"{collection.get('ruleCollectionType')} holds rules of one of the types {list(RULE_TYPES.get(kind, ()))}.",
        )
    for rule in rules:
        check = RULE_CHECKS.get(str(rule.get("ruleType")).lower())
        if check is not None:
            check(rule)


def _check_application_rule(rule: Json) -> None:
    """Protocols (Http, Https; ports 0-64000), a source, and a destination: FQDNs (host names, no scheme,
    port or path), FQDN tags, URLs or web categories."""
    name = rule.get("name") or ""
    protocols = rule.get("protocols") or []
    if not protocols or any(protocol.get("port") not in APPLICATION_PORTS for protocol in protocols):
        raise FirewallPolicyRefusal(
            "FirewallPolicyApplicationRuleInvalidProtocols",
            f"Firewall Policy Application Rule {name} must have protocols, each with a port from 0 to 64000.",
        )
    if not any(rule.get(field) for field in ("sourceAddresses", "sourceIpGroups")):
        raise FirewallPolicyRefusal(
            "FirewallPolicyApplicationRuleSourceMissing",
            f"Firewall Policy Application Rule {name} must have one of sourceAddresses or sourceIpGroups specified.",
        )
    if not any(rule.get(field) for field in ("targetFqdns", "fqdnTags", "targetUrls", "webCategories")):
        raise FirewallPolicyRefusal(
            "FirewallPolicyApplicationRuleTargetMissing",
            f"Firewall Policy Application Rule {name} must have one of targetFqdns, fqdnTags, targetUrls or "
            "webCategories specified.",
        )
    for fqdn in rule.get("targetFqdns") or []:
        if fqdn != "*" and not FQDN.match(str(fqdn)):
            raise FirewallPolicyRefusal(
                "FirewallPolicyApplicationRuleInvalidTargetFqdn",
                f"Firewall Policy Application Rule {name} has an invalid target FQDN {fqdn}.",
            )


def _check_network_rule(rule: Json) -> None:
    """Protocols, a source and ports (Azure's answer when they are missing is known), a destination, and
    ports `*`, `n` or `n-m`."""
    name = rule.get("name") or ""
    ports = rule.get("destinationPorts") or []
    if not any(rule.get(field) for field in ("sourceAddresses", "sourceIpGroups")) or not ports:
        raise FirewallPolicyRefusal(
            "FirewallPolicyRuleIpAddressesAndPortsMustBeSpecified",
            f"Firewall Policy Rule {name} should have IP addresses and ports specified. * is used to match all.",
        )
    if not any(rule.get(field) for field in ("destinationAddresses", "destinationIpGroups", "destinationFqdns")):
        raise FirewallPolicyRefusal(
            "FirewallPolicyNetworkRuleDestinationMissing",
            f"Firewall Policy Network Rule {name} must have one of destinationAddresses, destinationIpGroups or "
            "destinationFqdns specified",
        )
    if not rule.get("ipProtocols"):
        raise FirewallPolicyRefusal(
            "FirewallPolicyNetworkRuleProtocolsMissing", f"Firewall Policy Network Rule {name} must have ipProtocols."
        )
    for fqdn in rule.get("destinationFqdns") or []:
        if "*" in str(fqdn) or not FQDN.match(str(fqdn)):  # no wildcards in network rules, by design
            raise FirewallPolicyRefusal(
                "FirewallPolicyNetworkRuleInvalidFqdn",
                f"Firewall Policy Network Rule {name} has an invalid FQDN {fqdn}.",
            )
    for port in ports:
        if not _port_range(port):
            raise FirewallPolicyRefusal(
                "FirewallPolicyNetworkRuleInvalidPort",
                f"Firewall Policy Network Rule {name} has an invalid port {port}.",
            )


RULE_CHECKS = {"applicationrule": _check_application_rule, "networkrule": _check_network_rule}  # NAT: schema only
