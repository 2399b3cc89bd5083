"""`plan` against the emulator and a real API server: what applying each example would do, before
and after the operator applies it and after an out-of-band change; ownership and tenancy refusals;
errors; the `kubectl smlw` plugin. Every plan is proven read-only by the emulator's request log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from apicases import EXAMPLES
from operatorharness import CREDENTIAL_SECRET, OperatorEnv, prepare_cluster

from armemu import Emulator
from armemu.seed import LITWARE, PROVIDERS, SUBSCRIPTION
from kubeharness import ControlPlane
from secureml_operator import cli
from secureml_operator.engine.ledger import IP_RULE
from secureml_operator.engine.ownership import TAG_UID

pytestmark = pytest.mark.integration
EXAMPLE_NAMES = sorted(path.name for path in EXAMPLES.glob("*.yaml"))
WORKSPACES = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces"
Plan = dict[str, Any]
UNOWNED = {  # a workspace someone else made, with the name example 6 declares
    "location": "brazilsouth",
    "properties": {
        "storageAccount": f"{PROVIDERS}/Microsoft.Storage/storageAccounts/stlitware",
        "keyVault": f"{PROVIDERS}/Microsoft.KeyVault/vaults/kv-litware",
        "publicNetworkAccess": "Enabled",
    },
}


def _write(tmp_path: Path, manifest: dict[str, Any]) -> Path:
    path = tmp_path / f"{manifest['metadata']['name']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(manifest))
    return path


def _read_only(arm: Emulator, action: Callable[[], Any]) -> Any:
    """Run a plan; it must have read Azure and written nothing (the request log in its time window)."""
    started = time.time()
    result = action()
    ended = time.time()
    window = [r for r in arm.requests() if started <= r["time"] <= ended]
    assert [r for r in window if r["method"] == "GET"], "a plan reads Azure"
    writes = [f"{r['method']} {r['path']}" for r in window if r["method"] != "GET"]
    assert writes == [], f"plan wrote to Azure: {writes}"
    return result


def _plan(capsys: pytest.CaptureFixture[str], arm: Emulator, *args: str, reads: bool = True) -> tuple[int, str, str]:
    """`python -m secureml_operator plan ...` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = _read_only(arm, lambda: cli.main(["plan", *args])) if reads else cli.main(["plan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _plan_json(capsys: pytest.CaptureFixture[str], arm: Emulator, path: Path, namespace: str) -> tuple[int, Plan]:
    code, out, err = _plan(capsys, arm, "-f", str(path), "-n", namespace, "-o", "json")
    assert code in (0, 2), err
    plan: Plan = json.loads(out)
    assert plan["errors"] == [] and len(plan["workspaces"]) == 1
    return code, plan["workspaces"][0]


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_plan_lists_creates_then_nothing_then_exactly_the_drift(
    operator: OperatorEnv, example: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arm = operator.arm
    # Detect mode: the operator's own sweeps only read, so nothing corrects the drift made below.
    manifest = operator.manifest(example, drift={"mode": "Detect", "interval": "1h"})
    name, path = manifest["metadata"]["name"], _write(tmp_path, manifest)

    code, empty = _plan_json(capsys, arm, path, operator.namespace)
    assert code == 2 and empty["inCluster"] is False
    assert empty["refused"] == [] and empty["blocked"] == []
    creates = {c["resource"].lower() for c in empty["changes"] if c["action"] == "create"}
    before = {r["id"].lower() for r in arm.resources()}

    operator.apply(manifest)
    ledger = operator.wait_ready(name, timeout=120)["status"]["ledger"]
    appeared = {r["id"].lower() for r in arm.resources()} - before  # with what Azure adds itself
    assert creates <= appeared, f"planned but not created: {sorted(creates - appeared)}"
    created = {entry["id"].lower() for entry in ledger if entry["type"] != IP_RULE}  # what the operator created
    assert created == creates, f"created but not planned: {sorted(created - creates)}"

    code, applied = _plan_json(capsys, arm, path, operator.namespace)
    assert (code, applied["changes"], applied["refused"]) == (0, [], []), applied
    assert applied["inCluster"] is True

    workspace = f"{WORKSPACES}/{manifest['spec']['workspace']['name']}"
    live = operator.arm_resource(workspace)
    assert live is not None
    declared = live["properties"]["publicNetworkAccess"]  # selected IPs are Enabled, with network ACLs
    other = "Enabled" if declared == "Disabled" else "Disabled"
    arm.rest("PATCH", workspace, {"properties": {"publicNetworkAccess": other}})
    code, drifted = _plan_json(capsys, arm, path, operator.namespace)
    assert code == 2
    assert [(c["action"], c["resource"].lower(), c["field"], c["from"], c["to"]) for c in drifted["changes"]] == [
        ("change", workspace.lower(), "properties.publicNetworkAccess", other, declared)
    ]
    assert drifted["summary"] == {"create": 0, "change": 1, "remove": 0, "refused": 0}


@pytest.fixture
def cluster(kube: ControlPlane, arm_emulator: Emulator, namespace: str, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The CRDs and the credentials Secret in `namespace`, and plan's environment: no operator runs."""
    prepare_cluster(kube, arm_emulator, namespace)
    for key, value in {**arm_emulator.env, "KUBECONFIG": str(kube.kubeconfig)}.items():
        monkeypatch.setenv(key, value)
    return arm_emulator


def _manifest(example: str, **spec_changes: Any) -> dict[str, Any]:
    manifest = yaml.safe_load((EXAMPLES / example).read_text())
    manifest["spec"]["azure"]["credentialRef"] = {"name": CREDENTIAL_SECRET}
    manifest["spec"].update(spec_changes)
    return dict(manifest)


def test_plan_reports_what_the_ownership_rules_would_refuse(
    cluster: Emulator, namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = f"{WORKSPACES}/mlw-litware-ips"
    cluster.rest("PUT", workspace, UNOWNED)
    refused = _write(tmp_path, _manifest("06-selected-ips.yaml"))
    code, plan = _plan_json(capsys, cluster, refused, namespace)
    assert code == 2 and plan["changes"] == []
    assert [(r["reason"], r["resource"].lower()) for r in plan["refused"]] == [("ExistsUnowned", workspace.lower())]
    code, out, _ = _plan(capsys, cluster, "-f", str(refused), "-n", namespace)
    assert code == 2
    assert f"\n  ! refused: ExistsUnowned: {workspace} already exists and was not created" in out
    assert out.endswith("Plan: 0 to create, 0 to change, 0 to remove, 1 refused.\n")

    adopted = tmp_path / "adopted.yaml"
    adopted.write_text(yaml.safe_dump(_manifest("06-selected-ips.yaml", adoption="Adopt")))
    code, plan = _plan_json(capsys, cluster, adopted, namespace)
    assert code == 2 and plan["refused"] == []
    changes = {(c["action"], c["resource"].lower(), c["field"], c["to"]) for c in plan["changes"]}
    assert ("change", workspace.lower(), "properties.networkAcls.defaultAction", "Deny") in changes
    assert ("change", workspace.lower(), "tags", "adopted by this resource") in changes
    assert {action for action, *_ in changes} == {"change"}

    # Another SecureMLWorkspace's mark: off limits, adoption or not.
    cluster.rest("PUT", workspace, {**UNOWNED, "tags": {TAG_UID: "0d5e1c2a-another-resource"}})
    code, plan = _plan_json(capsys, cluster, adopted, namespace)
    assert code == 2 and plan["changes"] == []
    assert [r["reason"] for r in plan["refused"]] == ["OwnedByAnotherResource"]


def test_plan_reports_a_namespace_the_tenancy_policy_leaves_out(
    cluster: Emulator, kube: ControlPlane, namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = {
        "apiVersion": "secureml.io/v1alpha1",
        "kind": "SecureMLTenancyPolicy",
        "metadata": {"name": "default"},
        "spec": {"tenants": [{"name": "others", "namespaces": ["someone-else"], "subscriptions": [SUBSCRIPTION]}]},
    }
    kube.kubectl("apply", "-f", "-", input=json.dumps(policy))
    try:
        path = _write(tmp_path, _manifest("06-selected-ips.yaml"))
        started = time.time()
        code, out, _ = _plan(capsys, cluster, "-f", str(path), "-n", namespace, "-o", "json", reads=False)
        assert [r for r in cluster.requests() if r["time"] >= started] == [], "refused before any Azure call"
    finally:
        kube.kubectl("delete", "securemltenancypolicy", "default", "--ignore-not-found")
    assert code == 2
    (refusal,) = json.loads(out)["workspaces"][0]["refused"]
    assert refusal["reason"] == "NotPermitted" and f"namespace {namespace} may not use" in refusal["message"]


def test_plan_errors_are_one_line_and_exit_1(
    cluster: Emulator, namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    invalid = _manifest("06-selected-ips.yaml")
    invalid["spec"]["inbound"]["publicNetworkAccess"] = "Sometimes"
    no_secret = _manifest("06-selected-ips.yaml")
    no_secret["spec"]["azure"]["credentialRef"] = {"name": "missing"}
    elsewhere = _manifest("06-selected-ips.yaml")
    elsewhere["metadata"]["namespace"] = "elsewhere"
    cases = {
        "InvalidSpec: spec.inbound.publicNetworkAccess": _write(tmp_path / "invalid", invalid),
        f"CredentialSecretNotFound: Secret {namespace}/missing": _write(tmp_path / "secret", no_secret),
        "does not match --namespace": _write(tmp_path / "namespace", elsewhere),
        "cannot read": tmp_path / "absent.yaml",
    }
    printed = ""
    for expected, path in cases.items():
        started = time.time()
        code, out, err = _plan(capsys, cluster, "-f", str(path), "-n", namespace, reads=False)
        assert code == 1 and "Traceback" not in err, err
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err
        assert [r for r in cluster.requests() if r["time"] >= started] == []
        printed += out + err
    assert cluster.env["AZURE_CLIENT_SECRET"] not in printed


def test_kubectl_smlw_plan_runs_as_a_kubectl_plugin(cluster: Emulator, namespace: str, tmp_path: Path) -> None:
    """`kubectl smlw plan` through the real kubectl, which finds the package's kubectl-smlw on PATH;
    other kinds in the manifest are left alone with a note."""
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "kubectl-smlw").exists(), "the kubectl-smlw entry point is not installed: make venv"
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}
    documents = [config_map, _manifest("06-selected-ips.yaml"), _manifest("05-fully-private.yaml")]
    path = tmp_path / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    environment = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    command = [str(bin_dir / "kubectl"), "smlw", "plan", "-f", str(path), "-n", namespace]
    result = _read_only(
        cluster, lambda: subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    )
    assert result.returncode == 2, result.stderr
    assert f"{path} document 1: ConfigMap settings: not planned" in result.stderr
    lines = result.stdout.splitlines()
    headers = [line for line in lines if line.startswith("SecureMLWorkspace ")]
    assert headers == [
        f"SecureMLWorkspace {namespace}/litware-selected-ips in {LITWARE} (new: an empty ledger)",
        f"SecureMLWorkspace {namespace}/litware-private in {LITWARE} (new: an empty ledger)",
    ]
    assert "  + create Microsoft.MachineLearningServices/workspaces/mlw-litware-private" in lines
    creates = [line for line in lines if line.startswith("  + create Microsoft.")]
    assert creates and len(creates) == len(lines) - 3, result.stdout
    assert lines[-1] == f"Plan: {len(creates)} to create, 0 to change, 0 to remove, 0 refused."
