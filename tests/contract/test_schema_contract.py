"""The emulator refuses what Azure refuses, over HTTPS like any client: for every type the operator
writes, a property its api-version lacks is dropped (or refused, by the network provider), an
unserved api-version is refused, every served one is accepted; and each enum, range and rule of the
resource providers is refused with the provider's code."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.mgmt.applicationinsights.v2020_02_02 import ApplicationInsightsManagementClient
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.privatedns import PrivateDnsManagementClient
from azure.mgmt.storage import StorageManagementClient

from armemu import Emulator, schema, versions
from armemu.seed import HUB_VNET, LOCATION, PROVIDERS
from contract.conftest import SUBSCRIPTION, client_options, raw_call
from secureml_operator.azure.arm import GENERIC_API_VERSIONS, ROUTES

NET = f"{PROVIDERS}/Microsoft.Network"
VNET = f"{NET}/virtualNetworks/vnet-s"
SUBNET = f"{VNET}/subnets/s1"
NSG = f"{NET}/networkSecurityGroups/nsg-s"
ROUTE_TABLE = f"{NET}/routeTables/rt-s"
ENDPOINT = f"{NET}/privateEndpoints/pe-s"
ZONE = f"{NET}/privateDnsZones/privatelink.blob.core.windows.net"
POLICY = f"{NET}/serviceEndpointPolicies/sep-s"
FIREWALL_POLICY = f"{NET}/firewallPolicies/afwp-s"
WORKSPACE = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces/ws-s"
STORAGE = f"{PROVIDERS}/Microsoft.Storage/storageAccounts/stlitware"
VAULT = f"{PROVIDERS}/Microsoft.KeyVault/vaults/kv-litware"
REGISTRY = f"{PROVIDERS}/Microsoft.ContainerRegistry/registries/crlitware"
INSIGHTS = f"{PROVIDERS}/Microsoft.Insights/components/appi-s"
RULE = {
    "protocol": "Tcp",
    "sourcePortRange": "*",
    "destinationPortRange": "443",
    "sourceAddressPrefix": "VirtualNetwork",
    "destinationAddressPrefix": "Storage.brazilsouth",
    "access": "Allow",
    "priority": 300,
    "direction": "Outbound",
}
APPROVAL = {"properties": {"privateLinkServiceConnectionState": {"status": "Approved", "description": "ok"}}}
# One valid write of each type the operator writes (ROUTES and the generic targets), in dependency
# order: type -> (method, path, body). A case replays the writes before its own.
WRITES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "microsoft.network/virtualnetworks": (
        "PUT",
        VNET,
        {"location": LOCATION, "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]}}},
    ),
    "microsoft.network/virtualnetworks/subnets": ("PUT", SUBNET, {"properties": {"addressPrefix": "10.9.1.0/24"}}),
    "microsoft.network/virtualnetworks/virtualnetworkpeerings": (
        "PUT",
        f"{VNET}/virtualNetworkPeerings/to-hub",
        {"properties": {"remoteVirtualNetwork": {"id": HUB_VNET}, "allowForwardedTraffic": True}},
    ),
    "microsoft.network/networksecuritygroups": ("PUT", NSG, {"location": LOCATION}),
    "microsoft.network/networksecuritygroups/securityrules": (
        "PUT",
        f"{NSG}/securityRules/AllowStorage",
        {"properties": RULE},
    ),
    "microsoft.network/routetables": ("PUT", ROUTE_TABLE, {"location": LOCATION}),
    "microsoft.network/routetables/routes": (
        "PUT",
        f"{ROUTE_TABLE}/routes/default",
        {
            "properties": {
                "addressPrefix": "0.0.0.0/0",
                "nextHopType": "VirtualAppliance",
                "nextHopIpAddress": "10.1.0.4",
            }
        },
    ),
    "microsoft.network/publicipaddresses": (
        "PUT",
        f"{NET}/publicIPAddresses/pip-s",
        {"location": LOCATION, "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}},
    ),
    "microsoft.network/natgateways": (
        "PUT",
        f"{NET}/natGateways/ng-s",
        {"location": LOCATION, "sku": {"name": "Standard"}, "properties": {"idleTimeoutInMinutes": 4}},
    ),
    "microsoft.network/privatednszones": ("PUT", ZONE, {"location": "global"}),
    "microsoft.network/privatednszones/virtualnetworklinks": (
        "PUT",
        f"{ZONE}/virtualNetworkLinks/vnet-s",
        {"location": "global", "properties": {"virtualNetwork": {"id": VNET}, "registrationEnabled": False}},
    ),
    "microsoft.network/privatednszones/a": (
        "PUT",
        f"{ZONE}/A/stlitware",
        {"properties": {"ttl": 10, "aRecords": [{"ipv4Address": "10.9.1.4"}]}},
    ),
    "microsoft.network/privateendpoints": (
        "PUT",
        ENDPOINT,
        {
            "location": LOCATION,
            "properties": {
                "subnet": {"id": SUBNET},
                "privateLinkServiceConnections": [
                    {"name": "blob", "properties": {"privateLinkServiceId": STORAGE, "groupIds": ["blob"]}}
                ],
            },
        },
    ),
    "microsoft.network/privateendpoints/privatednszonegroups": (
        "PUT",
        f"{ENDPOINT}/privateDnsZoneGroups/default",
        {"properties": {"privateDnsZoneConfigs": [{"name": "blob", "properties": {"privateDnsZoneId": ZONE}}]}},
    ),
    "microsoft.network/serviceendpointpolicies": ("PUT", POLICY, {"location": LOCATION}),
    "microsoft.network/serviceendpointpolicies/serviceendpointpolicydefinitions": (
        "PUT",
        f"{POLICY}/serviceEndpointPolicyDefinitions/storage",
        {"properties": {"service": "Microsoft.Storage", "serviceResources": [STORAGE]}},
    ),
    "microsoft.network/azurefirewalls": ("PUT", f"{NET}/azureFirewalls/fw-s", {"location": LOCATION}),
    "microsoft.network/firewallpolicies": ("PUT", FIREWALL_POLICY, {"location": LOCATION}),
    "microsoft.network/firewallpolicies/rulecollectiongroups": (
        "PUT",
        f"{FIREWALL_POLICY}/ruleCollectionGroups/secureml-ws-s",
        {
            "properties": {
                "priority": 300,
                "ruleCollections": [
                    {
                        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                        "name": "azureml",
                        "priority": 100,
                        "action": {"type": "Allow"},
                        "rules": [
                            {
                                "ruleType": "ApplicationRule",
                                "name": "studio",
                                "protocols": [{"protocolType": "Https", "port": 443}],
                                "sourceAddresses": ["10.9.1.0/24"],
                                "targetFqdns": ["ml.azure.com"],
                            }
                        ],
                    }
                ],
            }
        },
    ),
    "microsoft.machinelearningservices/workspaces": (
        "PUT",
        WORKSPACE,
        {
            "location": LOCATION,
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "storageAccount": STORAGE,
                "keyVault": VAULT,
                "managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound"},
            },
        },
    ),
    "microsoft.machinelearningservices/workspaces/outboundrules": (
        "PUT",
        f"{WORKSPACE}/outboundRules/pypi",
        {"properties": {"type": "FQDN", "destination": "pypi.org", "category": "UserDefined"}},
    ),
    "microsoft.storage/storageaccounts": (
        "PATCH",
        STORAGE,
        {"properties": {"networkAcls": {"ipRules": [{"value": "198.51.100.7", "action": "Allow"}]}}},
    ),
    "microsoft.storage/storageaccounts/privateendpointconnections": (
        "PUT",
        f"{STORAGE}/privateEndpointConnections/ws-s.blob",
        APPROVAL,
    ),
    "microsoft.keyvault/vaults": (
        "PATCH",
        VAULT,
        {"properties": {"networkAcls": {"ipRules": [{"value": "198.51.100.7"}]}}},
    ),
    "microsoft.keyvault/vaults/privateendpointconnections": (
        "PUT",
        f"{VAULT}/privateEndpointConnections/ws-s.vault",
        APPROVAL,
    ),
    "microsoft.containerregistry/registries": (
        "PATCH",
        REGISTRY,
        {"properties": {"networkRuleSet": {"ipRules": [{"value": "198.51.100.7", "action": "Allow"}]}}},
    ),
    "microsoft.containerregistry/registries/privateendpointconnections": (
        "PUT",
        f"{REGISTRY}/privateEndpointConnections/ws-s.registry",
        APPROVAL,
    ),
    "microsoft.insights/components": (
        "PUT",
        INSIGHTS,
        {"location": LOCATION, "kind": "web", "properties": {"Application_Type": "web"}},
    ),
}
# The api-version the operator (and its SDKs) write each type with.
SDK_VERSIONS = {"microsoft.network": "2026-03-01", "microsoft.machinelearningservices": "2025-12-01"}
NETWORK_PROVIDER = [kind for kind in WRITES if schema.refuses_unknown(kind)]


def _version(kind: str) -> str:
    if kind.startswith("microsoft.network/privatednszones"):
        return "2024-06-01"
    namespace = kind.split("/", 1)[0]
    return GENERIC_API_VERSIONS.get(namespace) or SDK_VERSIONS[namespace]


def _write(emulator: Emulator, kind: str, body: dict[str, Any] | None = None, version: str | None = None) -> Any:
    """The writes before `kind`, then its own (with `body` instead of the valid one): status, body."""
    for earlier in list(WRITES)[: list(WRITES).index(kind)]:
        method, path, valid = WRITES[earlier]
        status, _, answer = raw_call(emulator, method, f"{path}?api-version={_version(earlier)}", valid)
        assert status < 300, f"{method} {path}: {answer}"
    method, path, valid = WRITES[kind]
    status, _, answer = raw_call(emulator, method, f"{path}?api-version={version or _version(kind)}", body or valid)
    return status, answer


def _with_property(kind: str, name: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(WRITES[kind][2])
    body.setdefault("properties", {})[name] = value
    return body


def _error(answer: Any) -> tuple[str, str]:
    details = answer["error"]["details"]
    return answer["error"]["code"], " ".join([answer["error"]["message"], *(d["message"] for d in details)])


def test_every_type_the_operator_writes_has_a_write_here_and_an_sdk_model() -> None:
    operator_types = {kind for kind in ROUTES} | {kind for kind in WRITES if kind.split("/")[0] in GENERIC_API_VERSIONS}
    assert operator_types <= set(WRITES) <= set(schema.MODELS)


@pytest.mark.parametrize("kind", list(WRITES))
def test_a_valid_write_is_accepted(arm_emulator: Emulator, kind: str) -> None:
    status, answer = _write(arm_emulator, kind)
    assert status < 300, answer


@pytest.mark.parametrize("kind", list(WRITES))
def test_a_property_the_api_version_lacks_is_dropped_or_refused(arm_emulator: Emulator, kind: str) -> None:
    status, answer = _write(arm_emulator, kind, _with_property(kind, "notInThisApiVersion", True))
    if kind in NETWORK_PROVIDER:  # Json.NET's missing member error, as the network provider answers
        assert status == 400, answer
        code, message = _error(answer)
        assert code == "InvalidRequestFormat"
        assert answer["error"]["details"][0]["code"] == "InvalidJson"
        assert (
            "Could not find member 'notInThisApiVersion'" in message
            and "Path 'properties.notInThisApiVersion'" in message
        )
        return
    assert status < 300, answer
    path = WRITES[kind][1]
    _, _, stored = raw_call(arm_emulator, "GET", f"{path}?api-version={_version(kind)}")
    assert "notInThisApiVersion" not in stored["properties"]


def test_read_only_properties_are_ignored(arm_emulator: Emulator) -> None:
    kind = "microsoft.network/networksecuritygroups"
    body = {**WRITES[kind][2], "properties": {"provisioningState": "Failed", "defaultSecurityRules": "ours"}}
    status, answer = _write(arm_emulator, kind, body)
    assert status == 201, answer
    assert (
        answer["properties"]["provisioningState"] != "Failed" and len(answer["properties"]["defaultSecurityRules"]) == 6
    )


@pytest.mark.parametrize("kind", list(WRITES))
def test_an_api_version_the_provider_does_not_serve_is_refused(arm_emulator: Emulator, kind: str) -> None:
    status, answer = _write(arm_emulator, kind, version="2017-01-01")
    assert status == 400 and answer["error"]["code"] == "NoRegisteredProviderFound", answer
    assert "API version '2017-01-01'" in answer["error"]["message"]
    status, _, answer = raw_call(arm_emulator, "GET", f"{WRITES[kind][1]}?api-version=2099-01-01")
    assert status == 400 and answer["error"]["code"] == "NoRegisteredProviderFound"


def test_a_resource_group_api_version_arm_does_not_serve_is_refused(arm_emulator: Emulator) -> None:
    status, _, answer = raw_call(
        arm_emulator,
        "GET",
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-litware?api-version=2023-02-01",
    )
    assert status == 400 and answer["error"]["code"] == "InvalidApiVersionParameter"
    status, _, _ = raw_call(
        arm_emulator, "GET", f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-litware?api-version=2021-04-01"
    )
    assert status == 200


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (f"{PROVIDERS}/Microsoft.Network/virtualNetworks/vnet-litware-clients", "microsoft.network/virtualnetworks"),
        (WORKSPACE, "microsoft.machinelearningservices/workspaces"),
        (f"{WORKSPACE}/outboundRules/pypi", "microsoft.machinelearningservices/workspaces/outboundrules"),
        (ZONE, "microsoft.network/privatednszones"),
        (STORAGE, "microsoft.storage/storageaccounts"),
        (VAULT, "microsoft.keyvault/vaults"),
        (REGISTRY, "microsoft.containerregistry/registries"),
        (INSIGHTS, "microsoft.insights/components"),
    ],
)
def test_every_served_version_stays_accepted(arm_emulator: Emulator, path: str, kind: str) -> None:
    """Not only the SDK's default: every stable version the provider lists (docs/emulator.md)."""
    arm_emulator.configure(reads_burst=1000, reads_per_second=1000)
    served = versions.served(kind)
    assert served and all(
        not version.endswith("-preview") or kind.startswith("microsoft.machinelearning") for version in served
    )
    for version in served:
        status, _, answer = raw_call(arm_emulator, "GET", f"{path}?api-version={version}")
        assert status in (200, 404), f"{version}: {answer}"
    outbound = versions.served("microsoft.machinelearningservices/workspaces/outboundrules")
    assert "2023-04-01" not in outbound and "2023-10-01" in outbound  # managed networks came with 2023-10-01


