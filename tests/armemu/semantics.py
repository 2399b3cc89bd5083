"""ARM semantics per resource type: which types exist, how their long-running operations behave,
which children they list inline, what they validate, and the read-only fields the service derives.

One table (`TYPES`) drives the generic handlers; the few behaviours that are not generic (private
endpoints getting an IP, Azure ML's managed-network rules) are functions named after them.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import ipaddress
import typing
import uuid
from dataclasses import dataclass, field
from typing import Any

from armemu.state import Json, Resource, State, new_etag


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> Json:
        return {"error": {"code": self.code, "message": self.message, "target": None, "details": []}}


@dataclass(frozen=True)
class TypeInfo:
    lro: str | None = "async"  # async: Azure-AsyncOperation (Network); location: Location (ML); None: sync
    inline: dict[str, str] = field(default_factory=dict)  # property listing children -> child type
    inline_map: bool = False  # Azure ML lists outbound rules as {name: properties}
    tracked: bool = True  # has location and tags
    defaults: dict[str, Any] = field(default_factory=dict)  # what ARM fills in on create

    @property
    def created_status(self) -> int:
        """Network and DNS answer 201 Created; Machine Learning and the others answer 200."""
        return 201 if self.lro == "async" else 200


NETWORK_CHILD = TypeInfo(tracked=False)
SYNC_TRACKED = TypeInfo(lro=None)
TYPES: dict[str, TypeInfo] = {
    "microsoft.network/virtualnetworks": TypeInfo(
        inline={"subnets": "subnets", "virtualNetworkPeerings": "virtualNetworkPeerings"}
    ),
    "microsoft.network/virtualnetworks/subnets": NETWORK_CHILD,
    "microsoft.network/virtualnetworks/virtualnetworkpeerings": NETWORK_CHILD,
    "microsoft.network/networksecuritygroups": TypeInfo(
        inline={"securityRules": "securityRules"}, defaults={"properties": {"flushConnection": False}}
    ),
    "microsoft.network/networksecuritygroups/securityrules": NETWORK_CHILD,
    "microsoft.network/routetables": TypeInfo(
        inline={"routes": "routes"}, defaults={"properties": {"disableBgpRoutePropagation": False}}
    ),
    "microsoft.network/routetables/routes": NETWORK_CHILD,
    "microsoft.network/natgateways": TypeInfo(defaults={"properties": {"idleTimeoutInMinutes": 4}}),
    "microsoft.network/publicipaddresses": TypeInfo(
        defaults={
            "sku": {"name": "Basic", "tier": "Regional"},
            "properties": {
                "publicIPAllocationMethod": "Dynamic",
                "publicIPAddressVersion": "IPv4",
                "idleTimeoutInMinutes": 4,
            },
        }
    ),
    "microsoft.network/privatelinkservices": TypeInfo(),
    "microsoft.network/privateendpoints": TypeInfo(defaults={"properties": {"applicationSecurityGroups": []}}),
    "microsoft.network/privateendpoints/privatednszonegroups": NETWORK_CHILD,
    "microsoft.network/serviceendpointpolicies": TypeInfo(
        inline={"serviceEndpointPolicyDefinitions": "serviceEndpointPolicyDefinitions"}
    ),
    "microsoft.network/serviceendpointpolicies/serviceendpointpolicydefinitions": NETWORK_CHILD,
    "microsoft.network/azurefirewalls": TypeInfo(),
    "microsoft.network/privatednszones": TypeInfo(),
    "microsoft.network/privatednszones/virtualnetworklinks": TypeInfo(),
    "microsoft.network/privatednszones/a": TypeInfo(lro=None, tracked=False),
    "microsoft.machinelearningservices/workspaces": TypeInfo(lro="location"),
    "microsoft.machinelearningservices/workspaces/outboundrules": TypeInfo(lro="location", tracked=False),
    "microsoft.machinelearningservices/workspaces/privateendpointconnections": TypeInfo(lro=None, tracked=False),
    "microsoft.storage/storageaccounts": SYNC_TRACKED,
    "microsoft.storage/storageaccounts/privateendpointconnections": TypeInfo(lro=None, tracked=False),
    "microsoft.keyvault/vaults": SYNC_TRACKED,
    "microsoft.keyvault/vaults/privateendpointconnections": TypeInfo(lro=None, tracked=False),
    "microsoft.containerregistry/registries": SYNC_TRACKED,
    "microsoft.containerregistry/registries/privateendpointconnections": TypeInfo(lro=None, tracked=False),
    "microsoft.insights/components": SYNC_TRACKED,
}
ML_WORKSPACE = "microsoft.machinelearningservices/workspaces"


def _sdk_model_name(arm_type: str) -> str:
    """`microsoft.network/publicipaddresses` -> `publicipaddress`: the lower-cased model class name."""
    plural = arm_type.rsplit("/", 1)[-1]
    if plural.endswith("ies"):
        return plural[:-3] + "y"
    if plural.endswith("sses"):
        return plural[:-2]
    return plural.removesuffix("s")


def _defines_resource_guid(model: type) -> bool:
    """Whether an azure-mgmt-network model has `resource_guid` (ARM's `properties.resourceGuid`)."""
    attribute_map = getattr(model, "_attribute_map", None)
    if isinstance(attribute_map, dict):  # msrest-generated SDKs (azure-mgmt-network before 30)
        return "resource_guid" in attribute_map
    # TypeSpec-generated SDKs: the resource model's `properties` model declares the field.
    from azure.mgmt.network import models

    hints = typing.get_type_hints(model, localns={"_models": models})
    candidates = [hints.get("properties"), *typing.get_args(hints.get("properties"))]
    properties = next((c for c in candidates if isinstance(c, type) and c is not type(None)), None)
    return properties is not None and "resource_guid" in {name for klass in properties.__mro__ for name in vars(klass)}


@functools.cache
def resource_guid_types() -> frozenset[str]:
    """The TYPES whose azure-mgmt-network model defines `resource_guid`: Azure assigns these a
    `properties.resourceGuid` on create. Derived from the installed SDK, not written by hand."""
    from azure.mgmt.network import models

    classes = {name.lower(): value for name, value in vars(models).items() if isinstance(value, type)}
    return frozenset(
        kind
        for kind in TYPES
        if kind.startswith("microsoft.network/")
        and (model := classes.get(_sdk_model_name(kind))) is not None
        and _defines_resource_guid(model)
    )


PE_TARGETS = (
    "microsoft.storage/storageaccounts",
    "microsoft.keyvault/vaults",
    "microsoft.containerregistry/registries",
)
DEFAULT_RULES = [
    ("AllowVnetInBound", 65000, "Inbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
    ("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "AzureLoadBalancer", "*"),
    ("DenyAllInBound", 65500, "Inbound", "Deny", "*", "*"),
    ("AllowVnetOutBound", 65000, "Outbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
    ("AllowInternetOutBound", 65001, "Outbound", "Allow", "*", "Internet"),
    ("DenyAllOutBound", 65500, "Outbound", "Deny", "*", "*"),
]
REFERENCES = {  # property path -> the type the referenced id must have
    "microsoft.network/virtualnetworks/subnets": [
        ("properties.networkSecurityGroup.id", "networksecuritygroups"),
        ("properties.routeTable.id", "routetables"),
        ("properties.natGateway.id", "natgateways"),
    ],
    "microsoft.network/privateendpoints": [("properties.subnet.id", "subnets")],
    "microsoft.network/privatednszones/virtualnetworklinks": [("properties.virtualNetwork.id", "virtualnetworks")],
    "microsoft.network/virtualnetworks/virtualnetworkpeerings": [
        ("properties.remoteVirtualNetwork.id", "virtualnetworks")
    ],
}


def type_of(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    if len(parts) <= 4:
        return "microsoft.resources/resourcegroups"
    tail = parts[6:]
    return "/".join([parts[5], *tail[0::2]]).lower()


def resource_group_id(resource_id: str) -> str:
    return "/".join(resource_id.split("/")[:5])


def get_path(body: Json, path: str) -> Any:
    current: Any = body
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def _require(state: State, resource_id: str | None, expected_type: str, where: str) -> Resource:
    resource = state.get(resource_id) if resource_id else None
    if resource is None or not type_of(resource.id).endswith(expected_type):
        raise ArmError(400, "InvalidResourceReference", f"Resource {resource_id} referenced by {where} was not found.")
    return resource


# writes -----------------------------------------------------------------------------------------


def validate_put(state: State, resource_id: str, body: Json, existing: Resource | None) -> None:
    from armemu import rules, schema  # they build on this module's errors and paths

    kind = type_of(resource_id)
    if not isinstance(body, dict) or not isinstance(body.get("properties", {}), dict):
        raise ArmError(400, "InvalidRequestFormat", "The request body must be a JSON object with properties.")
    schema.conform(kind, body)  # the provider's 400 for a body its SDK model cannot take
    rules.check(state, resource_id, body)
    for path, target_type in REFERENCES.get(kind, []):
        reference = get_path(body, path)
        if reference:
            _require(state, reference, target_type, path)
    for policy in get_path(body, "properties.serviceEndpointPolicies") or []:
        _require(state, policy.get("id"), "serviceendpointpolicies", "properties.serviceEndpointPolicies")
    for ip in get_path(body, "properties.publicIpAddresses") or []:
        _require(state, ip.get("id"), "publicipaddresses", "properties.publicIpAddresses")
    if kind == "microsoft.network/virtualnetworks/subnets":
        _validate_subnet(state, resource_id, body)
    if kind == "microsoft.network/privateendpoints":
        for connection in get_path(body, "properties.privateLinkServiceConnections") or []:
            target = get_path(connection, "properties.privateLinkServiceId")
            if not state.get(target or ""):
                raise ArmError(400, "PrivateLinkServiceNotFound", f"Private link service {target} not found.")
    if kind == ML_WORKSPACE:
        _validate_workspace(body, existing)
    if kind == "microsoft.machinelearningservices/workspaces/outboundrules":
        _validate_outbound_rule(state, resource_id, body)
    if kind == PEERING:
        _validate_peering(state, resource_id, body)


def _validate_subnet(state: State, resource_id: str, body: Json) -> None:
    prefix = get_path(body, "properties.addressPrefix")
    try:
        network = ipaddress.ip_network(prefix, strict=True)
    except (TypeError, ValueError) as error:
        raise ArmError(400, "InvalidAddressPrefixFormat", f"Subnet address prefix {prefix!r} is invalid.") from error
    vnet_id = resource_id.rsplit("/subnets/", 1)[0]
    vnet = state.get(vnet_id)
    if vnet is None:
        raise ArmError(404, "ResourceNotFound", f"The Resource '{vnet_id}' was not found.")
    space = [ipaddress.ip_network(p) for p in get_path(vnet.body, "properties.addressSpace.addressPrefixes") or []]
    if space and not any(network.subnet_of(outer) for outer in space if outer.version == network.version):  # type: ignore[arg-type]
        raise ArmError(400, "NetcfgSubnetRangeOutsideVnet", f"Subnet {prefix} is not within the VNet address space.")
    for sibling in state.children(vnet_id, "subnets"):
        if sibling.key != resource_id.lower():
            other = ipaddress.ip_network(get_path(sibling.body, "properties.addressPrefix"))
            if other.overlaps(network):
                raise ArmError(400, "NetcfgSubnetRangesOverlap", f"Subnet {prefix} overlaps {sibling.id}.")


PEERING = "microsoft.network/virtualnetworks/virtualnetworkpeerings"


def _peerings_back(state: State, vnet_id: str, remote_id: str) -> list[Resource]:
    """The peerings of `remote_id` whose remote is `vnet_id`: the other side of a peering."""
    return [
        peering
        for peering in state.children(remote_id, "virtualNetworkPeerings")
        if (get_path(peering.body, "properties.remoteVirtualNetwork.id") or "").lower() == vnet_id.lower()
    ]


def _validate_peering(state: State, resource_id: str, body: Json) -> None:
    """Azure refuses to peer back to a side left Disconnected: that side must be written again first."""
    vnet_id = resource_id.rsplit("/", 2)[0]
    for other in _peerings_back(state, vnet_id, get_path(body, "properties.remoteVirtualNetwork.id") or ""):
        if other.body.get("_disconnected"):
            raise ArmError(
                400,
                "RemotePeeringIsDisconnected",
                f"Cannot create or update peering {resource_id} because remote peering {other.id} is in "
                "Disconnected state. Update or re-create the remote peering to get it back to Initiated state.",
            )


def _peering_state(state: State, peering: Resource) -> str:
    """Initiated while only this side exists, Connected once the remote VNet peers back, Disconnected
    after the other side (or its VNet) is deleted, until this side is written again."""
    if peering.body.get("_disconnected"):
        return "Disconnected"
    remote = get_path(peering.body, "properties.remoteVirtualNetwork.id") or ""
    return "Connected" if _peerings_back(state, peering.parent or "", remote) else "Initiated"


def _validate_workspace(body: Json, existing: Resource | None) -> None:
    mode = get_path(body, "properties.managedNetwork.isolationMode")
    old = get_path(existing.body, "properties.managedNetwork.isolationMode") if existing else None
    if old in ("AllowInternetOutbound", "AllowOnlyApprovedOutbound") and mode == "Disabled":
        raise ArmError(400, "InvalidManagedNetworkTransition", "Managed network isolation cannot be disabled.")
    if existing:
        for name in ("storageAccount", "keyVault"):
            new, before = get_path(body, f"properties.{name}"), get_path(existing.body, f"properties.{name}")
            if new and before and new.lower() != before.lower():
                raise ArmError(400, "CannotChangeDependency", f"properties.{name} cannot change after creation.")


def _validate_outbound_rule(state: State, resource_id: str, body: Json) -> None:
    workspace = state.get(resource_id.rsplit("/outboundRules/", 1)[0].rsplit("/outboundrules/", 1)[0])
    if workspace is None:
        raise ArmError(404, "ResourceNotFound", "The workspace was not found.")
    kind = get_path(body, "properties.type")
    mode = get_path(workspace.body, "properties.managedNetwork.isolationMode")
    if kind not in ("FQDN", "PrivateEndpoint", "ServiceTag"):
        raise ArmError(
            400, "ValidationError", f"Outbound rule type {kind!r} is not FQDN, PrivateEndpoint or ServiceTag."
        )
    if kind in ("FQDN", "ServiceTag") and mode != "AllowOnlyApprovedOutbound":
        raise ArmError(400, "ValidationError", f"{kind} outbound rules need isolation mode AllowOnlyApprovedOutbound.")
    if kind == "PrivateEndpoint":
        target = get_path(body, "properties.destination.serviceResourceId")
        if not state.get(target or ""):
            raise ArmError(400, "ValidationError", f"Private endpoint target {target} not found.")


def stored_body(state: State, resource_id: str, body: Json, existing: Resource | None) -> Json:
    """The body to store: inline children split off, ids, types and read-only fields filled in."""
    from armemu import schema  # it builds on this module's errors

    body = schema.conform(type_of(resource_id), body)  # what the model lacks or makes read-only is gone
    info = TYPES[type_of(resource_id)]
    stored = merge_patch(info.defaults, body) if existing is None else copy.deepcopy(body)
    properties = stored.setdefault("properties", {})
    for prop in info.inline:
        properties.pop(prop, None)  # children are stored as their own resources
    if type_of(resource_id) == ML_WORKSPACE:
        (properties.get("managedNetwork") or {}).pop("outboundRules", None)
        properties.pop("privateEndpointConnections", None)
    for readonly in ("provisioningState", "resourceGuid", *READ_ONLY.get(type_of(resource_id), ())):
        properties.pop(readonly, None)
    if type_of(resource_id).endswith("/privateendpointconnections"):
        _complete_connection(resource_id, properties, existing)
    if existing is not None:
        kept = {key: value for key, value in existing.body.get("properties", {}).items() if key in _SERVICE_OWNED}
        properties.update(kept)
        network_status = get_path(existing.body, "properties.managedNetwork.status")
        if network_status is not None:
            properties.setdefault("managedNetwork", {})["status"] = network_status
    if type_of(resource_id) in resource_guid_types():
        before = get_path(existing.body, "properties.resourceGuid") if existing else None
        properties["resourceGuid"] = before or str(uuid.uuid4())
    if type_of(resource_id) == "microsoft.network/publicipaddresses":
        properties["ipAddress"] = _public_ip(resource_id)
    if type_of(resource_id) == "microsoft.network/privateendpoints":
        properties["_ip"] = (existing.body["properties"].get("_ip") if existing else None) or _allocate_ip(
            state, get_path(body, "properties.subnet.id")
        )
    if type_of(resource_id) == ML_WORKSPACE and existing is None:
        managed = properties.setdefault("managedNetwork", {})
        managed.setdefault("isolationMode", "Disabled")
        managed["status"] = {"status": "Inactive", "sparkReady": False}
        properties["workspaceId"] = str(_stable_uuid(resource_id))
        properties["discoveryUrl"] = f"https://{stored.get('location', 'westus')}.api.azureml.ms/discovery"
    stored["etag"] = new_etag()
    return stored


_SERVICE_OWNED = {"_ip", "workspaceId", "discoveryUrl"}


def seeded(resource_id: str, body: Json) -> Json:
    """A resource written as already existing gets what Azure assigned when it was created."""
    properties = body.setdefault("properties", {})
    if type_of(resource_id) in resource_guid_types():
        properties.setdefault("resourceGuid", str(uuid.uuid4()))
    if type_of(resource_id) == ML_WORKSPACE:
        properties.setdefault("workspaceId", _stable_uuid(resource_id))
    return body


READ_ONLY = {  # properties the service computes: never taken from a request body
    "microsoft.network/virtualnetworks/subnets": ("ipConfigurations", "privateEndpoints"),
    "microsoft.network/networksecuritygroups": ("subnets", "defaultSecurityRules"),
    "microsoft.network/routetables": ("subnets",),
    "microsoft.network/natgateways": ("subnets",),
    "microsoft.network/serviceendpointpolicies": ("subnets",),
}


def _complete_connection(resource_id: str, properties: Json, existing: Resource | None) -> None:
    """A connection always names its private endpoint and says whether action is required."""
    before = existing.body.get("properties", {}) if existing else {}
    group = resource_id.split("/providers/")[0]
    name = resource_id.rsplit("/", 1)[-1]
    properties.setdefault(
        "privateEndpoint",
        before.get("privateEndpoint") or {"id": f"{group}/providers/Microsoft.Network/privateEndpoints/{name}"},
    )
    state = properties.setdefault("privateLinkServiceConnectionState", {})
    state.setdefault("actionsRequired", "None")


def merge_patch(target: Json, patch: Json) -> Json:
    merged = copy.deepcopy(target)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _nic_id(endpoint_id: str) -> str:
    group, name = endpoint_id.split("/providers/")[0], endpoint_id.rsplit("/", 1)[-1]
    return f"{group}/providers/Microsoft.Network/networkInterfaces/{name}.nic"


def _stable_uuid(seed: str) -> str:
    digest = hashlib.sha256(seed.lower().encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _public_ip(resource_id: str) -> str:
    digest = hashlib.sha256(resource_id.lower().encode()).digest()
    return f"20.{digest[0] % 200 + 10}.{digest[1]}.{digest[2] % 250 + 2}"


def _allocate_ip(state: State, subnet_id: str | None) -> str | None:
    subnet = state.get(subnet_id or "")
    if subnet is None:
        return None
    network = ipaddress.ip_network(get_path(subnet.body, "properties.addressPrefix"))
    used = {
        get_path(r.body, "properties._ip")
        for r in state.find(lambda r: type_of(r.id) == "microsoft.network/privateendpoints")
    }
    for host in list(network.hosts())[3:]:  # Azure keeps the first four addresses (and the last)
        if str(host) not in used:
            return str(host)
    raise ArmError(400, "SubnetIsFull", f"Subnet {subnet_id} has no free address.")


def after_put(state: State, resource: Resource, previous: Resource | None) -> None:
    """Side effects of a write the real service performs."""
    kind = type_of(resource.id)
    if kind == "microsoft.machinelearningservices/workspaces/outboundrules":
        _rule_written(state, resource, previous)
    if kind == ML_WORKSPACE:
        mode = get_path(resource.body, "properties.managedNetwork.isolationMode")
        if mode == "AllowOnlyApprovedOutbound":
            _add_required_rules(state, resource)
        if get_path(resource.body, "properties.provisionNetworkNow") and mode in (
            "AllowInternetOutbound",
            "AllowOnlyApprovedOutbound",
        ):
            provision(state, resource, include_spark=False)
    if kind == "microsoft.network/privateendpoints/privatednszonegroups":
        _register_dns(state, resource)
    if kind == "microsoft.network/privateendpoints":
        _connect_workspaces(state, resource, previous)
    if kind == "microsoft.network/azurefirewalls":
        _assign_firewall_ips(state, resource, previous)


def _workspace_connections(state: State, endpoint: Resource) -> dict[str, str]:
    """The connections a private endpoint has on the workspaces it links to: id -> workspace id.
    Named `<endpoint>.<guid>` (a convention: Azure's naming is not verified, docs/emulator.md)."""
    name = f"{endpoint.id.rsplit('/', 1)[-1]}.{_stable_uuid(endpoint.key)}"
    targets = [
        state.get(get_path(connection, "properties.privateLinkServiceId") or "")
        for connection in get_path(endpoint.body, "properties.privateLinkServiceConnections") or []
    ]
    return {
        f"{target.id}/privateEndpointConnections/{name}": target.id
        for target in targets
        if target is not None and type_of(target.id) == ML_WORKSPACE
    }


def _connect_workspaces(state: State, endpoint: Resource, previous: Resource | None) -> None:
    """A private endpoint to a workspace appears on it as an Approved connection (auto-approved, as for
    a creator allowed on the workspace); one it no longer links to goes, an existing one is kept as is."""
    wanted = _workspace_connections(state, endpoint)
    for gone in set(_workspace_connections(state, previous) if previous else ()) - set(wanted):
        state.delete(gone)
    for connection_id, workspace_id in wanted.items():
        if state.get(connection_id) is None:
            approved = {"status": "Approved", "description": "Auto-Approved", "actionsRequired": "None"}
            body = {
                "properties": {"privateEndpoint": {"id": endpoint.id}, "privateLinkServiceConnectionState": approved},
                "etag": new_etag(),
            }
            state.put(connection_id, body, workspace_id)


def _assign_firewall_ips(state: State, firewall: Resource, previous: Resource | None) -> None:
    """Each ipConfiguration of a firewall gets a private IP in its subnet (AzureFirewallSubnet): the
    first address after Azure's reserved ones, kept across updates; a client cannot set it."""
    before = {
        config.get("name"): get_path(config, "properties.privateIPAddress")
        for config in (get_path(previous.body, "properties.ipConfigurations") if previous else None) or []
    }
    for config in get_path(firewall.body, "properties.ipConfigurations") or []:
        properties = config.setdefault("properties", {})
        properties.pop("privateIPAddress", None)
        address = before.get(config.get("name")) or _allocate_ip(state, get_path(properties, "subnet.id"))
        if address is not None:
            properties["privateIPAddress"] = address


def _add_required_rules(state: State, workspace: Resource) -> None:
    """Approved-outbound workspaces get Azure's own rules to their dependencies (category Required)."""
    properties = workspace.body["properties"]
    required = {
        "__SYS_ST_AzureActiveDirectory": {
            "type": "ServiceTag",
            "destination": {
                "serviceTag": "AzureActiveDirectory",
                "protocol": "TCP",
                "portRanges": "80,443",
                "action": "Allow",
            },
        },
        "__SYS_ST_AzureMachineLearning": {
            "type": "ServiceTag",
            "destination": {
                "serviceTag": "AzureMachineLearning",
                "protocol": "TCP",
                "portRanges": "443",
                "action": "Allow",
            },
        },
    }
    for name, target in (("__SYS_PE_storage_blob", "storageAccount"), ("__SYS_PE_keyvault", "keyVault")):
        if properties.get(target):
            required[name] = {
                "type": "PrivateEndpoint",
                "destination": {
                    "serviceResourceId": properties[target],
                    "subresourceTarget": "blob" if target == "storageAccount" else "vault",
                    "sparkEnabled": False,
                },
            }
    for name, rule in required.items():
        rule_id = f"{workspace.id}/outboundRules/{name}"
        if state.get(rule_id) is None:
            body = {"properties": {**rule, "category": "Required", "status": "Inactive"}, "etag": new_etag()}
            state.put(rule_id, body, workspace.id)


def rule_defaults(state: State, rule: Resource) -> None:
    """What Azure ML fills in on an outbound rule it is given: the category, and a status that follows
    its workspace's managed network."""
    properties = rule.body["properties"]
    properties.setdefault("category", "UserDefined")
    workspace = state.get(rule.parent or "")
    active = workspace is not None and get_path(workspace.body, "properties.managedNetwork.status.status") == "Active"
    properties["status"] = "Active" if active else "Inactive"


def _rule_written(state: State, rule: Resource, previous: Resource | None) -> None:
    rule_defaults(state, rule)
    properties = rule.body["properties"]
    if previous is not None:
        _remove_connection(state, previous)
    if properties.get("type") == "PrivateEndpoint":
        target = state.get(get_path(properties, "destination.serviceResourceId"))
        if target is not None and type_of(target.id) in PE_TARGETS:
            name = connection_name(rule)
            connection = {
                "properties": {
                    "privateEndpoint": {"id": _managed_endpoint_id(rule, state.get(rule.parent or ""))},
                    "privateLinkServiceConnectionState": {
                        "status": "Pending",
                        "description": f"Azure ML managed network rule {rule.id}",
                        "actionsRequired": "None",
                    },
                    "groupIds": [get_path(properties, "destination.subresourceTarget")],
                    "provisioningState": "Succeeded",
                },
                "etag": new_etag(),
            }
            state.put(f"{target.id}/privateEndpointConnections/{name}", connection, target.id)


def connection_name(rule: Resource) -> str:
    """The connection a managed-network PrivateEndpoint rule creates on its target: `<workspace>.<rule>`
    (its private endpoint, `_managed_endpoint_id`, names the workspace's workspaceId and the rule)."""
    return f"{rule.parent.rsplit('/', 1)[-1] if rule.parent else 'ws'}.{rule.id.rsplit('/', 1)[-1]}"


MANAGED_SUBSCRIPTION = "00000000-0000-0000-0000-0000000000ff"  # Azure ML's own, where managed networks live


def _managed_endpoint_id(rule: Resource, workspace: Resource | None) -> str:
    """The private endpoint Azure ML creates in the workspace's managed network for a rule:
    resource group `azureml-managed-<workspaceId>`, named `<workspace>-<rule>` (the emulator's
    convention; Azure's real naming is not verified, see docs/emulator.md)."""
    workspace_name = (rule.parent or "").rsplit("/", 1)[-1]
    workspace_id = get_path(workspace.body, "properties.workspaceId") if workspace else None
    return (
        f"/subscriptions/{MANAGED_SUBSCRIPTION}/resourceGroups/azureml-managed-{workspace_id or workspace_name}"
        f"/providers/Microsoft.Network/privateEndpoints/{workspace_name}-{rule.id.rsplit('/', 1)[-1]}"
    )


def _remove_connection(state: State, rule: Resource) -> None:
    target_id = get_path(rule.body, "properties.destination.serviceResourceId")
    if target_id:
        state.delete(f"{target_id}/privateEndpointConnections/{connection_name(rule)}")


def _register_dns(state: State, group: Resource) -> None:
    endpoint = state.get(group.parent or "")
    if endpoint is None:
        return
    ip = get_path(endpoint.body, "properties._ip")
    name = endpoint.id.rsplit("/", 1)[-1]
    for config in get_path(group.body, "properties.privateDnsZoneConfigs") or []:
        zone = state.get(get_path(config, "properties.privateDnsZoneId") or "")
        if zone is not None and ip:
            record = {
                "properties": {
                    "ttl": 10,
                    "aRecords": [{"ipv4Address": ip}],
                    "fqdn": f"{name}.{zone.id.rsplit('/', 1)[-1]}.",
                }
            }
            body = {**record, "etag": new_etag(), "_registeredBy": endpoint.key}
            state.put(f"{zone.id}/A/{name}", body, zone.id)


def provision(state: State, workspace: Resource, include_spark: bool) -> Json:
    status = {
        "status": "Active",
        "sparkReady": include_spark or bool(get_path(workspace.body, "properties.managedNetwork.status.sparkReady")),
    }
    workspace.body["properties"].setdefault("managedNetwork", {})["status"] = status
    for rule in state.children(workspace.id, "outboundRules"):
        rule.body["properties"]["status"] = "Active"
    return status


def check_delete(state: State, resource: Resource) -> None:
    """409 for what Azure refuses to delete while in use."""
    kind = type_of(resource.id)
    users = {
        "microsoft.network/networksecuritygroups": "networkSecurityGroup",
        "microsoft.network/routetables": "routeTable",
        "microsoft.network/natgateways": "natGateway",
    }
    if kind in users:
        for subnet in _subnets_using(state, resource.id, users[kind]):
            raise ArmError(409, "InUseByResource", f"{resource.id} is in use by {subnet.id} and cannot be deleted.")
    if kind == "microsoft.network/virtualnetworks/subnets":
        for endpoint in _endpoints_in(state, resource.id):
            raise ArmError(409, "InUseSubnetCannotBeDeleted", f"Subnet {resource.id} is in use by {endpoint.id}.")
    if kind == "microsoft.network/publicipaddresses":
        for gateway in state.find(lambda r: type_of(r.id) == "microsoft.network/natgateways"):
            if any(
                ip.get("id", "").lower() == resource.key
                for ip in get_path(gateway.body, "properties.publicIpAddresses") or []
            ):
                raise ArmError(409, "PublicIPAddressInUse", f"{resource.id} is in use by {gateway.id}.")
    required_rule = get_path(resource.body, "properties.category") == "Required"
    if kind == "microsoft.machinelearningservices/workspaces/outboundrules" and required_rule:
        raise ArmError(400, "ValidationError", "Required outbound rules are managed by Azure and cannot be deleted.")


def after_delete(state: State, resource: Resource) -> None:
    kind = type_of(resource.id)
    if kind == PEERING:
        remote = get_path(resource.body, "properties.remoteVirtualNetwork.id") or ""
        for other in _peerings_back(state, resource.parent or "", remote):
            other.body["_disconnected"] = True
    if kind == "microsoft.network/virtualnetworks":
        for other in state.find(lambda r: type_of(r.id) == PEERING):
            if (get_path(other.body, "properties.remoteVirtualNetwork.id") or "").lower() == resource.key:
                other.body["_disconnected"] = True
    if kind == "microsoft.machinelearningservices/workspaces/outboundrules":
        _remove_connection(state, resource)
    if kind == "microsoft.network/privateendpoints":
        for connection_id in _workspace_connections(state, resource):
            state.delete(connection_id)
    if kind in ("microsoft.network/privateendpoints", "microsoft.network/privateendpoints/privatednszonegroups"):
        endpoint = resource.key if kind.endswith("privateendpoints") else resource.parent
        for record in state.find(lambda r: r.body.get("_registeredBy") == endpoint):
            state.delete(record.id)  # the zone group's records go with it, as in Azure


def _subnets_using(state: State, resource_id: str, prop: str) -> list[Resource]:
    return state.find(
        lambda r: (
            type_of(r.id) == "microsoft.network/virtualnetworks/subnets"
            and (get_path(r.body, f"properties.{prop}.id") or "").lower() == resource_id.lower()
        )
    )


def _endpoints_in(state: State, subnet_id: str) -> list[Resource]:
    return state.find(
        lambda r: (
            type_of(r.id) == "microsoft.network/privateendpoints"
            and (get_path(r.body, "properties.subnet.id") or "").lower() == subnet_id.lower()
        )
    )


# reads ------------------------------------------------------------------------------------------


def render(state: State, resource: Resource, provisioning: str = "Succeeded") -> Json:
    """The resource as GET returns it: stored body plus children and derived read-only fields."""
    kind = type_of(resource.id)
    info = TYPES.get(kind, TypeInfo())
    body = copy.deepcopy(resource.body)
    name = resource.id.rsplit("/", 1)[-1]
    arm_type = "/".join(resource.id.strip("/").split("/")[5:][0:1] + resource.id.strip("/").split("/")[6::2])
    body = {"id": resource.id, "name": name, "type": arm_type, **body}
    modified_by = body.pop("_modifiedBy", None)
    if modified_by and kind.startswith("microsoft.machinelearningservices/"):  # the network RP sends none
        body["systemData"] = {"lastModifiedBy": modified_by[0], "lastModifiedByType": modified_by[1]}
    properties = body.setdefault("properties", {})
    ip = properties.pop("_ip", None)
    if kind != "microsoft.machinelearningservices/workspaces/outboundrules" and "provisioningState" not in properties:
        properties["provisioningState"] = provisioning
    for prop, child_type in info.inline.items():
        properties[prop] = [render(state, child) for child in state.children(resource.id, child_type)]
    if kind == ML_WORKSPACE:
        managed = properties.setdefault("managedNetwork", {})
        managed["outboundRules"] = {
            child.id.rsplit("/", 1)[-1]: render(state, child)["properties"]
            for child in state.children(resource.id, "outboundRules")
        }
    if kind in PE_TARGETS or kind == ML_WORKSPACE:
        properties["privateEndpointConnections"] = [
            render(state, child) for child in state.children(resource.id, "privateEndpointConnections")
        ]
    if kind == "microsoft.network/networksecuritygroups":
        properties["defaultSecurityRules"] = [_default_rule(resource.id, *rule) for rule in DEFAULT_RULES]
        properties["subnets"] = [{"id": s.id} for s in _subnets_using(state, resource.id, "networkSecurityGroup")]
    if kind == "microsoft.network/routetables":
        properties["subnets"] = [{"id": s.id} for s in _subnets_using(state, resource.id, "routeTable")]
    if kind == "microsoft.network/natgateways":
        properties["subnets"] = [{"id": s.id} for s in _subnets_using(state, resource.id, "natGateway")]
    if kind == "microsoft.network/azurefirewalls":
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
    if kind == "microsoft.network/virtualnetworks/subnets":
        if "delegations" in properties:
            properties["delegations"] = [_delegation(resource, body, item) for item in properties["delegations"] or []]
        endpoints = _endpoints_in(state, resource.id)
        properties["privateEndpoints"] = [{"id": pe.id} for pe in endpoints]
        properties["ipConfigurations"] = [  # each endpoint's NIC, as in _render_endpoint
            {"id": f"{_nic_id(pe.id)}/ipConfigurations/privateEndpointIpConfig"} for pe in endpoints
        ]
    if kind == "microsoft.network/privateendpoints":
        _render_endpoint(state, body, ip)
    if kind == PEERING:
        properties["peeringState"] = _peering_state(state, resource)
        properties["peeringSyncLevel"] = "FullyInSync"
        remote = state.get(get_path(properties, "remoteVirtualNetwork.id") or "")
        space = get_path(remote.body, "properties.addressSpace") if remote else None
        if space is not None:
            properties["remoteAddressSpace"] = properties["remoteVirtualNetworkAddressSpace"] = space
    if kind == "microsoft.network/serviceendpointpolicies":
        properties["subnets"] = [
            {"id": subnet.id}
            for subnet in state.find(lambda r: type_of(r.id) == "microsoft.network/virtualnetworks/subnets")
            if any(
                (policy.get("id") or "").lower() == resource.key
                for policy in get_path(subnet.body, "properties.serviceEndpointPolicies") or []
            )
        ]
    if kind == "microsoft.network/privatednszones":
        records = state.children(resource.id)
        links = [r for r in records if type_of(r.id).endswith("virtualnetworklinks")]
        registering = [link for link in links if get_path(link.body, "properties.registrationEnabled")]
        properties.update(
            numberOfRecordSets=len(records) - len(links) + 1,  # + the zone's SOA record
            maxNumberOfRecordSets=25000,
            numberOfVirtualNetworkLinks=len(links),
            maxNumberOfVirtualNetworkLinks=1000,
            numberOfVirtualNetworkLinksWithRegistration=len(registering),
            maxNumberOfVirtualNetworkLinksWithRegistration=100,
        )
    if kind == "microsoft.network/privatednszones/a":
        zone_name = (resource.parent or "").rsplit("/", 1)[-1]
        properties.setdefault("fqdn", f"{name}.{zone_name}.")
        properties.setdefault("isAutoRegistered", False)
    if kind == "microsoft.network/privatednszones/virtualnetworklinks":
        properties["virtualNetworkLinkState"] = "Completed"
    return body


def _default_rule(nsg_id: str, name: str, priority: int, direction: str, access: str, source: str, dest: str) -> Json:
    return {
        "id": f"{nsg_id}/defaultSecurityRules/{name}",
        "name": name,
        "properties": {
            "description": f"Default rule {name}",
            "protocol": "*",
            "sourcePortRange": "*",
            "destinationPortRange": "*",
            "sourceAddressPrefix": source,
            "destinationAddressPrefix": dest,
            "access": access,
            "priority": priority,
            "direction": direction,
            "provisioningState": "Succeeded",
        },
    }


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


def _render_endpoint(state: State, body: Json, ip: str | None) -> None:
    properties = body["properties"]
    group = body["id"].rsplit("/providers/", 1)[0]
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
    if group == "amlworkspace":
        workspace_id = get_path(target.body, "properties.workspaceId")
        location = target.body.get("location", "westus")
        return [
            f"{workspace_id}.workspace.{location}.api.azureml.ms",
            f"ml-{name}-{location}-{workspace_id}.{location}.notebooks.azure.net",
        ]
    suffix = {"registry": "azurecr.io", "vault": "vault.azure.net"}.get(group, f"{group}.core.windows.net")
    return [f"{name}.{suffix}"]
