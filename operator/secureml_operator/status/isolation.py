"""Isolation as Azure has it: InboundIsolated and OutboundIsolated are derived from the live bodies a
walk ended with (the effective configuration), never from the spec's mode, so a hole made behind the
operator's back, or kept by the Additive policy or Detect mode, shows as False with what makes it.

- Inbound: public network access Disabled is isolated; Enabled with `networkAcls.defaultAction` Deny
  is isolated unless the IP rules together cover the whole public internet, or one is wider than
  the operator's limit (`SMLW_ALLOWLIST_WIDEST_PREFIX`, /8 by default) or is not an IPv4 range;
  anything else lets every address in.
- Outbound, managed network: only the live isolation mode AllowOnlyApprovedOutbound, once active,
  is isolated; AllowInternetOutbound (or Disabled) lets compute reach any address.
- Outbound, customer VNet: on each compute subnet, every public address must leave through the
  declared egress: to the firewall's private IP (next hop VirtualAppliance), or to the internet
  through our NAT gateway attached to the subnet. Routes are matched as Azure does (the longest
  prefix wins; Azure's system route sends 0.0.0.0/0 to the internet unless a route replaces it), so
  0.0.0.0/1 + 128.0.0.0/1 to Internet beat a 0.0.0.0/0 to the firewall. Next hops None, VnetLocal
  and VirtualNetworkGateway do not reach the internet; service-tag routes name Azure services, not
  the internet. The subnet's NSG is read by priority with Azure's default rules after the custom
  ones: any Allow from the subnet to the internet (`*`, the Internet tag, or a public range) before
  a Deny of all traffic to the whole internet leaks, and no such Deny leaves Azure's default
  AllowInternetOutBound (65001) in force.
- Hub peering: traffic reaches a hub firewall only while our side of the peering and the hub's
  side back to us are both Connected; until then the resource is not Ready (`PeeringNotConnected`).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.ids import ArmId, same_id
from secureml_operator.desired.fields import Json, get_path
from secureml_operator.desired.graph import LiveLookup
from secureml_operator.desired.nat_gateway import nat_gateway_id
from secureml_operator.desired.peering import hub_peering_ids
from secureml_operator.desired.vnet import declared_subnets, subnet_name, virtual_network_id
from secureml_operator.engine.engine import RunReport
from secureml_operator.failures import TransientFailure
from secureml_operator.status import conditions as c
from secureml_operator.status.conditions import Condition

Network = ipaddress.IPv4Network
EVERYWHERE = Network("0.0.0.0/0")
NOT_PUBLIC = tuple(
    Network(prefix)
    for prefix in (
        "0.0.0.0/8",  # this network
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # shared address space (CGNAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local
        "172.16.0.0/12",  # RFC 1918
        "192.168.0.0/16",  # RFC 1918
        "224.0.0.0/3",  # multicast and reserved
    )
)
LISTED = 5  # entries named in a message before "and N more"

ROUTE_LEAK = "RouteBypassesEgress"
NSG_LEAK = "NsgAllowsInternet"
NOT_VERIFIED = "NotVerified"


# addresses ---------------------------------------------------------------------------------------


def ipv4(text: str) -> Network | None:
    """An IPv4 address or CIDR as a network (host bits ignored, as Azure does); None for anything else."""
    try:
        return Network(text.strip(), strict=False)
    except ValueError:
        return None


def _without(networks: Iterable[Network], hole: Network) -> list[Network]:
    kept: list[Network] = []
    for network in networks:
        if network.subnet_of(hole):
            continue
        kept.extend(network.address_exclude(hole) if hole.subnet_of(network) else (network,))
    return kept


@functools.lru_cache(maxsize=256)
def public_part(network: Network) -> tuple[Network, ...]:
    """The public (internet-routable) addresses of `network`, as networks. Kept for the networks
    asked about most (0.0.0.0/0 in every route table a sweep checks): cutting the private ranges
    out of it is milliseconds each time."""
    remaining = [network]
    for hole in NOT_PUBLIC:
        remaining = _without(remaining, hole)
    return tuple(remaining)


PUBLIC = tuple(public_part(EVERYWHERE))


def covers_internet(networks: Iterable[Network]) -> bool:
    """Whether the networks together hold every public address (0.0.0.0/0, or splits like /1 + /1)."""
    merged = list(ipaddress.collapse_addresses(networks))  # maximal blocks: a covered block lies in one
    return all(any(block.subnet_of(network) for network in merged) for block in PUBLIC)


def _listed(items: Sequence[str]) -> str:
    more = len(items) - LISTED
    return ", ".join(items[:LISTED]) + (f" and {more} more" if more > 0 else "")


# inbound -----------------------------------------------------------------------------------------


def allowlist_problem(entries: Sequence[str], widest_prefix: int) -> str | None:
    """Why an IP allowlist does not isolate the workspace, naming the entries; None when it does."""
    parsed = [(entry, ipv4(entry)) for entry in entries]
    networks = [(entry, network) for entry, network in parsed if network is not None]
    alone = [entry for entry, network in networks if covers_internet([network])]
    if alone:
        return f"IP allowlist entries that cover the whole internet: {_listed(alone)}"
    if networks and covers_internet(network for _, network in networks):
        widest = [entry for entry, network in sorted(networks, key=lambda item: item[1].prefixlen)]
        return f"the IP allowlist entries together cover the whole internet: {_listed(widest)}"
    wide = [entry for entry, network in networks if network.prefixlen < widest_prefix]
    if wide:
        return f"IP allowlist entries wider than /{widest_prefix} (SMLW_ALLOWLIST_WIDEST_PREFIX): {_listed(wide)}"
    unreadable = [entry for entry, network in parsed if network is None]
    if unreadable:
        return f"IP allowlist entries that are not IPv4 addresses or ranges: {_listed(unreadable)}"
    return None


def inbound(workspace: Json | None, widest_prefix: int) -> Condition:
    """InboundIsolated from the live workspace."""
    if workspace is None:
        return Condition(c.INBOUND_ISOLATED, False, NOT_VERIFIED, "the workspace was not read in this walk")
    if str(get_path(workspace, "properties.publicNetworkAccess") or "Enabled").lower() == "disabled":
        return Condition(
            c.INBOUND_ISOLATED, True, "PublicAccessDisabled",
            "public network access is Disabled: the workspace is reached only through its private endpoint",
        )  # fmt: skip
    if str(get_path(workspace, "properties.networkAcls.defaultAction") or "Allow").lower() != "deny":
        return Condition(
            c.INBOUND_ISOLATED, False, "PublicAccessEnabled",
            "public network access is Enabled for every address (networkAcls.defaultAction is not Deny)",
        )  # fmt: skip
    entries = [str(rule.get("value", "")) for rule in get_path(workspace, "properties.networkAcls.ipRules") or []]
    problem = allowlist_problem(entries, widest_prefix)
    if problem is not None:
        return Condition(c.INBOUND_ISOLATED, False, "AllowlistTooBroad", problem)
    return Condition(
        c.INBOUND_ISOLATED, True, "SelectedIPsOnly",
        f"public network access is limited to {len(entries)} IP range(s), none wider than /{widest_prefix}",
    )  # fmt: skip


# outbound: managed network -----------------------------------------------------------------------


def managed_outbound(workspace: Json | None, provision_now: bool) -> Condition:
    """OutboundIsolated from the live workspace's managed network."""
    if workspace is None:
        return Condition(c.OUTBOUND_ISOLATED, False, NOT_VERIFIED, "the workspace was not read in this walk")
    mode = str(get_path(workspace, "properties.managedNetwork.isolationMode") or "Disabled")
    status = str(get_path(workspace, "properties.managedNetwork.status.status") or "Inactive")
    if mode == "AllowInternetOutbound":
        return Condition(
            c.OUTBOUND_ISOLATED, False, mode, "managed network isolation mode AllowInternetOutbound: compute may "
            "reach any internet address",
        )  # fmt: skip
    if mode != "AllowOnlyApprovedOutbound":
        return Condition(
            c.OUTBOUND_ISOLATED, False, "ManagedNetworkDisabled",
            f"managed network isolation mode {mode}: nothing restricts where compute goes",
        )  # fmt: skip
    if status.lower() != "active":
        return Condition(
            c.OUTBOUND_ISOLATED, False, "ManagedNetworkInactive",
            f"managed network {status} with isolation mode {mode}"
            + ("" if provision_now else "; it provisions when the first compute starts"),
        )  # fmt: skip
    return Condition(
        c.OUTBOUND_ISOLATED, True, mode, "managed network Active: compute reaches only the approved outbound rules"
    )


