"""Two subscriptions (a workload one and the connectivity one holding the hub), conditional creates,
resourceGuid, and Azure ML's managed private endpoints: the emulator's answers, and the operator's
`ArmClient` routing each call to the subscription its id names and counting it on that budget."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azure.ai.ml._restclient.arm_ml_service import MachineLearningServicesMgmtClient
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network import models as network_models
from azure.mgmt.resource.resources import ResourceManagementClient

from armemu import Emulator
from armemu import semantics as sem
from armemu.seed import (
    CONNECTIVITY,
    CONNECTIVITY_PROVIDERS,
    CONNECTIVITY_SUBSCRIPTION,
    HUB_FIREWALL,
    HUB_VNET,
    LITWARE,
    PROVIDERS,
    SUBSCRIPTION,
)
from contract.conftest import client_options
from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.ids import ArmId

RG = "rg-litware"
LOCATION = {"location": "brazilsouth"}


def _writes_used(arm: ArmClient, subscription: str) -> float:
    bucket = arm.budget(subscription).writes
    return bucket.capacity - bucket.tokens


# ArmClient: one client, every subscription ----------------------------------------------------


async def test_arm_client_sends_each_id_to_its_own_subscription_and_budget(
    arm_emulator: Emulator, arm: ArmClient
) -> None:
    arm_emulator.clear_requests()
    firewall = await arm.get(ArmId.parse(HUB_FIREWALL))
    assert firewall is not None, "the hub firewall is found in the connectivity subscription"
    assert firewall["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.1.0.4"
    route_table = ArmId.parse(f"{CONNECTIVITY_PROVIDERS}/Microsoft.Network/routeTables/rt-hub")
    await arm.put(route_table, {"location": "brazilsouth"})
    storage = ArmId.parse(f"{CONNECTIVITY_PROVIDERS}/Microsoft.Storage/storageAccounts/sthub")  # generic by-id
    await arm.put(storage, {**LOCATION, "kind": "StorageV2", "sku": {"name": "Standard_LRS"}})
    assert await arm.get(ArmId.parse(f"{PROVIDERS}/Microsoft.Storage/storageAccounts/stlitware")) is not None
    *hub_calls, home_call = arm_emulator.requests()
    assert home_call["method"] == "GET" and home_call["path"].split("/")[2] == SUBSCRIPTION
    assert {r["path"].split("/")[2] for r in hub_calls} == {CONNECTIVITY_SUBSCRIPTION}, "polls included"
    assert [(r["method"], r["path"]) for r in hub_calls if "/locations/" not in r["path"]][:3] == [
        ("GET", HUB_FIREWALL),
        ("PUT", str(route_table)),
        ("GET", str(route_table)),  # the SDK's final GET after the operation
    ]
    assert ("PUT", str(storage)) in [(r["method"], r["path"]) for r in hub_calls]
    assert arm_emulator.state.get(str(route_table)) is not None
    assert arm_emulator.state.get(f"{LITWARE}/providers/Microsoft.Network/routeTables/rt-hub") is None

    hub, home = arm.budget(CONNECTIVITY_SUBSCRIPTION).calls, arm.budget(SUBSCRIPTION).calls
    assert hub[("GET", "Microsoft.Network/azureFirewalls")] == 1
    assert hub[("PUT", "Microsoft.Network/routeTables")] == 1
    assert hub[("PUT", "Microsoft.Storage/storageAccounts")] == 1
    assert set(home) == {("GET", "Microsoft.Storage/storageAccounts")}, "nothing of the hub's is counted here"
    assert round(_writes_used(arm, CONNECTIVITY_SUBSCRIPTION)) == 2, "two writes in the hub drew on the hub's budget"
    assert round(_writes_used(arm, SUBSCRIPTION)) == 0, "and none on the workload subscription's"


async def test_arm_client_builds_its_clients_once_per_subscription_on_first_use(arm: ArmClient) -> None:
    assert arm._subscriptions == {} and arm._read_pipelines == {}
    await arm.get(ArmId.parse(HUB_VNET))  # a type's first GET goes through its SDK
    built = arm._subscriptions[CONNECTIVITY_SUBSCRIPTION]
    await arm.get(ArmId.parse(HUB_VNET))  # the next ones through the read pipeline
    pipeline = arm._read_pipelines[CONNECTIVITY_SUBSCRIPTION]
    await arm.get(ArmId.parse(HUB_FIREWALL))
    await arm.get(ArmId.parse(f"{PROVIDERS}/Microsoft.Network/virtualNetworks/vnet-litware-clients"))
    assert list(arm._subscriptions) == [CONNECTIVITY_SUBSCRIPTION], "a VNet is read in another subscription without SDK"
    assert sorted(arm._read_pipelines) == sorted([SUBSCRIPTION, CONNECTIVITY_SUBSCRIPTION])
    assert arm._subscriptions[CONNECTIVITY_SUBSCRIPTION] is built
    assert arm._read_pipelines[CONNECTIVITY_SUBSCRIPTION] is pipeline


async def test_the_read_pipeline_sends_and_answers_as_the_sdk_does(arm_emulator: Emulator, arm: ArmClient) -> None:
    """The SDK's first GET of a type, then the read pipeline's: the same request and api-version, the
    same body, None for a 404, and ARM's error (its code, a 401 as ClientAuthenticationError) raised."""
    vnet, missing = ArmId.parse(HUB_VNET), ArmId.parse(f"{HUB_VNET}-gone")
    through_sdk, through_pipeline = await arm.get(vnet), await arm.get(vnet)
    assert through_pipeline == through_sdk and through_sdk is not None
    assert await arm.get(missing) is None
    sent = [(r["method"], r["path"], r["apiVersion"], r["status"]) for r in arm_emulator.requests()]
    assert sent == [("GET", HUB_VNET, sent[0][2], 200)] * 2 + [("GET", str(missing), sent[0][2], 404)]
    assert arm._subscriptions, "the first GET went through the SDK"
    arm_emulator.fault(method="GET", path="vnet-hub$", status=403, code="AuthorizationFailed", count=1)
    with pytest.raises(HttpResponseError) as refused:
        await arm.get(vnet)
    assert (refused.value.status_code, refused.value.error.code) == (403, "AuthorizationFailed")
    arm_emulator.fault(method="GET", path="vnet-hub$", status=401, code="InvalidAuthenticationToken", count=1)
    with pytest.raises(ClientAuthenticationError):
        await arm.get(vnet)
    arm_emulator.fault(method="GET", path="vnet-hub$", status=500, count=1)
    assert await arm.get(vnet) == through_sdk, "a 500 is retried, as the SDK's retry policy does"
    assert arm.budget(CONNECTIVITY_SUBSCRIPTION).calls[("GET", "Microsoft.Network/virtualNetworks")] == 7


