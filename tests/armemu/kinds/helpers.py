"""What the behaviours of more than one family share."""

from __future__ import annotations

import hashlib

from armemu.arm import get_path
from armemu.kinds.base import render
from armemu.state import Json, Resource, State


def stable_uuid(seed: str) -> str:
    digest = hashlib.sha256(seed.lower().encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def referencing(state: State, kind: str, prop: str, resource_id: str) -> list[Resource]:
    """The resources of `kind` whose `properties.<prop>.id` is `resource_id`, ordered by id: the subnets
    using an NSG, the private endpoints in a subnet, the firewalls on a policy."""
    return [
        other
        for other in state.referring(resource_id, kind)
        if (get_path(other.body, f"properties.{prop}.id") or "").lower() == resource_id.lower()
    ]


def endpoint_connections(state: State, resource: Resource) -> list[Json]:
    """The private endpoint connections of a workspace, storage account, key vault or registry, as its
    `properties.privateEndpointConnections` lists them."""
    return [render(state, child) for child in state.children(resource.id, "privateEndpointConnections")]


def forget_records(state: State, endpoint_key: str | None) -> None:
    """Delete the DNS records a private endpoint's zone groups registered: they go with the zone group
    (or the endpoint), as in Azure."""
    for record in state.find(lambda r: r.body.get("_registeredBy") == endpoint_key):
        state.delete(record.id)
