"""Operations take time and conflict: while one runs, another write to the same VNet, NSG, route table
or workspace gets the provider's conflict answer (with `conflicts` on), and the `outbound_rule_loss`
fault acknowledges and drops an outbound rule written during another rule's operation."""

from __future__ import annotations

from typing import Any

import pytest
from azure.ai.ml._restclient.arm_ml_service import MachineLearningServicesMgmtClient
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.network import NetworkManagementClient

from armemu import Emulator
from contract.conftest import SUBSCRIPTION, client_options
from secureml_operator.failures import classify

RG = "rg-litware"
LOCATION = "brazilsouth"
SECONDS = 1.5  # long enough for a second request to land while the first operation runs
VNET = {"location": LOCATION, "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}
APPROVED = {"location": LOCATION, "properties": {"managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound"}}}


def _rule(priority: int) -> dict[str, Any]:
    """An NSG rule allowing HTTPS out."""
    return {
        "properties": {
            "protocol": "Tcp",
            "sourcePortRange": "*",
            "destinationPortRange": "443",
            "access": "Allow",
            "sourceAddressPrefix": "*",
            "destinationAddressPrefix": "*",
            "direction": "Outbound",
            "priority": priority,
        }
    }


def _fqdn(destination: str) -> dict[str, Any]:
    return {"properties": {"type": "FQDN", "destination": destination}}


@pytest.fixture
def network(arm_emulator: Emulator, credential: ClientSecretCredential) -> NetworkManagementClient:
    """No SDK retries: each answer is seen as the service gave it."""
    return NetworkManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator), retry_total=0)


@pytest.fixture
def ml(arm_emulator: Emulator, credential: ClientSecretCredential) -> MachineLearningServicesMgmtClient:
    return MachineLearningServicesMgmtClient(credential, SUBSCRIPTION, **client_options(arm_emulator))


def _refused(call: Any) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as refused:
        call()
    return refused.value


def test_a_second_subnet_write_while_one_runs_is_409_another_operation_in_progress(
    arm_emulator: Emulator, network: NetworkManagementClient
) -> None:
    network.virtual_networks.begin_create_or_update(RG, "vnet-l", VNET).result()
    arm_emulator.operations(SECONDS)
    first = network.subnets.begin_create_or_update(RG, "vnet-l", "a", {"properties": {"addressPrefix": "10.0.1.0/24"}})
    second = {"properties": {"addressPrefix": "10.0.2.0/24"}}
    error = _refused(lambda: network.subnets.begin_create_or_update(RG, "vnet-l", "b", second))
    assert (error.status_code, error.error.code) == (409, "AnotherOperationInProgress")
    assert "Another operation on this or dependent resource is in progress" in error.error.message
    status_uri = error.error.message.split("use uri: ", 1)[1].rstrip(".")
    assert "/providers/Microsoft.Network/locations/" in status_uri and "/operations/" in status_uri
    assert classify(error).transient, "the operator retries it with its own backoff"
    assert network.virtual_networks.get(RG, "vnet-l")["properties"]["subnets"][0]["name"] == "a", "reads go on"
    first.result()
    network.subnets.begin_create_or_update(RG, "vnet-l", "b", second).result()  # the operation ended: accepted


def test_a_write_to_the_vnet_itself_is_429_retryable_error_with_retry_after(
    arm_emulator: Emulator, network: NetworkManagementClient, credential: ClientSecretCredential
) -> None:
    network.virtual_networks.begin_create_or_update(RG, "vnet-l", VNET).result()
    arm_emulator.operations(SECONDS)
    network.subnets.begin_create_or_update(RG, "vnet-l", "a", {"properties": {"addressPrefix": "10.0.1.0/24"}})
    error = _refused(lambda: network.virtual_networks.begin_create_or_update(RG, "vnet-l", VNET))
    assert (error.status_code, error.error.code) == (429, "RetryableError")
    (detail,) = error.error.details
    assert detail.code == "RetryableErrorDueToAnotherOperation"
    assert detail.message.startswith("Operation PutSubnetOperation (") and "vnet-l" in detail.message
    assert error.response.headers["Retry-After"] in ("1", "2")
    retrying = NetworkManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator))
    retrying.virtual_networks.begin_create_or_update(RG, "vnet-l", VNET).result()  # the SDK waits Retry-After
    assert [r["status"] for r in arm_emulator.requests() if r["method"] == "PUT"][-2:] == [429, 200]