def test_the_installed_sdks_default_versions_are_served(
    arm_emulator: Emulator, credential: ClientSecretCredential
) -> None:
    """Each SDK at its own default api-version: the newest the emulator knows is never refused."""
    options = client_options(arm_emulator)
    group = "rg-litware"
    NetworkManagementClient(credential, SUBSCRIPTION, **options).virtual_networks.get(group, "vnet-litware-clients")
    list(PrivateDnsManagementClient(credential, SUBSCRIPTION, **options).private_zones.list_by_resource_group(group))
    StorageManagementClient(credential, SUBSCRIPTION, **options).storage_accounts.get_properties(group, "stlitware")
    KeyVaultManagementClient(credential, SUBSCRIPTION, **options).vaults.get(group, "kv-litware")
    ContainerRegistryManagementClient(credential, SUBSCRIPTION, **options).registries.get(group, "crlitware")
    ApplicationInsightsManagementClient(credential, SUBSCRIPTION, **options).components.get(group, "appi-litware")
    assert all(entry["status"] == 200 for entry in arm_emulator.requests() if entry["caller"] == "client")


# enums, types and ranges: refused with the provider's code ----------------------------------------

SECURITY_RULE = "microsoft.network/networksecuritygroups/securityrules"
ROUTE = "microsoft.network/routetables/routes"
DEFINITION = "microsoft.network/serviceendpointpolicies/serviceendpointpolicydefinitions"
OUTBOUND = "microsoft.machinelearningservices/workspaces/outboundrules"


