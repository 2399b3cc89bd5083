"""Microsoft.Network's virtual networks and what attaches to them: VNets, subnets, peerings, NAT
gateways, public IPs, firewalls, private link services and private endpoints (an address in their
subnet, connections on the workspaces they reach)."""

from __future__ import annotations

import hashlib
import ipaddress

from armemu.arm import ArmError, get_path, type_of
from armemu.kinds.base import ResourceBehaviour
from armemu.kinds.helpers import forget_records, referencing, stable_uuid
from armemu.kinds.ml import WORKSPACE
from armemu.state import Json, Resource, State, new_etag
from secureml_operator.azure import private_link

VNET = "microsoft.network/virtualnetworks"
SUBNET = f"{VNET}/subnets"
PEERING = f"{VNET}/virtualnetworkpeerings"
NAT_GATEWAY = "microsoft.network/natgateways"
PRIVATE_ENDPOINT = "microsoft.network/privateendpoints"
FIREWALL = "microsoft.network/azurefirewalls"


class UsedBySubnets(ResourceBehaviour):
    """A type subnets reference by `properties.<subnet_property>.id` (NSG, route table, NAT gateway): GET
    lists those subnets, and it cannot be deleted while one uses it."""

    subnet_property = ""
    read_only: tuple[str, ...] = ("subnets",)

    def check_delete(self, state: State, resource: Resource) -> None:
        for subnet in referencing(state, SUBNET, self.subnet_property, resource.id):
            raise ArmError(409, "InUseByResource", f"{resource.id} is in use by {subnet.id} and cannot be deleted.")

    def derive(self, state: State, resource: Resource, body: Json, provisioning: str) -> None:
        super().derive(state, resource, body, provisioning)
        using = referencing(state, SUBNET, self.subnet_property, resource.id)
        body["properties"]["subnets"] = [{"id": subnet.id} for subnet in using]


# virtual networks, subnets and peerings ---------------------------------------------------------


class VirtualNetwork(ResourceBehaviour):
    kind = VNET
    inline = {"subnets": "subnets", "virtualNetworkPeerings": "virtualNetworkPeerings"}

    def after_delete(self, state: State, resource: Resource) -> None:
        """The peerings of other VNets to it are left Disconnected."""
        for other in state.referring(resource.id, PEERING):
            if (get_path(other.body, "properties.remoteVirtualNetwork.id") or "").lower() == resource.key:
                other.body["_disconnected"] = True


class Subnet(ResourceBehaviour):
    kind = SUBNET
    tracked = False
    read_only = ("ipConfigurations", "privateEndpoints")
    references = (
        ("properties.networkSecurityGroup.id", "networksecuritygroups"),
        ("properties.routeTable.id", "routetables"),
        ("properties.natGateway.id", "natgateways"),
    )

    def validate(self, state: State, resource_id: str, body: Json, existing: Resource | None) -> None:
        """A prefix inside its VNet's address space, apart from its siblings'."""
        super().validate(state, resource_id, body, existing)
        prefix = get_path(body, "properties.addressPrefix")
        try:
            network = ipaddress.ip_network(prefix, strict=True)
        except (TypeError, ValueError) as error:
            raise ArmError(
                400, "InvalidAddressPrefixFormat", f"Subnet address prefix {prefix!r} is invalid."
            ) from error
        vnet_id = resource_id.rsplit("/subnets/", 1)[0]
        vnet = state.get(vnet_id)
        if vnet is None:
            raise ArmError(404, "ResourceNotFound", f"The Resource '{vnet_id}' was not found.")
        space = [ipaddress.ip_network(p) for p in get_path(vnet.body, "properties.addressSpace.addressPrefixes") or []]
        if space and not any(network.subnet_of(outer) for outer in space if outer.version == network.version):  # type: ignore[arg-type]
            raise ArmError(
                400, "NetcfgSubnetRangeOutsideVnet", f"Subnet {prefix} is not within the VNet address space."
            )
        for sibling in state.children(vnet_id, "subnets"):
            if sibling.key != resource_id.lower():
                other = ipaddress.ip_network(get_path(sibling.body, "properties.addressPrefix"))
                if other.overlaps(network):
                    raise ArmError(400, "NetcfgSubnetRangesOverlap", f"Subnet {prefix} overlaps {sibling.id}.")

    def check_delete(self, state: State, resource: Resource) -> None:
        for endpoint in referencing(state, PRIVATE_ENDPOINT, "subnet", resource.id):
            raise ArmError(409, "InUseSubnetCannotBeDeleted", f"Subnet {resource.id} is in use by {endpoint.id}.")

    def derive(self, state: State, resource: Resource, body: Json, provisioning: str) -> None:
        properties = body["properties"]
        if "delegations" in properties:
            properties["delegations"] = [_delegation(resource, body, item) for item in properties["delegations"] or []]
        endpoints = referencing(state, PRIVATE_ENDPOINT, "subnet", resource.id)
        properties["privateEndpoints"] = [{"id": pe.id} for pe in endpoints]
        properties["ipConfigurations"] = [  # each endpoint's NIC, as PrivateEndpoint.derive names it
            {"id": f"{_nic_id(pe.id)}/ipConfigurations/privateEndpointIpConfig"} for pe in endpoints
        ]