def test_nsg_and_route_table_children_conflict_too_and_deletes_count(
    arm_emulator: Emulator, network: NetworkManagementClient
) -> None:
    network.network_security_groups.begin_create_or_update(RG, "nsg-l", {"location": LOCATION}).result()
    network.route_tables.begin_create_or_update(RG, "rt-l", {"location": LOCATION}).result()
    arm_emulator.operations(SECONDS)
    network.security_rules.begin_create_or_update(RG, "nsg-l", "a", _rule(200))
    error = _refused(lambda: network.security_rules.begin_create_or_update(RG, "nsg-l", "b", _rule(210)))
    assert (error.status_code, error.error.code) == (409, "AnotherOperationInProgress")
    route = {"properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "Internet"}}
    network.routes.begin_create_or_update(RG, "rt-l", "default", route)  # another lock: accepted
    error = _refused(lambda: network.route_tables.begin_delete(RG, "rt-l"))
    assert (error.status_code, error.error.code) == (429, "RetryableError")
    assert error.error.details[0].message.startswith("Operation PutRouteOperation (")


def test_writes_elsewhere_and_without_conflicts_go_through(
    arm_emulator: Emulator, network: NetworkManagementClient
) -> None:
    for name in ("vnet-l", "vnet-m"):
        network.virtual_networks.begin_create_or_update(RG, name, VNET).result()
    arm_emulator.operations(SECONDS)
    network.subnets.begin_create_or_update(RG, "vnet-l", "a", {"properties": {"addressPrefix": "10.0.1.0/24"}})
    network.subnets.begin_create_or_update(RG, "vnet-m", "a", {"properties": {"addressPrefix": "10.0.1.0/24"}})
    arm_emulator.operations(SECONDS, conflicts=False)
    network.subnets.begin_create_or_update(RG, "vnet-l", "b", {"properties": {"addressPrefix": "10.0.2.0/24"}})
    network.subnets.begin_create_or_update(RG, "vnet-l", "c", {"properties": {"addressPrefix": "10.0.3.0/24"}})
    assert all(r["status"] < 300 for r in arm_emulator.requests() if r["method"] == "PUT")


def test_a_workspace_write_while_a_rule_operation_runs_is_409_conflict(
    arm_emulator: Emulator, ml: MachineLearningServicesMgmtClient
) -> None:
    ml.workspaces.begin_create_or_update(RG, "mlw-l", APPROVED).result()
    arm_emulator.operations(SECONDS)
    ml.managed_network_settings_rule.begin_create_or_update(RG, "mlw-l", "pypi", _fqdn("pypi.org"))
    error = _refused(lambda: ml.managed_network_settings_rule.begin_create_or_update(RG, "mlw-l", "hf", _fqdn("hf.co")))
    assert (error.status_code, error.error.code) == (409, "Conflict")
    assert "another operation on same entity is already running in workspace mlw-l" in error.error.message
    assert classify(error).transient


def test_rule_loss_acknowledges_a_concurrent_rule_and_keeps_nothing(
    arm_emulator: Emulator, ml: MachineLearningServicesMgmtClient
) -> None:
    ml.workspaces.begin_create_or_update(RG, "mlw-l", APPROVED).result()
    arm_emulator.operations(SECONDS, conflicts=True, rule_loss=True)
    first = ml.managed_network_settings_rule.begin_create_or_update(RG, "mlw-l", "pypi", _fqdn("pypi.org"))
    lost = ml.managed_network_settings_rule.begin_create_or_update(RG, "mlw-l", "hf", _fqdn("hf.co")).result()
    assert lost["properties"]["destination"] == "hf.co" and lost["properties"]["category"] == "UserDefined"
    first.result()
    with pytest.raises(ResourceNotFoundError):
        ml.managed_network_settings_rule.get(RG, "mlw-l", "hf")
    rules = ml.workspaces.get(RG, "mlw-l")["properties"]["managedNetwork"]["outboundRules"]
    assert "pypi" in rules and "hf" not in rules
    puts = {r["path"].rsplit("/", 1)[-1]: r for r in arm_emulator.requests() if r["method"] == "PUT"}
    assert puts["hf"]["status"] == 202 and puts["hf"]["lost"] is True, "the log shows what was dropped"
    assert "lost" not in puts["pypi"]
    ml.managed_network_settings_rule.begin_create_or_update(RG, "mlw-l", "hf", _fqdn("hf.co")).result()
    assert ml.managed_network_settings_rule.get(RG, "mlw-l", "hf")["properties"]["destination"] == "hf.co"


def test_rule_loss_needs_a_rule_operation_a_workspace_operation_conflicts(
    arm_emulator: Emulator, ml: MachineLearningServicesMgmtClient
) -> None:
    ml.workspaces.begin_create_or_update(RG, "mlw-l", APPROVED).result()
    arm_emulator.operations(SECONDS, conflicts=True, rule_loss=True)
    ml.workspaces.begin_update(RG, "mlw-l", {"properties": {"publicNetworkAccess": "Disabled"}})
    error = _refused(lambda: ml.managed_network_settings_rule.begin_create_or_update(RG, "mlw-l", "hf", _fqdn("hf.co")))
    assert error.status_code == 409
    assert not any(r.get("lost") for r in arm_emulator.requests())
