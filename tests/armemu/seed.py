"""Pre-existing resources the examples reference: what a platform team already has before it
installs the operator. Written straight into the state, as Azure would have it.

Two subscriptions, in the standard hub-and-spoke layout: the workload subscription's resource group
rg-litware (the workspace's dependencies, a client VNet), and a connectivity subscription's
rg-connectivity holding the hub VNet and its firewall, which spokes peer with and route to, and the
firewall's policy with the platform team's own rule collection group."""

from __future__ import annotations

import copy

from armemu.arm import type_of
from armemu.kinds import behaviour
from armemu.state import Json, State, new_etag

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
LITWARE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-litware"
PROVIDERS = f"{LITWARE}/providers"
CONNECTIVITY_SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"
CONNECTIVITY = f"/subscriptions/{CONNECTIVITY_SUBSCRIPTION}/resourceGroups/rg-connectivity"
CONNECTIVITY_PROVIDERS = f"{CONNECTIVITY}/providers"
SUBSCRIPTIONS = (SUBSCRIPTION, CONNECTIVITY_SUBSCRIPTION)  # every subscription the seed writes to
LOCATION = "brazilsouth"
HUB_VNET = f"{CONNECTIVITY_PROVIDERS}/Microsoft.Network/virtualNetworks/vnet-hub"
HUB_FIREWALL = f"{CONNECTIVITY_PROVIDERS}/Microsoft.Network/azureFirewalls/fw-hub"
HUB_PUBLIC_IP = f"{CONNECTIVITY_PROVIDERS}/Microsoft.Network/publicIPAddresses/pip-fw-hub"
HUB_FIREWALL_POLICY = f"{CONNECTIVITY_PROVIDERS}/Microsoft.Network/firewallPolicies/afwp-hub"
PLATFORM_RULES = f"{HUB_FIREWALL_POLICY}/ruleCollectionGroups/platform"  # the platform team's own: never touched
HUB_ADDRESSES = ["10.0.0.0/8"]
RESOURCE_GROUP = {"location": LOCATION, "tags": {}, "properties": {"provisioningState": "Succeeded"}}

LITWARE_RESOURCES: list[tuple[str, Json]] = [
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
]

CONNECTIVITY_RESOURCES: list[tuple[str, Json]] = [
    (
        HUB_VNET,
        {"properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}}},
    ),
    (
        f"{HUB_VNET}/subnets/AzureFirewallSubnet",
        {"properties": {"addressPrefix": "10.1.0.0/26"}},
    ),
    (
        HUB_PUBLIC_IP,
        {
            "sku": {"name": "Standard"},
            "properties": {"publicIPAllocationMethod": "Static", "ipAddress": "203.0.113.40"},
        },
    ),
    (
        HUB_FIREWALL_POLICY,
        {"properties": {"sku": {"tier": "Standard"}, "threatIntelMode": "Alert", "dnsSettings": {"enableProxy": True}}},
    ),
    (
        PLATFORM_RULES,
        {
            "properties": {
                "priority": 100,
                "ruleCollections": [
                    {
                        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                        "name": "platform-network",
                        "priority": 100,
                        "action": {"type": "Allow"},
                        "rules": [
                            {
                                "ruleType": "NetworkRule",
                                "name": "azure-dns",
                                "ipProtocols": ["UDP", "TCP"],
                                "sourceAddresses": HUB_ADDRESSES,
                                "destinationAddresses": ["168.63.129.16"],
                                "destinationPorts": ["53"],
                            }
                        ],
                    },
                    {
                        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                        "name": "platform-web",
                        "priority": 200,
                        "action": {"type": "Allow"},
                        "rules": [
                            {
                                "ruleType": "ApplicationRule",
                                "name": "windows-update",
                                "protocols": [{"protocolType": "Https", "port": 443}],
                                "sourceAddresses": HUB_ADDRESSES,
                                "fqdnTags": ["WindowsUpdate"],
                            }
                        ],
                    },
                ],
            }
        },
    ),
    (
        HUB_FIREWALL,
        {
            "properties": {
                "firewallPolicy": {"id": HUB_FIREWALL_POLICY},
                "ipConfigurations": [
                    {
                        "name": "fw-ipconfig",
                        "properties": {
                            "privateIPAddress": "10.1.0.4",
                            "publicIPAddress": {"id": HUB_PUBLIC_IP},
                            "subnet": {"id": f"{HUB_VNET}/subnets/AzureFirewallSubnet"},
                        },
                    }
                ],
            }
        },
    ),
]
# Every seeded resource besides rg-litware itself (tests subtract LITWARE and these from the state to
# find what the operator created); the connectivity resource group is one of them.
DEPENDENCIES: list[tuple[str, Json]] = [
    (CONNECTIVITY, RESOURCE_GROUP),
    *LITWARE_RESOURCES,
    *CONNECTIVITY_RESOURCES,
]


def seed_litware(state: State) -> None:
    """Both subscriptions' resource groups and resources (the name predates the second one)."""
    state.put(LITWARE, copy.deepcopy(RESOURCE_GROUP), None)
    for resource_id, body in DEPENDENCIES:
        kind = type_of(resource_id)
        if kind == "microsoft.resources/resourcegroups":
            state.put(resource_id, copy.deepcopy(body), None)
            continue
        parent = resource_id.rsplit("/", 2)[0] if kind.count("/") > 1 else None
        stored = {"location": LOCATION, "tags": {}, **copy.deepcopy(body), "etag": new_etag()}
        if parent:
            stored.pop("location")
            stored.pop("tags")
        state.put(resource_id, behaviour(kind).seeded(resource_id, stored), parent)