SUBNET_ACTION = "Microsoft.Network/virtualNetworks/subnets/action"
JOIN = "Microsoft.Network/virtualNetworks/subnets/join/action"
PREPARE = "Microsoft.Network/virtualNetworks/subnets/prepareNetworkPolicies/action"
UNPREPARE = "Microsoft.Network/virtualNetworks/subnets/unprepareNetworkPolicies/action"
DELEGATION_ACTIONS = {  # what Azure grants a service a subnet is delegated to (sources: docs/emulator.md)
    "microsoft.containerinstance/containergroups": [SUBNET_ACTION],
    "microsoft.web/serverfarms": [SUBNET_ACTION],
    "microsoft.databricks/workspaces": [JOIN, PREPARE, UNPREPARE],
    "microsoft.sql/managedinstances": [JOIN, PREPARE, UNPREPARE],
    "microsoft.dbforpostgresql/flexibleservers": [JOIN],
}


def _delegation(subnet: Resource, body: Json, delegation: Json) -> Json:
    """A subnet delegation as Azure returns it: with its id and the actions of its service (what a
    client sends as actions is replaced; a service not in DELEGATION_ACTIONS gets none)."""
    properties = delegation.get("properties") or {}
    service = str(properties.get("serviceName") or "")
    return {
        "name": delegation.get("name"),
        "id": f"{subnet.id}/delegations/{delegation.get('name')}",
        "etag": body.get("etag"),
        "properties": {
            **properties,
            "actions": list(DELEGATION_ACTIONS.get(service.lower(), [])),
            "provisioningState": "Succeeded",
        },
    }


class VirtualNetworkPeering(ResourceBehaviour):
    """Initiated while only this side exists, Connected once the remote VNet peers back, Disconnected
    after the other side (or its VNet) is deleted, until this side is written again."""

    kind = PEERING
    tracked = False
    references = (("properties.remoteVirtualNetwork.id", "virtualnetworks"),)

    def validate(self, state: State, resource_id: str, body: Json, existing: Resource | None) -> None:
        """Azure refuses to peer back to a side left Disconnected: that side must be written again first."""
        super().validate(state, resource_id, body, existing)
        vnet_id = resource_id.rsplit("/", 2)[0]
        for other in _peerings_back(state, vnet_id, get_path(body, "properties.remoteVirtualNetwork.id") or ""):
            if other.body.get("_disconnected"):
                raise ArmError(
                    400,
                    "RemotePeeringIsDisconnected",
                    f"Cannot create or update peering {resource_id} because remote peering {other.id} is in "
                    "Disconnected state. Update or re-create the remote peering to get it back to Initiated state.",
                )

    def after_delete(self, state: State, resource: Resource) -> None:
        remote = get_path(resource.body, "properties.remoteVirtualNetwork.id") or ""
        for other in _peerings_back(state, resource.parent or "", remote):
            other.body["_disconnected"] = True

    def derive(self, state: State, resource: Resource, body: Json, provisioning: str) -> None:
        properties = body["properties"]
        properties["peeringState"] = _peering_state(state, resource)
        properties["peeringSyncLevel"] = "FullyInSync"
        remote = state.get(get_path(properties, "remoteVirtualNetwork.id") or "")
        space = get_path(remote.body, "properties.addressSpace") if remote else None
        if space is not None:
            properties["remoteAddressSpace"] = properties["remoteVirtualNetworkAddressSpace"] = space


def _peerings_back(state: State, vnet_id: str, remote_id: str) -> list[Resource]:
    """The peerings of `remote_id` whose remote is `vnet_id`: the other side of a peering."""
    return [
        peering
        for peering in state.children(remote_id, "virtualNetworkPeerings")
        if (get_path(peering.body, "properties.remoteVirtualNetwork.id") or "").lower() == vnet_id.lower()
    ]


