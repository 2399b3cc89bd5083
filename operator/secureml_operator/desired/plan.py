"""plan(): the pure function from a spec to the graph of Azure resources it declares."""

from __future__ import annotations

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.desired.graph import DesiredGraph
from secureml_operator.desired.workspace import (
    add_connection_approvals,
    add_workspace,
    add_workspace_private_endpoint,
)


def plan(spec: SecureMLWorkspaceSpec) -> DesiredGraph:
    graph = DesiredGraph()
    add_workspace(graph, spec)
    add_connection_approvals(graph, spec)
    endpoint = spec.inbound.private_endpoint
    if endpoint is not None and endpoint.subnet_id:
        add_workspace_private_endpoint(graph, spec, endpoint.subnet_id)
    return graph
