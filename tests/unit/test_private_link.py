"""The registry of private-link targets holds together: every group has zones, every target a route,
IP rules where allowlistEgressOn writes them, lookups that ignore case, and plan() reads it."""

from __future__ import annotations

import pytest

from secureml_operator.api.models import Workspace
from secureml_operator.azure import private_link
from secureml_operator.azure.arm import GENERIC_API_VERSIONS, ROUTES, ArmClient
from secureml_operator.azure.ids import ArmId

TARGETS = list(private_link.TARGETS.values())
GROUPS = [(target, group) for target in TARGETS for group in target.groups]
GROUP_IDS = [f"{target.namespace}:{group.group_id}" for target, group in GROUPS]


def _id(target: private_link.PrivateLinkTarget) -> ArmId:
    namespace, kind = target.arm_type.split("/", 1)
    return ArmId.parse(f"/subscriptions/s/resourceGroups/g/providers/{namespace}/{kind}/name")


@pytest.mark.parametrize(("target", "group"), GROUPS, ids=GROUP_IDS)
def test_every_group_has_private_dns_zones(target: private_link.PrivateLinkTarget, group: private_link.Group) -> None:
    assert group.zones, f"{target.arm_type} group {group.group_id} has no zone"
    assert all(zone.startswith("privatelink.") and zone == zone.lower() for zone in group.zones)


def test_a_group_id_names_one_target_and_one_zone_set() -> None:
    owners: dict[str, str] = {}
    for target, group in GROUPS:
        assert owners.setdefault(group.group_id.lower(), target.key) == target.key, group.group_id
        assert private_link.zones_for(group.group_id.upper()) == group.zones


@pytest.mark.parametrize("target", TARGETS, ids=lambda target: target.key)
def test_every_target_is_routed_with_an_api_version(target: private_link.PrivateLinkTarget) -> None:
    """Generic by-id calls need the provider's api-version; a type without one has its own SDK route."""
    if target.api_version is None:
        assert target.key in ROUTES
    else:
        assert GENERIC_API_VERSIONS[target.namespace] == target.api_version
    assert ArmClient.supports(_id(target))


def test_targets_sharing_a_provider_agree_on_its_api_version() -> None:
    for target in TARGETS:
        versions = {t.api_version for t in private_link.in_namespace(target.namespace) if t.api_version}
        assert len(versions) <= 1, target.namespace


def test_insights_keeps_its_generic_api_version() -> None:
    assert GENERIC_API_VERSIONS["microsoft.insights"] == "2020-02-02"
    assert private_link.in_namespace("Microsoft.Insights") == ()


@pytest.mark.parametrize(
    ("arm_type", "path", "rule"),
    [
        (
            "Microsoft.Storage/storageAccounts",
            "properties.networkAcls.ipRules",
            {"value": "1.2.3.4", "action": "Allow"},
        ),
        ("Microsoft.KeyVault/vaults", "properties.networkAcls.ipRules", {"value": "1.2.3.4"}),
        (
            "Microsoft.ContainerRegistry/registries",
            "properties.networkRuleSet.ipRules",
            {"value": "1.2.3.4", "action": "Allow"},
        ),
    ],
)
def test_ip_rules_live_where_each_provider_keeps_them(arm_type: str, path: str, rule: dict[str, str]) -> None:
    target = private_link.for_type(arm_type)
    assert target is not None and target.ip_rules is not None
    assert (target.ip_rules.path, target.ip_rules.rule("1.2.3.4")) == (path, rule)
    assert private_link.ip_rules_for(arm_type.upper()) == target.ip_rules


def test_ip_rules_fall_back_to_the_provider_then_the_default() -> None:
    vault = private_link.for_type("Microsoft.KeyVault/vaults")
    assert vault is not None
    assert private_link.ip_rules_for("Microsoft.KeyVault/managedHSMs") == vault.ip_rules
    assert private_link.ip_rules_for("Microsoft.Sql/servers") == private_link.DEFAULT_IP_RULES
    assert private_link.ip_rules_for("Microsoft.MachineLearningServices/workspaces") == private_link.DEFAULT_IP_RULES


def test_lookups_ignore_case() -> None:
    storage = private_link.for_type("microsoft.storage/STORAGEACCOUNTS")
    assert storage is not None and storage is private_link.for_type("Microsoft.Storage/storageAccounts")
    assert private_link.in_namespace("MICROSOFT.STORAGE") == (storage,)
    assert private_link.group_for("MICROSOFT.KEYVAULT/Vaults", "Vault") == private_link.group_for(
        "microsoft.keyvault/vaults", "vault"
    )
    assert private_link.zones_for("AmlWorkspace") == private_link.WORKSPACE_GROUP.zones
    assert private_link.for_type("Microsoft.Sql/servers") is None
    assert private_link.group_for("Microsoft.Storage/storageAccounts", "vault") is None
    with pytest.raises(KeyError):
        private_link.zones_for("sqlServer")


def test_dependency_endpoints_name_workspace_fields_in_plan_order() -> None:
    endpoints = [(field, group.group_id, group.endpoint_suffix) for field, group in private_link.dependency_endpoints()]
    assert endpoints == [
        ("storage_account_id", "blob", "st-blob"),
        ("storage_account_id", "file", "st-file"),
        ("key_vault_id", "vault", "kv"),
        ("container_registry_id", "registry", "cr"),
    ]
    assert {field for field, _, _ in endpoints} <= set(Workspace.model_fields)
    suffixes = [suffix for _, _, suffix in endpoints]
    assert len(set(suffixes)) == len(suffixes)


def test_the_workspace_own_private_link() -> None:
    assert private_link.WORKSPACE.key == "microsoft.machinelearningservices/workspaces"
    assert private_link.WORKSPACE_GROUP.group_id == "amlworkspace"
    assert private_link.WORKSPACE.workspace_field is None and private_link.WORKSPACE not in private_link.dependencies()


@pytest.mark.parametrize(("target", "group"), GROUPS, ids=GROUP_IDS)
def test_host_names_and_zones_agree(target: private_link.PrivateLinkTarget, group: private_link.Group) -> None:
    """A host name `<name>.<suffix>` resolves through its zone by CNAME: the zone names the same service."""
    if group.host_suffix is None:
        assert target is private_link.WORKSPACE
        return
    service = group.host_suffix.split(".")[-2:]  # windows.net, azure.net, azurecr.io
    assert any(zone.split(".")[-2:] == service for zone in group.zones), (group.host_suffix, group.zones)
