"""A workspace's dependencies: the private-link targets the operator's registry lists
(azure/private_link.py: storage accounts, key vaults, container registries, with their private
endpoint connections) and Application Insights components. Their providers answer writes
synchronously."""

from __future__ import annotations

from armemu.kinds.base import ResourceBehaviour
from armemu.kinds.helpers import endpoint_connections
from armemu.state import Json, Resource, State
from secureml_operator.azure import private_link


class PrivateLinkTarget(ResourceBehaviour):
    """What a managed network's PrivateEndpoint rule connects to: GET lists its connections."""

    lro = None

    def derive(self, state: State, resource: Resource, body: Json, provisioning: str) -> None:
        body["properties"]["privateEndpointConnections"] = endpoint_connections(state, resource)


class EndpointConnection(ResourceBehaviour):
    """A private endpoint connection on a target (or a workspace)."""

    lro = None
    tracked = False

    def complete(self, resource_id: str, properties: Json, existing: Resource | None) -> None:
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


def serve(target: private_link.PrivateLinkTarget) -> None:
    """A workspace dependency from the operator's registry of private-link targets: the target, and
    its private endpoint connections (adding a registry entry makes the emulator serve it)."""
    name = target.arm_type.split("/")[-1]
    type(name, (PrivateLinkTarget,), {"kind": target.key})
    type(f"{name}Connection", (EndpointConnection,), {"kind": f"{target.key}/privateendpointconnections"})


for dependency in private_link.dependencies():
    serve(dependency)


class ApplicationInsights(ResourceBehaviour):
    kind = "microsoft.insights/components"
    lro = None
