"""plan(): the pure function from a spec to the graph of Azure resources it declares."""

from __future__ import annotations

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.desired.customer_network import add_customer_network
from secureml_operator.desired.graph import DesiredGraph
from secureml_operator.desired.observed import Observed
from secureml_operator.desired.workspace import (
    add_connection_approvals,
    add_workspace,
    add_workspace_private_endpoint,
)


def plan(spec: SecureMLWorkspaceSpec, observed: Observed | None = None) -> DesiredGraph:
    """`observed`: what preflight read from Azure and what the last walk allowlisted."""
    graph = DesiredGraph()
    add_workspace(graph, spec)
    add_connection_approvals(graph, spec)
    subnets = {}
    if spec.outbound.customer_network is not None:
        subnets = add_customer_network(graph, spec, observed or Observed())
    endpoint = spec.inbound.private_endpoint
    if endpoint is not None:
        subnet_id = endpoint.subnet_id or str(subnets[endpoint.subnet_name or "privateEndpoints"])
        add_workspace_private_endpoint(graph, spec, subnet_id)
    return graph
