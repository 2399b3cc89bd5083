"""Ownership on a real API server and the emulator: the ledger decides what is ours, never a tag.

Adoption is explicit, two resources racing for one workspace end with exactly one owner, and a
create whose answer is lost to a crash is recognised after a restart (no duplicate, no orphan).
"""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest
from operatorharness import OperatorEnv

from armemu.seed import PROVIDERS

pytestmark = pytest.mark.integration
WORKSPACES = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces"
IPS = "litware-selected-ips"
UNOWNED = {
    "location": "brazilsouth",
    "tags": {"team": "data"},
    "properties": {
        "storageAccount": f"{PROVIDERS}/Microsoft.Storage/storageAccounts/stlitware",
        "keyVault": f"{PROVIDERS}/Microsoft.KeyVault/vaults/kv-litware",
        "publicNetworkAccess": "Enabled",
    },
}


def _client_writes(operator: OperatorEnv) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in operator.writes() if r.get("caller") == "client"]


def _stalled(operator: OperatorEnv, name: str) -> dict[str, Any]:
    operator.wait_for(f"{name} Stalled", lambda: operator.condition(name, "Stalled").get("status") == "True")
    return operator.condition(name, "Stalled")


def _ledger(operator: OperatorEnv, name: str) -> list[dict[str, Any]]:
    return list((operator.get(name).get("status") or {}).get("ledger") or [])


def _delete(operator: OperatorEnv, *names: str) -> None:
    operator.kube.kubectl("delete", "smlw", *names, "-n", operator.namespace, "--timeout=90s")


def test_an_unowned_workspace_is_refused_by_default_and_left_as_it_was(operator: OperatorEnv) -> None:
    workspace = f"{WORKSPACES}/mlw-litware-ips"
    operator.az_rest("PUT", workspace, UNOWNED)
    before = operator.arm_resource(workspace)
    operator.arm.clear_requests()
    operator.apply(operator.manifest("06-selected-ips.yaml", deletionPolicy="Delete"))
    condition = _stalled(operator, IPS)
    assert condition["reason"] == "ExistsUnowned"
    assert "spec.adoption: Adopt" in condition["message"]
    assert _client_writes(operator) == []
    assert _ledger(operator, IPS) == []
    _delete(operator, IPS)
    assert operator.arm_resource(workspace) == before, "refused, then deleted: the workspace is untouched"
    assert _client_writes(operator) == []


def test_an_adopted_workspace_is_managed_and_never_deleted(operator: OperatorEnv) -> None:
    workspace = f"{WORKSPACES}/mlw-litware-ips"
    operator.az_rest("PUT", workspace, UNOWNED)
    operator.apply(operator.manifest("06-selected-ips.yaml", deletionPolicy="Delete", adoption="Adopt"))
    operator.wait_ready(IPS)
    adopted = operator.arm_resource(workspace)
    assert adopted is not None
    assert adopted["tags"]["team"] == "data" and adopted["tags"]["secureml.io-adopted"] == "true"
    assert adopted["properties"]["publicNetworkAccess"] == "Enabled"
    assert adopted["properties"]["networkAcls"]["defaultAction"] == "Deny"
    entry = next(e for e in _ledger(operator, IPS) if e["id"].lower() == workspace.lower())
    assert entry["origin"] == "Adopted"
    assert "properties.networkAcls.defaultAction" in entry["changed"]

    # A forged tag cannot turn an adopted workspace into one we created.
    tags = {**adopted["tags"], "secureml.io-adopted": "false"}
    operator.az_rest("PATCH", workspace, {"tags": tags})
    _delete(operator, IPS)
    left = operator.arm_resource(workspace)
    assert left is not None, "an adopted workspace is not ours to delete"
    assert left["tags"] == {"team": "data"}, "our ownership tags come off; the owner's stay"


def test_a_workspace_owned_by_another_resource_stalls_without_naming_it(operator: OperatorEnv) -> None:
    operator.apply(operator.manifest("06-selected-ips.yaml"))
    owner = operator.wait_ready(IPS)
    twin = operator.manifest("06-selected-ips.yaml", deletionPolicy="Delete")
    twin["metadata"]["name"] = "litware-twin"
    operator.arm.clear_requests()
    operator.apply(twin)
    condition = _stalled(operator, "litware-twin")
    assert condition["reason"] == "OwnedByAnotherResource"
    for secret in (IPS, owner["metadata"]["uid"], operator.namespace):
        assert secret not in condition["message"]
    assert _client_writes(operator) == []
    _delete(operator, "litware-twin")
    assert _client_writes(operator) == [], "the stalled twin owned nothing: its deletion changes nothing"
    assert operator.arm_resource(f"{WORKSPACES}/mlw-litware-ips") is not None


RACE_ROUNDS = 30


