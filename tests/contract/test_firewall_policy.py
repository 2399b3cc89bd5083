# ruff: noqa: E501  (a table reads best one case per line)
"""Azure Firewall policy rule collection groups through the real azure-mgmt-network client: the hub's
policy `afwp-hub` (seeded, with the platform team's own group `platform` at priority 100) takes a
workspace's group, lists it, keeps it apart from the platform's, refuses what Azure refuses (priority
out of range or taken, malformed collections and rules) and serializes the writes to its groups."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.network import NetworkManagementClient

from armemu import Emulator
from armemu.seed import CONNECTIVITY_SUBSCRIPTION, HUB_FIREWALL, HUB_FIREWALL_POLICY, PLATFORM_RULES
from contract.conftest import client_options, raw_call
from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.ids import ArmId
from secureml_operator.failures import classify

RG, POLICY = "rg-connectivity", "afwp-hub"
GROUP = "secureml-mlw-litware"
VERSION = "?api-version=2026-03-01"
SECONDS = 1.5  # long enough for a second request to land while the first operation runs
COMPUTE = ["10.0.40.0/24"]  # the workspace's compute subnets


def _filter(name: str, priority: int, *rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": name,
        "priority": priority,
        "action": {"type": "Allow"},
        "rules": list(rules),
    }


def _application(name: str, *fqdns: str) -> dict[str, Any]:
    return {
        "ruleType": "ApplicationRule",
        "name": name,
        "protocols": [{"protocolType": "Https", "port": 443}],
        "sourceAddresses": COMPUTE,
        "targetFqdns": list(fqdns),
    }


def _network(name: str, tag: str, *ports: str, protocol: str = "TCP") -> dict[str, Any]:
    return {
        "ruleType": "NetworkRule",
        "name": name,
        "ipProtocols": [protocol],
        "sourceAddresses": COMPUTE,
        "destinationAddresses": [tag],
        "destinationPorts": list(ports),
    }


def _group(priority: int = 300, *collections: dict[str, Any]) -> dict[str, Any]:
    """A workspace's group as the operator would write it (a few of the rules docs/firewall-policy.md lists)."""
    return {
        "properties": {
            "priority": priority,
            "ruleCollections": list(collections)
            or [
                _filter(
                    "azureml-network",
                    100,
                    _network("AzureMachineLearning", "AzureMachineLearning", "443", "8787", "18881"),
                    _network("AzureMachineLearningUdp", "AzureMachineLearning", "5831", protocol="UDP"),
                    _network("BatchNodeManagement", "BatchNodeManagement.BrazilSouth", "443"),
                ),
                _filter("azureml-fqdns", 200, _application("azureml", "ml.azure.com", "*.azureml.ms", "*.azureml.net")),
            ],
        }
    }


@pytest.fixture
def network(arm_emulator: Emulator, credential: ClientSecretCredential) -> NetworkManagementClient:
    """The connectivity subscription's client, without SDK retries: each answer as the service gave it."""
    return NetworkManagementClient(credential, CONNECTIVITY_SUBSCRIPTION, **client_options(arm_emulator), retry_total=0)


def _platform(emulator: Emulator) -> Any:
    return emulator.rest("GET", PLATFORM_RULES)


def _group_ids(network: NetworkManagementClient) -> list[str]:
    policy = network.firewall_policies.get(RG, POLICY)
    return [reference.id for reference in policy.properties.rule_collection_groups]


def _refusal(answer: Any) -> tuple[str, str]:
    """Code and message of a refusal: ARM's error object, or the firewall policy provider's ModelState."""
    if "error" in answer:
        return answer["error"]["code"], answer["error"]["message"]
    inner = json.loads(answer["ModelState"]["resource"][0])
    assert answer["Message"] == "The request is invalid." and inner["Status"] == "Failed"
    return inner["Error"]["Code"], inner["Error"]["Message"]


def _put(emulator: Emulator, name: str, body: Any) -> tuple[int, Any, Any]:
    return raw_call(emulator, "PUT", f"{HUB_FIREWALL_POLICY}/ruleCollectionGroups/{name}{VERSION}", body)


