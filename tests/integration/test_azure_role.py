"""deploy/azure/custom-role.json is exactly what the operator needs: each example (and variants that
reach the operator's other write paths) is driven to Ready, through drift corrections that delete,
and through deletion with deletionPolicy Delete; every request the emulator logged must be granted,
so must every linked-access check its body triggers, and every entry of the role must be used."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from azurerole import REAL_AZURE_ONLY, Role, action_for, linked_actions, load_role, matches
from operatorharness import EXTRA_INBOUND, Manifest, OperatorEnv

from armemu.app import OUT_OF_BAND
from armemu.seed import PROVIDERS

pytestmark = pytest.mark.integration
INTERVAL = 10
NET = f"{PROVIDERS}/Microsoft.Network"
KEY_VAULT = f"{PROVIDERS}/Microsoft.KeyVault/vaults/kv-litware"
REGISTRY = f"{PROVIDERS}/Microsoft.ContainerRegistry/registries/crlitware"
IDENTITY = f"{PROVIDERS}/Microsoft.ManagedIdentity/userAssignedIdentities/id-litware"
Tamper = tuple[str, str, dict[str, Any]]  # PUT path body: an extra child the Authoritative policy removes


def _approve_key_vault_and_registry_too(manifest: Manifest) -> None:
    """PrivateEndpoint rules to every target type the operator approves connections on."""
    rules = manifest["spec"]["outbound"]["managedNetwork"]["rules"]
    for name, target, group in (("vault", KEY_VAULT, "vault"), ("registry", REGISTRY, "registry")):
        destination = {"serviceResourceId": target, "subresourceTarget": group, "autoApprove": True}
        rules.append({"name": name, "privateEndpoint": destination})


def _allowlist_key_vault_and_registry_too(manifest: Manifest) -> None:
    """allowlistEgressOn every target type the operator can add egress IPs to."""
    manifest["spec"]["outbound"]["customerNetwork"]["allowlistEgressOn"] += [KEY_VAULT, REGISTRY]


def _user_assigned_identity(manifest: Manifest) -> None:
    manifest["spec"]["workspace"]["identity"] = {"type": "UserAssigned", "userAssignedIdentityId": IDENTITY}


def _existing_vnet(manifest: Manifest) -> None:
    """Subnets and the hub peering in a VNet the platform already has: the operator deletes exactly
    those one by one (its own VNet would take them along)."""
    network = manifest["spec"]["outbound"]["customerNetwork"]
    network["virtualNetwork"] = {"existingId": f"{NET}/virtualNetworks/vnet-litware-clients"}
    network["subnets"] = {
        "training": {"addressPrefix": "10.2.40.0/24"},
        "scoring": {"addressPrefix": "10.2.90.0/24"},
        "privateEndpoints": {"addressPrefix": "10.2.20.0/24", "name": "ml-private-endpoints"},
    }


@dataclass(frozen=True)
class Scenario:
    example: str
    name: str  # metadata.name in the example
    change: Callable[[Manifest], None] | None = None
    tamper: tuple[Tamper, ...] = ()
    variant: str = ""

    @property
    def id(self) -> str:
        return self.example.split("-")[0] + (f"-{self.variant}" if self.variant else "")


WS_APPROVED = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces/mlw-litware-approved"
SCENARIOS = [
    Scenario("01-managed-internet-outbound.yaml", "litware-internet", _approve_key_vault_and_registry_too),
    Scenario(
        "02-managed-approved-outbound.yaml",
        "litware-approved",
        tamper=(
            (f"{WS_APPROVED}/outboundRules/exfil", {"properties": {"type": "FQDN", "destination": "example.com"}}),
        ),
    ),
    Scenario("03-customer-vnet-nat.yaml", "litware-nat", _allowlist_key_vault_and_registry_too),
    Scenario(
        "04-customer-vnet-hub-firewall.yaml",
        "litware-hub",
        tamper=(
            (f"{NET}/networkSecurityGroups/nsg-mlw-litware-hub-compute/securityRules/extra-ssh", EXTRA_INBOUND),
            (
                f"{NET}/routeTables/rt-mlw-litware-hub-compute/routes/extra",
                {"properties": {"addressPrefix": "10.9.0.0/16", "nextHopType": "None"}},
            ),
            (
                f"{NET}/serviceEndpointPolicies/sep-mlw-litware-hub-exfiltration/serviceEndpointPolicyDefinitions/extra",
                {
                    "properties": {
                        "service": "Microsoft.Storage",
                        "serviceResources": [f"{PROVIDERS}/Microsoft.Storage/storageAccounts/dlslitware"],
                    }
                },
            ),
        ),
    ),
    Scenario("04-customer-vnet-hub-firewall.yaml", "litware-hub", _existing_vnet, variant="existing-vnet"),
    Scenario("05-fully-private.yaml", "litware-private"),
    Scenario("06-selected-ips.yaml", "litware-selected-ips", _user_assigned_identity),
]


@dataclass
class Observed:
    """What one scenario made the operator do, as Azure RBAC sees it."""

    actions: dict[str, str] = field(default_factory=dict)  # action -> one request that needed it
    linked: dict[str, str] = field(default_factory=dict)  # linked action -> the write that needed it


@pytest.fixture(scope="module")
def observed() -> dict[str, Observed]:
    """Scenario id -> what it used; filled by the scenario tests, read by the exactness test."""
    return {}


def _drive(operator: OperatorEnv, scenario: Scenario) -> None:
    """Ready, then (with tampering) a drift correction that deletes, then deletion with Delete."""
    changes: dict[str, Any] = {"deletionPolicy": "Delete"}
    if scenario.tamper:
        changes["drift"] = {"mode": "Enforce", "interval": f"{INTERVAL}s"}
    manifest = operator.manifest(scenario.example, **changes)
    if scenario.change is not None:
        manifest = copy.deepcopy(manifest)
        scenario.change(manifest)
    operator.apply(manifest)
    operator.wait_ready(scenario.name)
    for path, body in scenario.tamper:
        operator.az_rest("PUT", path, body)
    for path, _ in scenario.tamper:
        operator.wait_for(f"{path} removed", lambda path=path: operator.arm_resource(path) is None, 3 * INTERVAL)
    operator.kube.kubectl("delete", "smlw", scenario.name, "-n", operator.namespace, "--timeout=120s")


def _operator_requests(operator: OperatorEnv) -> list[dict[str, Any]]:
    """The request log less the out-of-band changes this test made itself (with `az rest`)."""
    return [entry for entry in operator.arm.requests() if entry["caller"] != OUT_OF_BAND]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.id for scenario in SCENARIOS])
def test_every_request_is_granted(
    operator: OperatorEnv,
    observed: dict[str, Observed],
    scenario: Scenario,
) -> None:
    role = load_role()
    _drive(operator, scenario)
    seen = Observed()
    for entry in _operator_requests(operator):
        request = f"{entry['method']} {entry['path']}"
        seen.actions.setdefault(action_for(entry["method"], entry["path"]), request)
        for action in linked_actions(entry["method"], entry["path"], entry.get("body")):
            seen.linked.setdefault(action, request)
    missing = {action: why for action, why in seen.actions.items() if not role.grants(action)}
    assert missing == {}, f"{role.name} lacks actions the operator used: {missing}"
    missing_linked = {action: why for action, why in seen.linked.items() if not role.grants(action)}
    assert missing_linked == {}, f"{role.name} lacks linked-access actions the operator's writes need: {missing_linked}"
    observed[scenario.id] = seen


def _unused(role: Role, observed: dict[str, Observed]) -> list[str]:
    used = {action for seen in observed.values() for action in (*seen.actions, *seen.linked)}
    return [
        entry
        for entry in role.actions
        if entry not in REAL_AZURE_ONLY and not any(matches(action, entry) for action in used)
    ]


def test_role_holds_nothing_unused(observed: dict[str, Observed]) -> None:
    """Runs after the scenarios (file order): with all of them seen, every entry must be needed."""
    if set(observed) != {scenario.id for scenario in SCENARIOS}:
        pytest.skip("needs every scenario of this module in the same run")
    role = load_role()
    assert _unused(role, observed) == [], "the role grants actions no scenario used: remove them or cover them"
