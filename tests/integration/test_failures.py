"""Every failure ends as a condition with a reason, at every stage, with no traceback in the log.

Each class is injected where it happens in production: ARM answers 503 (prepare), a connection
dropped under a write (walk), the API server refusing the ledger's write-ahead entry (status), a
credential Secret gone or malformed, a target type the operator has no route for, and a delete that
cannot proceed. Transient ones read `Reconciling=True` with the operator's first retry delay
(SMLW_RETRY_DELAY_SECONDS, 0.5 s here) and clear by themselves; permanent ones read `Stalled=True`
and write nothing to Azure.
"""

from __future__ import annotations

import base64
import json

import pytest
from operatorharness import CREDENTIAL_SECRET, Manifest, OperatorEnv

from armemu.seed import PROVIDERS

pytestmark = pytest.mark.integration
IPS = "litware-selected-ips"
WORKSPACE = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces/mlw-litware-ips"
FIRST_RETRY = "retrying in 0.5s"


@pytest.fixture
def operator(started_operator: OperatorEnv) -> OperatorEnv:
    return started_operator


def _manifest(operator: OperatorEnv) -> Manifest:
    return operator.manifest("06-selected-ips.yaml", deletionPolicy="Delete")


def _client_writes(operator: OperatorEnv) -> list[tuple[str, str]]:
    """The operator's writes that reached Azure (a connection dropped before handling did not)."""
    return [(r["method"], r["path"]) for r in operator.writes() if r.get("caller") == "client" and "fault" not in r]


UNAVAILABLE = {"status": 503, "code": "ServiceUnavailable", "count": None}  # until cleared


def test_arm_unavailable_while_preparing_is_retried_within_seconds(operator: OperatorEnv) -> None:
    operator.arm.fault(method="GET", path="/workspaces/mlw-litware-ips$", **UNAVAILABLE)
    operator.apply(_manifest(operator))
    reconciling = operator.wait_condition(IPS, "Reconciling", "True", "AzureUnavailable")
    assert reconciling["message"].startswith(FIRST_RETRY)
    assert operator.condition(IPS, "Stalled")["status"] == "False"
    assert _client_writes(operator) == []
    operator.arm.clear_faults()
    operator.wait_ready(IPS)


def test_a_connection_dropped_under_a_write_is_retried(operator: OperatorEnv) -> None:
    operator.arm.fault(method="PUT", path="/workspaces/mlw-litware-ips$", disconnect="before", count=None)
    operator.apply(_manifest(operator))
    reconciling = operator.wait_condition(IPS, "Reconciling", "True", "AzureUnreachable")
    assert "retrying in" in reconciling["message"]
    operator.arm.clear_faults()
    operator.wait_ready(IPS)
    creates = [path for method, path in _client_writes(operator) if method == "PUT" and path == WORKSPACE]
    assert len(creates) == 1, "the dropped attempts never reached Azure: one create"


NO_PENDING_LEDGER = "no-pending-ledger"


