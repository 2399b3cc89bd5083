"""The peering with a hub firewall's VNet: our VNet's side (Role.HUB_PEERING), the hub's side back
to us when the hub is ours to change (Role.HUB_PEERING_BACK, egress.firewall.peerFromHub), and the
hub VNet itself (Role.HUB_VIRTUAL_NETWORK), read after both: the hub's own peering back to us
(someone else's otherwise, listed inline in the hub's GET) is what makes the pair Connected.
"""

from __future__ import annotations

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.fields import Exact
from secureml_operator.desired.graph import DesiredGraph, Node
from secureml_operator.desired.roles import Role
from secureml_operator.desired.vnet import virtual_network_id


def hub_peering_ids(spec: SecureMLWorkspaceSpec) -> tuple[ArmId, ArmId] | None:
    """(our spoke-to-hub peering, the hub VNet) when the spec has the operator peer with a hub."""
    firewall = spec.outbound.hub_firewall
    if firewall is None or not firewall.hub_virtual_network_id or not firewall.peering:
        return None
    return virtual_network_id(spec).child("virtualNetworkPeerings", "to-hub"), ArmId.parse(
        firewall.hub_virtual_network_id
    )


def add_hub_peering(graph: DesiredGraph, spec: SecureMLWorkspaceSpec) -> None:
    ids = hub_peering_ids(spec)
    if ids is None:
        return
    peering_id, hub_id = ids
    spoke, hub = virtual_network_id(spec), str(hub_id)
    peering = graph.add(
        Node(
            id=peering_id,
            create_body={
                "properties": {
                    "remoteVirtualNetwork": {"id": hub},
                    "allowVirtualNetworkAccess": True,
                    "allowForwardedTraffic": True,
                    "useRemoteGateways": False,
                }
            },
            role=Role.HUB_PEERING,
            fields=(
                Exact("properties.remoteVirtualNetwork.id", hub),
                Exact("properties.allowForwardedTraffic", True),
            ),
            depends_on=(spoke.key,),
            tagged=False,
        )
    )
    read_after = (peering.key,)
    firewall = spec.outbound.hub_firewall
    if firewall is not None and firewall.peer_from_hub:  # the hub is ours to change: its side is ours too
        back = graph.add(
            Node(
                id=hub_id.child("virtualNetworkPeerings", f"to-{spoke.name}"),
                create_body={
                    "properties": {
                        "remoteVirtualNetwork": {"id": str(spoke)},
                        "allowVirtualNetworkAccess": True,
                        "allowForwardedTraffic": True,
                    }
                },
                role=Role.HUB_PEERING_BACK,
                fields=(Exact("properties.remoteVirtualNetwork.id", str(spoke)),),
                depends_on=(peering.key,),
                tagged=False,
            )
        )
        read_after = (back.key,)
    graph.add(Node.external(hub_id, Role.HUB_VIRTUAL_NETWORK, read_after))