# outbound: customer VNet -------------------------------------------------------------------------


@dataclass(frozen=True)
class Egress:
    """The way out the spec declares: the firewall's private IP, or our NAT gateway."""

    firewall_ip: str | None = None
    nat_gateway: ArmId | None = None

    def __str__(self) -> str:
        if self.nat_gateway is not None:
            return f"through the NAT gateway {self.nat_gateway.name}"
        return f"through the firewall {self.firewall_ip or '(its private IP was not read)'}"

    def refuses(self, hop: str, address: str | None, nat_attached: str | None) -> str | None:
        """Where a next hop takes public addresses when that is not this egress; None when it is,
        or when the hop does not reach the internet (None, VnetLocal, VirtualNetworkGateway)."""
        if hop.lower() == "internet":
            ours = self.nat_gateway is not None and same_id(nat_attached, str(self.nat_gateway))
            return None if ours else f"to the internet, not {self}"
        if hop.lower() == "virtualappliance":
            ours = self.firewall_ip is not None and address == self.firewall_ip
            return None if ours else f"to the appliance {address}, not {self}"
        return None


@dataclass(frozen=True)
class Leak:
    reason: str  # ROUTE_LEAK, NSG_LEAK or NOT_VERIFIED
    text: str


def route_leaks(routes: Sequence[Json], egress: Egress, nat_attached: str | None) -> list[str]:
    """Routes (a route table's live `properties.routes`) that send some public address another way
    than `egress`, with Azure's system route 0.0.0.0/0 -> Internet unless a route replaces it."""
    table: list[tuple[str, Network, str, str | None]] = []
    for route in routes:
        properties = route.get("properties") or {}
        network = ipv4(str(properties.get("addressPrefix") or ""))  # service tags: Azure's services
        if network is not None:
            hop, address = str(properties.get("nextHopType") or ""), properties.get("nextHopIpAddress")
            table.append((f"route {route.get('name')} ({network})", network, hop, address))
    if not any(network == EVERYWHERE for _, network, _, _ in table):
        table.append((f"Azure's system route {EVERYWHERE}", EVERYWHERE, "Internet", None))
    leaks = []
    for name, network, hop, address in table:
        won = list(public_part(network))  # the public addresses this route is the longest match for
        for _, other, _, _ in table:
            if other != network and other.subnet_of(network):
                won = _without(won, other)
        refused = egress.refuses(hop, address, nat_attached) if won else None
        if refused is not None:
            leaks.append(f"{name} sends public addresses {refused}")
    return leaks