def _peering_state(state: State, peering: Resource) -> str:
    if peering.body.get("_disconnected"):
        return "Disconnected"
    remote = get_path(peering.body, "properties.remoteVirtualNetwork.id") or ""
    return "Connected" if _peerings_back(state, peering.parent or "", remote) else "Initiated"


# gateways, public IPs, firewalls ----------------------------------------------------------------


class NatGateway(UsedBySubnets):
    kind = NAT_GATEWAY
    defaults = {"properties": {"idleTimeoutInMinutes": 4}}
    subnet_property = "natGateway"


class PublicIpAddress(ResourceBehaviour):
    kind = "microsoft.network/publicipaddresses"
    defaults = {
        "sku": {"name": "Basic", "tier": "Regional"},
        "properties": {
            "publicIPAllocationMethod": "Dynamic",
            "publicIPAddressVersion": "IPv4",
            "idleTimeoutInMinutes": 4,
        },
    }

    def stored(self, state: State, resource_id: str, body: Json, existing: Resource | None) -> Json:
        """A stable fake public address per id."""
        stored = super().stored(state, resource_id, body, existing)
        digest = hashlib.sha256(resource_id.lower().encode()).digest()
        stored["properties"]["ipAddress"] = f"20.{digest[0] % 200 + 10}.{digest[1]}.{digest[2] % 250 + 2}"
        return stored

    def check_delete(self, state: State, resource: Resource) -> None:
        for gateway in state.referring(resource.id, NAT_GATEWAY):
            if any(
                ip.get("id", "").lower() == resource.key
                for ip in get_path(gateway.body, "properties.publicIpAddresses") or []
            ):
                raise ArmError(409, "PublicIPAddressInUse", f"{resource.id} is in use by {gateway.id}.")


class AzureFirewall(ResourceBehaviour):
    kind = FIREWALL
    references = (("properties.firewallPolicy.id", "firewallpolicies"),)

    def after_put(self, state: State, resource: Resource, previous: Resource | None) -> None:
        """Each ipConfiguration of a firewall gets a private IP in its subnet (AzureFirewallSubnet): the
        first address after Azure's reserved ones, kept across updates; a client cannot set it."""
        before = {
            config.get("name"): get_path(config, "properties.privateIPAddress")
            for config in (get_path(previous.body, "properties.ipConfigurations") if previous else None) or []
        }
        for config in get_path(resource.body, "properties.ipConfigurations") or []:
            properties = config.setdefault("properties", {})
            properties.pop("privateIPAddress", None)
            address = before.get(config.get("name")) or _allocate_ip(state, get_path(properties, "subnet.id"))
            if address is not None:
                properties["privateIPAddress"] = address

    def derive(self, state: State, resource: Resource, body: Json, provisioning: str) -> None:
        properties = body["properties"]
        properties["ipConfigurations"] = [
            {
                "name": config.get("name"),
                **config,
                "id": f"{resource.id}/ipConfigurations/{config.get('name')}",
                "etag": body.get("etag"),
                "properties": {**(config.get("properties") or {}), "provisioningState": provisioning},
            }
            for config in properties.get("ipConfigurations") or []
        ]


class PrivateLinkService(ResourceBehaviour):
    kind = "microsoft.network/privatelinkservices"


# private endpoints ------------------------------------------------------------------------------


