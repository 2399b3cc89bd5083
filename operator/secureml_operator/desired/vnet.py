"""The customer VNet (Role.VIRTUAL_NETWORK) and its subnets (Role.TRAINING_SUBNET, SCORING_SUBNET,
PRIVATE_ENDPOINTS_SUBNET; roles.SubnetRole is the one table of subnet roles).

A VNet given by name is ours; one given by id is adopted and only read, so before planning the
operator checks it has room for our subnets (`observe`). Subnets are written through the subnet
endpoint (never a VNet PUT with a rebuilt list), one after another (ARM serialises operations on one
VNet anyway). A compute subnet owns its attachments: the NSG, route table, NAT gateway, service
endpoints and, on the training subnet, the service endpoint policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from secureml_operator.api.models import CustomerNetwork, SecureMLWorkspaceSpec, Subnet
from secureml_operator.api.rules import contains, overlaps
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.fields import Exact, FieldRule, Json, Members, get_path
from secureml_operator.desired.graph import DesiredGraph, Node
from secureml_operator.desired.names import network_resource
from secureml_operator.desired.observed import Observed, existing
from secureml_operator.desired.roles import Role, SubnetRole
from secureml_operator.failures import PermanentFailure

if TYPE_CHECKING:
    from secureml_operator.azure.arm import ArmClient


def _network(spec: SecureMLWorkspaceSpec) -> CustomerNetwork:
    network = spec.outbound.customer_network
    assert network is not None, "only a customer network has a VNet"
    return network


def declared_subnets(network: CustomerNetwork) -> list[tuple[SubnetRole, Subnet]]:
    """The spec's subnets by role, in the order they are written."""
    return [(SubnetRole(role), subnet) for role, subnet in network.subnets.roles()]


def subnet_name(role: SubnetRole, subnet: Subnet) -> str:
    return subnet.name or role.default_name


def virtual_network_id(spec: SecureMLWorkspaceSpec) -> ArmId:
    network = _network(spec)
    if network.virtual_network.existing_id:
        return ArmId.parse(network.virtual_network.existing_id)
    return network_resource(spec, "virtualNetworks", network.virtual_network.name or "")


def subnet_ids(spec: SecureMLWorkspaceSpec) -> dict[SubnetRole, ArmId]:
    vnet = virtual_network_id(spec)
    return {role: vnet.child("subnets", subnet_name(role, subnet)) for role, subnet in declared_subnets(_network(spec))}


def add_virtual_network(graph: DesiredGraph, spec: SecureMLWorkspaceSpec) -> Node:
    network = _network(spec)
    vnet_id = virtual_network_id(spec)
    if network.virtual_network.existing_id:
        return graph.add(Node.external(vnet_id, Role.VIRTUAL_NETWORK))
    prefixes = list(network.virtual_network.address_space)
    return graph.add(
        Node(
            id=vnet_id,
            create_body={
                "location": spec.azure.location,
                "properties": {"addressSpace": {"addressPrefixes": prefixes}},
            },
            role=Role.VIRTUAL_NETWORK,
            fields=(Members("properties.addressSpace.addressPrefixes", tuple(prefixes)),),
        )
    )


def add_subnets(
    graph: DesiredGraph,
    spec: SecureMLWorkspaceSpec,
    nsg: Node,
    route_table: Node | None,
    nat_gateway: Node | None,
    endpoint_policy: Node | None,
) -> None:
    """The subnets, each attached to what the compute subnets share (the nodes given)."""
    network = _network(spec)
    vnet_key = virtual_network_id(spec).key
    ids = subnet_ids(spec)
    previous: str | None = None
    for role, subnet in declared_subnets(network):
        fields: list[FieldRule] = [Exact("properties.addressPrefix", subnet.address_prefix)]
        depends = [vnet_key]
        if role.compute:
            fields.append(Exact("properties.networkSecurityGroup.id", str(nsg.id)))
            depends.append(nsg.key)
            if route_table is not None:
                fields.append(Exact("properties.routeTable.id", str(route_table.id)))
                depends.append(route_table.key)
            if nat_gateway is not None:
                fields.append(Exact("properties.natGateway.id", str(nat_gateway.id)))
                depends.append(nat_gateway.key)
            endpoints = tuple({"service": service} for service in network.service_endpoints)
            fields.append(Members("properties.serviceEndpoints", endpoints, key="service"))
            if endpoint_policy is not None and role is SubnetRole.TRAINING:
                fields.append(Members("properties.serviceEndpointPolicies", ({"id": str(endpoint_policy.id)},), "id"))
                depends.append(endpoint_policy.key)
        else:
            fields.append(Exact("properties.privateEndpointNetworkPolicies", "Disabled"))
        if previous is not None:
            depends.append(previous)  # one subnet write at a time per VNet
        body: Json = {"properties": {"addressPrefix": subnet.address_prefix}}
        node = graph.add(
            Node(
                id=ids[role],
                create_body=body,
                role=role.node_role,
                fields=tuple(fields),
                depends_on=tuple(depends),
                tagged=False,
            )
        )
        previous = node.key


async def observe(arm: ArmClient, spec: SecureMLWorkspaceSpec, observed: Observed) -> Observed:
    """An adopted VNet must hold our subnets inside its address space, clear of its other subnets."""
    network = spec.outbound.customer_network
    vnet_id = network.virtual_network.existing_id if network is not None else None
    if network is None or vnet_id is None:
        return observed
    vnet = await existing(arm, vnet_id, "virtual network")
    space = list(get_path(vnet, "properties.addressSpace.addressPrefixes") or [])
    ours = {subnet_name(role, subnet).lower() for role, subnet in declared_subnets(network)}
    others = {
        str(subnet.get("name")): prefix
        for subnet in get_path(vnet, "properties.subnets") or []
        if str(subnet.get("name", "")).lower() not in ours
        for prefix in _prefixes(subnet)
    }
    for role, subnet in declared_subnets(network):
        prefix = subnet.address_prefix
        if not any(contains(outer, prefix) for outer in space):
            raise PermanentFailure(
                "VirtualNetworkTooSmall",
                f"subnet {role} ({prefix}) does not fit in {vnet_id}'s address space {', '.join(space) or 'none'}: "
                "add an address range to the VNet or choose another prefix",
            )
        taken = sorted(name for name, other in others.items() if overlaps(other, prefix))
        if taken:
            raise PermanentFailure(
                "SubnetOverlaps",
                f"subnet {role} ({prefix}) overlaps existing subnet(s) {', '.join(taken)} of {vnet_id}: "
                "choose a free prefix",
            )
    return observed


def _prefixes(subnet: Json) -> list[str]:
    properties = subnet.get("properties") or {}
    single = properties.get("addressPrefix")
    return [single] if single else list(properties.get("addressPrefixes") or [])
