"""Desired nodes for the workspace itself: inbound access, managed network, private endpoint, DNS.

This is where Azure ML's network rules live as data: how publicNetworkAccess and the IP allowlist
map onto the workspace body, which outbound rules the spec declares (presets expanded), when the
managed network needs provisioning, which private DNS zones a workspace private endpoint needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.api.presets import PRESET_FQDNS
from secureml_operator.azure.ids import ArmId, resource_id
from secureml_operator.desired.fields import Exact, FieldRule, Json, Members, get_path
from secureml_operator.desired.graph import (
    Action,
    ChildSet,
    ChildSpec,
    DesiredGraph,
    Lifecycle,
    ListPolicy,
    LiveLookup,
    Node,
    Step,
)
from secureml_operator.desired.names import preset_rule_name

ML = "Microsoft.MachineLearningServices"
NETWORK = "Microsoft.Network"
WORKSPACE_GROUP_ID = "amlworkspace"
WORKSPACE_DNS_ZONES = ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net")
AZURE_MANAGED_RULE_CATEGORIES = frozenset({"required", "recommended", "dependency"})


def workspace_id(spec: SecureMLWorkspaceSpec) -> ArmId:
    return resource_id(spec.azure.subscription_id, spec.azure.resource_group, ML, "workspaces", spec.workspace.name)


def _inbound_fields(spec: SecureMLWorkspaceSpec) -> list[FieldRule]:
    access = spec.inbound.public_network_access
    if access == "Disabled":
        return [Exact("properties.publicNetworkAccess", "Disabled")]
    selected = access == "EnabledFromSelectedIPs"
    ip_rules = tuple({"value": cidr} for cidr in (spec.inbound.allowed_ip_ranges or [])) if selected else ()
    return [
        Exact("properties.publicNetworkAccess", "Enabled"),
        Exact("properties.networkAcls.defaultAction", "Deny" if selected else "Allow"),
        Members("properties.networkAcls.ipRules", ip_rules, key="value"),
    ]


def _managed_network_fields(spec: SecureMLWorkspaceSpec) -> list[FieldRule]:
    managed = spec.outbound.managed_network
    if managed is None:
        return [Exact("properties.managedNetwork.isolationMode", "Disabled")]
    fields: list[FieldRule] = [Exact("properties.managedNetwork.isolationMode", managed.isolation_mode)]
    if managed.isolation_mode == "AllowOnlyApprovedOutbound" and managed.firewall_sku:
        fields.append(Exact("properties.managedNetwork.firewallSku", managed.firewall_sku))
    return fields


def _workspace_body(spec: SecureMLWorkspaceSpec) -> Json:
    workspace = spec.workspace
    identity: Json = {"type": workspace.identity.type}
    if workspace.identity.type == "UserAssigned" and workspace.identity.user_assigned_identity_id:
        identity["userAssignedIdentities"] = {workspace.identity.user_assigned_identity_id: {}}
    properties: Json = {
        "friendlyName": workspace.name,
        "storageAccount": workspace.storage_account_id,
        "keyVault": workspace.key_vault_id,
        "applicationInsights": workspace.application_insights_id,
        "containerRegistry": workspace.container_registry_id,
        "imageBuildCompute": workspace.image_build_compute,
        "v1LegacyMode": False,
    }
    if workspace.identity.type == "UserAssigned":
        properties["primaryUserAssignedIdentity"] = workspace.identity.user_assigned_identity_id
    managed = spec.outbound.managed_network
    if managed is not None:
        properties["provisionNetworkNow"] = bool(managed.provision_now)
    return {
        "location": spec.azure.location,
        "identity": identity,
        "sku": {"name": "Basic", "tier": "Basic"},
        "kind": "Default",
        "properties": {key: value for key, value in properties.items() if value is not None},
    }


def _outbound_rules(spec: SecureMLWorkspaceSpec) -> tuple[ChildSpec, ...]:
    managed = spec.outbound.managed_network
    if managed is None:
        return ()
    rules: list[ChildSpec] = []
    destination: Json
    for rule in managed.rules or []:
        if rule.fqdn is not None:
            rules.append(_fqdn_rule(rule.name, rule.fqdn))
        elif rule.service_tag is not None:
            tag = rule.service_tag
            destination = {
                "serviceTag": tag.tag,
                "protocol": tag.protocol,
                "portRanges": tag.port_ranges,
                "action": "Allow",
            }
            rules.append(_rule(rule.name, "ServiceTag", destination, list(destination)))
        elif rule.private_endpoint is not None:
            target = rule.private_endpoint
            destination = {
                "serviceResourceId": target.service_resource_id,
                "subresourceTarget": target.subresource_target,
                "sparkEnabled": bool(target.spark_enabled),
            }
            rules.append(_rule(rule.name, "PrivateEndpoint", destination, list(destination)))
    for preset in managed.presets or []:
        rules.extend(_fqdn_rule(preset_rule_name(preset, fqdn), fqdn) for fqdn in PRESET_FQDNS[preset])
    return tuple(rules)


def _fqdn_rule(name: str, fqdn: str) -> ChildSpec:
    body = {"properties": {"type": "FQDN", "category": "UserDefined", "destination": fqdn}}
    return ChildSpec(name, body, (Exact("properties.type", "FQDN"), Exact("properties.destination", fqdn)))


def _rule(name: str, kind: str, destination: Json, owned: list[str]) -> ChildSpec:
    body = {"properties": {"type": kind, "category": "UserDefined", "destination": destination}}
    fields: list[FieldRule] = [Exact("properties.type", kind)]
    fields += [Exact(f"properties.destination.{key}", destination[key]) for key in owned]
    return ChildSpec(name, body, tuple(fields))


def _azure_managed(rule: Json) -> bool:
    return str(get_path(rule, "properties.category") or "").lower() in AZURE_MANAGED_RULE_CATEGORIES


def _provisioning(spec: SecureMLWorkspaceSpec, arm_id: ArmId) -> Action | None:
    managed = spec.outbound.managed_network
    if managed is None or not managed.provision_now:
        return None
    want_spark = bool(managed.spark_ready)

    def steps(live: Json, _lookup: LiveLookup) -> list[Step]:
        status = get_path(live, "properties.managedNetwork.status") or {}
        active = str(status.get("status", "")).lower() == "active"
        if active and (status.get("sparkReady") or not want_spark):
            return []
        reason = "provision the managed network" + (" with spark" if want_spark else "")
        return [Step("post", arm_id, {"includeSpark": want_spark}, reason)]

    return Action("provisionManagedNetwork", steps)


def add_workspace(graph: DesiredGraph, spec: SecureMLWorkspaceSpec) -> Node:
    arm_id = workspace_id(spec)
    managed = spec.outbound.managed_network
    policy = ListPolicy(managed.rules_policy) if managed is not None else ListPolicy.AUTHORITATIVE
    children = (
        ChildSet(
            child_type="outboundRules",
            inline_path="properties.managedNetwork.outboundRules",
            children=_outbound_rules(spec),
            policy=policy,
            inline_is_map=True,
            ignore=_azure_managed,
        ),
    )
    node = graph.add(
        Node(
            id=arm_id,
            create_body=_workspace_body(spec),
            fields=(*_inbound_fields(spec), *_managed_network_fields(spec)),
            write="patch",
            children=children if managed is not None else (),
            action=_provisioning(spec, arm_id),
        )
    )
    graph.anchor = node.key
    return node


APPROVE_ACTION = "approvePrivateEndpointConnections"


def ours_pending(target: Json, workspace: Json | None, rules: Iterable[str]) -> list[Json]:
    """Pending connections on a target that our workspace's managed network asked for, exactly: the
    managed private endpoint of rule R is `<workspace>-<R>`, in the managed resource group named after
    the workspace's Azure-assigned workspaceId (not guessable from outside). Anything else stays
    Pending. (How Azure names these endpoints is not verified: docs/emulator.md.)"""
    workspace_guid = str(get_path(workspace or {}, "properties.workspaceId") or "").lower()
    name = str((workspace or {}).get("name") or "").lower()
    if not workspace_guid or not name:
        return []
    endpoints = {f"{name}-{rule}".lower() for rule in rules}
    pending = []
    for connection in get_path(target, "properties.privateEndpointConnections") or []:
        state = str(get_path(connection, "properties.privateLinkServiceConnectionState.status")).lower()
        try:
            endpoint = ArmId.parse(str(get_path(connection, "properties.privateEndpoint.id") or ""))
        except ValueError:
            continue
        ours = endpoint.name.lower() in endpoints and workspace_guid in endpoint.resource_group.lower()
        if state == "pending" and ours:
            pending.append(connection)
    return pending


def endpoint_rules(spec: SecureMLWorkspaceSpec) -> dict[str, list[str]]:
    """The names of the PrivateEndpoint rules, by the key of the target each points at."""
    managed = spec.outbound.managed_network
    rules: dict[str, list[str]] = {}
    for rule in managed.rules if managed is not None else []:
        if rule.private_endpoint is not None:
            rules.setdefault(ArmId.parse(rule.private_endpoint.service_resource_id).key, []).append(rule.name)
    return rules


def add_connection_approvals(graph: DesiredGraph, spec: SecureMLWorkspaceSpec) -> None:
    """Each target of a PrivateEndpoint rule is read (to report Pending connections); with
    autoApprove, what our rules made Pending there is approved."""
    managed = spec.outbound.managed_network
    if managed is None:
        return
    workspace = workspace_id(spec)
    rules = endpoint_rules(spec)
    auto_approve: dict[str, bool] = {}
    for rule in managed.rules:
        if rule.private_endpoint is not None:
            target = rule.private_endpoint.service_resource_id
            auto_approve[target] = auto_approve.get(target, False) or rule.private_endpoint.auto_approve
    for target, approve in sorted(auto_approve.items()):
        target_id = ArmId.parse(target)

        def steps(live: Json, lookup: LiveLookup, target_id: ArmId = target_id) -> list[Step]:
            return [
                Step(
                    "put",
                    target_id.child("privateEndpointConnections", connection["name"]),
                    {
                        "properties": {
                            "privateLinkServiceConnectionState": {
                                "status": "Approved",
                                "description": f"Approved by SecureMLWorkspace for {workspace.name}",
                            }
                        }
                    },
                    f"approve private endpoint connection {connection['name']}",
                )
                for connection in ours_pending(live, lookup(workspace.key), rules.get(target_id.key, []))
            ]

        graph.add(
            Node(
                id=target_id,
                create_body=None,
                lifecycle=Lifecycle.EXTERNAL,
                depends_on=(workspace.key,),
                action=Action(APPROVE_ACTION, steps) if approve else None,
            )
        )


def add_workspace_private_endpoint(graph: DesiredGraph, spec: SecureMLWorkspaceSpec, subnet_id: str) -> None:
    """The workspace's own private endpoint (group `amlworkspace`), with its DNS zones when Managed."""
    endpoint = spec.inbound.private_endpoint
    if endpoint is None:
        return
    zones = WORKSPACE_DNS_ZONES if endpoint.private_dns_zones == "Managed" else ()
    workspace = workspace_id(spec)
    depends_on = (workspace.key, ArmId.parse(subnet_id).key)  # the subnet counts when we create it
    name = f"pe-{spec.workspace.name}"
    add_private_endpoint(graph, spec, name, workspace, WORKSPACE_GROUP_ID, subnet_id, zones, depends_on)


