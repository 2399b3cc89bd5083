"""plan(): the pure function from a spec to the graph of Azure resources it declares, composed from
one module per kind, in the order the walk starts them; and OBSERVATIONS, what those kinds need read
from Azure first (run by preflight.observe, the one place that reads before planning)."""

from __future__ import annotations

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.desired import (
    allowlists,
    approvals,
    firewall_policy,
    nat_gateway,
    nsg,
    peering,
    private_endpoint,
    route_table,
    service_endpoint_policy,
    vnet,
    workspace,
)
from secureml_operator.desired.graph import DesiredGraph
from secureml_operator.desired.observed import Observation, Observed

OBSERVATIONS: tuple[Observation, ...] = (
    private_endpoint.observe,  # a registry behind a private endpoint is Premium
    vnet.observe,  # an adopted VNet has room for our subnets
    route_table.observe,  # the firewall's private IP (the next hop) and public IPs (egress)
)


def plan(spec: SecureMLWorkspaceSpec, observed: Observed | None = None) -> DesiredGraph:
    """`observed`: what the observations read from Azure and what the last walk allowlisted."""
    graph = DesiredGraph()
    workspace.add_workspace(graph, spec)
    approvals.add_connection_approvals(graph, spec)
    if spec.outbound.customer_network is not None:
        _add_customer_network(graph, spec, observed or Observed())
    private_endpoint.add_workspace_private_endpoint(graph, spec)
    return graph


def _add_customer_network(graph: DesiredGraph, spec: SecureMLWorkspaceSpec, observed: Observed) -> None:
    vnet.add_virtual_network(graph, spec)
    security_group = nsg.add_nsg(graph, spec)
    table = route_table.add_route_table(graph, spec, observed)
    gateway = nat_gateway.add_nat_gateway(graph, spec)
    policy = service_endpoint_policy.add_service_endpoint_policy(graph, spec)
    vnet.add_subnets(graph, spec, security_group, table, gateway, policy)
    peering.add_hub_peering(graph, spec)
    firewall_policy.add_firewall_rules(graph, spec)
    private_endpoint.add_dependency_endpoints(graph, spec)
    allowlists.add_allowlists(graph, spec, observed)
