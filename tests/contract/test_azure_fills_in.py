"""What Azure fills in on its own: a firewall's private IP and ipConfiguration ids, a workspace's
private endpoint connections, the actions of a subnet delegation; and deletes throttled in their own
bucket."""

from __future__ import annotations

from typing import Any

import pytest
from azure.ai.ml._restclient.arm_ml_service import MachineLearningServicesMgmtClient
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.network import NetworkManagementClient

from armemu import Emulator
from armemu.seed import CONNECTIVITY_SUBSCRIPTION, HUB_FIREWALL, PROVIDERS
from contract.conftest import SUBSCRIPTION, client_options, raw_call

RG = "rg-litware"
LOCATION = "brazilsouth"
NET = f"{PROVIDERS}/Microsoft.Network"


@pytest.fixture
def network(arm_emulator: Emulator, credential: ClientSecretCredential) -> NetworkManagementClient:
    return NetworkManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator))


def _vnet(network: NetworkManagementClient, subnets: list[dict[str, Any]]) -> None:
    space = {"addressPrefixes": ["10.5.0.0/16"]}
    body = {"location": LOCATION, "properties": {"addressSpace": space, "subnets": subnets}}
    network.virtual_networks.begin_create_or_update(RG, "vnet-f", body).result()


def test_a_created_firewall_gets_its_private_ip_and_ip_configuration_ids(
    arm_emulator: Emulator, credential: ClientSecretCredential, network: NetworkManagementClient
) -> None:
    _vnet(network, [{"name": "AzureFirewallSubnet", "properties": {"addressPrefix": "10.5.0.0/26"}}])
    ip = {"location": LOCATION, "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}}
    network.public_ip_addresses.begin_create_or_update(RG, "pip-f", ip).result()
    configuration = {
        "name": "fw-ipconfig",
        "properties": {
            "subnet": {"id": f"{NET}/virtualNetworks/vnet-f/subnets/AzureFirewallSubnet"},
            "publicIPAddress": {"id": f"{NET}/publicIPAddresses/pip-f"},
            "privateIPAddress": "10.5.0.50",  # read-only: Azure assigns it
        },
    }
    body = {"location": LOCATION, "properties": {"ipConfigurations": [configuration]}}
    created = network.azure_firewalls.begin_create_or_update(RG, "fw-f", body).result()
    (config,) = created["properties"]["ipConfigurations"]
    assert config["properties"]["privateIPAddress"] == "10.5.0.4", "the first address after Azure's reserved ones"
    assert config["id"] == f"{NET}/azureFirewalls/fw-f/ipConfigurations/fw-ipconfig"
    assert config["properties"]["provisioningState"] == "Succeeded"
    del configuration["properties"]["privateIPAddress"]
    updated = network.azure_firewalls.begin_create_or_update(RG, "fw-f", body).result()
    assert updated["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.5.0.4", "kept"
    hub = NetworkManagementClient(credential, CONNECTIVITY_SUBSCRIPTION, **client_options(arm_emulator))
    seeded = hub.azure_firewalls.get("rg-connectivity", "fw-hub")["properties"]["ipConfigurations"][0]
    assert seeded["id"] == f"{HUB_FIREWALL}/ipConfigurations/fw-ipconfig"
    assert seeded["properties"]["privateIPAddress"] == "10.1.0.4"


def test_a_private_endpoint_to_a_workspace_is_a_connection_on_it(
    arm_emulator: Emulator, credential: ClientSecretCredential, network: NetworkManagementClient
) -> None:
    ml = MachineLearningServicesMgmtClient(credential, SUBSCRIPTION, **client_options(arm_emulator))
    workspace = ml.workspaces.begin_create_or_update(RG, "mlw-f", {"location": LOCATION}).result()
    subnet = {"addressPrefix": "10.5.1.0/24", "privateEndpointNetworkPolicies": "Disabled"}
    _vnet(network, [{"name": "pe", "properties": subnet}])
    link = {"name": "ws", "properties": {"privateLinkServiceId": workspace["id"], "groupIds": ["amlworkspace"]}}
    endpoint_body = {
        "location": LOCATION,
        "properties": {
            "subnet": {"id": f"{NET}/virtualNetworks/vnet-f/subnets/pe"},
            "privateLinkServiceConnections": [link],
        },
    }
    endpoint = network.private_endpoints.begin_create_or_update(RG, "pe-mlw-f", endpoint_body).result()
    (listed,) = ml.workspaces.get(RG, "mlw-f")["properties"]["privateEndpointConnections"]
    # The shape of Azure's own example (PrivateEndpointConnection/get.json, api-version 2025-12-01).
    assert listed["name"].startswith("pe-mlw-f.")
    assert listed["id"] == f"{workspace['id']}/privateEndpointConnections/{listed['name']}"
    assert listed["type"] == "Microsoft.MachineLearningServices/workspaces/privateEndpointConnections"
    assert listed["properties"] == {
        "privateEndpoint": {"id": endpoint["id"]},
        "privateLinkServiceConnectionState": {
            "status": "Approved",
            "description": "Auto-Approved",
            "actionsRequired": "None",
        },
        "provisioningState": "Succeeded",
    }
    alone = ml.private_endpoint_connections.get(RG, "mlw-f", listed["name"])
    assert alone["id"] == listed["id"] and alone["properties"] == listed["properties"]
    assert [c["name"] for c in ml.private_endpoint_connections.list(RG, "mlw-f")] == [listed["name"]]
    network.private_endpoints.begin_create_or_update(RG, "pe-mlw-f", endpoint_body).result()
    assert len(ml.workspaces.get(RG, "mlw-f")["properties"]["privateEndpointConnections"]) == 1, "one per endpoint"
    network.private_endpoints.begin_delete(RG, "pe-mlw-f").result()
    assert ml.workspaces.get(RG, "mlw-f")["properties"]["privateEndpointConnections"] == []
    with pytest.raises(ResourceNotFoundError):
        ml.private_endpoint_connections.get(RG, "mlw-f", listed["name"])


def test_delegations_come_back_with_their_service_actions(network: NetworkManagementClient) -> None:
    aci = {"name": "to-service", "properties": {"serviceName": "Microsoft.ContainerInstance/containerGroups"}}
    made_up = {"serviceName": "Microsoft.Databricks/workspaces", "actions": ["made/up"]}
    databricks = {"name": "to-service", "properties": made_up}
    subnets = [
        {"name": "aci", "properties": {"addressPrefix": "10.5.2.0/24", "delegations": [aci]}},
        {"name": "dbx", "properties": {"addressPrefix": "10.5.3.0/24", "delegations": [databricks]}},
    ]
    _vnet(network, subnets)
    delegation = network.subnets.get(RG, "vnet-f", "aci")["properties"]["delegations"][0]
    assert delegation["id"] == f"{NET}/virtualNetworks/vnet-f/subnets/aci/delegations/to-service"
    assert delegation["properties"]["actions"] == ["Microsoft.Network/virtualNetworks/subnets/action"]
    assert delegation["properties"]["provisioningState"] == "Succeeded"
    inline = network.virtual_networks.get(RG, "vnet-f")["properties"]["subnets"][1]
    assert inline["properties"]["delegations"][0]["properties"]["actions"] == [
        "Microsoft.Network/virtualNetworks/subnets/join/action",
        "Microsoft.Network/virtualNetworks/subnets/prepareNetworkPolicies/action",
        "Microsoft.Network/virtualNetworks/subnets/unprepareNetworkPolicies/action",
    ], "what a client sends as actions is replaced by the service's"


def test_deletes_draw_on_their_own_bucket(arm_emulator: Emulator, credential: ClientSecretCredential) -> None:
    network = NetworkManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator), retry_total=0)
    for name in ("rt-1", "rt-2"):
        network.route_tables.begin_create_or_update(RG, name, {"location": LOCATION}).result()
    arm_emulator.configure(deletes_burst=1, deletes_per_second=0.001)
    status, headers, _ = raw_call(arm_emulator, "DELETE", f"{NET}/routeTables/rt-1?api-version=2024-05-01")
    assert status == 202 and headers["x-ms-ratelimit-remaining-subscription-deletes"] == "0"
    with pytest.raises(HttpResponseError) as throttled:
        network.route_tables.begin_delete(RG, "rt-2")
    assert throttled.value.status_code == 429
    assert throttled.value.response.headers["x-ms-ratelimit-remaining-subscription-deletes"] == "0"
    status, headers, _ = raw_call(
        arm_emulator, "PUT", f"{NET}/routeTables/rt-3?api-version=2024-05-01", {"location": LOCATION}
    )
    assert status == 201, "writes are counted apart"
    assert int(headers["x-ms-ratelimit-remaining-subscription-writes"]) > 0


