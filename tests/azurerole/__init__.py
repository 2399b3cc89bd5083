"""What Azure RBAC would check for each ARM request the operator sends, and whether
deploy/azure/custom-role.json grants it.

Two kinds of checks: the action of the request itself (its method and resource path), and the
linked-access checks Azure makes on resources a write references in its body (joining a subnet,
an NSG or a route table, linking a VNet to a DNS zone, auto-approving a private endpoint...).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
ROLE_PATH = REPO / "deploy" / "azure" / "custom-role.json"

VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}

# Referenced resource types whose "join" Azure checks when a write points at them.
JOINABLE = {
    "microsoft.network/virtualnetworks/subnets",
    "microsoft.network/networksecuritygroups",
    "microsoft.network/routetables",
    "microsoft.network/natgateways",
    "microsoft.network/publicipaddresses",
    "microsoft.network/serviceendpointpolicies",
    "microsoft.network/privatednszones",
}
# Read-only back-references ARM returns in a body (and a full PUT echoes): never checked.
BACK_REFERENCES = {
    "privateendpoints",
    "ipconfigurations",
    "ipconfiguration",
    "networkinterfaces",
    "privateendpointconnections",
    "resourcenavigationlinks",
    "serviceassociationlinks",
}
MANAGED_NETWORK_ACTIONS = (
    "Microsoft.MachineLearningServices/workspaces/privateEndpointConnections/read",
    "Microsoft.MachineLearningServices/workspaces/privateEndpointConnections/write",
)
# Entries of the role that only real Azure exercises, with why the emulator cannot: it answers every
# long-running operation through one status URL per provider and completes registry updates at once.
REAL_AZURE_ONLY = {
    "Microsoft.Network/locations/operationResults/read": "a network delete's final result (Location header)",
    "Microsoft.Network/privateDnsOperationStatuses/read": "a private DNS operation's status",
    "Microsoft.Network/privateDnsOperationResults/read": "a private DNS operation's final result",
    "Microsoft.ContainerRegistry/locations/operationResults/read": "a registry update (allowlistEgressOn) in progress",
}


def resource_type(resource_id: str) -> tuple[str, list[str]]:
    """(`Namespace/type/child`, names) of an ARM id; Microsoft.Resources for subscriptions and groups."""
    segments = [segment for segment in urlsplit(resource_id).path.split("/") if segment]
    lowered = [segment.lower() for segment in segments]
    if "providers" in lowered:
        index = len(lowered) - 1 - lowered[::-1].index("providers")
        namespace, rest = segments[index + 1], segments[index + 2 :]
    else:
        namespace, rest = "Microsoft.Resources", segments
    return "/".join([namespace, *rest[0::2]]), rest[1::2]


def action_for(method: str, path: str) -> str:
    """The RBAC action ARM checks for a request: GET/HEAD -> read, PUT/PATCH -> write, DELETE ->
    delete, on the path's resource type; POST .../{resource}/{name} -> .../{name}/action. A GET of
    a collection (`.../subnets`) is the read of that type, and a poll of a long-running operation's
    status URL is the read of the provider's operation type (`Microsoft.Network/locations/operations/read`)."""
    method = method.upper()
    kind, names = resource_type(path)
    types = kind.split("/")
    if method == "POST":
        # types: namespace, t1, ..., tn, action  (the action segment came in as a type)
        if len(types) - 1 == len(names) + 1:
            return "/".join(types) + "/action"
        raise ValueError(f"POST to a resource, not an action: {path}")
    if method not in VERBS:
        raise ValueError(f"no RBAC verb for {method} {path}")
    return f"{kind}/{VERBS[method]}"


def _ids(value: Any, keys: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every ARM id in a body, with the chain of keys leading to it (dict keys that are ids too)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key.lower() in BACK_REFERENCES:
                continue
            if key.startswith("/subscriptions/"):
                yield (*keys, key), key
            yield from _ids(item, (*keys, key))
    elif isinstance(value, list):
        for item in value:
            yield from _ids(item, keys)
    elif isinstance(value, str) and value.lower().startswith("/subscriptions/") and "/providers/" in value.lower():
        yield keys, value


def linked_actions(method: str, path: str, body: Any) -> set[str]:
    """The linked-access actions Azure checks for a write, on the resources its body references."""
    method = method.upper()
    writer = resource_type(path)[0].lower() if method != "POST" else ""
    required: set[str] = set()
    if method == "POST" and path.lower().rstrip("/").endswith("/provisionmanagednetwork"):
        required.update(MANAGED_NETWORK_ACTIONS)
    if method not in ("PUT", "PATCH") or not isinstance(body, dict):
        return required
    own_id = urlsplit(path).path.rstrip("/").lower()
    for keys, referenced in _ids(body):
        lowered = [key.lower() for key in keys]
        if referenced.rstrip("/").lower() == own_id:
            continue
        if "subnets" in lowered and writer != "microsoft.network/virtualnetworks":
            continue  # an NSG's, route table's or NAT gateway's list of subnets is read-only
        kind = resource_type(referenced)[0]
        lowered_kind = kind.lower()
        if lowered_kind in JOINABLE:
            required.add(f"{kind}/join/action")
        elif lowered_kind == "microsoft.network/virtualnetworks" and "remotevirtualnetwork" in lowered:
            required.add("Microsoft.Network/virtualNetworks/peer/action")
        elif lowered_kind == "microsoft.network/virtualnetworks":
            required.add("Microsoft.Network/virtualNetworks/join/action")
        elif lowered_kind == "microsoft.managedidentity/userassignedidentities":
            required.add("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action")
        elif "privatelinkserviceid" in lowered and "privatelinkserviceconnections" in lowered:
            # An automatically approved connection: Azure checks approval rights on the target.
            required.add(f"{kind}/privateEndpointConnectionsApproval/action")
    properties = body.get("properties") or {}
    if writer == "microsoft.machinelearningservices/workspaces":
        isolation = str((properties.get("managedNetwork") or {}).get("isolationMode") or "Disabled")
        if isolation.lower() != "disabled":
            required.update(MANAGED_NETWORK_ACTIONS)
    rule_type = str(properties.get("type", "")).lower()
    if writer == "microsoft.machinelearningservices/workspaces/outboundrules" and rule_type == "privateendpoint":
        required.update(MANAGED_NETWORK_ACTIONS)
    return required


@dataclass(frozen=True)
class Role:
    name: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    assignable_scopes: tuple[str, ...]

    def grants(self, action: str) -> bool:
        """Azure's rule: some Actions entry matches (`*` matches anything, case-insensitively) and no
        NotActions entry does."""
        return _matches_any(action, self.actions) and not _matches_any(action, self.not_actions)


def _matches_any(action: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in patterns)


def matches(action: str, pattern: str) -> bool:
    return _matches_any(action, (pattern,))


def load_role(path: Path = ROLE_PATH) -> Role:
    document = json.loads(path.read_text())
    return Role(
        name=str(document["Name"]),
        actions=tuple(document["Actions"]),
        not_actions=tuple(document.get("NotActions") or ()),
        assignable_scopes=tuple(document["AssignableScopes"]),
    )