@pytest.mark.parametrize(
    ("kind", "name", "value"),
    [
        (SECURITY_RULE, "access", "Maybe"),
        (SECURITY_RULE, "direction", "Sideways"),
        (SECURITY_RULE, "protocol", "Carrier-Pigeon"),
        (SECURITY_RULE, "priority", "high"),
        (ROUTE, "nextHopType", "Nowhere"),
        ("microsoft.network/publicipaddresses", "publicIPAllocationMethod", "Sometimes"),
        ("microsoft.network/virtualnetworks/virtualnetworkpeerings", "allowForwardedTraffic", "yes"),
        ("microsoft.network/virtualnetworks/subnets", "privateEndpointNetworkPolicies", "Maybe"),
    ],
)
def test_network_enums_and_types_are_refused_as_the_network_provider_does(
    arm_emulator: Emulator, kind: str, name: str, value: Any
) -> None:
    status, answer = _write(arm_emulator, kind, _with_property(kind, name, value))
    assert status == 400, answer
    code, message = _error(answer)
    assert code == "InvalidRequestFormat" and answer["error"]["message"] == "Cannot parse the request."
    assert f'Error converting value "{value}"' in message and f"Path 'properties.{name}'" in message


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (OUTBOUND, {"properties": {"type": "Carrier", "destination": "pypi.org"}}),
        (OUTBOUND, {"properties": {"type": "FQDN", "destination": "pypi.org", "category": "Mandatory"}}),
        (
            "microsoft.machinelearningservices/workspaces",
            {"location": LOCATION, "properties": {"managedNetwork": {"isolationMode": "AllowEverything"}}},
        ),
        (
            "microsoft.machinelearningservices/workspaces",
            {"location": LOCATION, "properties": {"publicNetworkAccess": 5}},
        ),
        ("microsoft.network/privatednszones/a", {"properties": {"ttl": "ten"}}),
        ("microsoft.storage/storageaccounts", {"properties": {"networkAcls": {"defaultAction": "Sometimes"}}}),
    ],
)
def test_other_providers_refuse_enums_and_types_they_cannot_read(
    arm_emulator: Emulator, kind: str, body: dict[str, Any]
) -> None:
    status, answer = _write(arm_emulator, kind, body)
    assert status == 400 and answer["error"]["code"] == "InvalidRequestContent", answer
    assert "Error converting value" in answer["error"]["message"]


