"""The request -> RBAC action mapping the role test relies on, and the role file's own shape."""

from __future__ import annotations

import json
import re

import pytest
from azurerole import REAL_AZURE_ONLY, ROLE_PATH, action_for, linked_actions, load_role

RG = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
NET = f"{RG}/providers/Microsoft.Network"
ML = f"{RG}/providers/Microsoft.MachineLearningServices/workspaces/ws"


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("GET", f"{NET}/virtualNetworks/v", "Microsoft.Network/virtualNetworks/read"),
        ("PUT", f"{NET}/virtualNetworks/v/subnets/s", "Microsoft.Network/virtualNetworks/subnets/write"),
        ("PATCH", ML, "Microsoft.MachineLearningServices/workspaces/write"),
        ("DELETE", f"{ML}/outboundRules/r", "Microsoft.MachineLearningServices/workspaces/outboundRules/delete"),
        ("GET", f"{NET}/virtualNetworks/v/subnets", "Microsoft.Network/virtualNetworks/subnets/read"),
        ("GET", f"{NET}/privateDnsZones/z.net/A/rec", "Microsoft.Network/privateDnsZones/A/read"),
        (
            "POST",
            f"{ML}/provisionManagedNetwork",
            "Microsoft.MachineLearningServices/workspaces/provisionManagedNetwork/action",
        ),
        (
            "GET",
            "/subscriptions/s/providers/Microsoft.Network/locations/westus/operations/abc?api-version=2024-05-01",
            "Microsoft.Network/locations/operations/read",
        ),
        ("GET", RG, "Microsoft.Resources/subscriptions/resourceGroups/read"),
        ("get", f"{RG}/providers/Microsoft.Storage/storageAccounts/st", "Microsoft.Storage/storageAccounts/read"),
    ],
)
def test_action_for_a_request(method: str, path: str, action: str) -> None:
    assert action_for(method, path) == action


def test_post_to_a_resource_is_not_an_action() -> None:
    with pytest.raises(ValueError):
        action_for("POST", f"{NET}/virtualNetworks/v")


def test_subnet_write_joins_what_it_references() -> None:
    body = {
        "id": f"{NET}/virtualNetworks/v/subnets/s",
        "properties": {
            "networkSecurityGroup": {"id": f"{NET}/networkSecurityGroups/nsg"},
            "routeTable": {"id": f"{NET}/routeTables/rt"},
            "natGateway": {"id": f"{NET}/natGateways/ng"},
            "serviceEndpointPolicies": [{"id": f"{NET}/serviceEndpointPolicies/sep"}],
            "privateEndpoints": [{"id": f"{NET}/privateEndpoints/pe"}],  # read-only back-reference
        },
    }
    assert linked_actions("PUT", f"{NET}/virtualNetworks/v/subnets/s", body) == {
        "Microsoft.Network/networkSecurityGroups/join/action",
        "Microsoft.Network/routeTables/join/action",
        "Microsoft.Network/natGateways/join/action",
        "Microsoft.Network/serviceEndpointPolicies/join/action",
    }


def test_an_nsgs_subnet_list_is_read_only() -> None:
    body = {"properties": {"subnets": [{"id": f"{NET}/virtualNetworks/v/subnets/s"}], "securityRules": []}}
    assert linked_actions("PUT", f"{NET}/networkSecurityGroups/nsg", body) == set()


