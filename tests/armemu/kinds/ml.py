"""Azure Machine Learning: workspaces and their managed networks (outbound rules, provisioning, the
Required rules Azure adds) and the private endpoint connections on a workspace. The provider answers
writes with `Location` operations and reports `systemData`."""

from __future__ import annotations

from armemu import rules
from armemu.arm import ArmError, get_path, type_of
from armemu.kinds.base import ResourceBehaviour, behaviour, render
from armemu.kinds.helpers import endpoint_connections, stable_uuid
from armemu.kinds.targets import EndpointConnection, PrivateLinkTarget
from armemu.state import Json, Resource, State, new_etag

WORKSPACE = "microsoft.machinelearningservices/workspaces"
OUTBOUND_RULE = f"{WORKSPACE}/outboundrules"
MANAGED_SUBSCRIPTION = "00000000-0000-0000-0000-0000000000ff"  # Azure ML's own, where managed networks live


class Workspace(ResourceBehaviour):
    kind = WORKSPACE
    lro = "location"
    read_only = ("privateEndpointConnections",)

    def validate(self, state: State, resource_id: str, body: Json, existing: Resource | None) -> None:
        super().validate(state, resource_id, body, existing)
        mode = get_path(body, "properties.managedNetwork.isolationMode")
        old = get_path(existing.body, "properties.managedNetwork.isolationMode") if existing else None
        if old in ("AllowInternetOutbound", "AllowOnlyApprovedOutbound") and mode == "Disabled":
            raise ArmError(400, "InvalidManagedNetworkTransition", "Managed network isolation cannot be disabled.")
        if existing:
            for name in ("storageAccount", "keyVault"):
                new, before = get_path(body, f"properties.{name}"), get_path(existing.body, f"properties.{name}")
                if new and before and new.lower() != before.lower():
                    raise ArmError(400, "CannotChangeDependency", f"properties.{name} cannot change after creation.")

    def stored(self, state: State, resource_id: str, body: Json, existing: Resource | None) -> Json:
        stored = super().stored(state, resource_id, body, existing)
        properties = stored["properties"]
        (properties.get("managedNetwork") or {}).pop("outboundRules", None)  # the rules are their own resources
        if existing is None:
            managed = properties.setdefault("managedNetwork", {})
            managed.setdefault("isolationMode", "Disabled")
            managed["status"] = {"status": "Inactive", "sparkReady": False}
            properties["workspaceId"] = str(stable_uuid(resource_id))
            properties["discoveryUrl"] = f"https://{stored.get('location', 'westus')}.api.azureml.ms/discovery"
        return stored

    def seeded(self, resource_id: str, body: Json) -> Json:
        body = super().seeded(resource_id, body)
        body["properties"].setdefault("workspaceId", stable_uuid(resource_id))
        return body

    def after_put(self, state: State, resource: Resource, previous: Resource | None) -> None:
        mode = get_path(resource.body, "properties.managedNetwork.isolationMode")
        if mode == "AllowOnlyApprovedOutbound":
            _add_required_rules(state, resource)
        if get_path(resource.body, "properties.provisionNetworkNow") and mode in (
            "AllowInternetOutbound",
            "AllowOnlyApprovedOutbound",
        ):
            provision(state, resource, include_spark=False)

    def derive(self, state: State, resource: Resource, body: Json, provisioning: str) -> None:
        properties = body["properties"]
        managed = properties.setdefault("managedNetwork", {})
        managed["outboundRules"] = {
            child.id.rsplit("/", 1)[-1]: render(state, child)["properties"]
            for child in state.children(resource.id, "outboundRules")
        }
        properties["privateEndpointConnections"] = endpoint_connections(state, resource)


class OutboundRule(ResourceBehaviour):
    kind = OUTBOUND_RULE
    lro = "location"
    tracked = False
    reports_provisioning = False  # a rule reports its status instead

    def check_body(self, state: State, resource_id: str, body: Json) -> None:
        rules.check_outbound_rule(state, resource_id, body)

    def validate(self, state: State, resource_id: str, body: Json, existing: Resource | None) -> None:
        super().validate(state, resource_id, body, existing)
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
            raise ArmError(
                400, "ValidationError", f"{kind} outbound rules need isolation mode AllowOnlyApprovedOutbound."
            )
        if kind == "PrivateEndpoint":
            target = get_path(body, "properties.destination.serviceResourceId")
            if not state.get(target or ""):
                raise ArmError(400, "ValidationError", f"Private endpoint target {target} not found.")

    def after_put(self, state: State, resource: Resource, previous: Resource | None) -> None:
        """A PrivateEndpoint rule to a private link target makes a Pending connection on it; a rewritten
        rule's old connection goes first."""
        rule_defaults(state, resource)
        properties = resource.body["properties"]
        if previous is not None:
            _remove_connection(state, previous)
        if properties.get("type") == "PrivateEndpoint":
            target = state.get(get_path(properties, "destination.serviceResourceId"))
            if target is not None and isinstance(behaviour(type_of(target.id)), PrivateLinkTarget):
                name = connection_name(resource)
                connection = {
                    "properties": {
                        "privateEndpoint": {"id": _managed_endpoint_id(resource, state.get(resource.parent or ""))},
                        "privateLinkServiceConnectionState": {
                            "status": "Pending",
                            "description": f"Azure ML managed network rule {resource.id}",
                            "actionsRequired": "None",
                        },
                        "groupIds": [get_path(properties, "destination.subresourceTarget")],
                        "provisioningState": "Succeeded",
                    },
                    "etag": new_etag(),
                }
                state.put(f"{target.id}/privateEndpointConnections/{name}", connection, target.id)

    def check_delete(self, state: State, resource: Resource) -> None:
        if get_path(resource.body, "properties.category") == "Required":
            raise ArmError(
                400, "ValidationError", "Required outbound rules are managed by Azure and cannot be deleted."
            )

    def after_delete(self, state: State, resource: Resource) -> None:
        _remove_connection(state, resource)


class WorkspaceConnection(EndpointConnection):
    kind = f"{WORKSPACE}/privateendpointconnections"


def provision(state: State, workspace: Resource, include_spark: bool) -> Json:
    """provisionManagedNetwork: the managed network (and its rules) turn Active."""
    status = {
        "status": "Active",
        "sparkReady": include_spark or bool(get_path(workspace.body, "properties.managedNetwork.status.sparkReady")),
    }
    workspace.body["properties"].setdefault("managedNetwork", {})["status"] = status
    for rule in state.children(workspace.id, "outboundRules"):
        rule.body["properties"]["status"] = "Active"
    return status


def rule_defaults(state: State, rule: Resource) -> None:
    """What Azure ML fills in on an outbound rule it is given: the category, and a status that follows
    its workspace's managed network."""
    properties = rule.body["properties"]
    properties.setdefault("category", "UserDefined")
    workspace = state.get(rule.parent or "")
    active = workspace is not None and get_path(workspace.body, "properties.managedNetwork.status.status") == "Active"
    properties["status"] = "Active" if active else "Inactive"


def connection_name(rule: Resource) -> str:
    """The connection a managed-network PrivateEndpoint rule creates on its target: `<workspace>.<rule>`
    (its private endpoint, `_managed_endpoint_id`, names the workspace's workspaceId and the rule)."""
    return f"{rule.parent.rsplit('/', 1)[-1] if rule.parent else 'ws'}.{rule.id.rsplit('/', 1)[-1]}"


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