def add_private_endpoint(
    graph: DesiredGraph,
    spec: SecureMLWorkspaceSpec,
    name: str,
    target: ArmId,
    group_id: str,
    subnet_id: str,
    zones: tuple[str, ...],
    depends_on: tuple[str, ...],
) -> None:
    """A private endpoint to `target`, and for each zone: the zone, its VNet link, the zone group entry."""
    subscription, group = spec.azure.subscription_id, spec.azure.resource_group
    pe_id = resource_id(subscription, group, NETWORK, "privateEndpoints", name)
    connection: dict[str, Any] = {
        "name": name,
        "properties": {"privateLinkServiceId": str(target), "groupIds": [group_id]},
    }
    graph.add(
        Node(
            id=pe_id,
            create_body={
                "location": spec.azure.location,
                "properties": {"subnet": {"id": subnet_id}, "privateLinkServiceConnections": [connection]},
            },
            fields=(Exact("properties.subnet.id", subnet_id),),
            depends_on=tuple(key for key in depends_on if key in graph.nodes),
        )
    )
    if not zones:
        return
    vnet = ArmId.parse(subnet_id).parent
    assert vnet is not None, "a subnet id always has its virtual network as parent"
    zone_ids = []
    for zone in zones:
        zone_id = resource_id(subscription, group, NETWORK, "privateDnsZones", zone)
        zone_ids.append(zone_id)
        if zone_id.key in graph.nodes:
            continue  # shared by several endpoints of this workspace
        graph.add(Node(id=zone_id, create_body={"location": "global"}, lifecycle=Lifecycle.SHARED))
        graph.add(
            Node(
                id=zone_id.child("virtualNetworkLinks", f"{vnet.name}-link"),
                create_body={"location": "global", "properties": {"registrationEnabled": False}},
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
            fields=(Members("properties.privateDnsZoneConfigs", zone_configs, "properties.privateDnsZoneId"),),
            depends_on=(pe_id.key, *(zone_id.key for zone_id in zone_ids)),
            tagged=False,
        )
    )
