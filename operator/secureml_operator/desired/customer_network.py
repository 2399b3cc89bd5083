"""Desired nodes for a customer-managed VNet: subnets, NSGs, routes, NAT egress, peering, endpoints.

Subnets are written through the subnet endpoint (never a VNet PUT with a rebuilt list), one after
another (ARM serialises operations on one VNet anyway). NSG rules and routes are child sets of their
parent, under the spec's rules policy. Names are deterministic, so repeated reconciles converge.
"""

from __future__ import annotations

from secureml_operator.api.models import SecureMLWorkspaceSpec, Subnet
from secureml_operator.azure.ids import ArmId, resource_id
from secureml_operator.desired import azureml_network as aml
from secureml_operator.desired.fields import Exact, FieldRule, Json, Members, get_path
from secureml_operator.desired.graph import (
    ChildSet,
    ChildSpec,
    DesiredGraph,
    Lifecycle,
    ListPolicy,
    LiveLookup,
    Node,
    Resolver,
)
from secureml_operator.desired.observed import Observed
from secureml_operator.desired.workspace import add_private_endpoint

NETWORK = "Microsoft.Network"
SUBNET_NAMES = {"training": "training", "scoring": "scoring", "privateEndpoints": "private-endpoints"}


def subnet_name(role: str, subnet: Subnet) -> str:
    return subnet.name or SUBNET_NAMES[role]


def virtual_network_id(spec: SecureMLWorkspaceSpec) -> ArmId:
    network = spec.outbound.customer_network
    assert network is not None
    if network.virtual_network.existing_id:
        return ArmId.parse(network.virtual_network.existing_id)
    azure = spec.azure
    return resource_id(
        azure.subscription_id, azure.resource_group, NETWORK, "virtualNetworks", network.virtual_network.name or ""
    )


def subnet_ids_by_role(spec: SecureMLWorkspaceSpec) -> dict[str, ArmId]:
    network = spec.outbound.customer_network
    assert network is not None
    vnet = virtual_network_id(spec)
    return {role: vnet.child("subnets", subnet_name(role, subnet)) for role, subnet in network.subnets.roles()}


def nat_gateway_id(spec: SecureMLWorkspaceSpec) -> ArmId:
    """The NAT gateway egress.natGateway declares (whether or not the spec has one)."""
    azure = spec.azure
    return resource_id(
        azure.subscription_id, azure.resource_group, NETWORK, "natGateways", f"ng-{spec.workspace.name}-egress"
    )


def hub_peering_ids(spec: SecureMLWorkspaceSpec) -> tuple[ArmId, ArmId] | None:
    """(our spoke-to-hub peering, the hub VNet) when the spec has the operator peer with a hub."""
    network = spec.outbound.customer_network
    firewall = network.egress.firewall if network is not None else None
    if firewall is None or not firewall.hub_virtual_network_id or not firewall.peering:
        return None
    return virtual_network_id(spec).child("virtualNetworkPeerings", "to-hub"), ArmId.parse(
        firewall.hub_virtual_network_id
    )


def _nsg_rules(spec: SecureMLWorkspaceSpec) -> tuple[ChildSpec, ...]:
    network = spec.outbound.customer_network
    assert network is not None
    through_firewall = network.egress.firewall is not None
    rules = aml.required_nsg_rules(spec.azure.location, network.compute_public_ip, through_firewall)
    children = [_child(rule.name, rule.properties()) for rule in rules]
    extras = [
        aml.RuleSpec(
            extra.name, extra.direction, extra.access, extra.priority, extra.protocol,
            extra.destination_address_prefix, tuple(extra.destination_port_ranges), extra.source_address_prefix,
        )
        for extra in network.network_security.extra_rules
    ]  # fmt: skip
    children += [_child(rule.name, rule.properties()) for rule in extras]
    return tuple(children)


def _child(name: str, properties: dict[str, object]) -> ChildSpec:
    fields = tuple(Exact(f"properties.{key}", value) for key, value in properties.items())
    return ChildSpec(name, {"properties": dict(properties)}, fields)


