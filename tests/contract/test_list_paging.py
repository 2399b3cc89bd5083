"""Lists page as ARM pages them: `page_size` items, and a `nextLink` (with `$skipToken`) to the rest,
on every list the emulator serves; the SDKs follow it."""

from __future__ import annotations

import urllib.parse

from azure.ai.ml._restclient.arm_ml_service import MachineLearningServicesMgmtClient
from azure.identity import ClientSecretCredential
from azure.mgmt.network import NetworkManagementClient

from armemu import Emulator
from armemu.seed import PROVIDERS
from contract.conftest import SUBSCRIPTION, client_options, raw_call

RG = "rg-litware"
LOCATION = "brazilsouth"
VNET = f"{PROVIDERS}/Microsoft.Network/virtualNetworks/vnet-p"
SUBNETS = [f"s{index}" for index in range(5)]


def _vnet_with_subnets(network: NetworkManagementClient) -> None:
    subnets = [{"name": name, "properties": {"addressPrefix": f"10.0.{i}.0/24"}} for i, name in enumerate(SUBNETS)]
    space = {"addressPrefixes": ["10.0.0.0/16"]}
    body = {"location": LOCATION, "properties": {"addressSpace": space, "subnets": subnets}}
    network.virtual_networks.begin_create_or_update(RG, "vnet-p", body).result()


def test_child_lists_page_and_the_sdk_follows_next_link(
    arm_emulator: Emulator, credential: ClientSecretCredential
) -> None:
    network = NetworkManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator))
    _vnet_with_subnets(network)
    arm_emulator.configure(page_size=2)
    status, _, first = raw_call(arm_emulator, "GET", f"{VNET}/subnets?api-version=2024-05-01")
    assert status == 200 and [s["name"] for s in first["value"]] == SUBNETS[:2]
    next_link = urllib.parse.urlsplit(first["nextLink"])
    assert next_link.path == f"{VNET}/subnets"
    assert urllib.parse.parse_qs(next_link.query) == {"api-version": ["2024-05-01"], "$skipToken": ["2"]}
    arm_emulator.clear_requests()
    assert [subnet["name"] for subnet in network.subnets.list(RG, "vnet-p")] == SUBNETS
    assert len(arm_emulator.requests()) == 3, "three pages of two"
    status, _, last = raw_call(arm_emulator, "GET", f"{VNET}/subnets?api-version=2024-05-01&$skipToken=4")
    assert [s["name"] for s in last["value"]] == SUBNETS[4:] and last["nextLink"] is None


def test_resource_group_lists_page_too(arm_emulator: Emulator, credential: ClientSecretCredential) -> None:
    network = NetworkManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator))
    names = [f"nsg-{index}" for index in range(3)]
    for name in names:
        network.network_security_groups.begin_create_or_update(RG, name, {"location": LOCATION}).result()
    arm_emulator.configure(page_size=1)
    arm_emulator.clear_requests()
    assert [nsg["name"] for nsg in network.network_security_groups.list(RG)] == names
    assert len(arm_emulator.requests()) == 3


def test_outbound_rules_page(arm_emulator: Emulator, credential: ClientSecretCredential) -> None:
    ml = MachineLearningServicesMgmtClient(credential, SUBSCRIPTION, **client_options(arm_emulator))
    body = {"location": LOCATION, "properties": {"managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound"}}}
    ml.workspaces.begin_create_or_update(RG, "mlw-p", body).result()
    for name in ("a", "b", "c"):
        rule = {"properties": {"type": "FQDN", "destination": f"{name}.example.com"}}
        ml.managed_network_settings_rule.begin_create_or_update(RG, "mlw-p", name, rule).result()
    arm_emulator.configure(page_size=2)
    arm_emulator.clear_requests()
    names = {rule["name"] for rule in ml.managed_network_settings_rule.list(RG, "mlw-p")}
    assert {"a", "b", "c", "__SYS_ST_AzureMachineLearning"} <= names
    assert len(arm_emulator.requests()) == (len(names) + 1) // 2


def test_page_size_zero_is_one_page_and_a_bad_skip_token_is_400(
    arm_emulator: Emulator, credential: ClientSecretCredential
) -> None:
    _vnet_with_subnets(NetworkManagementClient(credential, SUBSCRIPTION, **client_options(arm_emulator)))
    arm_emulator.configure(page_size=0)
    _, _, page = raw_call(arm_emulator, "GET", f"{VNET}/subnets?api-version=2024-05-01")
    assert len(page["value"]) == len(SUBNETS) and page["nextLink"] is None
    status, _, error = raw_call(arm_emulator, "GET", f"{VNET}/subnets?api-version=2024-05-01&$skipToken=x")
    assert status == 400 and error["error"]["code"] == "InvalidSkipToken"