# the seeded policy ------------------------------------------------------------------------------


def test_the_policy_lists_the_platform_group_and_the_hub_firewall(network: NetworkManagementClient) -> None:
    policy = network.firewall_policies.get(RG, POLICY)
    assert [group.id for group in policy.properties.rule_collection_groups] == [PLATFORM_RULES]
    assert [firewall.id for firewall in policy.properties.firewalls] == [HUB_FIREWALL]
    assert network.azure_firewalls.get(RG, "fw-hub").properties.firewall_policy.id == HUB_FIREWALL_POLICY
    (platform,) = network.firewall_policy_rule_collection_groups.list(RG, POLICY)
    assert (platform.name, platform.properties.priority) == ("platform", 100)
    assert [c.name for c in platform.properties.rule_collections] == ["platform-network", "platform-web"]


# create, read, update, delete -------------------------------------------------------------------


def test_a_group_is_created_read_updated_and_deleted_beside_the_platform_group(
    arm_emulator: Emulator, network: NetworkManagementClient
) -> None:
    platform = _platform(arm_emulator)
    groups = network.firewall_policy_rule_collection_groups
    created = groups.begin_create_or_update(RG, POLICY, GROUP, _group()).result()
    assert created.properties.provisioning_state == "Succeeded" and created.properties.priority == 300
    read = groups.get(RG, POLICY, GROUP)
    assert read.id == f"{HUB_FIREWALL_POLICY}/ruleCollectionGroups/{GROUP}"
    (network_rules, fqdn_rules) = read.properties.rule_collections
    assert [rule.name for rule in network_rules.rules] == [
        "AzureMachineLearning",
        "AzureMachineLearningUdp",
        "BatchNodeManagement",
    ]
    assert fqdn_rules.rules[0].target_fqdns == ["ml.azure.com", "*.azureml.ms", "*.azureml.net"]
    assert _group_ids(network) == [PLATFORM_RULES, f"{HUB_FIREWALL_POLICY}/ruleCollectionGroups/{GROUP}"]

    changed = _group(310, _filter("azureml-fqdns", 200, _application("azureml", "ml.azure.com", "*.azureml.ms")))
    updated = groups.begin_create_or_update(RG, POLICY, GROUP, changed).result()
    assert updated.properties.priority == 310 and updated.etag != read.etag
    assert [c.name for c in groups.get(RG, POLICY, GROUP).properties.rule_collections] == ["azureml-fqdns"]

    groups.begin_delete(RG, POLICY, GROUP).result()
    with pytest.raises(ResourceNotFoundError):
        groups.get(RG, POLICY, GROUP)
    assert _group_ids(network) == [PLATFORM_RULES]
    assert _platform(arm_emulator) == platform, "the platform team's group comes out unchanged"


def test_writes_are_long_running_operations_as_the_network_provider_answers_them(arm_emulator: Emulator) -> None:
    status, headers, answer = _put(arm_emulator, GROUP, _group())
    assert status == 201 and "/operations/" in headers["Azure-AsyncOperation"], answer
    status, headers, _ = _put(arm_emulator, GROUP, _group())
    assert status == 200
    path = f"{HUB_FIREWALL_POLICY}/ruleCollectionGroups/{GROUP}{VERSION}"
    status, headers, _ = raw_call(arm_emulator, "DELETE", path)
    assert status == 202 and "Azure-AsyncOperation" in headers


# refusals ---------------------------------------------------------------------------------------


def test_a_priority_another_group_of_the_policy_has_is_refused_and_nothing_is_written(
    arm_emulator: Emulator, network: NetworkManagementClient
) -> None:
    groups = network.firewall_policy_rule_collection_groups
    with pytest.raises(HttpResponseError) as refused:
        groups.begin_create_or_update(RG, POLICY, GROUP, _group(100)).result()
    assert refused.value.status_code == 400
    code, message = _refusal(refused.value.response.json())
    assert code == "FirewallPolicyRuleCollectionGroupPriorityConflict" and "platform" in message
    with pytest.raises(ResourceNotFoundError):
        groups.get(RG, POLICY, GROUP)
    groups.begin_create_or_update(RG, POLICY, GROUP, _group(300)).result()
    status, _, answer = _put(arm_emulator, GROUP, _group(100))  # an update to a taken priority: refused too
    assert status == 400 and _refusal(answer)[0] == "FirewallPolicyRuleCollectionGroupPriorityConflict"
    assert groups.get(RG, POLICY, GROUP).properties.priority == 300
    assert _put(arm_emulator, GROUP, _group(300))[0] == 200, "its own priority is no conflict"