@dataclass(frozen=True)
class SecurityRule:
    name: str
    priority: int
    direction: str
    access: str
    protocol: str
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    ports: tuple[str, ...]
    default: bool = False

    @classmethod
    def parse(cls, body: Json) -> SecurityRule:
        p = body.get("properties") or {}
        asgs = ("ApplicationSecurityGroup",) if p.get("sourceApplicationSecurityGroups") else ()
        return cls(
            str(body.get("name")),
            int(p.get("priority") or 4096),
            str(p.get("direction") or ""),
            str(p.get("access") or ""),
            str(p.get("protocol") or ""),
            (*_prefixes(p, "sourceAddressPrefix", "sourceAddressPrefixes"), *asgs),
            _prefixes(p, "destinationAddressPrefix", "destinationAddressPrefixes"),
            _prefixes(p, "destinationPortRange", "destinationPortRanges"),
        )

    def __str__(self) -> str:
        kind = "Azure's default rule" if self.default else "rule"
        return (
            f"{kind} {self.name} (priority {self.priority}) allows outbound traffic to {', '.join(self.destinations)}"
        )


def _prefixes(properties: Json, single: str, several: str) -> tuple[str, ...]:
    """A rule's `xAddressPrefix` and `xAddressPrefixes` (or port range and ranges) together."""
    one = properties.get(single)
    return (*([str(one)] if one else []), *(str(item) for item in properties.get(several) or []))


def _azure_default(name: str, priority: int, access: str, source: str, destination: str) -> SecurityRule:
    return SecurityRule(name, priority, "Outbound", access, "*", (source,), (destination,), ("*",), default=True)


DEFAULT_OUTBOUND_RULES = (  # Azure's own, after every custom rule; they cannot be changed
    _azure_default("AllowVnetOutBound", 65000, "Allow", "VirtualNetwork", "VirtualNetwork"),
    _azure_default("AllowInternetOutBound", 65001, "Allow", "*", "Internet"),
    _azure_default("DenyAllOutBound", 65500, "Deny", "*", "*"),
)


