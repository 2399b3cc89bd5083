"""Deterministic ARM ids for what the operator creates: the same spec always yields the same names,
so a crashed or repeated reconcile finds (and never duplicates) what an earlier one created. (The
outbound-rule names of presets are the API's: api/presets.py.)"""

from __future__ import annotations

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.ids import ArmId, resource_id

NETWORK = "Microsoft.Network"


def network_resource(spec: SecureMLWorkspaceSpec, resource_type: str, name: str) -> ArmId:
    """A Microsoft.Network resource of ours, in the workspace's resource group."""
    return resource_id(spec.azure.subscription_id, spec.azure.resource_group, NETWORK, resource_type, name)
