"""Two teams on one operator: team B tries every way the issue lists to reach team A's Azure
resources, each attempt ends Stalled with its reason, team B's resources are deleted, and team A's
resources come out unchanged, field by field, from emulator dumps taken before and after.

Admission is left off here on purpose (test_tenancy_admission.py shows the same manifests refused at
`kubectl apply`): this proves the operator's own check, the one that holds when admission is off.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from operatorharness import OperatorEnv, prepare_cluster, running_operator

from armemu import Emulator
from armemu.seed import PROVIDERS, SUBSCRIPTION
from kubeharness import ControlPlane
from kubeharness.fixtures import fresh_namespace

pytestmark = pytest.mark.integration
TEAM_B_RG = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-team-b"
LITWARE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-litware"
CONNECTIVITY = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-connectivity"
DLS = f"{PROVIDERS}/Microsoft.Storage/storageAccounts/dlslitware"
FOREIGN_ENDPOINT = (
    "/subscriptions/99999999-9999-9999-9999-999999999999/resourceGroups/evil/providers/"
    "Microsoft.Network/privateEndpoints/mlw-litware-internet-dls"
)
TEAM_A = ("01-managed-internet-outbound.yaml", "03-customer-vnet-nat.yaml", "04-customer-vnet-hub-firewall.yaml")
B_USER = "developer@team-b"
EDITOR_ROLE = Path(__file__).resolve().parents[2] / "deploy" / "rbac" / "workspace-editor.yaml"


def _policy(team_a: str) -> dict[str, Any]:
    return {
        "apiVersion": "secureml.io/v1alpha1",
        "kind": "SecureMLTenancyPolicy",
        "metadata": {"name": "default"},
        "spec": {
            "tenants": [
                {
                    "name": "team-a",
                    "namespaces": [team_a],
                    "subscriptions": [SUBSCRIPTION],
                    "resourceGroups": [f"{SUBSCRIPTION}/rg-litware"],
                    "resourceIdPrefixes": [CONNECTIVITY],
                },
                {
                    "name": "team-b",
                    "namespaceSelector": {"matchLabels": {"secureml.io/tenant": "team-b"}},
                    "subscriptions": [SUBSCRIPTION],
                    "resourceGroups": [f"{SUBSCRIPTION}/rg-team-b"],
                    "requireCredentialRef": True,
                },
            ]
        },
    }


@pytest.fixture
def teams(
    kube: ControlPlane, arm_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[OperatorEnv, OperatorEnv]]:
    with fresh_namespace(kube) as team_a, fresh_namespace(kube) as team_b:
        kube.kubectl("label", "namespace", team_b, "secureml.io/tenant=team-b")
        prepare_cluster(kube, arm_emulator, team_b)
        kube.kubectl("apply", "-f", "-", input=json.dumps(_policy(team_a)))
        # Team B's developers get the editor role the security guide recommends: no status.
        kube.kubectl("apply", "-f", str(EDITOR_ROLE))
        binding = ["rolebinding", "smlw-editor", "-n", team_b, "--clusterrole=secureml-workspace-editor"]
        kube.kubectl("create", *binding, f"--user={B_USER}")
        scope = ["--standalone", "--namespace", team_a, "--namespace", team_b]
        try:
            with running_operator(kube, arm_emulator, team_a, monkeypatch, scope=scope) as a:
                yield a, OperatorEnv(kube, arm_emulator, team_b)
        finally:
            kube.kubectl("delete", "securemltenancypolicy", "default", "--ignore-not-found")


def _comparable(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Team A's resources (everything outside team B's resource group), minus what ARM changes on
    every write (etags) and the emulator's bookkeeping."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "etag" and not k.startswith("_")}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    return {r["id"].lower(): clean(r["body"]) for r in resources if not r["id"].lower().startswith(TEAM_B_RG.lower())}


def _for_team_b(operator: OperatorEnv, example: str, name: str) -> dict[str, Any]:
    manifest = operator.manifest(example)
    moved: dict[str, Any] = yaml.safe_load(yaml.safe_dump(manifest).replace(LITWARE, TEAM_B_RG))
    moved["metadata"]["name"] = name
    moved["spec"]["azure"]["resourceGroup"] = "rg-team-b"
    moved["spec"]["deletionPolicy"] = "Delete"
    return moved


def _attacks(b: OperatorEnv) -> dict[str, dict[str, Any]]:
    """Each attempt of team B, as the manifest that tries it."""
    same_workspace = b.manifest("01-managed-internet-outbound.yaml", deletionPolicy="Delete")
    same_workspace["metadata"]["name"] = "b-same-workspace"

    same_vnet = _for_team_b(b, "03-customer-vnet-nat.yaml", "b-same-vnet")
    network = same_vnet["spec"]["outbound"]["customerNetwork"]
    network["virtualNetwork"] = {"existingId": f"{PROVIDERS}/Microsoft.Network/virtualNetworks/vnet-litware"}
    network["allowlistEgressOn"] = []

    storage_allowlist = _for_team_b(b, "03-customer-vnet-nat.yaml", "b-storage-allowlist")
    storage_allowlist["spec"]["outbound"]["customerNetwork"]["allowlistEgressOn"] = [DLS]

    approval = _for_team_b(b, "01-managed-internet-outbound.yaml", "b-auto-approval")
    rules = approval["spec"]["outbound"]["managedNetwork"]["rules"]
    rules[0]["privateEndpoint"]["serviceResourceId"] = DLS

    hub = _for_team_b(b, "04-customer-vnet-hub-firewall.yaml", "b-connectivity-hub")  # the hub A may use
    return {
        "b-same-workspace": same_workspace,
        "b-same-vnet": same_vnet,
        "b-storage-allowlist": storage_allowlist,
        "b-auto-approval": approval,
        "b-connectivity-hub": hub,
    }


def test_team_b_cannot_reach_team_a(teams: tuple[OperatorEnv, OperatorEnv]) -> None:
    a, b = teams
    emulator = a.arm
    # Someone in another tenant asks for a connection to team A's data lake, under a name that
    # contains team A's workspace name: auto-approval must leave it Pending.
    emulator.seed(
        [
            {
                "id": f"{DLS}/privateEndpointConnections/foreign",
                "body": {
                    "properties": {
                        "privateEndpoint": {"id": FOREIGN_ENDPOINT},
                        "privateLinkServiceConnectionState": {"status": "Pending", "description": "let me in"},
                        "groupIds": ["dfs"],
                    }
                },
            }
        ]
    )
    for example in TEAM_A:
        a.apply(a.manifest(example, drift={"mode": "Enforce", "interval": "10s"}))
    names = {}
    for example in TEAM_A:
        body = a.manifest(example)
        names[example] = body["spec"]["workspace"]["name"]
        a.wait_ready(body["metadata"]["name"], timeout=120)
    foreign = a.arm_resource("/privateEndpointConnections/foreign")
    assert foreign is not None
    assert foreign["properties"]["privateLinkServiceConnectionState"]["status"] == "Pending"
    states = [
        r["body"]["properties"]["privateLinkServiceConnectionState"]["status"]
        for r in emulator.resources()
        if r["id"].lower().startswith(f"{DLS}/privateEndpointConnections/".lower())
    ]
    assert sorted(states) == ["Approved", "Pending"], "team A's own connection approved, the foreign one not"
    before = _comparable(emulator.resources())

    emulator.clear_requests()
    attacks = _attacks(b)
    for manifest in attacks.values():
        b.apply(manifest)
    for name in attacks:
        b.wait_for(f"{name} Stalled", lambda name=name: b.condition(name, "Stalled").get("status") == "True")
        condition = b.condition(name, "Stalled")
        assert condition["reason"] == "NotPermitted", (name, condition)
        assert a.namespace not in condition["message"], "never name another team's namespace"
    missing_credentials = _for_team_b(b, "06-selected-ips.yaml", "b-operator-identity")
    del missing_credentials["spec"]["azure"]["credentialRef"]
    b.apply(missing_credentials)
    b.wait_for("Stalled", lambda: b.condition("b-operator-identity", "Stalled").get("status") == "True")
    assert "credentialRef" in b.condition("b-operator-identity", "Stalled")["message"]

    # Forged tags: team A's workspace relabelled as team B's.
    workspace = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces/{names[TEAM_A[0]]}"
    victim = b.get("b-same-workspace")
    forged = {
        **a.arm_resource(workspace)["tags"],
        "secureml.io-uid": victim["metadata"]["uid"],
        "secureml.io-namespace": b.namespace,
    }
    emulator.rest("PATCH", workspace, {"tags": forged})

    # Forged status: team B's developers cannot write it; written anyway (an admin's mistake), a
    # ledger entry outside team B's reach is left alone at deletion.
    entry = {"id": workspace, "type": "Microsoft.MachineLearningServices/workspaces", "origin": "Created"}
    status_patch = json.dumps({"status": {"ledger": [entry]}})
    refused = b.kube.kubectl(
        "patch", "smlw", "b-same-workspace", "-n", b.namespace, "--subresource=status", "--type=merge",
        "-p", status_patch, "--as", B_USER, check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower(), refused.stderr
    b.kube.kubectl(
        "patch", "smlw", "b-same-workspace", "-n", b.namespace, "--subresource=status", "--type=merge", "-p",
        status_patch,
    )  # fmt: skip

    for name in [*attacks, "b-operator-identity"]:
        b.kube.kubectl("delete", "smlw", name, "-n", b.namespace, "--timeout=90s")
    left_alone = [e for e in b.events("b-same-workspace") if e["reason"] == "NotPermitted"]
    assert any("left alone" in e["message"] for e in left_alone)
    # The only writes since team B started: team A putting its own tags back on its workspace.
    writes = [r for r in emulator.requests() if r["method"] != "GET" and r.get("caller") == "client"]
    others = [(w["method"], w["path"]) for w in writes if w["path"].lower() != workspace.lower()]
    assert others == []
    assert all(set(w.get("body") or {}) == {"tags"} for w in writes), writes

    # Team A's next sweep puts its ownership tags back; then nothing of team A's differs.
    a.wait_for(
        "team A's tags restored",
        lambda: a.arm_resource(workspace)["tags"]["secureml.io-namespace"] == a.namespace,
        timeout=30,
    )
    after = _comparable(emulator.resources())
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    assert changed == set(), {key: (before.get(key), after.get(key)) for key in sorted(changed)}