def _routes(spec: SecureMLWorkspaceSpec, firewall_ip: str | None) -> tuple[ChildSpec, ...]:
    network = spec.outbound.customer_network
    assert network is not None
    routes: list[ChildSpec] = []
    if network.egress.firewall is not None:
        routes.append(
            _child(
                aml.FIREWALL_ROUTE,
                {
                    "addressPrefix": "0.0.0.0/0",
                    "nextHopType": "VirtualAppliance",
                    "nextHopIpAddress": firewall_ip,
                },
            )
        )
        if network.compute_public_ip:
            routes += [
                _child(name, {"addressPrefix": tag, "nextHopType": "Internet"})
                for name, tag in aml.public_ip_compute_routes(spec.azure.location)
            ]
    for extra in network.extra_routes:
        properties: dict[str, object] = {
            "addressPrefix": extra.address_prefix,
            "nextHopType": extra.next_hop_type,
        }
        if extra.next_hop_ip_address:
            properties["nextHopIpAddress"] = extra.next_hop_ip_address
        routes.append(_child(extra.name, properties))
    return tuple(routes)


def add_customer_network(graph: DesiredGraph, spec: SecureMLWorkspaceSpec, observed: Observed) -> dict[str, ArmId]:
    """The VNet side of the graph; returns the subnet ids by role (training, scoring, privateEndpoints)."""
    network = spec.outbound.customer_network
    assert network is not None
    sub, group, location, ws = (
        spec.azure.subscription_id,
        spec.azure.resource_group,
        spec.azure.location,
        spec.workspace.name,
    )
    policy = ListPolicy(network.network_security.rules_policy)

    vnet_id = virtual_network_id(spec)
    if network.virtual_network.existing_id:
        graph.add(Node(id=vnet_id, create_body=None, lifecycle=Lifecycle.EXTERNAL))
    else:
        prefixes = list(network.virtual_network.address_space)
        graph.add(
            Node(
                id=vnet_id,
                create_body={
                    "location": location,
                    "properties": {"addressSpace": {"addressPrefixes": prefixes}},
                },
                fields=(Members("properties.addressSpace.addressPrefixes", tuple(prefixes)),),
            )
        )

    nsg = graph.add(
        Node(
            id=resource_id(sub, group, NETWORK, "networkSecurityGroups", f"nsg-{ws}-compute"),
            create_body={"location": location},
            children=(ChildSet("securityRules", "properties.securityRules", _nsg_rules(spec), policy),),
        )
    )
    routes = _routes(spec, observed.firewall_private_ip)
    route_table = None
    if routes:
        route_table = graph.add(
            Node(
                id=resource_id(sub, group, NETWORK, "routeTables", f"rt-{ws}-compute"),
                create_body={"location": location, "properties": {"disableBgpRoutePropagation": True}},
                children=(ChildSet("routes", "properties.routes", routes, policy),),
            )
        )
    nat = None
    ip_ids: list[Node] = []
    if network.egress.nat_gateway is not None:
        nat_spec = network.egress.nat_gateway
        for index in range(nat_spec.public_ip_count):
            ip = graph.add(
                Node(
                    id=resource_id(sub, group, NETWORK, "publicIPAddresses", f"pip-{ws}-egress-{index + 1}"),
                    create_body={
                        "location": location,
                        "sku": {"name": "Standard"},
                        "properties": {
                            "publicIPAllocationMethod": "Static",
                            "publicIPAddressVersion": "IPv4",
                        },
                    },
                )
            )
            ip_ids.append(ip)
        members = tuple({"id": str(ip.id)} for ip in ip_ids)
        nat = graph.add(
            Node(
                id=nat_gateway_id(spec),
                create_body={"location": location, "sku": {"name": "Standard"}},
                fields=(
                    Exact("properties.idleTimeoutInMinutes", nat_spec.idle_timeout_minutes),
                    Members("properties.publicIpAddresses", members, key="id"),
                ),
                depends_on=tuple(ip.key for ip in ip_ids),
            )
        )

    policy_node = None
    if network.data_exfiltration_protection:
        definitions = [
            ChildSpec(
                "azureml-alias",
                {"properties": {"service": "Global", "serviceResources": [aml.AZURE_ML_SERVICE_ALIAS]}},
                (Members("properties.serviceResources", (aml.AZURE_ML_SERVICE_ALIAS,)),),
            ),
            ChildSpec(
                "workspace-storage",
                {
                    "properties": {
                        "service": "Microsoft.Storage",
                        "serviceResources": [spec.workspace.storage_account_id],
                    }
                },
                (Members("properties.serviceResources", (spec.workspace.storage_account_id,)),),
            ),
        ]
        policy_node = graph.add(
            Node(
                id=resource_id(sub, group, NETWORK, "serviceEndpointPolicies", f"sep-{ws}-exfiltration"),
                create_body={"location": location},
                children=(
                    ChildSet(
                        "serviceEndpointPolicyDefinitions",
                        "properties.serviceEndpointPolicyDefinitions",
                        tuple(definitions),
                    ),
                ),
            )
        )

    previous: str | None = None
    subnet_ids = subnet_ids_by_role(spec)
    for role, subnet in network.subnets.roles():
        subnet_id = subnet_ids[role]
        compute = role in ("training", "scoring")
        fields: list[FieldRule] = [Exact("properties.addressPrefix", subnet.address_prefix)]
        depends = [vnet_id.key]
        if compute:
            fields.append(Exact("properties.networkSecurityGroup.id", str(nsg.id)))
            depends.append(nsg.key)
            if route_table is not None:
                fields.append(Exact("properties.routeTable.id", str(route_table.id)))
                depends.append(route_table.key)
            if nat is not None:
                fields.append(Exact("properties.natGateway.id", str(nat.id)))
                depends.append(nat.key)
            endpoints = tuple({"service": service} for service in network.service_endpoints)
            fields.append(Members("properties.serviceEndpoints", endpoints, key="service"))
            if policy_node is not None and role == "training":
                fields.append(Members("properties.serviceEndpointPolicies", ({"id": str(policy_node.id)},), "id"))
                depends.append(policy_node.key)
        else:
            fields.append(Exact("properties.privateEndpointNetworkPolicies", "Disabled"))
        if previous is not None:
            depends.append(previous)  # one subnet write at a time per VNet
        body: Json = {"properties": {"addressPrefix": subnet.address_prefix}}
        node = graph.add(
            Node(id=subnet_id, create_body=body, fields=tuple(fields), depends_on=tuple(depends), tagged=False)
        )
        previous = node.key

    _add_hub_peering(graph, spec)

    pe_subnet = subnet_ids.get("privateEndpoints")
    if pe_subnet is not None and network.private_endpoints_for_dependencies:
        workspace = spec.workspace
        targets = [
            ("st-blob", workspace.storage_account_id, "blob"),
            ("st-file", workspace.storage_account_id, "file"),
            ("kv", workspace.key_vault_id, "vault"),
            ("cr", workspace.container_registry_id, "registry"),
        ]
        for suffix, target, group_id in targets:
            if target:
                add_private_endpoint(
                    graph, spec, f"pe-{ws}-{suffix}", ArmId.parse(target), group_id,
                    str(pe_subnet), (aml.DEPENDENCY_PRIVATE_LINK[group_id],), depends_on=(previous or "",),
                )  # fmt: skip

    _add_allowlists(graph, network.allowlist_egress_on, tuple(ip.key for ip in ip_ids), observed)
    return subnet_ids


