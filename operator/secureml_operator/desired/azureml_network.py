"""What Azure ML needs from a customer-managed VNet, as data: NSG rules, service tags, routes.

Sources: Azure ML's network-isolation docs (summarised in shared/design/azure-facts.md). Compute
without a public IP needs no inbound rule; compute with one needs AzureMachineLearning (and
BatchNodeManagement) inbound. Outbound goes either to the hub firewall (one VirtualNetwork rule
suffices: the firewall filters) or straight out through NAT, where each service tag is allowed and
everything else denied. Private endpoints' group ids and DNS zones are in azure/private_link.py.
"""

from __future__ import annotations

from dataclasses import dataclass

# Service tags name regions in PascalCase; the ones whose casing cannot be derived are listed.
SERVICE_TAG_REGIONS = {
    "eastus": "EastUS",
    "eastus2": "EastUS2",
    "westus": "WestUS",
    "westus2": "WestUS2",
    "westus3": "WestUS3",
    "centralus": "CentralUS",
    "northcentralus": "NorthCentralUS",
    "southcentralus": "SouthCentralUS",
    "westcentralus": "WestCentralUS",
    "uksouth": "UKSouth",
    "ukwest": "UKWest",
    "uaenorth": "UAENorth",
    "brazilsouth": "BrazilSouth",
    "westeurope": "WestEurope",
    "northeurope": "NorthEurope",
    "francecentral": "FranceCentral",
    "germanywestcentral": "GermanyWestCentral",
    "swedencentral": "SwedenCentral",
    "switzerlandnorth": "SwitzerlandNorth",
    "norwayeast": "NorwayEast",
    "japaneast": "JapanEast",
    "japanwest": "JapanWest",
    "koreacentral": "KoreaCentral",
    "southeastasia": "SouthEastAsia",
    "eastasia": "EastAsia",
    "australiaeast": "AustraliaEast",
    "centralindia": "CentralIndia",
    "canadacentral": "CanadaCentral",
}

PRIORITY_VNET_OUTBOUND = 100
PRIORITY_FIRST_SERVICE_TAG = 110
PRIORITY_DENY_OUTBOUND = 200
PRIORITY_INBOUND = 100


def service_tag_region(location: str) -> str:
    return SERVICE_TAG_REGIONS.get(location.lower(), location)


@dataclass(frozen=True)
class RuleSpec:
    """An NSG security rule in the terms users read in the portal."""

    name: str
    direction: str
    access: str
    priority: int
    protocol: str
    destination: str
    ports: tuple[str, ...]
    source: str = "VirtualNetwork"

    def properties(self) -> dict[str, object]:
        ports: dict[str, object] = (
            {"destinationPortRange": self.ports[0]}
            if len(self.ports) == 1
            else {"destinationPortRanges": sorted(self.ports)}
        )
        return {
            "protocol": self.protocol,
            "sourcePortRange": "*",
            "sourceAddressPrefix": self.source,
            "destinationAddressPrefix": self.destination,
            "access": self.access,
            "priority": self.priority,
            "direction": self.direction,
            **ports,
        }