def test_the_network_sdk_sees_the_refusal_as_an_arm_error(
    arm_emulator: Emulator, credential: ClientSecretCredential
) -> None:
    network = NetworkManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator))
    network.network_security_groups.begin_create_or_update("rg-litware", "nsg-s", {"location": LOCATION}).result()
    with pytest.raises(HttpResponseError) as refused:
        network.security_rules.begin_create_or_update(
            "rg-litware", "nsg-s", "r", {"properties": {**RULE, "access": "Maybe"}}
        ).result()
    assert refused.value.status_code == 400 and refused.value.error.code == "InvalidRequestFormat"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"priority": 99}, "SecurityRuleInvalidPriority"),
        ({"priority": 4097}, "SecurityRuleInvalidPriority"),
        ({"destinationPortRange": "any"}, "SecurityRuleInvalidPortRange"),
        ({"destinationPortRange": "70000"}, "SecurityRuleInvalidPortRange"),
        ({"destinationPortRange": "443-80"}, "SecurityRuleInvalidPortRange"),
        ({"destinationPortRange": None, "destinationPortRanges": ["443", "x"]}, "SecurityRuleInvalidPortRange"),
        ({"sourceAddressPrefix": "10.0.0.5/24"}, "SecurityRuleInvalidAddressPrefix"),
        ({"destinationAddressPrefix": "not a prefix"}, "SecurityRuleInvalidAddressPrefix"),
        (
            {"destinationAddressPrefix": None, "destinationAddressPrefixes": ["10.0.0.0/8", "VirtualNetwork"]},
            "SecurityRuleParameterContainsUnsupportedValue",
        ),
    ],
)
def test_security_rule_ranges_and_formats_are_refused(
    arm_emulator: Emulator, changes: dict[str, Any], code: str
) -> None:
    properties = {key: value for key, value in {**RULE, **changes}.items() if value is not None}
    status, answer = _write(arm_emulator, SECURITY_RULE, {"properties": properties})
    assert status == 400 and answer["error"]["code"] == code, answer