def test_private_endpoint_joins_its_subnet_and_auto_approval_needs_rights_on_the_target() -> None:
    target = f"{RG}/providers/Microsoft.Storage/storageAccounts/st"
    connection = {"name": "c", "properties": {"privateLinkServiceId": target, "groupIds": ["blob"]}}
    body = {"properties": {"subnet": {"id": f"{NET}/virtualNetworks/v/subnets/s"}}}
    automatic = {"properties": {**body["properties"], "privateLinkServiceConnections": [connection]}}
    assert linked_actions("PUT", f"{NET}/privateEndpoints/pe", automatic) == {
        "Microsoft.Network/virtualNetworks/subnets/join/action",
        "Microsoft.Storage/storageAccounts/privateEndpointConnectionsApproval/action",
    }
    manual = {"properties": {**body["properties"], "manualPrivateLinkServiceConnections": [connection]}}
    assert linked_actions("PUT", f"{NET}/privateEndpoints/pe", manual) == {
        "Microsoft.Network/virtualNetworks/subnets/join/action"
    }


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        (
            f"{NET}/privateEndpoints/pe/privateDnsZoneGroups/default",
            {
                "properties": {
                    "privateDnsZoneConfigs": [{"properties": {"privateDnsZoneId": f"{NET}/privateDnsZones/z"}}]
                }
            },
            {"Microsoft.Network/privateDnsZones/join/action"},
        ),
        (
            f"{NET}/privateDnsZones/z/virtualNetworkLinks/l",
            {"properties": {"virtualNetwork": {"id": f"{NET}/virtualNetworks/v"}}},
            {"Microsoft.Network/virtualNetworks/join/action"},
        ),
        (
            f"{NET}/virtualNetworks/v/virtualNetworkPeerings/p",
            {"properties": {"remoteVirtualNetwork": {"id": f"{NET}/virtualNetworks/hub"}}},
            {"Microsoft.Network/virtualNetworks/peer/action"},
        ),
        (
            f"{NET}/natGateways/ng",
            {"properties": {"publicIpAddresses": [{"id": f"{NET}/publicIPAddresses/ip"}]}},
            {"Microsoft.Network/publicIPAddresses/join/action"},
        ),
        (
            ML,
            {
                "identity": {
                    "type": "UserAssigned",
                    "userAssignedIdentities": {
                        f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id": {}
                    },
                },
                "properties": {"managedNetwork": {"isolationMode": "AllowInternetOutbound"}},
            },
            {
                "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
                "Microsoft.MachineLearningServices/workspaces/privateEndpointConnections/read",
                "Microsoft.MachineLearningServices/workspaces/privateEndpointConnections/write",
            },
        ),
        (ML, {"properties": {"managedNetwork": {"isolationMode": "Disabled"}}}, set()),
        (f"{NET}/virtualNetworks/v", {"id": f"{NET}/virtualNetworks/v", "properties": {}}, set()),
    ],
)
def test_linked_access_of_a_write(path: str, body: dict[str, object], expected: set[str]) -> None:
    assert linked_actions("PUT", path, body) == expected


def test_provisioning_a_managed_network_needs_its_private_endpoint_rights() -> None:
    assert linked_actions("POST", f"{ML}/provisionManagedNetwork", None) == {
        "Microsoft.MachineLearningServices/workspaces/privateEndpointConnections/read",
        "Microsoft.MachineLearningServices/workspaces/privateEndpointConnections/write",
    }


def test_role_file_is_a_well_formed_resource_group_role() -> None:
    document = json.loads(ROLE_PATH.read_text())
    assert set(document) == {
        "Name", "IsCustom", "Description", "Actions", "NotActions", "DataActions", "NotDataActions",
        "AssignableScopes",
    }  # fmt: skip
    role = load_role()
    assert document["IsCustom"] is True and role.not_actions == () and document["DataActions"] == []
    assert list(role.actions) == sorted(role.actions, key=str.lower), "keep Actions sorted, so diffs stay readable"
    assert len({action.lower() for action in role.actions}) == len(role.actions), "duplicate actions"
    shape = re.compile(r"^Microsoft\.[A-Za-z]+(/([A-Za-z]+|\*))+/(read|write|delete|action)$")
    assert [action for action in role.actions if not shape.match(action)] == []
    assert all(re.fullmatch(r"/subscriptions/[^/]+/resourceGroups/[^/]+", scope) for scope in role.assignable_scopes)
    assert set(REAL_AZURE_ONLY) <= set(role.actions)
    never = ("Microsoft.Authorization/roleAssignments/write", "Microsoft.Resources/subscriptions/resourceGroups/delete")
    assert not any(role.grants(action) for action in never), "the operator never assigns roles or deletes groups"