# If-None-Match: * -------------------------------------------------------------------------------


async def test_create_only_put_is_refused_with_412_when_the_resource_exists(
    arm_emulator: Emulator, arm: ArmClient
) -> None:
    table = ArmId.parse(f"{PROVIDERS}/Microsoft.Network/routeTables/rt-once")
    created = await arm.put(table, {**LOCATION, "tags": {"v": "1"}}, create_only=True)
    assert created["tags"] == {"v": "1"}
    with pytest.raises(HttpResponseError) as refused:
        await arm.put(table, {**LOCATION, "tags": {"v": "2"}}, create_only=True)
    assert refused.value.status_code == 412 and refused.value.error.code == "PreconditionFailed"
    assert (await arm.get(table) or {})["tags"] == {"v": "1"}, "the existing resource is left as it was"
    assert (await arm.put(table, {**LOCATION, "tags": {"v": "3"}}))["tags"] == {"v": "3"}, "a plain PUT replaces"

    storage = ArmId.parse(f"{PROVIDERS}/Microsoft.Storage/storageAccounts/stlitware")  # through the generic route
    with pytest.raises(HttpResponseError) as generic:
        await arm.put(storage, {**LOCATION, "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}, create_only=True)
    assert generic.value.status_code == 412 and generic.value.error.code == "PreconditionFailed"
    statuses = [(r["method"], r["status"]) for r in arm_emulator.requests() if r["method"] == "PUT"]
    assert statuses == [("PUT", 201), ("PUT", 412), ("PUT", 200), ("PUT", 412)], "a 412 is not retried"


def test_if_none_match_through_the_sdks_and_on_resource_groups(
    arm_emulator: Emulator, credential: ClientSecretCredential
) -> None:
    options = client_options(arm_emulator)
    network = NetworkManagementClient(credential, SUBSCRIPTION, **options)
    create_only = {"headers": {"If-None-Match": "*"}}
    network.virtual_networks.begin_create_or_update(
        RG,
        "vnet-new",
        {**LOCATION, "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]}}},
        **create_only,
    ).result()
    with pytest.raises(HttpResponseError) as child:
        network.subnets.begin_create_or_update(
            "rg-connectivity", "vnet-hub", "AzureFirewallSubnet", {"properties": {"addressPrefix": "10.1.0.0/26"}}
        ).result()
    assert child.value.error.code == "ResourceGroupNotFound", "rg-connectivity is not in this subscription"
    hub = NetworkManagementClient(credential, CONNECTIVITY_SUBSCRIPTION, **options)
    with pytest.raises(HttpResponseError) as existing_child:
        hub.subnets.begin_create_or_update(
            "rg-connectivity",
            "vnet-hub",
            "AzureFirewallSubnet",
            {"properties": {"addressPrefix": "10.1.0.0/26"}},
            **create_only,
        ).result()
    assert existing_child.value.status_code == 412 and existing_child.value.error.code == "PreconditionFailed"
    groups = ResourceManagementClient(credential, SUBSCRIPTION, **options)
    groups.resource_groups.create_or_update("rg-fresh", LOCATION, **create_only)
    with pytest.raises(HttpResponseError) as group:
        groups.resource_groups.create_or_update(RG, LOCATION, **create_only)
    assert group.value.status_code == 412 and group.value.error.code == "PreconditionFailed"


# one subscription's emulator answers only for its own ids --------------------------------------


def test_an_id_is_answered_only_in_its_own_subscription(
    arm_emulator: Emulator, credential: ClientSecretCredential
) -> None:
    """The hub lives in the connectivity subscription: asked for in the workload subscription (the
    bug of calling the SDK with the spec's subscription and the id's group and name), it is 404."""
    options = client_options(arm_emulator)
    workload = NetworkManagementClient(credential, SUBSCRIPTION, **options)
    connectivity = NetworkManagementClient(credential, CONNECTIVITY_SUBSCRIPTION, **options)
    assert connectivity.virtual_networks.get("rg-connectivity", "vnet-hub")["id"] == HUB_VNET
    assert connectivity.azure_firewalls.get("rg-connectivity", "fw-hub")["id"] == HUB_FIREWALL
    for read in (
        lambda: workload.virtual_networks.get("rg-connectivity", "vnet-hub"),
        lambda: workload.azure_firewalls.get("rg-connectivity", "fw-hub"),
    ):
        with pytest.raises(ResourceNotFoundError) as missing:
            read()
        assert missing.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as write:
        workload.route_tables.begin_create_or_update("rg-connectivity", "rt-x", LOCATION).result()
    assert write.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError):
        connectivity.virtual_networks.get(RG, "vnet-litware-clients")  # and the other way round
    wrong = HUB_VNET.replace(CONNECTIVITY_SUBSCRIPTION, SUBSCRIPTION)
    assert [r["status"] for r in arm_emulator.requests() if r["path"] == wrong] == [404]
    assert arm_emulator.state.get(wrong) is None and arm_emulator.state.get(CONNECTIVITY) is not None


def test_the_environment_lists_every_seeded_subscription(arm_emulator: Emulator) -> None:
    allowed = arm_emulator.env["SMLW_ALLOWED_SUBSCRIPTIONS"].split(",")
    assert allowed == [SUBSCRIPTION, CONNECTIVITY_SUBSCRIPTION]
    seeded = {r["id"].split("/")[2] for r in arm_emulator.resources()}
    assert seeded == set(allowed)
    for name in ("SMLW_ARM_ENDPOINT", "AZURE_AUTHORITY_HOST", "SMLW_CA_BUNDLE", "ARM_CLOUD_METADATA_URL"):
        assert arm_emulator.env[name], name


# resourceGuid -----------------------------------------------------------------------------------


def _model_has_resource_guid(arm_type: str) -> bool:
    """Independently of the emulator: does the SDK accept and expose `resource_guid` on this type?"""
    classes = {name.lower(): value for name, value in vars(network_models).items() if isinstance(value, type)}
    model: Any = classes[sem._sdk_model_name(arm_type)]
    return hasattr(model(), "resource_guid")


def test_resource_guid_types_are_the_sdk_models_with_resource_guid() -> None:
    network_types = [
        kind for kind in sem.TYPES if kind.startswith("microsoft.network/") and "/privatednszones" not in kind
    ]
    assert {kind for kind in network_types if _model_has_resource_guid(kind)} == sem.resource_guid_types()
    assert "microsoft.network/virtualnetworks" in sem.resource_guid_types()
    assert "microsoft.network/virtualnetworks/subnets" not in sem.resource_guid_types()


def test_resource_guid_is_assigned_on_create_and_kept(
    arm_emulator: Emulator, credential: ClientSecretCredential
) -> None:
    network = NetworkManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator))
    injected = str(uuid.uuid4())
    body: dict[str, Any] = {
        **LOCATION,
        "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "resourceGuid": injected},
    }
    created = network.virtual_networks.begin_create_or_update(RG, "vnet-g", body).result()
    guid = created["properties"]["resourceGuid"]
    assert uuid.UUID(guid) and guid != injected, "assigned by Azure, never taken from the body"
    body["properties"]["resourceGuid"] = str(uuid.uuid4())
    body["tags"] = {"changed": "yes"}
    assert (
        network.virtual_networks.begin_create_or_update(RG, "vnet-g", body).result()["properties"]["resourceGuid"]
        == guid
    ), "kept across a PUT"
    subnet = network.subnets.begin_create_or_update(
        RG, "vnet-g", "a", {"properties": {"addressPrefix": "10.0.1.0/24"}}
    ).result()
    assert "resourceGuid" not in subnet["properties"], "subnets have none (the SDK's Subnet has no resource_guid)"
    peering = network.virtual_network_peerings.begin_create_or_update(
        RG, "vnet-g", "to-hub", {"properties": {"remoteVirtualNetwork": {"id": HUB_VNET}}}
    ).result()
    peering_guid = peering["properties"]["resourceGuid"]
    vnet = network.virtual_networks.get(RG, "vnet-g")
    assert vnet["properties"]["resourceGuid"] == guid
    assert vnet["properties"]["virtualNetworkPeerings"][0]["properties"]["resourceGuid"] == peering_guid
    network.virtual_networks.begin_delete(RG, "vnet-g").result()
    recreated = network.virtual_networks.begin_create_or_update(RG, "vnet-g", body).result()
    assert recreated["properties"]["resourceGuid"] != guid, "a new resource, a new guid"
    hub = NetworkManagementClient(credential, CONNECTIVITY_SUBSCRIPTION, **client_options(arm_emulator))
    assert uuid.UUID(hub.virtual_networks.get("rg-connectivity", "vnet-hub")["properties"]["resourceGuid"])


