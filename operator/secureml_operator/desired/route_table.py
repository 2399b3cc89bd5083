"""The compute subnets' route table (Role.ROUTE_TABLE), planned when there is a route to declare.

Through a hub firewall, 0.0.0.0/0 goes to the firewall's private IP (and, for compute with public
IPs, Azure ML's service tags straight to the internet); then the spec's extra routes. Routes are a
child set under the spec's rulesPolicy. When the firewall is referenced by id, its private IP (the
next hop) is read before planning (`observe`), with its public IPs: the egress IPs allowlists and
status report.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from secureml_operator.api.models import CustomerNetwork, SecureMLWorkspaceSpec
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired import azureml_network as aml
from secureml_operator.desired.fields import get_path
from secureml_operator.desired.graph import ChildSet, ChildSpec, DesiredGraph, ListPolicy, Node
from secureml_operator.desired.names import network_resource
from secureml_operator.desired.observed import Observed, existing
from secureml_operator.desired.roles import Role
from secureml_operator.failures import PermanentFailure

if TYPE_CHECKING:
    from secureml_operator.azure.arm import ArmClient


def route_table_id(spec: SecureMLWorkspaceSpec) -> ArmId:
    return network_resource(spec, "routeTables", f"rt-{spec.workspace.name}-compute")


def _routes(location: str, network: CustomerNetwork, firewall_ip: str | None) -> tuple[ChildSpec, ...]:
    routes: list[ChildSpec] = []
    if network.egress.firewall is not None:
        to_firewall = {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": firewall_ip}
        routes.append(ChildSpec.exact(aml.FIREWALL_ROUTE, to_firewall))
        if network.compute_public_ip:
            routes += [
                ChildSpec.exact(name, {"addressPrefix": tag, "nextHopType": "Internet"})
                for name, tag in aml.public_ip_compute_routes(location)
            ]
    for extra in network.extra_routes:
        properties: dict[str, object] = {"addressPrefix": extra.address_prefix, "nextHopType": extra.next_hop_type}
        if extra.next_hop_ip_address:
            properties["nextHopIpAddress"] = extra.next_hop_ip_address
        routes.append(ChildSpec.exact(extra.name, properties))
    return tuple(routes)


def add_route_table(graph: DesiredGraph, spec: SecureMLWorkspaceSpec, observed: Observed) -> Node | None:
    network = spec.outbound.customer_network
    assert network is not None
    routes = _routes(spec.azure.location, network, observed.firewall_private_ip)
    if not routes:
        return None
    policy = ListPolicy(network.network_security.rules_policy)
    return graph.add(
        Node(
            id=route_table_id(spec),
            create_body={"location": spec.azure.location, "properties": {"disableBgpRoutePropagation": True}},
            role=Role.ROUTE_TABLE,
            children=(ChildSet("routes", "properties.routes", routes, policy),),
        )
    )


async def observe(arm: ArmClient, spec: SecureMLWorkspaceSpec, observed: Observed) -> Observed:
    """The next hop for 0.0.0.0/0 and the firewall's public IPs (egress), from the firewall itself
    when it is referenced by id."""
    firewall = spec.outbound.hub_firewall
    if firewall is None:
        return observed
    if firewall.id is None:
        return dataclasses.replace(observed, firewall_private_ip=firewall.private_ip_address)
    live = await existing(arm, firewall.id, "firewall")
    configurations = [config.get("properties") or {} for config in get_path(live, "properties.ipConfigurations") or []]
    private = next((config["privateIPAddress"] for config in configurations if config.get("privateIPAddress")), None)
    if private is None:
        raise PermanentFailure(
            "FirewallHasNoPrivateIP",
            f"firewall {firewall.id} has no private IP address (no IP configuration in AzureFirewallSubnet): "
            "routes to it would drop all traffic; finish deploying the firewall",
        )
    public_ids = [get_path(config, "publicIPAddress.id") for config in configurations]
    addresses = []
    for public_id in filter(None, public_ids):
        public_ip = await arm.get(ArmId.parse(str(public_id)))
        if public_ip and get_path(public_ip, "properties.ipAddress"):
            addresses.append(str(get_path(public_ip, "properties.ipAddress")))
    return dataclasses.replace(observed, firewall_private_ip=str(private), firewall_egress_ips=tuple(sorted(addresses)))
