"""azure-ai-ml's MLClient, pointed at the emulator as a custom cloud (ARM_CLOUD_METADATA_URL), manages
outbound rules and provisions the managed network: what a data scientist's tooling would do."""

from __future__ import annotations

import pytest
from azure.ai.ml import MLClient
from azure.ai.ml._restclient.arm_ml_service import MachineLearningServicesMgmtClient
from azure.ai.ml.entities import FqdnDestination, ServiceTagDestination
from azure.identity import ClientSecretCredential

from armemu import Emulator
from contract.conftest import SUBSCRIPTION, client_options


def test_mlclient_creates_and_lists_rules_and_provisions(
    arm_emulator: Emulator, credential: ClientSecretCredential, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARM_CLOUD_METADATA_URL", arm_emulator.metadata_url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(arm_emulator.ca_path))  # MLClient's requests transport
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)
    arm = MachineLearningServicesMgmtClient(credential, SUBSCRIPTION, **client_options(arm_emulator))
    body = {"location": "brazilsouth", "properties": {"managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound"}}}
    arm.workspaces.begin_create_or_update("rg-litware", "mlw-sdk", body).result()

    client = MLClient(credential, SUBSCRIPTION, "rg-litware", "mlw-sdk", cloud="ArmEmulator")
    client.workspace_outbound_rules.begin_create(
        "mlw-sdk", FqdnDestination(name="pypi", destination="pypi.org")
    ).result()
    tag = ServiceTagDestination(name="monitor", service_tag="AzureMonitor", protocol="TCP", port_ranges="443")
    client.workspace_outbound_rules.begin_create("mlw-sdk", tag).result()
    rules = {rule.name: rule for rule in client.workspace_outbound_rules.list("mlw-sdk")}
    assert {"pypi", "monitor", "__SYS_ST_AzureMachineLearning"} <= set(rules)
    assert rules["pypi"].destination == "pypi.org" and rules["pypi"].category == "UserDefined"
    assert rules["__SYS_ST_AzureMachineLearning"].category == "Required"

    status = client.workspaces.begin_provision_network(workspace_name="mlw-sdk", include_spark=True).result()
    assert status.status == "Active" and status.spark_ready is True
    requested = {(r["method"], r["path"].rsplit("/", 1)[-1]) for r in arm_emulator.requests()}
    assert ("PUT", "pypi") in requested and ("POST", "provisionManagedNetwork") in requested
