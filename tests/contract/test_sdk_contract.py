"""The unmodified Azure SDKs against the emulator: every resource type through create, read, update
and delete (long-running operations polled for real), and ARM's error answers."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest
from azure.ai.ml._restclient.arm_ml_service import MachineLearningServicesMgmtClient
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.aio import NetworkManagementClient as AsyncNetworkManagementClient
from azure.mgmt.privatedns import PrivateDnsManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from armemu import Emulator
from armemu.seed import CONNECTIVITY_SUBSCRIPTION, HUB_VNET, PROVIDERS
from contract.conftest import SUBSCRIPTION, client_options, credential_args
from secureml_operator.failures import classify

RG = "rg-litware"
VNET = f"{PROVIDERS}/Microsoft.Network/virtualNetworks/vnet-c"


@pytest.fixture
def network(arm_emulator: Emulator, credential: ClientSecretCredential) -> NetworkManagementClient:
    return NetworkManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator))


def test_network_types_through_create_read_update_delete(
    arm_emulator: Emulator, credential: ClientSecretCredential, network: NetworkManagementClient
) -> None:
    vnet = network.virtual_networks.begin_create_or_update(
        RG, "vnet-c", {"location": "brazilsouth", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}
    ).result()
    assert vnet["properties"]["provisioningState"] == "Succeeded" and vnet["properties"]["subnets"] == []
    nsg = network.network_security_groups.begin_create_or_update(RG, "nsg-c", {"location": "brazilsouth"}).result()
    assert len(nsg["properties"]["defaultSecurityRules"]) == 6
    rule = {
        "properties": {
            "protocol": "*",
            "sourcePortRange": "*",
            "destinationPortRange": "*",
            "access": "Deny",
            "sourceAddressPrefix": "*",
            "destinationAddressPrefix": "*",
            "priority": 200,
            "direction": "Outbound",
        }
    }
    network.security_rules.begin_create_or_update(RG, "nsg-c", "deny-all", rule).result()
    table = network.route_tables.begin_create_or_update(RG, "rt-c", {"location": "brazilsouth"}).result()
    route = {
        "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.1.0.4"}
    }
    network.routes.begin_create_or_update(RG, "rt-c", "default", route).result()
    ip = network.public_ip_addresses.begin_create_or_update(
        RG,
        "pip-c",
        {"location": "brazilsouth", "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}},
    ).result()
    assert ip["properties"]["ipAddress"].startswith("20.")
    nat = network.nat_gateways.begin_create_or_update(
        RG,
        "ng-c",
        {
            "location": "brazilsouth",
            "sku": {"name": "Standard"},
            "properties": {"publicIpAddresses": [{"id": ip["id"]}]},
        },
    ).result()
    policy = network.service_endpoint_policies.begin_create_or_update(RG, "sep-c", {"location": "brazilsouth"}).result()
    network.service_endpoint_policy_definitions.begin_create_or_update(
        RG,
        "sep-c",
        "aml",
        {"properties": {"service": "Global", "serviceResources": ["/services/Azure/MachineLearning"]}},
    ).result()
    subnet = network.subnets.begin_create_or_update(
        RG,
        "vnet-c",
        "training",
        {
            "properties": {
                "addressPrefix": "10.0.40.0/24",
                "networkSecurityGroup": {"id": nsg["id"]},
                "routeTable": {"id": table["id"]},
                "natGateway": {"id": nat["id"]},
                "serviceEndpoints": [{"service": "Microsoft.Storage"}],
                "serviceEndpointPolicies": [{"id": policy["id"]}],
            }
        },
    ).result()
    assert subnet["properties"]["addressPrefix"] == "10.0.40.0/24"
    assert network.network_security_groups.get(RG, "nsg-c")["properties"]["subnets"] == [{"id": subnet["id"]}]
    assert (
        network.route_tables.get(RG, "rt-c")["properties"]["routes"][0]["properties"]["nextHopIpAddress"] == "10.1.0.4"
    )
    assert network.service_endpoint_policies.get(RG, "sep-c")["properties"]["subnets"] == [{"id": subnet["id"]}]
    pe_subnet = network.subnets.begin_create_or_update(
        RG, "vnet-c", "pe", {"properties": {"addressPrefix": "10.0.20.0/24"}}
    ).result()
    endpoint = network.private_endpoints.begin_create_or_update(
        RG,
        "pe-c",
        {
            "location": "brazilsouth",
            "properties": {
                "subnet": {"id": pe_subnet["id"]},
                "privateLinkServiceConnections": [
                    {
                        "name": "c",
                        "properties": {
                            "privateLinkServiceId": f"{PROVIDERS}/Microsoft.Storage/storageAccounts/stlitware",
                            "groupIds": ["blob"],
                        },
                    }
                ],
            },
        },
    ).result()
    assert endpoint["properties"]["customDnsConfigs"][0]["ipAddresses"] == ["10.0.20.4"]
    peering = network.virtual_network_peerings.begin_create_or_update(  # to the hub in another subscription
        RG,
        "vnet-c",
        "to-hub",
        {"properties": {"remoteVirtualNetwork": {"id": HUB_VNET}, "allowForwardedTraffic": True}},
    ).result()
    assert peering["properties"]["remoteAddressSpace"]["addressPrefixes"] == ["10.1.0.0/16"]
    connectivity = NetworkManagementClient(credential, CONNECTIVITY_SUBSCRIPTION, **client_options(arm_emulator))
    firewall = connectivity.azure_firewalls.get("rg-connectivity", "fw-hub")
    assert firewall["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.1.0.4"
    # update: a child through its own endpoint; the parent lists it inline
    route["properties"]["nextHopType"] = "Internet"
    del route["properties"]["nextHopIpAddress"]
    network.routes.begin_create_or_update(RG, "rt-c", "default", route).result()
    assert network.routes.get(RG, "rt-c", "default")["properties"]["nextHopType"] == "Internet"
    # delete in dependency order; in use -> 409
    with pytest.raises(HttpResponseError) as in_use:
        network.network_security_groups.begin_delete(RG, "nsg-c").result()
    assert in_use.value.status_code == 409
    network.private_endpoints.begin_delete(RG, "pe-c").result()
    network.subnets.begin_delete(RG, "vnet-c", "training").result()
    network.network_security_groups.begin_delete(RG, "nsg-c").result()
    with pytest.raises(ResourceNotFoundError):
        network.network_security_groups.get(RG, "nsg-c")


def test_parent_put_replaces_inline_children_and_omitting_keeps_them(network: NetworkManagementClient) -> None:
    body: dict[str, Any] = {
        "location": "brazilsouth",
        "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}},
    }
    network.virtual_networks.begin_create_or_update(RG, "vnet-c", body).result()
    network.subnets.begin_create_or_update(RG, "vnet-c", "a", {"properties": {"addressPrefix": "10.0.1.0/24"}}).result()
    network.virtual_networks.begin_create_or_update(RG, "vnet-c", body).result()  # no `subnets`: kept
    assert [s["name"] for s in network.virtual_networks.get(RG, "vnet-c")["properties"]["subnets"]] == ["a"]
    body["properties"]["subnets"] = []
    network.virtual_networks.begin_create_or_update(RG, "vnet-c", body).result()  # `subnets: []`: all deleted
    assert network.virtual_networks.get(RG, "vnet-c")["properties"]["subnets"] == []


def test_invalid_reference_is_400_and_stale_etag_is_412(network: NetworkManagementClient) -> None:
    body = {"location": "brazilsouth", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}
    network.virtual_networks.begin_create_or_update(RG, "vnet-c", body).result()
    missing = f"{PROVIDERS}/Microsoft.Network/networkSecurityGroups/nope"
    with pytest.raises(HttpResponseError) as invalid:
        network.subnets.begin_create_or_update(
            RG, "vnet-c", "s", {"properties": {"addressPrefix": "10.0.1.0/24", "networkSecurityGroup": {"id": missing}}}
        ).result()
    assert invalid.value.status_code == 400 and invalid.value.error.code == "InvalidResourceReference"
    with pytest.raises(HttpResponseError) as stale:
        network.virtual_networks.begin_create_or_update(RG, "vnet-c", body, headers={"If-Match": 'W/"old"'}).result()
    assert stale.value.status_code == 412
    current = network.virtual_networks.get(RG, "vnet-c")["etag"]
    network.virtual_networks.begin_create_or_update(RG, "vnet-c", body, headers={"If-Match": current}).result()


def test_throttling_answers_429_with_retry_after(arm_emulator: Emulator, credential: ClientSecretCredential) -> None:
    arm_emulator.configure(reads_burst=2, reads_per_second=0.001)
    client = NetworkManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator), retry_total=0)
    client.virtual_networks.list(RG)
    with pytest.raises(HttpResponseError) as throttled:
        for _ in range(3):
            list(client.virtual_networks.list(RG))
    assert throttled.value.status_code == 429
    assert throttled.value.response.headers["Retry-After"] == "1"
    assert throttled.value.response.headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"


def test_missing_token_and_bad_secret_are_refused(arm_emulator: Emulator) -> None:
    (tenant, client, _), options = credential_args(arm_emulator)
    wrong = ClientSecretCredential(tenant, client, "wrong", **options)
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        wrong.get_token(f"{arm_emulator.endpoint}/.default")


def test_private_dns_zone_link_and_record(arm_emulator: Emulator, credential: ClientSecretCredential) -> None:
    dns = PrivateDnsManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator))
    zone = dns.private_zones.begin_create_or_update(RG, "privatelink.api.azureml.ms", {"location": "global"}).result()
    assert zone["properties"]["numberOfRecordSets"] == 1
    link = dns.virtual_network_links.begin_create_or_update(
        RG,
        "privatelink.api.azureml.ms",
        "hub",
        {"location": "global", "properties": {"virtualNetwork": {"id": HUB_VNET}}},
    ).result()
    assert link["properties"]["virtualNetworkLinkState"] == "Completed"
    record = dns.record_sets.create_or_update(
        RG,
        "privatelink.api.azureml.ms",
        "A",
        "ws",
        {"properties": {"ttl": 10, "aRecords": [{"ipv4Address": "10.0.0.4"}]}},
    )
    assert record["properties"]["fqdn"] == "ws.privatelink.api.azureml.ms."
    dns.record_sets.delete(RG, "privatelink.api.azureml.ms", "A", "ws")
    with pytest.raises(ResourceNotFoundError):
        dns.record_sets.get(RG, "privatelink.api.azureml.ms", "A", "ws")


def test_workspace_rules_provisioning_and_approval(arm_emulator: Emulator, credential: ClientSecretCredential) -> None:
    ml = MachineLearningServicesMgmtClient(credential, SUBSCRIPTION, **client_options(arm_emulator))
    resources = ResourceManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator))
    body = {
        "location": "brazilsouth",
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "storageAccount": f"{PROVIDERS}/Microsoft.Storage/storageAccounts/stlitware",
            "keyVault": f"{PROVIDERS}/Microsoft.KeyVault/vaults/kv-litware",
            "managedNetwork": {"isolationMode": "AllowInternetOutbound"},
        },
    }
    workspace = ml.workspaces.begin_create_or_update(RG, "mlw-c", body).result()
    assert workspace["properties"]["managedNetwork"]["status"]["status"] == "Inactive"
    fqdn = {"properties": {"type": "FQDN", "destination": "pypi.org"}}
    with pytest.raises(HttpResponseError, match="AllowOnlyApprovedOutbound"):
        ml.managed_network_settings_rule.begin_create_or_update(RG, "mlw-c", "pypi", fqdn).result()
    lake = f"{PROVIDERS}/Microsoft.Storage/storageAccounts/dlslitware"
    rule = {
        "properties": {
            "type": "PrivateEndpoint",
            "destination": {"serviceResourceId": lake, "subresourceTarget": "dfs"},
        }
    }
    created = ml.managed_network_settings_rule.begin_create_or_update(RG, "mlw-c", "lake", rule).result()
    assert created["properties"]["category"] == "UserDefined"
    status = ml.managed_network_provisions.begin_provision_managed_network(RG, "mlw-c", {"includeSpark": True}).result()
    assert status["status"] == "Active" and status["sparkReady"] is True
    target = resources.resources.get_by_id(lake, api_version="2023-05-01")
    connection = target["properties"]["privateEndpointConnections"][0]
    assert connection["properties"]["privateLinkServiceConnectionState"]["status"] == "Pending"
    approval = {"properties": {"privateLinkServiceConnectionState": {"status": "Approved", "description": "ok"}}}
    resources.resources.begin_create_or_update_by_id(connection["id"], approval, api_version="2023-05-01").result()
    approved = resources.resources.get_by_id(connection["id"], api_version="2023-05-01")
    assert approved["properties"]["privateLinkServiceConnectionState"]["status"] == "Approved"
    patched = ml.workspaces.begin_update(RG, "mlw-c", {"properties": {"publicNetworkAccess": "Disabled"}}).result()
    assert patched["properties"]["publicNetworkAccess"] == "Disabled"
    with pytest.raises(HttpResponseError, match="cannot be disabled"):
        ml.workspaces.begin_update(
            RG, "mlw-c", {"properties": {"managedNetwork": {"isolationMode": "Disabled"}}}
        ).result()
    ml.managed_network_settings_rule.begin_delete(RG, "mlw-c", "lake").result()
    assert (
        resources.resources.get_by_id(lake, api_version="2023-05-01")["properties"]["privateEndpointConnections"] == []
    )
    ml.workspaces.begin_delete(RG, "mlw-c").result()
    with pytest.raises(ResourceNotFoundError):
        ml.workspaces.get(RG, "mlw-c")


def test_injected_fault_and_failed_lro(arm_emulator: Emulator, network: NetworkManagementClient) -> None:
    arm_emulator.fault(method="PUT", path="/routeTables/rt-f$", status=500, count=1)
    network.route_tables.begin_create_or_update(RG, "rt-f", {"location": "brazilsouth"}).result()  # SDK retries
    assert [r["status"] for r in arm_emulator.requests() if r["method"] == "PUT"] == [500, 201]
    arm_emulator.fault(method="PUT", path="/routeTables/rt-g$", failLro=True, code="InternalServerError")
    with pytest.raises(HttpResponseError) as failed:
        network.route_tables.begin_create_or_update(RG, "rt-g", {"location": "brazilsouth"}).result()
    failure = classify(failed.value)
    assert (failure.transient, failure.reason) == (True, "OperationFailed"), "a failed operation is retried"
    arm_emulator.fault(method="PUT", path="/routeTables/rt-h$", failLro=True, code="InvalidResourceReference")
    with pytest.raises(HttpResponseError) as rejected:
        network.route_tables.begin_create_or_update(RG, "rt-h", {"location": "brazilsouth"}).result()
    failure = classify(rejected.value)
    assert (failure.transient, failure.reason) == (False, "AzureRejected"), "unless its code says the input is wrong"


def test_injected_disconnect_before_or_after_the_request_is_handled(
    arm_emulator: Emulator, network: NetworkManagementClient
) -> None:
    arm_emulator.fault(method="PUT", path="/routeTables/rt-d$", disconnect="after", count=1)
    network.route_tables.begin_create_or_update(RG, "rt-d", {"location": "brazilsouth"}).result()  # SDK retries
    puts = [r for r in arm_emulator.requests() if r["method"] == "PUT"]
    assert [(r["status"], r.get("handledStatus")) for r in puts] == [(504, 201), (200, None)], "written, answer lost"
    arm_emulator.clear_requests()
    arm_emulator.fault(method="GET", path="/routeTables/rt-d$", disconnect="before", count=1)
    assert network.route_tables.get(RG, "rt-d")["name"] == "rt-d"
    assert [r["status"] for r in arm_emulator.requests()] == [504, 200]


async def test_async_clients_poll_long_running_operations(arm_emulator: Emulator) -> None:
    principal, options = credential_args(arm_emulator)
    async with (
        AsyncClientSecretCredential(*principal, **options) as credential,
        AsyncNetworkManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator)) as network,
    ):
        arm_emulator.configure(lro_seconds=1.5)
        poller = await network.route_tables.begin_create_or_update(RG, "rt-a", {"location": "brazilsouth"})
        table = await poller.result()
        assert table["properties"]["provisioningState"] == "Succeeded"
        polls = [r for r in arm_emulator.requests() if "/operations/" in r["path"]]
        assert len(polls) >= 2, "the SDK polled Azure-AsyncOperation until it completed"
        await (await network.route_tables.begin_delete(RG, "rt-a")).result()
        with pytest.raises(ResourceNotFoundError):
            await network.route_tables.get(RG, "rt-a")


def test_no_bearer_token_is_401_and_a_missing_group_is_resource_group_not_found(
    arm_emulator: Emulator, network: NetworkManagementClient
) -> None:
    request = urllib.request.Request(f"{arm_emulator.endpoint}{VNET}?api-version=2026-03-01")
    context = ssl.create_default_context(cafile=str(arm_emulator.ca_path))
    with pytest.raises(urllib.error.HTTPError) as unauthenticated:
        urllib.request.urlopen(request, context=context, timeout=10)
    assert unauthenticated.value.code == 401
    assert json.loads(unauthenticated.value.read())["error"]["code"] == "AuthenticationFailed"
    with pytest.raises(ResourceNotFoundError) as missing:
        network.route_tables.get("rg-nowhere", "rt")
    assert missing.value.error.code == "ResourceGroupNotFound"