# Azure ML managed private endpoints --------------------------------------------------------------


def test_managed_private_endpoint_is_named_after_workspace_id_and_rule(
    arm_emulator: Emulator, credential: ClientSecretCredential
) -> None:
    ml = MachineLearningServicesMgmtClient(credential, SUBSCRIPTION, **client_options(arm_emulator))
    resources = ResourceManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator))
    workspace = ml.workspaces.begin_create_or_update(
        RG, "mlw-m", {**LOCATION, "properties": {"managedNetwork": {"isolationMode": "AllowInternetOutbound"}}}
    ).result()
    workspace_id = workspace["properties"]["workspaceId"]
    lake = f"{PROVIDERS}/Microsoft.Storage/storageAccounts/dlslitware"
    rule = {
        "properties": {
            "type": "PrivateEndpoint",
            "destination": {"serviceResourceId": lake, "subresourceTarget": "dfs"},
        }
    }
    ml.managed_network_settings_rule.begin_create_or_update(RG, "mlw-m", "lake", rule).result()
    (connection,) = resources.resources.get_by_id(lake, api_version="2023-05-01")["properties"][
        "privateEndpointConnections"
    ]
    assert connection["name"] == "mlw-m.lake"
    assert connection["properties"]["privateEndpoint"]["id"] == (
        f"/subscriptions/{sem.MANAGED_SUBSCRIPTION}/resourceGroups/azureml-managed-{workspace_id}"
        "/providers/Microsoft.Network/privateEndpoints/mlw-m-lake"
    )