def test_two_resources_applied_at_once_for_one_workspace_have_exactly_one_owner(operator: OperatorEnv) -> None:
    for round_number in range(RACE_ROUNDS):
        workspace = f"mlw-race-{round_number}"
        names = [f"race-{round_number}-a", f"race-{round_number}-b"]
        manifests = []
        for name in names:
            manifest = operator.manifest("06-selected-ips.yaml", deletionPolicy="Delete")
            manifest["metadata"]["name"] = name
            manifest["spec"]["workspace"]["name"] = workspace
            manifests.append(manifest)
        operator.apply({"apiVersion": "v1", "kind": "List", "items": manifests})  # one request, both at once

        def settled(names: list[str] = names) -> dict[str, str] | None:
            verdicts = {}
            for name in names:
                ready, stalled = operator.condition(name, "Ready"), operator.condition(name, "Stalled")
                if ready.get("status") == "True":
                    verdicts[name] = "owner"
                elif stalled.get("status") == "True":
                    verdicts[name] = stalled["reason"]
            return verdicts if len(verdicts) == len(names) else None

        verdicts = operator.wait_for(f"round {round_number} settled", settled, timeout=60)
        assert sorted(verdicts.values()) == ["OwnedByAnotherResource", "owner"], (round_number, verdicts)
        owner = next(name for name, verdict in verdicts.items() if verdict == "owner")
        loser = next(name for name in names if name != owner)
        created = [r for r in operator.arm.resources() if r["id"].lower().endswith(f"/workspaces/{workspace}")]
        assert len(created) == 1
        assert created[0]["body"]["tags"]["secureml.io-uid"] == operator.get(owner)["metadata"]["uid"]
        assert _ledger(operator, loser) == []
        _delete(operator, *names)
        left = [r["id"] for r in operator.arm.resources() if workspace in r["id"].lower()]
        assert left == [], (round_number, left)


def test_a_create_lost_to_a_crash_is_recognised_after_restart(operator_process: tuple[OperatorEnv, Any]) -> None:
    operator, start = operator_process
    workspace = f"{WORKSPACES}/mlw-litware-ips"
    # The workspace PUT is answered at once; the poll of its operation hangs, so the operator is
    # killed after the create happened in Azure and before the walk could record it as done.
    operator.arm.fault(method="GET", path="/operationResults/", status=200, latencyMs=12_000, count=1)
    first = start()
    operator.apply(operator.manifest("06-selected-ips.yaml", deletionPolicy="Delete"))
    operator.wait_for("the workspace created", lambda: operator.arm_resource(workspace) is not None, timeout=60)
    pending = operator.wait_for("the create announced", lambda: _ledger(operator, IPS) or None, timeout=30)
    assert [(e["id"], e["origin"], e.get("pending")) for e in pending] == [(workspace, "Created", True)]
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert operator.condition(IPS, "Ready").get("status") != "True"

    operator.arm.clear_faults()
    start()
    operator.wait_ready(IPS, timeout=90)
    creates = [r for r in operator.writes() if r["method"] == "PUT" and r["path"].lower() == workspace.lower()]
    assert len(creates) == 1, "recognised, not created again"
    entry = next(e for e in _ledger(operator, IPS) if e["id"] == workspace)
    assert entry["origin"] == "Created" and "pending" not in entry
    assert entry["identity"] == operator.arm_resource(workspace)["properties"]["workspaceId"]

    _delete(operator, IPS)
    assert operator.arm_resource(workspace) is None, "recorded after the restart, so deleted with the resource"
    assert json.dumps(operator.arm.resources()).count("mlw-litware-ips") == 0


CLIENTS_VNET = f"{PROVIDERS}/Microsoft.Network/virtualNetworks/vnet-litware-clients"


def _in_existing_vnet(operator: OperatorEnv, **changes: Any) -> dict[str, Any]:
    """Example 4 in the clients VNet, whose subnet `private-endpoints` (10.2.1.0/24) is not ours."""
    manifest = operator.manifest("04-customer-vnet-hub-firewall.yaml", deletionPolicy="Delete", **changes)
    network = manifest["spec"]["outbound"]["customerNetwork"]
    network["virtualNetwork"] = {"existingId": CLIENTS_VNET}
    network["subnets"] = {
        "training": {"addressPrefix": "10.2.40.0/24"},
        "scoring": {"addressPrefix": "10.2.90.0/24"},
        "privateEndpoints": {"addressPrefix": "10.2.1.0/24"},
    }
    network["egress"]["firewall"].update(peering=False, peerFromHub=False)
    return manifest


def test_an_existing_subnet_of_our_name_is_refused_or_adopted_and_never_deleted(operator: OperatorEnv) -> None:
    subnet = f"{CLIENTS_VNET}/subnets/private-endpoints"
    operator.arm.clear_requests()
    operator.apply(_in_existing_vnet(operator))
    condition = _stalled(operator, "litware-hub")
    assert condition["reason"] == "ExistsUnowned" and subnet in condition["message"]
    assert _client_writes(operator) == []

    operator.apply(_in_existing_vnet(operator, adoption="Adopt"))
    operator.wait_ready("litware-hub", timeout=90)
    origins = {
        e["id"].rsplit("/", 1)[-1]: e["origin"] for e in _ledger(operator, "litware-hub") if "/subnets/" in e["id"]
    }
    assert origins == {"private-endpoints": "Adopted", "training": "Created", "scoring": "Created"}
    _delete(operator, "litware-hub")
    assert operator.arm_resource(subnet) is not None, "an adopted subnet stays"
    assert operator.arm_resource(f"{CLIENTS_VNET}/subnets/training") is None
    assert operator.arm_resource(CLIENTS_VNET) is not None
