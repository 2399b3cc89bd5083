"""Argo CD's health script for SecureMLWorkspace, run under Lua 5.1 (Argo CD's dialect) on the
statuses the operator writes, and the argocd-cm snippet that ships it."""

from __future__ import annotations

import yaml

from gitops import (
    ARGOCD_CM,
    HEALTH_KEY,
    HEALTH_LUA,
    REPO_ROOT,
    argo_health,
    condition,
    deleting,
    new_generation_not_observed,
    ready,
    render_argocd_cm,
    retrying,
    stalled,
    workspace,
)


def test_ready_is_healthy_with_the_ready_message() -> None:
    verdict = argo_health(ready(3))
    assert verdict.status == "Healthy"
    assert verdict.message == "Reconciled: Azure matches the spec (3 created)"


def test_new_generation_not_yet_observed_is_progressing_even_though_ready_is_true() -> None:
    verdict = argo_health(new_generation_not_observed())
    assert verdict.status == "Progressing"
    assert verdict.message == "waiting for the operator to reconcile generation 2 (status is for generation 1)"


def test_reconciling_is_progressing_with_its_message() -> None:
    verdict = argo_health(retrying(2))
    assert verdict.status == "Progressing"
    assert verdict.message == "ServiceUnavailable: retrying: workspaces/mlw-litware: 503 ServiceUnavailable"


def test_new_generation_with_reconciling_true_is_progressing() -> None:
    body = retrying(1)
    body["metadata"]["generation"] = 2
    verdict = argo_health(body)
    assert verdict.status == "Progressing"
    assert "generation 2" in verdict.message


def test_no_status_yet_is_progressing_not_healthy() -> None:
    """A resource the operator has not reached yet must not look healthy (kstatus would say Current)."""
    verdict = argo_health(workspace(generation=1))
    assert verdict.status == "Progressing"
    assert verdict.message == "waiting for the operator to reconcile generation 1"


def test_status_without_observed_generation_is_progressing() -> None:
    conditions = [condition("Ready", True, "Reconciled", "Azure matches the spec", 1)]
    verdict = argo_health(workspace(generation=1, conditions=conditions))
    assert verdict.status == "Progressing"


def test_stalled_is_degraded_with_reason_and_message() -> None:
    verdict = argo_health(stalled(4))
    assert verdict.status == "Degraded"
    assert verdict.message.startswith("RegistryNotPremium: container registry crlitware is Basic")
    assert verdict.message.endswith("must be Premium")


def test_stalled_wins_over_ready() -> None:
    body = ready(1)
    body["status"]["conditions"] = [c for c in body["status"]["conditions"] if c["type"] != "Stalled"]
    body["status"]["conditions"].append(condition("Stalled", True, "OwnedByAnotherResource", "owned by ml/x", 1))
    verdict = argo_health(body)
    assert verdict.status == "Degraded"
    assert verdict.message == "OwnedByAnotherResource: owned by ml/x"


def test_stalled_for_an_old_generation_is_progressing() -> None:
    """Fixing the spec clears Degraded at once: the new generation is being worked on."""
    body = stalled(1)
    body["metadata"]["generation"] = 2
    assert argo_health(body).status == "Progressing"


def test_deleting_is_progressing_whatever_the_conditions() -> None:
    verdict = argo_health(deleting())
    assert verdict.status == "Progressing"
    assert verdict.message.startswith("deleting")
    body = stalled(1)
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:05:00Z"
    assert argo_health(body).status == "Progressing"


def test_ready_false_without_reconciling_is_progressing_with_the_ready_message() -> None:
    conditions = [condition("Ready", False, "Pending", "waiting for the managed network", 1)]
    verdict = argo_health(workspace(generation=1, observed=1, conditions=conditions))
    assert verdict == type(verdict)("Progressing", "Pending: waiting for the managed network")


def test_a_conflicting_writer_the_operator_stopped_fighting_is_degraded() -> None:
    message = "another writer keeps changing w:properties.publicNetworkAccess back"
    conditions = [condition("Ready", False, "ConflictingWriter", message, 1)]
    verdict = argo_health(workspace(generation=1, observed=1, conditions=conditions))
    assert verdict == type(verdict)("Degraded", f"ConflictingWriter: {message}")


def test_observed_generation_without_conditions_is_progressing() -> None:
    verdict = argo_health(workspace(generation=1, observed=1))
    assert verdict.status == "Progressing"
    assert verdict.message == "waiting for the operator to report Ready"


def test_argocd_cm_embeds_health_lua_verbatim() -> None:
    text = ARGOCD_CM.read_text()
    assert text == render_argocd_cm(), "regenerate: PYTHONPATH=tests .venv/bin/python -m gitops"
    config = yaml.safe_load(text)
    assert config["kind"] == "ConfigMap" and config["metadata"]["name"] == "argocd-cm"
    assert config["data"][HEALTH_KEY] == HEALTH_LUA.read_text()
    assert argo_health(ready(), script=config["data"][HEALTH_KEY]).status == "Healthy"


def test_application_and_flux_kustomization_sync_the_examples() -> None:
    """The shipped GitOps manifests point at the examples folder that really holds SecureMLWorkspaces."""
    application = yaml.safe_load((REPO_ROOT / "gitops" / "argocd" / "application.yaml").read_text())
    documents = list(yaml.safe_load_all((REPO_ROOT / "gitops" / "flux" / "kustomization.yaml").read_text()))
    flux = next(d for d in documents if d["kind"] == "Kustomization")
    source = next(d for d in documents if d["kind"] == "GitRepository")
    assert application["kind"] == "Application" and application["spec"]["source"]["path"] == "examples"
    assert flux["spec"]["path"] == "./examples" and flux["spec"]["wait"] is True
    assert flux["spec"]["sourceRef"] == {"kind": "GitRepository", "name": source["metadata"]["name"]}
    assert application["spec"]["destination"]["namespace"] == flux["spec"]["targetNamespace"]
    kinds = {yaml.safe_load(path.read_text())["kind"] for path in (REPO_ROOT / "examples").glob("*.yaml")}
    assert kinds == {"SecureMLWorkspace"}
