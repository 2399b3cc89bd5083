"""Every official REST example request (shared/reference/arm-examples) is accepted by the emulator,
and the response carries the fields the example's response shows (ids and generated values aside)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from armemu import Emulator
from armemu import semantics as sem

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "arm-examples"
RG = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers"
ML = RG + "/Microsoft.MachineLearningServices/workspaces/{workspaceName}"
NET = RG + "/Microsoft.Network"
WRITES: dict[str, tuple[str, str]] = {  # example file -> (method, URL template)
    "ManagedNetwork/createOrUpdateRule.json": ("PUT", ML + "/outboundRules/{ruleName}"),
    "ManagedNetwork/provision.json": ("POST", ML + "/provisionManagedNetwork"),
    "PrivateEndpointConnection/createOrUpdate.json": (
        "PUT",
        ML + "/privateEndpointConnections/{privateEndpointConnectionName}",
    ),
    "Workspace/create.json": ("PUT", ML),
    "Workspace/update.json": ("PATCH", ML),
    "privatedns/PrivateZonePut.json": ("PUT", NET + "/privateDnsZones/{privateZoneName}"),
    "privatedns/RecordSetAPut.json": (
        "PUT",
        NET + "/privateDnsZones/{privateZoneName}/{recordType}/{relativeRecordSetName}",
    ),
    "privatedns/VirtualNetworkLinkPut.json": (
        "PUT",
        NET + "/privateDnsZones/{privateZoneName}/virtualNetworkLinks/{virtualNetworkLinkName}",
    ),
    "NetworkSecurityGroupCreate.json": ("PUT", NET + "/networkSecurityGroups/{networkSecurityGroupName}"),
    "NetworkSecurityGroupCreateWithRule.json": ("PUT", NET + "/networkSecurityGroups/{networkSecurityGroupName}"),
    "PrivateEndpointCreate.json": ("PUT", NET + "/privateEndpoints/{privateEndpointName}"),
    "PublicIpAddressCreateDefaults.json": ("PUT", NET + "/publicIPAddresses/{publicIpAddressName}"),
    "RouteTableCreate.json": ("PUT", NET + "/routeTables/{routeTableName}"),
    "RouteTableRouteCreate.json": ("PUT", NET + "/routeTables/{routeTableName}/routes/{routeName}"),
    "ServiceEndpointPolicyCreate.json": ("PUT", NET + "/serviceEndpointPolicies/{serviceEndpointPolicyName}"),
    "ServiceEndpointPolicyDefinitionCreate.json": (
        "PUT",
        NET + "/serviceEndpointPolicies/{serviceEndpointPolicyName}/serviceEndpointPolicyDefinitions/"
        "{serviceEndpointPolicyDefinitionName}",
    ),
    "SubnetCreate.json": ("PUT", NET + "/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}"),
    "SubnetCreateServiceEndpoint.json": ("PUT", NET + "/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}"),
    "VirtualNetworkCreate.json": ("PUT", NET + "/virtualNetworks/{virtualNetworkName}"),
    "VirtualNetworkCreateSubnet.json": ("PUT", NET + "/virtualNetworks/{virtualNetworkName}"),
    "VirtualNetworkPeeringCreate.json": (
        "PUT",
        NET + "/virtualNetworks/{virtualNetworkName}/virtualNetworkPeerings/{virtualNetworkPeeringName}",
    ),
    "NatGatewayCreateOrUpdate.json": ("PUT", NET + "/natGateways/{natGatewayName}"),
    "RouteTableCreateWithRoute.json": ("PUT", NET + "/routeTables/{routeTableName}"),
}
GENERATED = {"id", "etag", "resourceGuid", "name", "type", "systemData", "tenantId", "workspaceId", "ipAddress"}
# Documented fields the emulator does not model, and why (listed in docs/emulator.md too).
UNEMULATED = {
    "properties.ipConfiguration": "a public IP's ipConfiguration appears only once a NIC uses it",
    "properties.remoteBgpCommunities": "BGP communities of peered VNets are not modelled",
    "properties.remoteBgpCommunities.regionalCommunity": "BGP communities of peered VNets are not modelled",
    "properties.remoteBgpCommunities.virtualNetworkCommunity": "BGP communities of peered VNets are not modelled",
}


if not EXAMPLES.exists():
    pytestmark = pytest.mark.skip(reason=f"{EXAMPLES} is absent (the shared reference set sits beside the repo)")


def _files() -> list[Path]:
    if not EXAMPLES.exists():
        return []
    return sorted(path for path in EXAMPLES.rglob("*.json") if any(str(path).endswith(key) for key in WRITES))


def test_every_listed_write_example_exists() -> None:
    found = {key for key in WRITES for path in _files() if str(path).endswith(key)}
    assert found == set(WRITES), f"missing from {EXAMPLES}: {sorted(set(WRITES) - found)}"


def _paths(value: Any, prefix: str = "") -> set[str]:
    """Dotted paths of every object key in a response body, generated values and list items aside."""
    if not isinstance(value, dict):
        return set()
    found = set()
    for key, child in value.items():
        if key in GENERATED:
            continue
        path = f"{prefix}.{key}" if prefix else key
        found.add(path)
        found |= _paths(child, path)
    return found


def _call(emulator: Emulator, method: str, url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": "Bearer contract-test", "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(emulator.ca_path))
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            payload = response.read()
            return response.status, json.loads(payload) if payload else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _seed_references(emulator: Emulator, body: Any, subscription: str, group: str) -> None:
    """What an example's body refers to (subnets, public IPs, VNets, targets) exists beforehand."""
    rg = f"/subscriptions/{subscription}/resourceGroups/{group}"
    items: list[dict[str, Any]] = [{"id": rg, "body": {"location": "westus"}}]

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            for child in value.values():
                visit(child)
        elif isinstance(value, list):
            for child in value:
                visit(child)
        elif isinstance(value, str) and value.lower().startswith("/subscriptions/") and "/providers/" in value:
            kind = sem.type_of(value)
            if kind in sem.TYPES:
                parts = value.split("/")
                items.append({"id": "/".join(parts[:5]), "body": {"location": "westus"}})
                if kind.endswith("/subnets"):
                    items.append(
                        {
                            "id": value.rsplit("/subnets/", 1)[0],
                            "body": {
                                "location": "westus",
                                "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/8"]}},
                            },
                        }
                    )
                    items.append({"id": value, "body": {"properties": {"addressPrefix": "10.250.0.0/24"}}})
                elif kind == "microsoft.network/virtualnetworks":
                    space = {"addressSpace": {"addressPrefixes": ["10.200.0.0/16"]}}
                    items.append({"id": value, "body": {"location": "westus", "properties": space}})
                else:
                    items.append({"id": value, "body": {"location": "westus"}})

    visit(body)
    emulator.seed(items)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_reference_example_is_accepted_with_the_documented_fields(arm_emulator: Emulator, path: Path) -> None:
    example = json.loads(path.read_text())
    parameters = example["parameters"]
    method, template = next(value for key, value in WRITES.items() if str(path).endswith(key))
    body_name = next(
        (key for key in parameters if isinstance(parameters[key], dict) and key != "extendedLocation"), None
    )
    body = parameters[body_name] if body_name else None
    _seed_references(arm_emulator, body, parameters["subscriptionId"], parameters["resourceGroupName"])
    url_path = template.format(**parameters)
    parent = url_path.rsplit("/", 2)[0]
    if sem.type_of(url_path).count("/") > 1 and "/providers/" in parent and sem.type_of(parent) in sem.TYPES:
        parent_body: dict[str, Any] = {"location": "westus", "properties": {}}
        if sem.type_of(parent) == "microsoft.network/virtualnetworks":
            parent_body["properties"]["addressSpace"] = {"addressPrefixes": ["10.0.0.0/8"]}
        arm_emulator.seed([{"id": parent, "body": parent_body}])
    if template.startswith(ML):  # rules and actions need their workspace; update needs one to patch
        workspace = ML.format(**parameters)
        managed = {"isolationMode": "AllowOnlyApprovedOutbound", "status": {"status": "Inactive"}}
        arm_emulator.seed(
            [{"id": workspace, "body": {"location": "westus", "properties": {"managedNetwork": managed}}}]
        )
    status, response = _call(
        arm_emulator, method, f"{arm_emulator.endpoint}{url_path}?api-version={parameters['api-version']}", body
    )
    assert str(status) in example["responses"], f"{status}: {response}"
    if status == 202:
        return  # the SDK tests follow the long-running operation to its final body
    documented = example["responses"].get("201" if status == 201 else "200", {}).get("body") or {}
    missing = _paths(documented) - _paths(response or {}) - set(UNEMULATED)
    assert not missing, f"response lacks documented fields: {sorted(missing)}"