def _add_hub_peering(graph: DesiredGraph, spec: SecureMLWorkspaceSpec) -> None:
    """Our side of the peering with the hub, and the hub VNet read after it: the hub's own peering
    back to us (someone else's, listed inline in the hub's GET) is what makes the pair Connected."""
    ids = hub_peering_ids(spec)
    if ids is None:
        return
    peering_id, hub_id = ids
    hub = str(hub_id)
    peering = graph.add(
        Node(
            id=peering_id,
            create_body={
                "properties": {
                    "remoteVirtualNetwork": {"id": hub},
                    "allowVirtualNetworkAccess": True,
                    "allowForwardedTraffic": True,
                    "useRemoteGateways": False,
                }
            },
            fields=(
                Exact("properties.remoteVirtualNetwork.id", hub),
                Exact("properties.allowForwardedTraffic", True),
            ),
            depends_on=(virtual_network_id(spec).key,),
            tagged=False,
        )
    )
    read_after = (peering.key,)
    network = spec.outbound.customer_network
    firewall = network.egress.firewall if network is not None else None
    if firewall is not None and firewall.peer_from_hub:  # the hub is ours to change: its side is ours too
        spoke = virtual_network_id(spec)
        back = graph.add(
            Node(
                id=hub_id.child("virtualNetworkPeerings", f"to-{spoke.name}"),
                create_body={
                    "properties": {
                        "remoteVirtualNetwork": {"id": str(spoke)},
                        "allowVirtualNetworkAccess": True,
                        "allowForwardedTraffic": True,
                    }
                },
                fields=(Exact("properties.remoteVirtualNetwork.id", str(spoke)),),
                depends_on=(peering.key,),
                tagged=False,
            )
        )
        read_after = (back.key,)
    graph.add(Node(id=hub_id, create_body=None, lifecycle=Lifecycle.EXTERNAL, depends_on=read_after))


