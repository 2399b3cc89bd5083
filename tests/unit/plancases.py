"""Plans worth checking: every example, and the edge cases that exercise a branch of plan() the
examples do not (an adopted VNet, no private endpoint, Additive lists, a hub firewall by IP, NAT
allowlists on every kind of target, ...). The golden-graph test compares each with its checked-in
graph; the schema test sends each body through the emulator's SDK-model check. `probe_world` is what
a walk would read from Azure where the graph computes from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litware import Change, litware, spec, workspace_of

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.fields import Json
from secureml_operator.desired.graph import DesiredGraph
from secureml_operator.desired.observed import Observed

HUB = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-connectivity/providers/Microsoft.Network"
HUB_FIREWALL_SEEN = Observed(firewall_private_ip="10.1.0.4", firewall_egress_ips=("203.0.113.40",))
DATA_LAKE = str(litware("Microsoft.Storage/storageAccounts/dlslitware"))
KEY_VAULT = str(litware("Microsoft.KeyVault/vaults/kv-litware"))
REGISTRY = str(litware("Microsoft.ContainerRegistry/registries/crlitware"))
RETIRED_TARGET = str(litware("Microsoft.Storage/storageAccounts/stretired"))

# What the probe world answers (see `_probe`): the workspace's Azure-assigned id, and the managed
# private endpoints' resource group derived from it.
WORKSPACE_GUID = "5b0c7a34-0000-4000-8000-00000000aaaa"


@dataclass(frozen=True)
class Case:
    name: str
    example: str  # the prefix of the example it starts from
    why: str
    change: Change | None = None
    observed: Observed = field(default_factory=Observed)

    def spec(self) -> SecureMLWorkspaceSpec:
        return spec(self.example, self.change)


def _customer(body: Json) -> Any:
    return body["outbound"]["customerNetwork"]


def _managed(body: Json) -> Any:
    return body["outbound"]["managedNetwork"]


def _adopted_vnet(body: Json) -> None:
    _customer(body)["virtualNetwork"] = {"existingId": str(litware("Microsoft.Network/virtualNetworks/vnet-shared"))}


def _no_private_endpoint(body: Json) -> None:
    body["inbound"] = {"publicNetworkAccess": "Enabled"}
    network = _customer(body)
    network["privateEndpointsForDependencies"] = False
    network["subnets"] = {"training": {"addressPrefix": "10.0.40.0/24", "name": "snet-train"}}


def _nsg_and_routes_additive(body: Json) -> None:
    network = _customer(body)
    network["networkSecurity"] = {
        "rulesPolicy": "Additive",
        "extraRules": [
            {
                "name": "AllowMonitoringOutbound",
                "priority": 300,
                "direction": "Outbound",
                "access": "Allow",
                "destinationAddressPrefix": "10.50.0.0/24",
                "destinationPortRanges": ["443", "8443"],
            }
        ],
    }
    network["extraRoutes"] = [
        {"name": "to-onprem", "addressPrefix": "192.168.0.0/16", "nextHopType": "VirtualAppliance",
         "nextHopIpAddress": "10.1.0.5"},
        {"name": "keyvault-direct", "addressPrefix": "AzureKeyVault", "nextHopType": "Internet"},
    ]  # fmt: skip


def _firewall_by_ip_public_compute(body: Json) -> None:
    network = _customer(body)
    network["computePublicIp"] = True
    network["dataExfiltrationProtection"] = False
    network["serviceEndpoints"] = []
    network["egress"] = {
        "firewall": {"privateIpAddress": "10.1.0.4", "hubVirtualNetworkId": f"{HUB}/virtualNetworks/vnet-hub"}
    }


def _firewall_without_peering(body: Json) -> None:
    _customer(body)["egress"]["firewall"] = {"id": f"{HUB}/azureFirewalls/fw-hub", "peering": False}


def _nat_allowlists(body: Json) -> None:
    network = _customer(body)
    network["egress"] = {"natGateway": {"publicIpCount": 2, "idleTimeoutMinutes": 10}}
    network["allowlistEgressOn"] = [DATA_LAKE, REGISTRY, KEY_VAULT]


def _firewall_egress_allowlist(body: Json) -> None:
    _customer(body)["allowlistEgressOn"] = [DATA_LAKE]


def _external_dns(body: Json) -> None:
    body["inbound"]["privateEndpoint"]["privateDnsZones"] = "External"


def _user_assigned_not_provisioned(body: Json) -> None:
    identity = str(litware("Microsoft.ManagedIdentity/userAssignedIdentities/id-litware"))
    body["workspace"]["identity"] = {"type": "UserAssigned", "userAssignedIdentityId": identity}
    _managed(body)["provisionNow"] = False


def _endpoint_rules_sharing_a_target(body: Json) -> None:
    _managed(body)["rules"] += [
        {"name": "datalake-blob", "privateEndpoint": {"serviceResourceId": DATA_LAKE, "subresourceTarget": "blob"}},
        {"name": "vault", "privateEndpoint": {"serviceResourceId": KEY_VAULT, "subresourceTarget": "vault"}},
    ]
    _managed(body)["sparkReady"] = False


def _managed_rules_additive(body: Json) -> None:
    _managed(body)["rulesPolicy"] = "Additive"
    _managed(body)["presets"] = ["HuggingFace", "DockerHub"]


def _egress_none_public_compute(body: Json) -> None:
    network = _customer(body)
    network["computePublicIp"] = True
    network["egress"] = {"none": {}}
    network["dataExfiltrationProtection"] = True
    network["serviceEndpoints"] = ["Microsoft.Storage"]
    network["subnets"]["training"]["name"] = "snet-training"
    del network["subnets"]["scoring"]


CASES = [
    Case("01-managed-internet-outbound", "01", "example 1 as written"),
    Case("02-managed-approved-outbound", "02", "example 2 as written"),
    Case("03-customer-vnet-nat", "03", "example 3 as written"),
    Case("04-customer-vnet-hub-firewall", "04", "example 4, its hub firewall as read", observed=HUB_FIREWALL_SEEN),
    Case("05-fully-private", "05", "example 5 as written"),
    Case("06-selected-ips", "06", "example 6 as written"),
    Case("adopted-vnet", "03", "an existing VNet: External, only our subnets are created in it", _adopted_vnet),
    Case(
        "no-private-endpoint",
        "03",
        "public access, no endpoint subnet and no dependency endpoints: no private endpoint or DNS node",
        _no_private_endpoint,
    ),
    Case(
        "nsg-and-routes-additive",
        "04",
        "Additive NSG rules and routes, with extra rules and routes declared",
        _nsg_and_routes_additive,
        HUB_FIREWALL_SEEN,
    ),
    Case(
        "firewall-by-ip-public-compute",
        "04",
        "a firewall by private IP, compute with public IPs (internet routes and inbound rules), hub peered one way",
        _firewall_by_ip_public_compute,
        Observed(firewall_private_ip="10.1.0.4"),  # what preflight takes from the spec
    ),
    Case(
        "firewall-without-peering",
        "04",
        "a firewall whose hub peering is someone else's: no peering and no hub node",
        _firewall_without_peering,
        HUB_FIREWALL_SEEN,
    ),
    Case(
        "nat-allowlists",
        "03",
        "two NAT IPs allowlisted on a storage account, a registry and a key vault; a target dropped from the "
        "spec is cleaned up (one of its IPs ours alone to remove)",
        _nat_allowlists,
        Observed(
            allowlisted={RETIRED_TARGET: ("20.1.1.1", "20.1.1.2"), DATA_LAKE: ("20.9.9.9",)},
            removable={RETIRED_TARGET: ("20.1.1.1",), DATA_LAKE: ("20.9.9.9",)},
        ),
    ),
    Case(
        "firewall-egress-allowlist",
        "04",
        "the egress IP allowlisted is the firewall's, known before the walk: no dependency",
        _firewall_egress_allowlist,
        HUB_FIREWALL_SEEN,
    ),
    Case("external-dns", "05", "a workspace endpoint whose DNS is the customer's: no zone nodes", _external_dns),
    Case(
        "user-assigned-not-provisioned",
        "06",
        "a user-assigned identity, managed network not provisioned now: no provisioning action",
        _user_assigned_not_provisioned,
    ),
    Case(
        "endpoint-rules-sharing-a-target",
        "01",
        "two endpoint rules on one target (one auto-approved: both approved), one on another without approval",
        _endpoint_rules_sharing_a_target,
    ),
    Case(
        "managed-rules-additive",
        "02",
        "Additive outbound rules with more presets",
        _managed_rules_additive,
    ),
    Case(
        "egress-none-public-compute",
        "03",
        "no egress (public-IP compute): no route table or NAT, inbound rules, a service endpoint policy, custom "
        "subnet names, no scoring subnet",
        _egress_none_public_compute,
    ),
]


def probe_world(spec: SecureMLWorkspaceSpec, graph: DesiredGraph) -> dict[str, Json]:
    """The live bodies a walk would read, by node key, where the graph computes from them: the
    workspace (name, workspaceId), each endpoint rule's target (a Pending connection per rule of
    ours, and a stranger's that must stay Pending), and each of our public IPs (an address)."""
    workspace = workspace_of(spec)
    world: dict[str, Json] = {workspace.key: {"name": workspace.name, "properties": {"workspaceId": WORKSPACE_GUID}}}
    managed = f"/subscriptions/{workspace.subscription}/resourceGroups/azureml-managed-{WORKSPACE_GUID}"
    stranger = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-other"
    managed_network = spec.outbound.managed_network
    rules_by_target: dict[str, list[str]] = {}
    for rule in managed_network.rules if managed_network else []:
        if rule.private_endpoint is not None:
            target = ArmId.parse(rule.private_endpoint.service_resource_id).key
            rules_by_target.setdefault(target, []).append(rule.name)
    for target, rules in rules_by_target.items():
        groups = [(managed, rule) for rule in rules] + [(stranger, rules[0])]
        endpoints = [
            f"{group}/providers/Microsoft.Network/privateEndpoints/{workspace.name}-{rule}" for group, rule in groups
        ]
        world[target] = {
            "properties": {"privateEndpointConnections": [pending_connection(endpoint) for endpoint in endpoints]}
        }
    public_ips = sorted(node.key for node in graph if node.id.type.lower() == "microsoft.network/publicipaddresses")
    world.update({key: {"properties": {"ipAddress": f"198.51.100.{n}"}} for n, key in enumerate(public_ips, 1)})
    return world


def pending_connection(endpoint: str) -> Json:
    """A connection a private endpoint asked for, waiting for the target's approval."""
    name = f"{endpoint.rsplit('/', 1)[-1]}.{endpoint.split('/')[4]}"
    return {
        "name": name,
        "properties": {
            "privateEndpoint": {"id": endpoint},
            "privateLinkServiceConnectionState": {"status": "Pending"},
        },
    }
