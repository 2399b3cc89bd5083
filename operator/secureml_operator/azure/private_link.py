"""Private-link targets as data: one entry per ARM type a private endpoint connects to.

A target's facts (its group ids and their private DNS zones, the api-version its provider serves for
generic by-id calls, where it keeps IP rules, which of the workspace's dependencies it is) live here
and nowhere else: plan(), the ARM client and the ARM emulator read them, so adding a target is one
entry plus its tests. Plain data with no imports from the rest of the operator, so the emulator can
read it without pulling in the operator. Zones and host names are Azure public cloud's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Group:
    """One sub-resource of a target that a private endpoint connects to (ARM's `groupIds`), and the
    private DNS zones that resolve its names to the endpoint's IP."""

    group_id: str
    zones: tuple[str, ...]
    host_suffix: str | None = None
    """Azure registers `<resource name>.<host_suffix>` for an endpoint to this group; None when the
    names follow another pattern (a workspace's carry its workspaceId and region)."""
    endpoint_suffix: str | None = None
    """With private endpoints for the workspace's dependencies, the customer network's endpoint to
    this group is `pe-<workspace>-<endpoint_suffix>`; None: the operator makes none for it."""


@dataclass(frozen=True)
class IpRules:
    """Where a target keeps its IP rules, and what one rule holds besides its address: Key Vault's
    IPRule has only `value`, storage and registries take an `action` too."""

    path: str
    extra: tuple[tuple[str, str], ...] = ()

    def rule(self, address: str) -> dict[str, str]:
        """The IP rule that lets `address` in, as this target's provider spells it."""
        return {"value": address, **dict(self.extra)}


@dataclass(frozen=True)
class PrivateLinkTarget:
    """An ARM type private endpoints connect to, and what the operator needs to know about it."""

    arm_type: str
    groups: tuple[Group, ...]
    api_version: str | None = None
    """The api-version for generic by-id calls (azure-mgmt-resource); None when the type has its own
    SDK route (azure/arm.py ROUTES)."""
    ip_rules: IpRules | None = None
    """Where allowlistEgressOn writes our egress IPs; None when the operator writes none there."""
    workspace_field: str | None = None
    """The field of the spec's `workspace` naming the workspace's dependency of this type (those get
    private endpoints in a customer network); None when the type is no such dependency."""

    @property
    def key(self) -> str:
        """The registry key: ARM types compare case-insensitively."""
        return self.arm_type.lower()

    @property
    def namespace(self) -> str:
        """The resource provider namespace, lower-cased (`microsoft.storage`)."""
        return self.arm_type.split("/", 1)[0].lower()

    def group(self, group_id: str) -> Group | None:
        """This target's group `group_id` (case-insensitive), or None when it has no such group."""
        return next((group for group in self.groups if group.group_id.lower() == group_id.lower()), None)


DEFAULT_IP_RULES = IpRules("properties.networkAcls.ipRules", (("action", "Allow"),))
"""Storage's shape, also taken for an allowlistEgressOn target of a provider not listed here."""

TARGETS: dict[str, PrivateLinkTarget] = {
    target.key: target
    for target in (
        PrivateLinkTarget(
            "Microsoft.Storage/storageAccounts",
            groups=(
                Group("blob", ("privatelink.blob.core.windows.net",), "blob.core.windows.net", "st-blob"),
                Group("file", ("privatelink.file.core.windows.net",), "file.core.windows.net", "st-file"),
                Group("dfs", ("privatelink.dfs.core.windows.net",), "dfs.core.windows.net"),
            ),
            api_version="2023-05-01",
            ip_rules=DEFAULT_IP_RULES,
            workspace_field="storage_account_id",
        ),
        PrivateLinkTarget(
            "Microsoft.KeyVault/vaults",
            groups=(Group("vault", ("privatelink.vaultcore.azure.net",), "vault.azure.net", "kv"),),
            api_version="2023-07-01",
            ip_rules=IpRules("properties.networkAcls.ipRules"),
            workspace_field="key_vault_id",
        ),
        PrivateLinkTarget(
            "Microsoft.ContainerRegistry/registries",
            groups=(Group("registry", ("privatelink.azurecr.io",), "azurecr.io", "cr"),),
            api_version="2023-07-01",
            ip_rules=IpRules("properties.networkRuleSet.ipRules", (("action", "Allow"),)),
            workspace_field="container_registry_id",
        ),
        PrivateLinkTarget(  # the workspace's own private link: API and notebooks
            "Microsoft.MachineLearningServices/workspaces",
            groups=(Group("amlworkspace", ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net")),),
        ),
    )
}

WORKSPACE = TARGETS["microsoft.machinelearningservices/workspaces"]
WORKSPACE_GROUP = WORKSPACE.groups[0]


def for_type(arm_type: str) -> PrivateLinkTarget | None:
    """The target of this ARM type (`Microsoft.Storage/storageAccounts`, any case), or None."""
    return TARGETS.get(arm_type.lower())


def in_namespace(namespace: str) -> tuple[PrivateLinkTarget, ...]:
    """The targets a resource provider (`Microsoft.Storage`, any case) serves."""
    return tuple(target for target in TARGETS.values() if target.namespace == namespace.lower())


def group_for(arm_type: str, group_id: str) -> Group | None:
    """Group `group_id` of the target of this ARM type, or None when either is not listed."""
    target = for_type(arm_type)
    return target.group(group_id) if target is not None else None


def zones_for(group_id: str) -> tuple[str, ...]:
    """The private DNS zones of a group id, whichever target has it (a group id names one zone set);
    KeyError when no target has it."""
    for target in TARGETS.values():
        group = target.group(group_id)
        if group is not None:
            return group.zones
    raise KeyError(group_id)


def dependencies() -> tuple[PrivateLinkTarget, ...]:
    """The targets that are a workspace's dependencies (storage, key vault, registry), in the order
    their endpoints are planned."""
    return tuple(target for target in TARGETS.values() if target.workspace_field is not None)


def dependency_endpoints() -> tuple[tuple[str, Group], ...]:
    """(workspace field, group) for each private endpoint a customer network gives the workspace's
    dependencies, in the order they are planned."""
    return tuple(
        (target.workspace_field, group)
        for target in dependencies()
        if target.workspace_field is not None
        for group in target.groups
        if group.endpoint_suffix is not None
    )


def ip_rules_for(arm_type: str) -> IpRules:
    """Where a resource of this ARM type keeps its IP rules: its own target's, else its provider's
    (a provider keeps them in one place for all its types), else DEFAULT_IP_RULES."""
    target = for_type(arm_type)
    if target is not None and target.ip_rules is not None:
        return target.ip_rules
    namespace = arm_type.split("/", 1)[0]
    return next((t.ip_rules for t in in_namespace(namespace) if t.ip_rules is not None), DEFAULT_IP_RULES)


def generic_api_versions() -> dict[str, str]:
    """Provider namespace (lower-cased) -> the api-version for generic by-id calls, for the targets
    reached that way."""
    return {target.namespace: target.api_version for target in TARGETS.values() if target.api_version is not None}