class PrivateEndpoint(ResourceBehaviour):
    kind = PRIVATE_ENDPOINT
    defaults = {"properties": {"applicationSecurityGroups": []}}
    references = (("properties.subnet.id", "subnets"),)

    def validate(self, state: State, resource_id: str, body: Json, existing: Resource | None) -> None:
        super().validate(state, resource_id, body, existing)
        for connection in get_path(body, "properties.privateLinkServiceConnections") or []:
            target = get_path(connection, "properties.privateLinkServiceId")
            if not state.get(target or ""):
                raise ArmError(400, "PrivateLinkServiceNotFound", f"Private link service {target} not found.")

    def stored(self, state: State, resource_id: str, body: Json, existing: Resource | None) -> Json:
        """An address in its subnet, kept across writes."""
        stored = super().stored(state, resource_id, body, existing)
        stored["properties"]["_ip"] = (existing.body["properties"].get("_ip") if existing else None) or _allocate_ip(
            state, get_path(body, "properties.subnet.id")
        )
        return stored

    def after_put(self, state: State, resource: Resource, previous: Resource | None) -> None:
        """An endpoint to a workspace appears on it as an Approved connection (auto-approved, as for a
        creator allowed on the workspace); one it no longer links to goes, an existing one is kept as is."""
        wanted = _workspace_connections(state, resource)
        for gone in set(_workspace_connections(state, previous) if previous else ()) - set(wanted):
            state.delete(gone)
        for connection_id, workspace_id in wanted.items():
            if state.get(connection_id) is None:
                approved = {"status": "Approved", "description": "Auto-Approved", "actionsRequired": "None"}
                body = {
                    "properties": {
                        "privateEndpoint": {"id": resource.id},
                        "privateLinkServiceConnectionState": approved,
                    },
                    "etag": new_etag(),
                }
                state.put(connection_id, body, workspace_id)

    def after_delete(self, state: State, resource: Resource) -> None:
        for connection_id in _workspace_connections(state, resource):
            state.delete(connection_id)
        forget_records(state, resource.key)

    def derive(self, state: State, resource: Resource, body: Json, provisioning: str) -> None:
        ip = get_path(resource.body, "properties._ip")
        properties = body["properties"]
        properties["networkInterfaces"] = [{"id": _nic_id(body["id"])}]
        fqdns = []
        for connection in properties.get("privateLinkServiceConnections") or []:
            connection.setdefault("properties", {})["privateLinkServiceConnectionState"] = {
                "status": "Approved",
                "description": "Auto-Approved",
                "actionsRequired": "None",
            }
            target = state.get(get_path(connection, "properties.privateLinkServiceId") or "")
            for group in get_path(connection, "properties.groupIds") or []:
                fqdns += _endpoint_fqdns(target, group)
        properties["customDnsConfigs"] = [{"fqdn": fqdn, "ipAddresses": [ip]} for fqdn in fqdns] if ip else []


def _endpoint_fqdns(target: Resource | None, group: str) -> list[str]:
    """The names Azure registers for a private endpoint to `target` (workspace: API and notebooks)."""
    if target is None:
        return []
    name = target.id.rsplit("/", 1)[-1]
    link = private_link.group_for(type_of(target.id), group)
    if link is private_link.WORKSPACE_GROUP:
        workspace_id = get_path(target.body, "properties.workspaceId")
        location = target.body.get("location", "westus")
        return [
            f"{workspace_id}.workspace.{location}.api.azureml.ms",
            f"ml-{name}-{location}-{workspace_id}.{location}.notebooks.azure.net",
        ]
    suffix = link.host_suffix if link is not None and link.host_suffix else f"{group}.core.windows.net"
    return [f"{name}.{suffix}"]  # storage's other groups (table, queue, ...) follow blob's pattern


def _workspace_connections(state: State, endpoint: Resource) -> dict[str, str]:
    """The connections a private endpoint has on the workspaces it links to: id -> workspace id.
    Named `<endpoint>.<guid>` (a convention: Azure's naming is not verified, docs/emulator.md)."""
    name = f"{endpoint.id.rsplit('/', 1)[-1]}.{stable_uuid(endpoint.key)}"
    targets = [
        state.get(get_path(connection, "properties.privateLinkServiceId") or "")
        for connection in get_path(endpoint.body, "properties.privateLinkServiceConnections") or []
    ]
    return {
        f"{target.id}/privateEndpointConnections/{name}": target.id
        for target in targets
        if target is not None and type_of(target.id) == WORKSPACE
    }


def _nic_id(endpoint_id: str) -> str:
    group, name = endpoint_id.split("/providers/")[0], endpoint_id.rsplit("/", 1)[-1]
    return f"{group}/providers/Microsoft.Network/networkInterfaces/{name}.nic"


def _allocate_ip(state: State, subnet_id: str | None) -> str | None:
    subnet = state.get(subnet_id or "")
    if subnet is None:
        return None
    network = ipaddress.ip_network(get_path(subnet.body, "properties.addressPrefix"))
    in_subnet = referencing(state, PRIVATE_ENDPOINT, "subnet", subnet.id)
    used = {get_path(endpoint.body, "properties._ip") for endpoint in in_subnet}  # each subnet its own
    for host in list(network.hosts())[3:]:  # Azure keeps the first four addresses (and the last)
        if str(host) not in used:
            return str(host)
    raise ArmError(400, "SubnetIsFull", f"Subnet {subnet_id} has no free address.")
