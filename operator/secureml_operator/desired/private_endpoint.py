"""Private endpoints: the workspace's own (Role.WORKSPACE_PRIVATE_ENDPOINT, group amlworkspace) and,
in a customer network, one per dependency group (Role.DEPENDENCY_PRIVATE_ENDPOINT: storage blob and
file, key vault, registry). Each comes with its private DNS: per zone the zone (Role.DNS_ZONE,
shared: deleted only when nobody uses it any more), its link to the endpoint's VNet (Role.DNS_LINK),
and the endpoint's zone group entry (Role.DNS_ZONE_GROUP). Group ids and zones come from azure/private_link.py.

A registry behind a private endpoint (the managed network's, or a dependency endpoint) must be
Premium: checked before planning (`observe`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure import private_link
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.fields import Exact, Members
from secureml_operator.desired.graph import DesiredGraph, Lifecycle, Node
from secureml_operator.desired.names import network_resource
from secureml_operator.desired.observed import Observed, existing
from secureml_operator.desired.roles import Role, SubnetRole
from secureml_operator.desired.vnet import subnet_ids
from secureml_operator.desired.workspace import workspace_id
from secureml_operator.failures import PermanentFailure

if TYPE_CHECKING:
    from secureml_operator.azure.arm import ArmClient


def add_dependency_endpoints(graph: DesiredGraph, spec: SecureMLWorkspaceSpec) -> None:
    """privateEndpointsForDependencies: an endpoint per group of each dependency the spec names, in
    the privateEndpoints subnet."""
    network = spec.outbound.customer_network
    subnet = subnet_ids(spec).get(SubnetRole.PRIVATE_ENDPOINTS) if network is not None else None
    if network is None or subnet is None or not network.private_endpoints_for_dependencies:
        return
    for field, group in private_link.dependency_endpoints():
        target = getattr(spec.workspace, field)
        if target:
            add_private_endpoint(
                graph, spec, Role.DEPENDENCY_PRIVATE_ENDPOINT, f"pe-{spec.workspace.name}-{group.endpoint_suffix}",
                ArmId.parse(target), group, str(subnet), (subnet.key,),
            )  # fmt: skip


def add_workspace_private_endpoint(graph: DesiredGraph, spec: SecureMLWorkspaceSpec) -> None:
    """The workspace's own private endpoint, with its DNS zones when Managed; in the subnet given by
    id, or the customer network's subnet of the role named."""
    endpoint = spec.inbound.private_endpoint
    if endpoint is None:
        return
    role = SubnetRole(endpoint.subnet_name) if endpoint.subnet_name else SubnetRole.PRIVATE_ENDPOINTS
    subnet_id = endpoint.subnet_id or str(subnet_ids(spec)[role])
    group = private_link.WORKSPACE_GROUP
    workspace = workspace_id(spec)
    depends_on = (workspace.key, ArmId.parse(subnet_id).key)  # the subnet counts when we create it
    add_private_endpoint(
        graph, spec, Role.WORKSPACE_PRIVATE_ENDPOINT, f"pe-{spec.workspace.name}", workspace, group, subnet_id,
        depends_on, managed_dns=endpoint.private_dns_zones == "Managed",
    )  # fmt: skip


def add_private_endpoint(
    graph: DesiredGraph,
    spec: SecureMLWorkspaceSpec,
    role: Role,
    name: str,
    target: ArmId,
    group: private_link.Group,
    subnet_id: str,
    depends_on: tuple[str, ...],
    managed_dns: bool = True,
) -> None:
    """A private endpoint to `target`, and with managed DNS, for each of the group's zones: the zone,
    its VNet link, the zone group entry."""
    pe_id = network_resource(spec, "privateEndpoints", name)
    connection: dict[str, Any] = {
        "name": name,
        "properties": {"privateLinkServiceId": str(target), "groupIds": [group.group_id]},
    }
    graph.add(
        Node(
            id=pe_id,
            create_body={
                "location": spec.azure.location,
                "properties": {"subnet": {"id": subnet_id}, "privateLinkServiceConnections": [connection]},
            },
            role=role,
            fields=(Exact("properties.subnet.id", subnet_id),),
            depends_on=tuple(key for key in depends_on if key in graph.nodes),
        )
    )
    zones = group.zones if managed_dns else ()
    if not zones:
        return
    vnet = ArmId.parse(subnet_id).parent
    assert vnet is not None, "a subnet id always has its virtual network as parent"
    zone_ids = []
    for zone in zones:
        zone_id = network_resource(spec, "privateDnsZones", zone)
        zone_ids.append(zone_id)
        if zone_id.key in graph.nodes:
            continue  # shared by several endpoints of this workspace
        graph.add(Node(id=zone_id, create_body={"location": "global"}, role=Role.DNS_ZONE, lifecycle=Lifecycle.SHARED))
        graph.add(
            Node(
                id=zone_id.child("virtualNetworkLinks", f"{vnet.name}-link"),
                create_body={"location": "global", "properties": {"registrationEnabled": False}},
                role=Role.DNS_LINK,
                fields=(Exact("properties.virtualNetwork.id", str(vnet)),),
                lifecycle=Lifecycle.SHARED,  # every workspace with an endpoint in this VNet needs the same link
                depends_on=(zone_id.key, *((vnet.key,) if vnet.key in graph.nodes else ())),
            )
        )
    zone_configs = tuple(
        {"name": zone_id.name.replace(".", "-"), "properties": {"privateDnsZoneId": str(zone_id)}}
        for zone_id in zone_ids
    )
    graph.add(
        Node(
            id=pe_id.child("privateDnsZoneGroups", "default"),
            create_body={"properties": {"privateDnsZoneConfigs": list(zone_configs)}},
            role=Role.DNS_ZONE_GROUP,
            fields=(Members("properties.privateDnsZoneConfigs", zone_configs, "properties.privateDnsZoneId"),),
            depends_on=(pe_id.key, *(zone_id.key for zone_id in zone_ids)),
            tagged=False,
        )
    )


async def observe(arm: ArmClient, spec: SecureMLWorkspaceSpec, observed: Observed) -> Observed:
    """A registry behind a private endpoint must be Premium."""
    registry_id = spec.workspace.container_registry_id
    network = spec.outbound.customer_network
    behind_private_endpoint = spec.outbound.managed_network is not None or bool(
        network and network.private_endpoints_for_dependencies
    )
    if not registry_id or not behind_private_endpoint:
        return observed
    registry = await existing(arm, registry_id, "container registry")
    sku = str((registry.get("sku") or {}).get("name", ""))
    if sku.lower() != "premium":
        raise PermanentFailure(
            "RegistryNotPremium",
            f"container registry {registry_id} is {sku or 'of unknown SKU'}; a registry behind a "
            "private endpoint must be Premium: upgrade it or reference a Premium registry",
        )
    return observed