def _add_allowlists(graph: DesiredGraph, targets: list[str], egress_nodes: tuple[str, ...], observed: Observed) -> None:
    """allowlistEgressOn: our egress IPs in each target's IP rules, everyone else's kept (Additive).

    The NAT gateway's IPs are known only once its public IPs exist, so the rules are resolved during
    the walk. An IP rule is added only when absent; one we added and no longer use (or on a target no
    longer listed) is removed unless another resource still needs it (the ledger counts them).
    """
    for target, keep in allowlist_targets(targets, observed):
        target_id = ArmId.parse(target)
        graph.add(
            Node(
                id=target_id,
                create_body=None,
                lifecycle=Lifecycle.EXTERNAL,
                write="patch",
                depends_on=egress_nodes if keep else (),
                resolve=_allowlist_resolver(target_id, egress_nodes, observed, keep),
                must_exist=keep,
            )
        )


def allowlist_targets(targets: list[str], observed: Observed) -> list[tuple[str, bool]]:
    """(target, still listed): the spec's targets, then those we allowlisted before and must clean up."""
    declared = {target.lower() for target in targets}
    released = [target for target in observed.allowlisted if target.lower() not in declared]
    return [(target, True) for target in targets] + [(target, False) for target in released]


# Where each provider keeps a resource's IP rules, and what one rule holds besides its address: Key
# Vault's IPRule has only `value`, storage and registries take an `action` too.
IP_RULES: dict[str, tuple[str, dict[str, str]]] = {
    "microsoft.containerregistry": ("properties.networkRuleSet.ipRules", {"action": "Allow"}),
    "microsoft.keyvault": ("properties.networkAcls.ipRules", {}),
    "microsoft.storage": ("properties.networkAcls.ipRules", {"action": "Allow"}),
}


def _allowlist_resolver(target: ArmId, egress_nodes: tuple[str, ...], observed: Observed, keep: bool) -> Resolver:
    path, extra = IP_RULES.get(target.namespace.lower(), IP_RULES["microsoft.storage"])
    removable = observed.removable_on(str(target))

    def resolve(live: LiveLookup) -> tuple[FieldRule, ...]:
        ips = egress_ips(live, egress_nodes, observed) if keep else ()
        rules = tuple({"value": ip, **extra} for ip in ips)
        stale = tuple({"value": ip} for ip in removable if ip not in ips)
        return (Members(path, rules, key="value", authoritative=False, forbidden=stale),)

    return resolve


def egress_ips(live: LiveLookup, public_ip_nodes: tuple[str, ...], observed: Observed) -> tuple[str, ...]:
    """The addresses compute traffic leaves from: our NAT gateway's public IPs, or the firewall's."""
    addresses = [get_path(live(key) or {}, "properties.ipAddress") for key in public_ip_nodes]
    return tuple(sorted({str(ip) for ip in addresses if ip} | set(observed.firewall_egress_ips)))
