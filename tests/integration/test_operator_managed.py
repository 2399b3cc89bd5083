"""The operator end to end on managed-network examples: real API server, real SDKs, the ARM emulator."""

from __future__ import annotations

import pytest
from operatorharness import OperatorEnv

pytestmark = pytest.mark.integration
WS = "/providers/Microsoft.MachineLearningServices/workspaces/"


def test_internet_outbound_example_reaches_ready(operator: OperatorEnv) -> None:
    manifest = operator.manifest("01-managed-internet-outbound.yaml")
    operator.apply(manifest)
    body = operator.wait_ready("litware-internet")
    workspace = operator.arm_resource(f"{WS}mlw-litware-internet")
    assert workspace is not None
    assert workspace["properties"]["managedNetwork"]["isolationMode"] == "AllowInternetOutbound"
    assert workspace["tags"]["secureml.io-name"] == "litware-internet"
    rule = operator.arm_resource(f"{WS}mlw-litware-internet/outboundRules/datalake")
    assert rule is not None and rule["properties"]["destination"]["subresourceTarget"] == "dfs"
    connection = operator.arm_resource("dlslitware/privateEndpointConnections/mlw-litware-internet.datalake")
    assert connection is not None
    assert connection["properties"]["privateLinkServiceConnectionState"]["status"] == "Approved"
    status = body["status"]
    assert status["workspace"]["managedNetworkStatus"] == "Active"
    assert status["workspace"]["sparkReady"] is True
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["PrivateEndpointsApproved"] == "True"
    assert conditions["Stalled"] == "False" and conditions["Reconciling"] == "False"
    reasons = {event["reason"] for event in operator.events("litware-internet")}
    assert {"AzureCreate", "AzurePost", "AzureUpdate"} <= reasons


SUB = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-litware/providers"
SEEDED = 11  # resource group + the rg-litware resources armemu.seed creates


def created_ids(operator: OperatorEnv) -> set[str]:
    """Every resource the seed did not put there, but the connections Azure itself makes on a
    workspace for each private endpoint to it (checked apart)."""
    from armemu.seed import DEPENDENCIES, LITWARE

    seeded = {LITWARE.lower(), *(resource_id.lower() for resource_id, _ in DEPENDENCIES)}
    return {
        r["id"].split("/providers/", 1)[-1]
        for r in operator.arm.resources()
        if r["id"].lower() not in seeded and "/privateEndpointConnections/" not in r["id"]
    }


def test_approved_outbound_example_creates_exactly_its_resources(operator: OperatorEnv) -> None:
    operator.apply(operator.manifest("02-managed-approved-outbound.yaml"))
    body = operator.wait_ready("litware-approved")
    ws = "Microsoft.MachineLearningServices/workspaces/mlw-litware-approved"
    presets = [
        f"{ws}/outboundRules/pythonpackag-{slug}"
        for slug in (
            "anaconda-com",
            "any-anaconda-com",
            "any-anaconda-org",
            "pypi-org",
            "any-pythonhosted-org",
            "pytorch-org",
            "any-pytorch-org",
            "any-tensorflow-org",
        )
    ]
    required = [
        f"{ws}/outboundRules/{name}"
        for name in (
            "__SYS_PE_keyvault",
            "__SYS_PE_storage_blob",
            "__SYS_ST_AzureActiveDirectory",
            "__SYS_ST_AzureMachineLearning",
        )
    ]
    zones = ["privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"]
    expected = {
        ws,
        *(f"{ws}/outboundRules/{name}" for name in ("huggingface", "storage-region", "monitor")),
        *presets,
        *required,
        "Microsoft.Network/privateEndpoints/pe-mlw-litware-approved",
        "Microsoft.Network/privateEndpoints/pe-mlw-litware-approved/privateDnsZoneGroups/default",
        *(f"Microsoft.Network/privateDnsZones/{zone}" for zone in zones),
        *(f"Microsoft.Network/privateDnsZones/{zone}/virtualNetworkLinks/vnet-litware-clients-link" for zone in zones),
        *(f"Microsoft.Network/privateDnsZones/{zone}/A/pe-mlw-litware-approved" for zone in zones),
    }
    assert created_ids(operator) == expected
    status = body["status"]
    assert status["privateEndpoint"]["ipAddress"] == "10.2.1.4"
    assert status["isolation"] == "AllowOnlyApprovedOutbound"
    workspace = operator.arm_resource(ws)
    assert workspace is not None and workspace["properties"]["publicNetworkAccess"] == "Disabled"
    answered = operator.az_rest("GET", status["workspace"]["id"])  # as Azure answers it, connections listed
    connections = answered["properties"]["privateEndpointConnections"]
    assert [c["properties"]["privateEndpoint"]["id"].rsplit("/", 1)[-1] for c in connections] == [
        "pe-mlw-litware-approved"
    ]
    assert workspace["properties"]["managedNetwork"]["firewallSku"] == "Standard"


