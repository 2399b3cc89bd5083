"""The workspace (Role.WORKSPACE): the anchor every other node waits for, since every name in the
graph derives from its name.

It owns who may reach it (publicNetworkAccess and the IP allowlist, mapped onto `networkAcls`) and
its managed network's isolation mode and firewall SKU, written by PATCH so others' fields stay. Its
outbound rules are a child set (outbound_rules.py); provisioning the managed network is an action
that follows the converged workspace.
"""

from __future__ import annotations

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.ids import ArmId, resource_id
from secureml_operator.desired import outbound_rules
from secureml_operator.desired.fields import Exact, FieldRule, Json, Members, get_path
from secureml_operator.desired.graph import Action, DesiredGraph, LiveLookup, Node, Step, Verb, Write
from secureml_operator.desired.roles import Role

ML = "Microsoft.MachineLearningServices"


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
        return [Step(Verb.POST, arm_id, {"includeSpark": want_spark}, reason)]

    return Action("provisionManagedNetwork", steps)


def add_workspace(graph: DesiredGraph, spec: SecureMLWorkspaceSpec) -> Node:
    arm_id = workspace_id(spec)
    node = graph.add(
        Node(
            id=arm_id,
            create_body=_workspace_body(spec),
            role=Role.WORKSPACE,
            fields=(*_inbound_fields(spec), *_managed_network_fields(spec)),
            write=Write.PATCH,
            children=outbound_rules.child_sets(spec),
            action=_provisioning(spec, arm_id),
        )
    )
    graph.anchor = node.key
    return node