def _with(change: Any) -> dict[str, Any]:
    body = _group()
    change(body["properties"])
    return body


def _rule(collection: int, rule: int = 0) -> Any:
    return lambda properties: properties["ruleCollections"][collection]["rules"][rule]


INVALID = [
    ("group-priority-low", _with(lambda p: p.update(priority=99)), "FirewallPolicyRuleCollectionGroupInvalidPriority"),
    ("group-priority-high", _with(lambda p: p.update(priority=65001)), "FirewallPolicyRuleCollectionGroupInvalidPriority"),
    ("group-priority-missing", _with(lambda p: p.pop("priority")), "FirewallPolicyRuleCollectionGroupInvalidPriority"),
    ("collection-priority", _with(lambda p: p["ruleCollections"][0].update(priority=65001)), "FirewallPolicyRuleCollectionInvalidPriority"),
    ("collection-names", _with(lambda p: p["ruleCollections"][1].update(name="azureml-network")), "FirewallPolicyRuleCollectionNameNotUnique"),
    ("collection-action", _with(lambda p: p["ruleCollections"][0].pop("action")), "FirewallPolicyFilterRuleCollectionActionMissing"),
    ("collection-action-value", _with(lambda p: p["ruleCollections"][0].update(action={"type": "Maybe"})), "InvalidRequestFormat"),
    ("collection-type", _with(lambda p: p["ruleCollections"][0].update(ruleCollectionType="FirewallPolicyAnyRuleCollection")), "InvalidRequestFormat"),
    ("mixed-rules", _with(lambda p: p["ruleCollections"][0]["rules"].append(_application("x", "pypi.org"))), "FirewallPolicyRuleCollectionRuleTypeMismatch"),
    ("nat-rule-in-filter", _with(lambda p: _rule(0)(p).update(ruleType="NatRule")), "FirewallPolicyRuleCollectionRuleTypeMismatch"),
    ("app-protocols", _with(lambda p: _rule(1)(p).pop("protocols")), "FirewallPolicyApplicationRuleInvalidProtocols"),
    ("app-port", _with(lambda p: _rule(1)(p).update(protocols=[{"protocolType": "Https", "port": 65000}])), "FirewallPolicyApplicationRuleInvalidProtocols"),
    ("app-protocol-type", _with(lambda p: _rule(1)(p).update(protocols=[{"protocolType": "Gopher", "port": 70}])), "InvalidRequestFormat"),
    ("app-source", _with(lambda p: _rule(1)(p).pop("sourceAddresses")), "FirewallPolicyApplicationRuleSourceMissing"),
    ("app-target", _with(lambda p: _rule(1)(p).pop("targetFqdns")), "FirewallPolicyApplicationRuleTargetMissing"),
    ("app-url-as-fqdn", _with(lambda p: _rule(1)(p).update(targetFqdns=["https://ml.azure.com/"])), "FirewallPolicyApplicationRuleInvalidTargetFqdn"),
    ("net-ports", _with(lambda p: _rule(0)(p).pop("destinationPorts")), "FirewallPolicyRuleIpAddressesAndPortsMustBeSpecified"),
    ("net-source", _with(lambda p: _rule(0)(p).pop("sourceAddresses")), "FirewallPolicyRuleIpAddressesAndPortsMustBeSpecified"),
    ("net-destination", _with(lambda p: _rule(0)(p).pop("destinationAddresses")), "FirewallPolicyNetworkRuleDestinationMissing"),
    ("net-protocols", _with(lambda p: _rule(0)(p).pop("ipProtocols")), "FirewallPolicyNetworkRuleProtocolsMissing"),
    ("net-port-range", _with(lambda p: _rule(0)(p).update(destinationPorts=["443-80"])), "FirewallPolicyNetworkRuleInvalidPort"),
    ("net-wildcard-fqdn", _with(lambda p: _rule(0)(p).update(destinationAddresses=[], destinationFqdns=["*.tundra.brazilsouth.api.azureml.ms"])), "FirewallPolicyNetworkRuleInvalidFqdn"),
    ("net-protocol-value", _with(lambda p: _rule(0)(p).update(ipProtocols=["SCTP"])), "InvalidRequestFormat"),
    ("unknown-property", _with(lambda p: p.update(notInThisApiVersion=True)), "InvalidRequestFormat"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "code"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_an_invalid_group_is_refused_with_its_code_and_nothing_is_written(
    arm_emulator: Emulator, body: dict[str, Any], code: str
) -> None:
    status, _, answer = _put(arm_emulator, GROUP, body)
    assert status == 400 and _refusal(answer)[0] == code, answer
    status, _, _ = raw_call(arm_emulator, "GET", f"{HUB_FIREWALL_POLICY}/ruleCollectionGroups/{GROUP}{VERSION}")
    assert status == 404


def test_the_rule_answers_verified_against_azure_keep_azures_message(arm_emulator: Emulator) -> None:
    ports = _with(lambda p: _rule(0)(p).pop("destinationPorts"))
    _, _, answer = _put(arm_emulator, GROUP, ports)
    assert _refusal(answer)[1] == (
        "Firewall Policy Rule AzureMachineLearning should have IP addresses and ports specified. * is used to match "
        "all."
    )
    _, _, answer = _put(arm_emulator, GROUP, _with(lambda p: _rule(0)(p).pop("destinationAddresses")))
    assert _refusal(answer)[1] == (
        "Firewall Policy Network Rule AzureMachineLearning must have one of destinationAddresses, destinationIpGroups "
        "or destinationFqdns specified"
    )


def test_nat_collections_and_other_destinations_are_accepted(arm_emulator: Emulator) -> None:
    nat = {
        "ruleCollectionType": "FirewallPolicyNatRuleCollection",
        "name": "inbound",
        "priority": 300,
        "action": {"type": "DNAT"},
        "rules": [{"ruleType": "NatRule", "name": "ssh", "ipProtocols": ["TCP"], "destinationPorts": ["22"]}],
    }
    tags = {**_application("updates"), "targetFqdns": [], "fqdnTags": ["WindowsUpdate"]}
    fqdn = {**_network("tundra", "x", "5831", protocol="UDP"), "destinationAddresses": [], "destinationFqdns": ["a.b"]}
    body = _group(300, nat, _filter("tags", 400, tags), _filter("fqdns", 500, fqdn))
    status, _, answer = _put(arm_emulator, GROUP, body)
    assert status == 201, answer


def test_fqdns_in_network_rules_need_the_policys_dns_proxy(
    arm_emulator: Emulator, network: NetworkManagementClient
) -> None:
    network.firewall_policies.begin_create_or_update(RG, "afwp-plain", {"location": "brazilsouth"}).result()
    tundra = {
        **_network("tundra", "x", "5831", protocol="UDP"),
        "destinationAddresses": [],
        "destinationFqdns": ["brazilsouth.tundra.azureml.ms"],
    }
    body = _group(300, _filter("tundra", 100, tundra))
    path = HUB_FIREWALL_POLICY.replace(POLICY, "afwp-plain") + f"/ruleCollectionGroups/{GROUP}{VERSION}"
    status, _, answer = raw_call(arm_emulator, "PUT", path, body)
    assert status == 400 and _refusal(answer)[0] == "FirewallPolicyNetworkRuleFqdnsNeedDnsProxy", answer
    assert _put(arm_emulator, GROUP, body)[0] == 201, "afwp-hub has its DNS proxy on"


def test_a_group_needs_its_policy(arm_emulator: Emulator) -> None:
    missing = HUB_FIREWALL_POLICY.replace(POLICY, "afwp-missing")
    status, _, answer = raw_call(arm_emulator, "PUT", f"{missing}/ruleCollectionGroups/{GROUP}{VERSION}", _group())
    assert status == 404 and answer["error"]["code"] == "ParentResourceNotFound"


def test_rule_collection_groups_exist_from_api_version_2020_04_01(arm_emulator: Emulator) -> None:
    path = f"{HUB_FIREWALL_POLICY}/ruleCollectionGroups/{GROUP}"
    status, _, answer = raw_call(arm_emulator, "PUT", f"{path}?api-version=2020-03-01", _group())
    assert status == 400 and answer["error"]["code"] == "NoRegisteredProviderFound"
    status, _, answer = raw_call(arm_emulator, "PUT", f"{path}?api-version=2020-04-01", _group())
    assert status == 201, answer
    status, _, answer = raw_call(arm_emulator, "GET", f"{HUB_FIREWALL_POLICY}?api-version=2019-06-01")
    assert status == 200, answer


# one write at a time per policy -----------------------------------------------------------------


def test_writes_to_groups_of_one_policy_wait_for_each_other(
    arm_emulator: Emulator, network: NetworkManagementClient
) -> None:
    groups = network.firewall_policy_rule_collection_groups
    groups.begin_create_or_update(RG, POLICY, "secureml-a", _group(300)).result()
    arm_emulator.operations(SECONDS)
    running = groups.begin_create_or_update(RG, POLICY, "secureml-b", _group(310))
    with pytest.raises(HttpResponseError) as refused:
        groups.begin_create_or_update(RG, POLICY, "secureml-c", _group(320))
    assert (refused.value.status_code, refused.value.error.code) == (409, "AnotherOperationInProgress")
    assert classify(refused.value).transient, "the operator sends it again"
    with pytest.raises(HttpResponseError) as refused:
        groups.begin_delete(RG, POLICY, "secureml-a")
    assert refused.value.status_code == 409
    assert refused.value.error.code == "FirewallPolicyRuleCollectionGroupDeleteNotAllowedWhenUpdatingOrDeleting"
    assert refused.value.error.message.startswith("Firewall Policy Rule Collection Group secureml-a can not be deleted")
    assert groups.get(RG, POLICY, "secureml-a").properties.priority == 300, "reads go on, nothing was deleted"
    with pytest.raises(ResourceNotFoundError):
        groups.get(RG, POLICY, "secureml-c")
    running.result()
    groups.begin_delete(RG, POLICY, "secureml-a").result()  # the operation ended: accepted
    assert [group.name for group in groups.list(RG, POLICY)] == ["platform", "secureml-b"]


def test_the_policy_itself_is_locked_too_while_a_group_operation_runs(
    arm_emulator: Emulator, network: NetworkManagementClient
) -> None:
    arm_emulator.operations(SECONDS)
    network.firewall_policy_rule_collection_groups.begin_create_or_update(RG, POLICY, GROUP, _group())
    policy = copy.deepcopy(arm_emulator.rest("GET", HUB_FIREWALL_POLICY))
    with pytest.raises(HttpResponseError) as refused:
        network.firewall_policies.begin_create_or_update(RG, POLICY, {"location": policy["location"]})
    assert (refused.value.status_code, refused.value.error.code) == (429, "RetryableError")


async def test_the_operator_reads_the_code_and_message_inside_a_model_state_refusal(arm: ArmClient) -> None:
    """The provider's 400 is not ARM's error object: the condition still names Azure's code and says why."""
    group = ArmId.parse(f"{HUB_FIREWALL_POLICY}/ruleCollectionGroups/{GROUP}")
    with pytest.raises(HttpResponseError) as refused:
        await arm.put(group, _with(lambda p: _rule(0)(p).pop("destinationPorts")))
    failure = classify(refused.value)
    assert (failure.reason, failure.transient) == ("AzureRejected", False)
    assert failure.message.startswith("FirewallPolicyRuleIpAddressesAndPortsMustBeSpecified: Firewall Policy Rule ")