def _refuse_write_ahead(operator: OperatorEnv) -> None:
    """The API server refuses the ledger's write-ahead entries (status patches with a pending entry)."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": NO_PENDING_LEDGER},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["secureml.io"],
                        "apiVersions": ["*"],
                        "operations": ["UPDATE"],
                        "resources": ["securemlworkspaces/status"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "!has(object.status) || !has(object.status.ledger) || "
                    "object.status.ledger.all(e, !has(e.pending) || !e.pending)",
                    "message": "test: the ledger's write-ahead entry is refused",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": NO_PENDING_LEDGER},
        "spec": {
            "policyName": NO_PENDING_LEDGER,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": operator.namespace}}
            },
        },
    }
    for document in (policy, binding):
        operator.kube.kubectl("apply", "-f", "-", input=json.dumps(document))


def test_a_refused_ledger_write_stops_the_create_before_it_is_sent(operator: OperatorEnv) -> None:
    _refuse_write_ahead(operator)
    try:
        operator.apply(_manifest(operator))
        reconciling = operator.wait_condition(IPS, "Reconciling", "True", "KubernetesUnavailable")
        assert "retrying in" in reconciling["message"]
        assert _client_writes(operator) == [], "no create is sent unannounced"
    finally:
        for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            operator.kube.kubectl("delete", kind, NO_PENDING_LEDGER, "--ignore-not-found")
    operator.wait_ready(IPS)
    creates = [path for method, path in _client_writes(operator) if method == "PUT" and path == WORKSPACE]
    assert len(creates) == 1


def _replace_secret(operator: OperatorEnv, data: dict[str, str]) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": CREDENTIAL_SECRET}, "data": data}
    operator.kube.kubectl("delete", "secret", CREDENTIAL_SECRET, "-n", operator.namespace)
    operator.kube.kubectl("apply", "-n", operator.namespace, "-f", "-", input=json.dumps(secret))


def test_a_malformed_credential_secret_stalls_with_no_write(operator: OperatorEnv) -> None:
    not_utf8 = base64.b64encode(b"\xff\xfe\xfd").decode()
    _replace_secret(operator, {"tenantId": not_utf8, "clientId": not_utf8, "clientSecret": not_utf8})
    operator.apply(_manifest(operator))
    stalled = operator.wait_condition(IPS, "Stalled", "True", "CredentialSecretInvalid")
    assert "not base64 UTF-8 text" in stalled["message"]
    assert operator.condition(IPS, "Reconciling")["status"] == "False"
    assert _client_writes(operator) == []
    assert [r for r in operator.arm.requests() if r["path"].startswith("/subscriptions/")] == [], "no Azure call"


def test_a_target_type_without_a_route_stalls_before_any_write(operator: OperatorEnv) -> None:
    manifest = operator.manifest("01-managed-internet-outbound.yaml")
    rule = manifest["spec"]["outbound"]["managedNetwork"]["rules"][0]
    rule["privateEndpoint"]["serviceResourceId"] = f"{PROVIDERS}/Microsoft.Sql/servers/sql-litware"
    rule["privateEndpoint"]["subresourceTarget"] = "sqlServer"
    operator.apply(manifest)
    name = manifest["metadata"]["name"]
    operator.wait_for("Stalled", lambda: operator.condition(name, "Stalled").get("reason") == "UnsupportedTarget")
    assert "Microsoft.Sql/servers" in operator.condition(name, "Stalled")["message"]
    assert _client_writes(operator) == []


def test_a_delete_without_its_secret_stalls_and_retain_releases_it(operator: OperatorEnv) -> None:
    operator.apply(_manifest(operator))
    operator.wait_ready(IPS)
    operator.kube.kubectl("delete", "secret", CREDENTIAL_SECRET, "-n", operator.namespace)
    operator.arm.clear_requests()
    operator.kube.kubectl("delete", "smlw", IPS, "-n", operator.namespace, "--wait=false")
    stalled = operator.wait_condition(IPS, "Stalled", "True", "CredentialSecretNotFound")
    assert "deletionPolicy: Retain" in operator.condition(IPS, "Reconciling")["message"], stalled
    assert operator.get(IPS)["metadata"]["finalizers"] == ["secureml.io/finalizer"], "the finalizer stays"
    assert _client_writes(operator) == []
    operator.kube.kubectl(
        "patch", "smlw", IPS, "-n", operator.namespace, "--type=merge", "-p", '{"spec":{"deletionPolicy":"Retain"}}'
    )
    operator.kube.kubectl("wait", "--for=delete", f"smlw/{IPS}", "-n", operator.namespace, "--timeout=60s")
    assert operator.arm_resource(WORKSPACE) is not None, "Retain leaves Azure as it is"
    assert _client_writes(operator) == []


def test_azure_unavailable_during_delete_is_retried_until_it_is_gone(operator: OperatorEnv) -> None:
    operator.apply(_manifest(operator))
    operator.wait_ready(IPS)
    operator.arm.fault(method="DELETE", path="/workspaces/mlw-litware-ips$", **UNAVAILABLE)
    operator.kube.kubectl("delete", "smlw", IPS, "-n", operator.namespace, "--wait=false")
    reconciling = operator.wait_condition(IPS, "Reconciling", "True", "AzureUnavailable")
    assert "retrying in" in reconciling["message"]
    operator.arm.clear_faults()
    operator.kube.kubectl("wait", "--for=delete", f"smlw/{IPS}", "-n", operator.namespace, "--timeout=60s")
    assert operator.arm_resource(WORKSPACE) is None


def test_a_sweep_that_fails_is_retried_within_seconds_not_an_interval(operator: OperatorEnv) -> None:
    manifest = _manifest(operator)
    manifest["spec"]["drift"] = {"mode": "Enforce", "interval": "30s"}
    operator.apply(manifest)
    operator.wait_ready(IPS)
    operator.next_sweep(IPS, 45)  # the first sweep follows the reconcile; the next is 30 s away
    operator.arm.fault(method="GET", path="/workspaces/mlw-litware-ips$", **UNAVAILABLE)
    operator.az_rest("PATCH", WORKSPACE, {"properties": {"publicNetworkAccess": "Disabled"}})
    reconciling = operator.wait_condition(IPS, "Reconciling", "True", "AzureUnavailable", timeout=45)
    assert "retrying in" in reconciling["message"]
    operator.arm.clear_faults()

    def corrected() -> bool:
        body = operator.arm_resource(WORKSPACE) or {}
        return bool(body.get("properties", {}).get("publicNetworkAccess") == "Enabled")

    operator.wait_for("the drift corrected by the retried sweep", corrected, timeout=15)
    operator.wait_ready(IPS, timeout=15)


def test_a_create_whose_answer_was_lost_and_retried_is_still_ours(operator: OperatorEnv) -> None:
    """The write happens, its answer is lost, the SDK sends it again and ARM answers 412 (it exists):
    our mark on it, and the announced ledger entry, make it ours, not someone else's."""
    operator.arm.fault(method="PUT", path="/workspaces/mlw-litware-ips$", disconnect="after", count=1)
    operator.apply(_manifest(operator))
    operator.wait_ready(IPS)
    statuses = [r["status"] for r in operator.arm.requests() if r["method"] == "PUT" and r["path"] == WORKSPACE]
    assert statuses[:2] == [504, 412], "written, answer lost, sent again, refused as existing"
    ledger = {entry["id"]: entry for entry in operator.get(IPS)["status"]["ledger"]}
    assert ledger[WORKSPACE]["origin"] == "Created" and "pending" not in ledger[WORKSPACE]
    operator.kube.kubectl("delete", "smlw", IPS, "-n", operator.namespace, "--timeout=60s")
    assert operator.arm_resource(WORKSPACE) is None, "ours, so deleted with the resource"
