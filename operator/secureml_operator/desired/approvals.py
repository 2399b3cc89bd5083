"""The targets of the managed network's PrivateEndpoint rules (Role.APPROVAL_TARGET): someone else's
resources, read after the workspace to report the connections our rules left Pending there, and
with autoApprove an action that approves exactly those (never anyone else's).
"""

from __future__ import annotations

from collections.abc import Iterable

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.fields import Json, get_path
from secureml_operator.desired.graph import Action, DesiredGraph, LiveLookup, Node, Step, Verb
from secureml_operator.desired.roles import Role
from secureml_operator.desired.workspace import workspace_id

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
                    Verb.PUT,
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

        action = Action(APPROVE_ACTION, steps) if approve else None
        graph.add(Node.external(target_id, Role.APPROVAL_TARGET, (workspace.key,), action=action))
