# ruff: noqa: E501  (a table of resources reads best one per line)
"""Pre-existing resources the examples reference (resource group rg-litware): what a platform team
already has before it installs the operator. Written straight into the state, as Azure would have it."""

from __future__ import annotations

from armemu import semantics as sem
from armemu.state import Json, State, new_etag

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
LITWARE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-litware"
PROVIDERS = f"{LITWARE}/providers"
LOCATION = "brazilsouth"

DEPENDENCIES: list[tuple[str, Json]] = [
    (
        f"{PROVIDERS}/Microsoft.Storage/storageAccounts/stlitware",
        {
            "kind": "StorageV2",
            "sku": {"name": "Standard_LRS"},
            "properties": {"networkAcls": {"defaultAction": "Allow", "ipRules": []}},
        },
    ),
    (
        f"{PROVIDERS}/Microsoft.Storage/storageAccounts/dlslitware",
        {
            "kind": "StorageV2",
            "sku": {"name": "Standard_LRS"},
            "properties": {
                "isHnsEnabled": True,
                "networkAcls": {
                    "defaultAction": "Deny",
                    "ipRules": [{"value": "198.51.100.10", "action": "Allow"}],
                },
            },
        },
    ),
    (
        f"{PROVIDERS}/Microsoft.KeyVault/vaults/kv-litware",
        {
            "properties": {
                "sku": {"family": "A", "name": "standard"},
                "networkAcls": {"defaultAction": "Allow", "ipRules": []},
            }
        },
    ),
    (
        f"{PROVIDERS}/Microsoft.ContainerRegistry/registries/crlitware",
        {
            "sku": {"name": "Premium"},
            "properties": {"networkRuleSet": {"defaultAction": "Allow", "ipRules": []}},
        },
    ),
    (
        f"{PROVIDERS}/Microsoft.Insights/components/appi-litware",
        {"kind": "web", "properties": {"Application_Type": "web"}},
    ),
    (
        f"{PROVIDERS}/Microsoft.Network/virtualNetworks/vnet-litware-clients",
        {"properties": {"addressSpace": {"addressPrefixes": ["10.2.0.0/16"]}}},
    ),
    (
        f"{PROVIDERS}/Microsoft.Network/virtualNetworks/vnet-litware-clients/subnets/private-endpoints",
        {"properties": {"addressPrefix": "10.2.1.0/24"}},
    ),
    (
        f"{PROVIDERS}/Microsoft.Network/virtualNetworks/vnet-hub",
        {"properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}}},
    ),
    (
        f"{PROVIDERS}/Microsoft.Network/virtualNetworks/vnet-hub/subnets/AzureFirewallSubnet",
        {"properties": {"addressPrefix": "10.1.0.0/26"}},
    ),
    (
        f"{PROVIDERS}/Microsoft.Network/publicIPAddresses/pip-fw-hub",
        {
            "sku": {"name": "Standard"},
            "properties": {"publicIPAllocationMethod": "Static", "ipAddress": "203.0.113.40"},
        },
    ),
    (
        f"{PROVIDERS}/Microsoft.Network/azureFirewalls/fw-hub",
        {
            "properties": {
                "ipConfigurations": [
                    {
                        "name": "fw-ipconfig",
                        "properties": {
                            "privateIPAddress": "10.1.0.4",
                            "publicIPAddress": {"id": f"{PROVIDERS}/Microsoft.Network/publicIPAddresses/pip-fw-hub"},
                            "subnet": {
                                "id": f"{PROVIDERS}/Microsoft.Network/virtualNetworks/vnet-hub/subnets/AzureFirewallSubnet"
                            },
                        },
                    }
                ]
            }
        },
    ),
]


def seed_litware(state: State) -> None:
    state.put(LITWARE, {"location": LOCATION, "tags": {}, "properties": {"provisioningState": "Succeeded"}}, None)
    for resource_id, body in DEPENDENCIES:
        parent = resource_id.rsplit("/", 2)[0] if sem.type_of(resource_id).count("/") > 1 else None
        stored = {"location": LOCATION, "tags": {}, **body, "etag": new_etag()}
        if parent:
            stored.pop("location")
            stored.pop("tags")
        state.put(resource_id, stored, parent)