def test_selected_ips_example_sets_the_allowlist(operator: OperatorEnv) -> None:
    operator.apply(operator.manifest("06-selected-ips.yaml"))
    operator.wait_ready("litware-selected-ips")
    workspace = operator.arm_resource("workspaces/mlw-litware-ips")
    assert workspace is not None
    acls = workspace["properties"]["networkAcls"]
    assert acls["defaultAction"] == "Deny"
    assert sorted(rule["value"] for rule in acls["ipRules"]) == ["198.51.100.7", "203.0.113.0/24"]
    assert created_ids(operator) == {"Microsoft.MachineLearningServices/workspaces/mlw-litware-ips"}


def test_fully_private_example_and_retain_policy(operator: OperatorEnv) -> None:
    operator.apply(operator.manifest("05-fully-private.yaml"))
    operator.wait_ready("litware-private")
    before = created_ids(operator)
    assert "Microsoft.Network/privateEndpoints/pe-mlw-litware-private" in before
    operator.kube.kubectl("delete", "smlw", "litware-private", "-n", operator.namespace, "--timeout=60s")
    assert created_ids(operator) == before, "deletionPolicy Retain must leave Azure untouched"


def test_delete_policy_removes_only_what_the_operator_created(operator: OperatorEnv) -> None:
    manifest = operator.manifest("02-managed-approved-outbound.yaml", deletionPolicy="Delete")
    operator.apply(manifest)
    operator.wait_ready("litware-approved")
    operator.kube.kubectl("delete", "smlw", "litware-approved", "-n", operator.namespace, "--timeout=60s")
    # The private DNS zones and their links to the (seeded) clients VNet were created by the operator
    # and hold no one else's record: they go too. Everything seeded before the operator stays.
    assert created_ids(operator) == set()
    assert operator.arm_resource("storageAccounts/stlitware") is not None


def test_registry_that_is_not_premium_stalls_without_writes(operator: OperatorEnv) -> None:
    registry = f"{SUB}/Microsoft.ContainerRegistry/registries/crlitware"
    operator.az_rest("PATCH", registry, {"sku": {"name": "Basic"}}, api_version="2023-07-01")
    operator.arm.clear_requests()
    operator.apply(operator.manifest("02-managed-approved-outbound.yaml"))
    stalled = operator.wait_for(
        "Stalled", lambda: operator.condition("litware-approved", "Stalled").get("status") == "True"
    )
    assert stalled
    condition = operator.condition("litware-approved", "Stalled")
    assert condition["reason"] == "RegistryNotPremium"
    assert "must be Premium" in condition["message"]
    assert operator.writes() == [], [(w["method"], w["path"].rsplit("/providers/", 1)[-1]) for w in operator.writes()]


def test_additive_policy_keeps_and_reports_extra_rules(operator: OperatorEnv) -> None:
    workspace = f"{SUB}/Microsoft.MachineLearningServices/workspaces/mlw-litware-approved"
    manifest = operator.manifest("02-managed-approved-outbound.yaml")
    manifest["spec"]["outbound"]["managedNetwork"]["rulesPolicy"] = "Additive"
    operator.apply(manifest)
    operator.wait_ready("litware-approved")
    operator.az_rest(
        "PUT", f"{workspace}/outboundRules/teams-extra", {"properties": {"type": "FQDN", "destination": "example.org"}}
    )
    manifest["spec"]["drift"] = {"mode": "Enforce", "interval": "10s"}
    operator.apply(manifest)  # a spec change (the drift interval), then sweeps every 10s
    reported = operator.wait_for(
        "the extra rule reported",
        lambda: (
            [i for i in operator.drift("litware-approved").get("items", []) if i["resource"].endswith("teams-extra")]
            or None
        ),
        timeout=30,
    )
    assert reported[0]["action"] == "Reported"
    assert operator.arm_resource(f"{workspace}/outboundRules/teams-extra") is not None
    assert operator.condition("litware-approved", "InSync")["reason"] == "InSyncWithExtras"


def test_refused_preflight_read_stalls_and_a_failing_one_is_retried(operator: OperatorEnv) -> None:
    registry = "/registries/crlitware$"
    operator.arm.fault(method="GET", path=registry, status=403, count=1, code="AuthorizationFailed")
    operator.apply(operator.manifest("02-managed-approved-outbound.yaml"))
    operator.wait_for("Stalled", lambda: operator.condition("litware-approved", "Stalled").get("status") == "True")
    assert operator.condition("litware-approved", "Stalled")["reason"] == "AuthorizationFailed"
    assert operator.writes() == []

    # Azure fails the same read for a while: Reconciling with the reason, then Ready once it answers.
    operator.arm.fault(method="GET", path=registry, status=503, count=4, code="ServiceUnavailable")
    manifest = operator.manifest("02-managed-approved-outbound.yaml", drift={"mode": "Enforce", "interval": "30s"})
    operator.apply(manifest)  # a new generation: the stall is cleared by a spec change
    reasons = operator.wait_for(
        "a retry", lambda: operator.condition("litware-approved", "Reconciling").get("reason") == "AzureUnavailable"
    )
    assert reasons
    operator.wait_ready("litware-approved", timeout=90)
