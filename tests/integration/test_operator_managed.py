"""The operator end to end on managed-network examples: real API server, real SDKs, the ARM emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from operatorharness import OperatorEnv, running_operator

from armemu import Emulator
from kubeharness import ControlPlane

pytestmark = pytest.mark.integration
WS = "/providers/Microsoft.MachineLearningServices/workspaces/"


@pytest.fixture
def operator(
    kube: ControlPlane, arm_emulator: Emulator, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OperatorEnv]:
    with running_operator(kube, arm_emulator, namespace, monkeypatch) as env:
        yield env


def test_internet_outbound_example_reaches_ready(operator: OperatorEnv) -> None:
    manifest = operator.manifest("01-managed-internet-outbound.yaml")
    operator.apply(manifest)
    body = operator.wait_ready("litware-internet")
    workspace = operator.arm_resource(f"{WS}mlw-litware-internet")
    assert workspace is not None
    assert workspace["properties"]["managedNetwork"]["isolationMode"] == "AllowInternetOutbound"
    assert workspace["tags"]["secureml.io-name"] == "litware-internet"
    rule = operator.arm_resource(f"{WS}mlw-litware-internet/outboundRules/datalake")
    assert rule is not None and rule["properties"]["destination"]["subresourceTarget"] == "dfs"
    connection = operator.arm_resource("dlslitware/privateEndpointConnections/mlw-litware-internet.datalake")
    assert connection is not None
    assert connection["properties"]["privateLinkServiceConnectionState"]["status"] == "Approved"
    status = body["status"]
    assert status["workspace"]["managedNetworkStatus"] == "Active"
    assert status["workspace"]["sparkReady"] is True
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["PrivateEndpointsApproved"] == "True"
    assert conditions["Stalled"] == "False" and conditions["Reconciling"] == "False"
    reasons = {event["reason"] for event in operator.events("litware-internet")}
    assert {"AzureCreate", "AzurePost", "AzureUpdate"} <= reasons
