"""The in-memory ARM answers like ARM where the engine relies on it: engine tests are only as good as
their double of Azure, so each answer they rest on is pinned here."""

from __future__ import annotations

import pytest
from armfake import ArmFake
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.fields import get_path
from secureml_operator.engine.ledger import identity_of
from secureml_operator.failures import classify

GROUP = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers"
VNET = ArmId.parse(f"{GROUP}/Microsoft.Network/virtualNetworks/vnet")
SUBNET = VNET.child("subnets", "a")
NSG = ArmId.parse(f"{GROUP}/Microsoft.Network/networkSecurityGroups/nsg")
WORKSPACE = ArmId.parse(f"{GROUP}/Microsoft.MachineLearningServices/workspaces/mlw")
ZONE = ArmId.parse(f"{GROUP}/Microsoft.Network/privateDnsZones/privatelink.api.azureml.ms")
ENDPOINT = ArmId.parse(f"{GROUP}/Microsoft.Network/privateEndpoints/pe")


async def test_preconditions_fail_with_412_as_the_sdk_raises_it() -> None:
    fake = ArmFake()
    created = await fake.put(VNET, {"location": "x"}, create_only=True)
    with pytest.raises(HttpResponseError) as exists:
        await fake.put(VNET, {"location": "x"}, create_only=True)
    with pytest.raises(HttpResponseError) as stale:
        await fake.put(VNET, {"location": "x"}, etag='W/"not-the-current-one"')
    for refused in (exists.value, stale.value):
        assert type(refused) is HttpResponseError and refused.status_code == 412
        assert refused.error is not None and refused.error.code == "PreconditionFailed"
        assert classify(refused).transient
    assert (await fake.put(VNET, {"location": "y"}, etag=created["etag"]))["location"] == "y"


async def test_azure_assigns_identities_on_create_keeps_them_and_a_recreate_gets_new_ones() -> None:
    fake = ArmFake()
    first = await fake.put(VNET, {"location": "x", "properties": {"resourceGuid": "mine"}})
    assert identity_of(first) not in (None, "mine")
    assert identity_of(await fake.put(VNET, {"location": "y"})) == identity_of(first)
    assert identity_of(await fake.put(SUBNET, {"properties": {"addressPrefix": "10.0.0.0/24"}})) is None
    workspace = await fake.put(WORKSPACE, {"location": "x", "tags": {"a": "b"}})
    assert workspace["tags"] == {"a": "b"} and identity_of(workspace)
    fake.remove(VNET)
    assert identity_of(await fake.put(VNET, {"location": "x"})) != identity_of(first)


async def test_children_are_listed_in_their_parents_get_and_written_only_through_their_own() -> None:
    fake = ArmFake()
    await fake.put(NSG, {"location": "x"})
    await fake.put(NSG.child("securityRules", "r"), {"properties": {"priority": 100}})
    await fake.put(NSG, {"location": "x", "properties": {"securityRules": []}})  # an inline list is ignored
    assert [rule["name"] for rule in get_path(fake.live(NSG) or {}, "properties.securityRules")] == ["r"]
    await fake.put(WORKSPACE, {"location": "x"})
    await fake.put(WORKSPACE.child("outboundRules", "pypi"), {"properties": {"type": "FQDN"}})
    assert get_path(fake.live(WORKSPACE) or {}, "properties.managedNetwork.outboundRules") == {
        "pypi": {"type": "FQDN", "provisioningState": "Succeeded"}
    }


async def test_missing_resources_read_as_none_and_cannot_be_written_under() -> None:
    fake = ArmFake()
    assert await fake.get(VNET) is None
    await fake.delete(VNET)  # already gone: done
    with pytest.raises(ResourceNotFoundError):
        await fake.put(SUBNET, {"properties": {}})
    with pytest.raises(ResourceNotFoundError):
        await fake.patch(WORKSPACE, {"properties": {}})
    assert fake.writes == [("delete", str(VNET)), ("put", str(SUBNET)), ("patch", str(WORKSPACE))]


async def test_what_is_referenced_cannot_be_deleted_and_dns_records_follow_zone_groups() -> None:
    fake = ArmFake()
    await fake.put(NSG, {"location": "x"})
    await fake.put(VNET, {"location": "x"})
    await fake.put(SUBNET, {"properties": {"networkSecurityGroup": {"id": str(NSG)}}})
    with pytest.raises(HttpResponseError) as in_use:
        await fake.delete(NSG)
    assert in_use.value.status_code == 400 and not classify(in_use.value).transient
    await fake.put(ZONE, {"location": "global"})
    await fake.put(ENDPOINT, {"location": "x", "properties": {"subnet": {"id": str(SUBNET)}}})
    group = {"properties": {"privateDnsZoneConfigs": [{"name": "z", "properties": {"privateDnsZoneId": str(ZONE)}}]}}
    await fake.put(ENDPOINT.child("privateDnsZoneGroups", "default"), group)
    assert get_path(fake.live(ZONE) or {}, "properties.numberOfRecordSets") == 2, "the endpoint's record and SOA"
    await fake.delete(ENDPOINT)
    assert get_path(fake.live(ZONE) or {}, "properties.numberOfRecordSets") == 1
    await fake.delete(VNET)
    await fake.delete(NSG)
    assert fake.live(NSG) is None