def _everything(prefix: str) -> bool:
    return prefix.lower() in ("*", "internet")


def _from_subnet(sources: Sequence[str], subnet: Network | None) -> bool:
    """Whether some of the subnet's traffic matches the sources (an application security group may)."""
    for source in sources:
        network = ipv4(source)
        if _everything(source) or source.lower() in ("virtualnetwork", "applicationsecuritygroup"):
            return True
        if network is not None and (subnet is None or network.overlaps(subnet)):
            return True
    return False


def _whole_subnet(sources: Sequence[str], subnet: Network | None) -> bool:
    """Whether all of the subnet's traffic matches the sources."""
    for source in sources:
        network = ipv4(source)
        if _everything(source) or source.lower() == "virtualnetwork":
            return True
        if network is not None and subnet is not None and subnet.subnet_of(network):
            return True
    return False


def _to_internet(destinations: Sequence[str]) -> bool:
    networks = [network for network in map(ipv4, destinations) if network is not None]
    return any(map(_everything, destinations)) or any(public_part(network) for network in networks)


def _to_whole_internet(destinations: Sequence[str]) -> bool:
    networks = [network for network in map(ipv4, destinations) if network is not None]
    return any(map(_everything, destinations)) or (bool(networks) and covers_internet(networks))


def nsg_leaks(rules: Sequence[Json], subnet: Network | None) -> list[str]:
    """NSG rules (live `properties.securityRules`) that let the subnet reach the internet: every
    outbound Allow to it ahead of the first Deny of all traffic to the whole internet, Azure's
    default rules included."""
    parsed = [SecurityRule.parse(rule) for rule in rules]
    outbound = [rule for rule in [*parsed, *DEFAULT_OUTBOUND_RULES] if rule.direction.lower() == "outbound"]
    leaks = []
    for rule in sorted(outbound, key=lambda rule: rule.priority):
        if not _from_subnet(rule.sources, subnet):
            continue
        if rule.access.lower() == "allow" and _to_internet(rule.destinations):
            leaks.append(str(rule))
        elif (
            rule.access.lower() == "deny"
            and rule.protocol == "*"
            and any(port in ("*", "0-65535") for port in rule.ports)
            and _whole_subnet(rule.sources, subnet)
            and _to_whole_internet(rule.destinations)
        ):
            break
    return leaks


def _attached(subnet: Json, kind: str, live: LiveLookup) -> tuple[str | None, Json | None]:
    """The id of the route table or NSG attached to the subnet, and its live body from this walk."""
    attached = get_path(subnet, f"properties.{kind}.id")
    return (str(attached), live(ArmId.parse(str(attached)).key)) if attached else (None, None)


def subnet_leaks(subnet: Json, live: LiveLookup, egress: Egress) -> list[Leak]:
    """What lets one compute subnet (its live body) reach the internet other than through `egress`."""
    leaks = []
    table_id, table = _attached(subnet, "routeTable", live)
    if table_id is not None and table is None:
        leaks.append(Leak(NOT_VERIFIED, f"route table {ArmId.parse(table_id).name} was not read"))
    else:
        routes = get_path(table or {}, "properties.routes") or []
        nat = get_path(subnet, "properties.natGateway.id")
        leaks += [Leak(ROUTE_LEAK, text) for text in route_leaks(routes, egress, nat)]
    nsg_id, nsg = _attached(subnet, "networkSecurityGroup", live)
    if nsg_id is not None and nsg is None:
        leaks.append(Leak(NOT_VERIFIED, f"network security group {ArmId.parse(nsg_id).name} was not read"))
    else:
        where = f"network security group {ArmId.parse(nsg_id).name}" if nsg_id else "no network security group"
        prefix = ipv4(str(get_path(subnet, "properties.addressPrefix") or ""))
        rules = get_path(nsg or {}, "properties.securityRules") or []
        leaks += [Leak(NSG_LEAK, f"{where}: {text}") for text in nsg_leaks(rules, prefix)]
    return leaks


