"""Data exfiltration protection: a service endpoint policy (Role.SERVICE_ENDPOINT_POLICY) that lets
the training subnet's storage service endpoint reach only Azure ML's own storage and the
workspace's storage account. Its definitions are a child set; the training subnet attaches it.
"""

from __future__ import annotations

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.desired import azureml_network as aml
from secureml_operator.desired.fields import Members
from secureml_operator.desired.graph import ChildSet, ChildSpec, DesiredGraph, Node
from secureml_operator.desired.names import network_resource
from secureml_operator.desired.roles import Role


def _definition(name: str, service: str, resource: str) -> ChildSpec:
    body = {"properties": {"service": service, "serviceResources": [resource]}}
    return ChildSpec(name, body, (Members("properties.serviceResources", (resource,)),))


def add_service_endpoint_policy(graph: DesiredGraph, spec: SecureMLWorkspaceSpec) -> Node | None:
    network = spec.outbound.customer_network
    if network is None or not network.data_exfiltration_protection:
        return None
    definitions = (
        _definition("azureml-alias", "Global", aml.AZURE_ML_SERVICE_ALIAS),
        _definition("workspace-storage", "Microsoft.Storage", spec.workspace.storage_account_id),
    )
    return graph.add(
        Node(
            id=network_resource(spec, "serviceEndpointPolicies", f"sep-{spec.workspace.name}-exfiltration"),
            create_body={"location": spec.azure.location},
            role=Role.SERVICE_ENDPOINT_POLICY,
            children=(
                ChildSet(
                    "serviceEndpointPolicyDefinitions", "properties.serviceEndpointPolicyDefinitions", definitions
                ),
            ),
        )
    )