def test_security_rule_priorities_are_unique_per_direction(arm_emulator: Emulator) -> None:
    _write(arm_emulator, SECURITY_RULE)
    second = f"{NSG}/securityRules/Second"
    version = "?api-version=2026-03-01"
    status, _, answer = raw_call(arm_emulator, "PUT", second + version, {"properties": RULE})
    assert status == 400 and answer["error"]["code"] == "SecurityRuleConflict", answer
    assert "Rules cannot have the same Priority and Direction" in answer["error"]["message"]
    inbound = {**RULE, "direction": "Inbound", "sourceAddressPrefix": "*", "destinationAddressPrefix": "VirtualNetwork"}
    status, _, answer = raw_call(arm_emulator, "PUT", second + version, {"properties": inbound})
    assert status < 300, answer
    inline = {
        "location": LOCATION,
        "properties": {"securityRules": [{"name": "a", "properties": RULE}, {"name": "b", "properties": RULE}]},
    }
    status, _, answer = raw_call(arm_emulator, "PUT", NSG + version, inline)
    assert status == 400 and answer["error"]["code"] == "SecurityRuleConflict", answer


@pytest.mark.parametrize(
    ("properties", "code"),
    [
        ({"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance"}, "NextHopIpAddressRequired"),
        (
            {"addressPrefix": "0.0.0.0/0", "nextHopType": "Internet", "nextHopIpAddress": "10.1.0.4"},
            "NextHopIpAddressNotAllowed",
        ),
        ({"addressPrefix": "10.0.0.1/8", "nextHopType": "None"}, "InvalidRouteAddressPrefix"),
        (
            {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.1.0"},
            "InvalidNextHopIpAddress",
        ),
    ],
)
def test_route_next_hops_and_prefixes_are_refused(
    arm_emulator: Emulator, properties: dict[str, Any], code: str
) -> None:
    status, answer = _write(arm_emulator, ROUTE, {"properties": properties})
    assert status == 400 and answer["error"]["code"] == code, answer
    table = {"location": LOCATION, "properties": {"routes": [{"name": "r", "properties": properties}]}}
    status, _, answer = raw_call(arm_emulator, "PUT", f"{ROUTE_TABLE}?api-version=2026-03-01", table)
    assert status == 400 and answer["error"]["code"] == code, answer


def test_a_route_to_a_service_tag_is_accepted(arm_emulator: Emulator) -> None:
    status, answer = _write(
        arm_emulator, ROUTE, {"properties": {"addressPrefix": "AzureMachineLearning", "nextHopType": "Internet"}}
    )
    assert status < 300, answer


@pytest.mark.parametrize(
    ("properties", "code"),
    [
        ({"service": "Microsoft.Sql", "serviceResources": [STORAGE]}, "ServiceEndpointPolicyDefinitionInvalidService"),
        (
            {"service": "Microsoft.Storage", "serviceResources": ["stlitware"]},
            "ServiceEndpointPolicyDefinitionInvalidServiceResource",
        ),
        (
            {"service": "Microsoft.Storage", "serviceResources": ["/services/Azure/MachineLearning"]},
            "ServiceEndpointPolicyDefinitionInvalidServiceResource",
        ),
        ({"service": "Global", "serviceResources": [STORAGE]}, "ServiceEndpointPolicyDefinitionInvalidServiceResource"),
        (
            {"service": "Microsoft.Storage", "serviceResources": []},
            "ServiceEndpointPolicyDefinitionInvalidServiceResource",
        ),
    ],
)
def test_service_endpoint_policy_definitions_are_checked(
    arm_emulator: Emulator, properties: dict[str, Any], code: str
) -> None:
    status, answer = _write(arm_emulator, DEFINITION, {"properties": properties})
    assert status == 400 and answer["error"]["code"] == code, answer


def test_service_endpoint_policy_definition_scopes_and_aliases_are_accepted(arm_emulator: Emulator) -> None:
    scopes = [f"/subscriptions/{SUBSCRIPTION}", f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-litware", STORAGE]
    status, answer = _write(
        arm_emulator, DEFINITION, {"properties": {"service": "Microsoft.Storage", "serviceResources": scopes}}
    )
    assert status < 300, answer
    alias = {"properties": {"service": "Global", "serviceResources": ["/services/Azure/MachineLearning"]}}
    status, _, answer = raw_call(
        arm_emulator, "PUT", f"{POLICY}/serviceEndpointPolicyDefinitions/aml?api-version=2026-03-01", alias
    )
    assert status < 300, answer


@pytest.mark.parametrize(
    "properties",
    [
        {"type": "FQDN", "destination": "https://pypi.org/simple"},
        {
            "type": "ServiceTag",
            "destination": {"serviceTag": "AzureMonitor", "protocol": "TCP", "portRanges": "443,x", "action": "Allow"},
        },
        {"type": "PrivateEndpoint", "destination": {"serviceResourceId": STORAGE}},
        # Azure's own Required rules already reach these: a user rule for the same destination is refused
        {
            "type": "ServiceTag",
            "destination": {
                "serviceTag": "AzureMachineLearning",
                "protocol": "TCP",
                "portRanges": "443",
                "action": "Allow",
            },
        },
        {"type": "PrivateEndpoint", "destination": {"serviceResourceId": STORAGE, "subresourceTarget": "blob"}},
    ],
)
def test_outbound_rule_destinations_are_checked(arm_emulator: Emulator, properties: dict[str, Any]) -> None:
    status, answer = _write(arm_emulator, OUTBOUND, {"properties": properties})
    assert status == 400 and answer["error"]["code"] == "ValidationError", answer


def test_outbound_rules_other_than_private_endpoints_need_approved_outbound(arm_emulator: Emulator) -> None:
    open_workspace = copy.deepcopy(WRITES["microsoft.machinelearningservices/workspaces"][2])
    open_workspace["properties"]["managedNetwork"]["isolationMode"] = "AllowInternetOutbound"
    status, answer = _write(arm_emulator, "microsoft.machinelearningservices/workspaces", open_workspace)
    assert status < 300, answer
    rule = {"properties": {"type": "FQDN", "destination": "pypi.org"}}
    status, _, answer = raw_call(arm_emulator, "PUT", f"{WORKSPACE}/outboundRules/pypi?api-version=2025-12-01", rule)
    assert status == 400 and answer["error"]["code"] == "ValidationError", answer
    endpoint = {
        "properties": {
            "type": "PrivateEndpoint",
            "destination": {"serviceResourceId": REGISTRY, "subresourceTarget": "registry"},
        }
    }
    status, _, answer = raw_call(arm_emulator, "PUT", f"{WORKSPACE}/outboundRules/acr?api-version=2025-12-01", endpoint)
    assert status < 300, answer


def test_subnets_stay_inside_their_vnet_and_apart(arm_emulator: Emulator) -> None:
    kind = "microsoft.network/virtualnetworks/subnets"
    status, answer = _write(arm_emulator, kind, {"properties": {"addressPrefix": "10.8.0.0/24"}})
    assert status == 400 and answer["error"]["code"] == "NetcfgSubnetRangeOutsideVnet", answer
    _write(arm_emulator, kind)
    status, _, answer = raw_call(
        arm_emulator,
        "PUT",
        f"{VNET}/subnets/s2?api-version=2026-03-01",
        {"properties": {"addressPrefix": "10.9.1.128/25"}},
    )
    assert status == 400 and answer["error"]["code"] == "NetcfgSubnetRangesOverlap", answer