def test_private_endpoints_take_addresses_from_their_own_subnet(network: NetworkManagementClient) -> None:
    """Two VNets with the same address space (spokes that never peer with each other): each subnet
    hands out its own addresses, from the fifth on (Azure keeps the first four)."""
    storage = f"{PROVIDERS}/Microsoft.Storage/storageAccounts/stlitware"
    addresses = []
    for vnet in ("vnet-f", "vnet-g"):
        subnet = {"addressPrefix": "10.5.1.0/24", "privateEndpointNetworkPolicies": "Disabled"}
        space = {"addressPrefixes": ["10.5.0.0/16"]}
        body = {
            "location": LOCATION,
            "properties": {"addressSpace": space, "subnets": [{"name": "pe", "properties": subnet}]},
        }
        network.virtual_networks.begin_create_or_update(RG, vnet, body).result()
        link = {"name": "st", "properties": {"privateLinkServiceId": storage, "groupIds": ["blob"]}}
        endpoint = {
            "location": LOCATION,
            "properties": {
                "subnet": {"id": f"{NET}/virtualNetworks/{vnet}/subnets/pe"},
                "privateLinkServiceConnections": [link],
            },
        }
        created = network.private_endpoints.begin_create_or_update(RG, f"pe-{vnet}", endpoint).result()
        addresses.append(created.custom_dns_configs[0].ip_addresses)
    assert addresses == [["10.5.1.4"], ["10.5.1.4"]]