def outbound_service_tags(location: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(service tag, protocol, ports) that no-firewall compute must reach directly."""
    region = service_tag_region(location)
    return [
        ("AzureActiveDirectory", "Tcp", ("80", "443")),
        ("AzureMachineLearning", "Tcp", ("443", "8787", "18881")),
        ("AzureMachineLearning", "Udp", ("5831",)),
        (f"BatchNodeManagement.{region}", "Tcp", ("443",)),
        ("AzureResourceManager", "Tcp", ("443",)),
        (f"Storage.{region}", "Tcp", ("443",)),
        ("AzureFrontDoor.FrontEnd", "Tcp", ("443",)),
        ("MicrosoftContainerRegistry", "Tcp", ("443",)),
        ("Frontdoor.FirstParty", "Tcp", ("443",)),
        ("AzureMonitor", "Tcp", ("443",)),
        (f"Keyvault.{region}", "Tcp", ("443",)),
    ]


# Service tags an Azure Firewall network rule accepts, of those above ("Virtual network service tags",
# its Azure Firewall column); what the others carry goes through application rules instead.
FIREWALL_SERVICE_TAGS = frozenset(
    {"AzureActiveDirectory", "AzureMachineLearning", "BatchNodeManagement", "Storage", "AzureMonitor",
     "MicrosoftContainerRegistry"}
)  # fmt: skip
HTTPS = ("Https:443",)


def firewall_service_tags(location: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(service tag, protocol, ports) compute reaches through a hub firewall's network rules. Key
    Vault's regional tag is left out: only workspaces created as high business impact need it."""
    return [
        (tag, protocol, ports)
        for tag, protocol, ports in outbound_service_tags(location)
        if tag.split(".")[0] in FIREWALL_SERVICE_TAGS
    ]


def firewall_fqdns(location: str) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(rule name, protocols as `Type:port`, FQDNs) compute reaches through a hub firewall's
    application rules, Azure public cloud ("Configure inbound and outbound network traffic", Azure
    ML; summarised with sources in docs/firewall-policy.md)."""
    region = location.lower()
    return [
        ("entra-id", ("Http:80", "Https:443"), ("login.microsoftonline.com",)),
        ("resource-manager", HTTPS, ("management.azure.com",)),
        ("azureml", HTTPS, ("ml.azure.com", "*.azureml.ms", "*.azureml.net", "*.modelmanagement.azureml.net")),
        ("notebooks", HTTPS, ("*.notebooks.azure.net", "*.aznbcontent.net", "graph.microsoft.com")),
        (
            "compute",
            HTTPS,
            (
                "graph.windows.net",
                "*.instances.azureml.net",
                "*.instances.azureml.ms",
                f"*.{region}.batch.azure.com",
                f"*.{region}.service.batch.azure.com",
            ),
        ),
        ("storage", HTTPS, ("*.blob.core.windows.net", "*.table.core.windows.net", "*.queue.core.windows.net")),
        ("container-registry", HTTPS, ("mcr.microsoft.com", "*.data.mcr.microsoft.com")),
        (
            "monitoring",
            HTTPS,
            (
                "dc.applicationinsights.azure.com",
                "dc.applicationinsights.microsoft.com",
                "dc.services.visualstudio.com",
                "*.in.applicationinsights.azure.com",
            ),
        ),
    ]


def required_nsg_rules(location: str, compute_public_ip: bool, through_firewall: bool) -> list[RuleSpec]:
    rules = [
        RuleSpec("AllowVnetOutbound", "Outbound", "Allow", PRIORITY_VNET_OUTBOUND, "*", "VirtualNetwork", ("*",)),
        RuleSpec("DenyAllOutbound", "Outbound", "Deny", PRIORITY_DENY_OUTBOUND, "*", "*", ("*",), source="*"),
    ]
    if not through_firewall:
        for offset, (tag, protocol, ports) in enumerate(outbound_service_tags(location)):
            name = f"Allow{tag.replace('.', '')}{protocol.capitalize() if protocol == 'Udp' else ''}Outbound"
            rules.append(RuleSpec(name, "Outbound", "Allow", PRIORITY_FIRST_SERVICE_TAG + offset, protocol, tag, ports))
    if compute_public_ip:
        region = service_tag_region(location)
        rules += [
            RuleSpec(
                "AllowAzureMLInbound", "Inbound", "Allow", PRIORITY_INBOUND, "Tcp", "VirtualNetwork",
                ("44224",), source="AzureMachineLearning",
            ),
            RuleSpec(
                "AllowBatchNodeManagementInbound", "Inbound", "Allow", PRIORITY_INBOUND + 10, "Tcp",
                "VirtualNetwork", ("29876-29877",), source=f"BatchNodeManagement.{region}",
            ),
        ]  # fmt: skip
    return rules


def public_ip_compute_routes(location: str) -> list[tuple[str, str]]:
    """(route name, service tag) that must bypass the firewall when compute has a public IP."""
    region = service_tag_region(location)
    return [
        ("azureml-to-internet", "AzureMachineLearning"),
        ("batch-to-internet", f"BatchNodeManagement.{region}"),
    ]


FIREWALL_ROUTE = "default-to-firewall"  # 0.0.0.0/0 to the hub firewall


def derived_nsg_rule_names(location: str) -> list[str]:
    """Every NSG rule name the operator derives for compute in this location, whatever the egress and
    public-IP setting: an extra rule with one of these names would fight the derived one."""
    return sorted(
        {
            rule.name
            for public_ip in (False, True)
            for through_firewall in (False, True)
            for rule in required_nsg_rules(location, public_ip, through_firewall)
        }
    )


def derived_route_names(location: str) -> list[str]:
    """Every route name the operator derives for the compute subnets' route table."""
    return [FIREWALL_ROUTE, *(name for name, _ in public_ip_compute_routes(location))]


AZURE_ML_SERVICE_ALIAS = "/services/Azure/MachineLearning"
