"""Egress through a NAT gateway (Role.NAT_GATEWAY) and its public IPs (Role.EGRESS_PUBLIC_IP): one
stable set of addresses compute traffic leaves from, for targets' allowlists.

The public IPs are created first; the gateway owns its idle timeout and exactly those IPs. The
compute subnets attach the gateway (vnet.py).
"""

from __future__ import annotations

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.fields import Exact, Members
from secureml_operator.desired.graph import DesiredGraph, Node
from secureml_operator.desired.names import network_resource
from secureml_operator.desired.roles import Role


def nat_gateway_id(spec: SecureMLWorkspaceSpec) -> ArmId:
    """The NAT gateway egress.natGateway declares (whether or not the spec has one)."""
    return network_resource(spec, "natGateways", f"ng-{spec.workspace.name}-egress")


def public_ip_ids(spec: SecureMLWorkspaceSpec) -> tuple[ArmId, ...]:
    """The gateway's public IPs (none without egress.natGateway)."""
    network = spec.outbound.customer_network
    nat = network.egress.nat_gateway if network is not None else None
    count = nat.public_ip_count if nat is not None else 0
    name = spec.workspace.name
    return tuple(
        network_resource(spec, "publicIPAddresses", f"pip-{name}-egress-{index + 1}") for index in range(count)
    )


def add_nat_gateway(graph: DesiredGraph, spec: SecureMLWorkspaceSpec) -> Node | None:
    network = spec.outbound.customer_network
    nat = network.egress.nat_gateway if network is not None else None
    if nat is None:
        return None
    location = spec.azure.location
    ips = [
        graph.add(
            Node(
                id=ip_id,
                create_body={
                    "location": location,
                    "sku": {"name": "Standard"},
                    "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"},
                },
                role=Role.EGRESS_PUBLIC_IP,
            )
        )
        for ip_id in public_ip_ids(spec)
    ]
    return graph.add(
        Node(
            id=nat_gateway_id(spec),
            create_body={"location": location, "sku": {"name": "Standard"}},
            role=Role.NAT_GATEWAY,
            fields=(
                Exact("properties.idleTimeoutInMinutes", nat.idle_timeout_minutes),
                Members("properties.publicIpAddresses", tuple({"id": str(ip.id)} for ip in ips), key="id"),
            ),
            depends_on=tuple(ip.key for ip in ips),
        )
    )