def customer_outbound(spec: SecureMLWorkspaceSpec, report: RunReport, firewall_ip: str | None) -> Condition:
    """OutboundIsolated for a customer VNet from its compute subnets' live routes, NAT gateway and NSG,
    as the walk (`report`) ended with them. `firewall_ip`: the firewall's private IP as preflight read
    it (egress.firewall)."""
    network = spec.outbound.customer_network
    assert network is not None
    if network.egress.none is not None:
        return Condition(
            c.OUTBOUND_ISOLATED, False, "NoEgressControl",
            "egress none: compute reaches the internet through its own public IPs",
        )  # fmt: skip
    firewall = network.egress.firewall is not None
    egress = Egress(firewall_ip=firewall_ip) if firewall else Egress(nat_gateway=nat_gateway_id(spec))
    found: dict[Leak, list[str]] = {}
    names = []
    for role, subnet in declared_subnets(network):
        if not role.compute:
            continue
        name, result = subnet_name(role, subnet), report.one(role.node_role)
        body = result.live if result is not None else None
        unread = [Leak(NOT_VERIFIED, "the subnet was not read")]
        leaks = unread if body is None else subnet_leaks(body, report.lookup, egress)
        for leak in leaks:
            found.setdefault(leak, []).append(name)
        names.append(name)
    if found:
        reason = next(
            kind for kind in (ROUTE_LEAK, NSG_LEAK, NOT_VERIFIED) if any(leak.reason == kind for leak in found)
        )
        texts = [f"{leak.text} (subnet {', '.join(names)})" for leak, names in found.items()]
        return Condition(c.OUTBOUND_ISOLATED, False, reason, "; ".join(texts))
    return Condition(
        c.OUTBOUND_ISOLATED, True, "CustomerVNet",
        f"customer VNet: public addresses leave {', '.join(names)} only {egress}; no NSG rule allows the internet",
    )  # fmt: skip


# hub peering -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubPeering:
    """Both sides of the peering with the hub: ours (spoke to hub) and the hub's back to us."""

    spoke: ArmId  # our VNet
    peering: ArmId  # our side
    hub: ArmId
    state: str  # our side's peeringState; Missing when it does not exist
    remote: str | None  # the hub's peering back to us, by name
    remote_state: str  # its peeringState; Missing when the hub has none, Unknown when the hub was not read

    @property
    def connected(self) -> bool:
        return self.state == "Connected" and self.remote_state == "Connected"

    def as_status(self) -> dict[str, Any]:
        ours = {"hubVirtualNetworkId": str(self.hub), "name": self.peering.name, "state": self.state}
        return ours | ({"remoteName": self.remote} if self.remote else {}) | {"remoteState": self.remote_state}

    def problem(self) -> str:
        ours = f"peering {self.peering.name} from {self.spoke.name} to the hub {self.hub.name} is {self.state}"
        if self.state == "Disconnected":
            return (
                f"{ours}: the hub's side was deleted. Delete {self.peering.name} (the operator creates it again), "
                f"then have the hub's owner peer {self.hub.name} back to {self.spoke}"
            )
        if self.remote_state == "Missing":
            return (
                f"{ours}: the hub has no peering back. The hub's owner must peer {self.hub.name} with {self.spoke}; "
                "until both sides are Connected, compute cannot reach the firewall"
            )
        return f"{ours}, the hub's side is {self.remote_state}: compute reaches the firewall once both are Connected"


def hub_peering(spec: SecureMLWorkspaceSpec, live: LiveLookup) -> HubPeering | None:
    """Both sides of the hub peering from this walk's live bodies; None when the spec has no peering."""
    ids = hub_peering_ids(spec)
    if ids is None:
        return None
    peering_id, hub_id = ids
    spoke = virtual_network_id(spec)
    ours, hub = live(peering_id.key), live(hub_id.key)
    back = next(
        (
            peering
            for peering in get_path(hub or {}, "properties.virtualNetworkPeerings") or []
            if same_id(get_path(peering, "properties.remoteVirtualNetwork.id"), str(spoke))
        ),
        None,
    )
    state = str(get_path(ours, "properties.peeringState") or "Unknown") if ours is not None else "Missing"
    if back is not None:
        remote_state = str(get_path(back, "properties.peeringState") or "Unknown")
    else:
        remote_state = "Unknown" if hub is None else "Missing"
    return HubPeering(spoke, peering_id, hub_id, state, back.get("name") if back else None, remote_state)


def peering_failure(spec: SecureMLWorkspaceSpec, live: LiveLookup) -> TransientFailure | None:
    """What keeps the resource from Ready while the hub peering is not Connected on both sides:
    retried like any transient failure, since the hub's owner (or time) clears it."""
    peering = hub_peering(spec, live)
    if peering is None or peering.connected:
        return None
    return TransientFailure("PeeringNotConnected", peering.problem())
