"""The Helm chart: it lints, the real API server accepts everything it renders, and the operator works
with exactly the permissions it grants.

The permission tests run the operator as the chart's ServiceAccount (a token minted for it, so any
missing verb is a 403) on a control plane that audits that account's requests: the verbs the
operator used must be the verbs the chart grants, no fewer and no more.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from containerrecipe import operator_command
from operatorharness import HEARTBEAT_ENV, OperatorEnv, prepare_cluster, running_operator

from armemu import Emulator
from kubeharness import ControlPlane, free_port
from kubeharness.fixtures import fresh_namespace

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "secureml-operator"
OPERATOR_SOURCE = REPO_ROOT / "operator" / "secureml_operator"
PEERING = "secureml-operator"  # the peering name secureml_operator/__main__.py gives kopf
WS = "/providers/Microsoft.MachineLearningServices/workspaces/"
AUDIT_POLICY = {
    "apiVersion": "secureml.io/v1alpha1",
    "kind": "SecureMLTenancyPolicy",
    "metadata": {"name": "default"},
    "spec": {
        "tenants": [
            {
                "name": "audit",
                "namespaceSelector": {"matchLabels": {"secureml.io/tenant": "audit"}},
                "subscriptions": ["00000000-0000-0000-0000-000000000000"],
            }
        ]
    },
}
Manifest = dict[str, Any]
Values = dict[str, Any]
Grant = tuple[str, str, str]  # (verb, API group, resource[/subresource])

NAMESPACED_WITH_MONITOR: Values = {"metrics.serviceMonitor.enabled": True}
SOVEREIGN: Values = {
    "azure.cloud": "AzureUSGovernment",
    "azure.workloadIdentity.clientId": "00000000-0000-0000-0000-0000000000c1",
    "azure.workloadIdentity.tenantId": "00000000-0000-0000-0000-0000000000d1",
    "azure.caBundle.configMap": "azure-ca",
    "operator.logFormat": "plain",
    "operator.driftInterval": "5m",
}


@pytest.fixture(scope="session")
def helm() -> str:
    """hack/helm.py builds helm from its Go module once (cached like the control plane) and prints its path."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "hack" / "helm.py")], check=True, text=True, stdout=subprocess.PIPE
    )
    return result.stdout.strip().splitlines()[-1]


def run(
    *argv: str, input: str | None = None, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, input=input, text=True, capture_output=True, timeout=120, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def set_flags(values: Values) -> list[str]:
    """`--set-json key=value` per dotted key: types survive (lists, booleans)."""
    return [flag for key, value in values.items() for flag in ("--set-json", f"{key}={json.dumps(value)}")]


def template(
    helm: str, values: Values | None = None, namespace: str = "secureml-system", release: str = "smlw", *extra: str
) -> str:
    return run(helm, "template", release, str(CHART), "--namespace", namespace, *set_flags(values or {}), *extra).stdout


def render(
    helm: str, values: Values | None = None, namespace: str = "secureml-system", release: str = "smlw"
) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(template(helm, values, namespace, release)) if doc]


def only(docs: list[Manifest], kind: str) -> Manifest:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(docs: list[Manifest]) -> Manifest:
    containers: list[Manifest] = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return containers[0]


def env_of(docs: list[Manifest]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container(docs)["env"]}


# --- lint and render -------------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True], ids=["lint", "lint-strict"])
@pytest.mark.parametrize(
    "values",
    [{}, {"operator.watchNamespaces": ["team-a", "team-b"], **NAMESPACED_WITH_MONITOR}, SOVEREIGN],
    ids=["defaults", "namespaced-servicemonitor", "sovereign"],
)
def test_chart_lints(helm: str, values: Values, strict: bool) -> None:
    result = run(helm, "lint", str(CHART), *(["--strict"] if strict else []), *set_flags(values))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_defaults_render_a_hardened_deployment_with_peering(helm: str) -> None:
    docs = render(helm)
    deployment = only(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    operator = container(docs)
    security = operator["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    tmp = next(volume for volume in pod["volumes"] if volume["name"] == "tmp")
    assert "emptyDir" in tmp
    assert {"name": "tmp", "mountPath": "/tmp"} in operator["volumeMounts"]
    # The probes ask kopf's liveness endpoint, on the port the operator is told to serve it.
    assert "--liveness=http://0.0.0.0:8080/healthz" in operator["args"]
    ports = {port["name"]: port["containerPort"] for port in operator["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert operator[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert operator["resources"]["requests"] and operator["resources"]["limits"]["memory"]
    assert pod["serviceAccountName"] == only(docs, "ServiceAccount")["metadata"]["name"]
    assert deployment["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    env = env_of(docs)
    assert env["POD_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["AZURE_CLOUD"] == "AzurePublicCloud" and env["SMLW_LOG_FORMAT"] == "json"
    assert "SMLW_ARM_ENDPOINT" not in env and env["SMLW_DRIFT_INTERVAL"] == "60s"
    assert only(docs, "ClusterKopfPeering")["metadata"]["name"] == PEERING
    assert only(docs, "Service")["spec"]["ports"][0]["targetPort"] == "metrics"
    assert not [doc for doc in docs if doc["kind"] in {"ServiceMonitor", "Role", "RoleBinding", "KopfPeering"}]


def test_workload_identity_and_sovereign_cloud_values(helm: str) -> None:
    docs = render(helm, SOVEREIGN)
    annotations = only(docs, "ServiceAccount")["metadata"]["annotations"]
    assert annotations == {
        "azure.workload.identity/client-id": SOVEREIGN["azure.workloadIdentity.clientId"],
        "azure.workload.identity/tenant-id": SOVEREIGN["azure.workloadIdentity.tenantId"],
    }
    env = env_of(docs)
    assert env["AZURE_CLOUD"] == "AzureUSGovernment"
    assert env["SMLW_CA_BUNDLE"] == "/etc/secureml-operator/ca/ca.crt"
    assert env["SMLW_LOG_FORMAT"] == "plain" and env["SMLW_DRIFT_INTERVAL"] == "5m"
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    assert {"name": "ca-bundle", "configMap": {"name": "azure-ca"}} in pod["volumes"]
    custom = env_of(render(helm, {"azure.armEndpoint": "https://arm.example.test", "azure.cloud": "AzureStackHub"}))
    assert custom["SMLW_ARM_ENDPOINT"] == "https://arm.example.test"
    without = render(helm, {"azure.workloadIdentity.enabled": False, "azure.workloadIdentity.clientId": "x"})
    assert "annotations" not in only(without, "ServiceAccount")["metadata"]
    assert "azure.workload.identity/use" not in only(without, "Deployment")["spec"]["template"]["metadata"]["labels"]


def test_namespaced_mode_renders_a_role_and_a_peering_per_namespace(helm: str) -> None:
    docs = render(helm, {"operator.watchNamespaces": ["team-a", "team-b"], **NAMESPACED_WITH_MONITOR})
    assert sorted(doc["metadata"]["namespace"] for doc in docs if doc["kind"] == "Role") == ["team-a", "team-b"]
    assert sorted(doc["metadata"]["namespace"] for doc in docs if doc["kind"] == "KopfPeering") == ["team-a", "team-b"]
    assert not [doc for doc in docs if doc["kind"] == "ClusterKopfPeering"]
    cluster_resources = {resource for rule in only(docs, "ClusterRole")["rules"] for resource in rule["resources"]}
    assert cluster_resources == {"customresourcedefinitions", "namespaces", "securemltenancypolicies"}, (
        "namespaced mode: nothing else cluster-wide"
    )
    assert [arg for arg in container(docs)["args"] if arg.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]
    monitor = only(docs, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "metrics"
    assert only(docs, "Service")["metadata"]["labels"]["app.kubernetes.io/component"] == "metrics"


def test_without_credential_secrets_the_operator_gets_no_secret_access(helm: str) -> None:
    for values in ({}, {"operator.watchNamespaces": ["team-a"]}):
        docs = render(helm, {**values, "rbac.credentialSecrets": False})
        assert not [grant for grant in granted(docs) if grant[2] == "secrets"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        # values.schema.json refuses these before any template runs.
        ({"operator.logFormat": "xml"}, "at '/operator/logFormat': value must be one of 'json', 'plain'"),
        ({"operator.driftInterval": "1 minute"}, "at '/operator/driftInterval': '1 minute' does not match pattern"),
        ({"azure.cloud": "AzureGermanCloud"}, "set azure.armEndpoint for another cloud"),
        ({"metrics.serviceMonitor.enabled": True, "metrics.port": 0}, "metrics.serviceMonitor.enabled needs"),
    ],
    ids=["log-format", "drift-interval", "unknown-cloud", "monitor-without-metrics"],
)
def test_invalid_values_are_refused_with_a_message(helm: str, values: Values, message: str) -> None:
    result = run(helm, "template", "smlw", str(CHART), *set_flags(values), check=False)
    assert result.returncode != 0 and message in result.stderr


def test_every_variable_the_chart_sets_is_read_by_the_operator(helm: str) -> None:
    """A renamed setting in the operator must not leave the chart setting a variable nobody reads."""
    source = "\n".join(path.read_text() for path in OPERATOR_SOURCE.rglob("*.py"))
    names = set(env_of(render(helm, SOVEREIGN))) | set(env_of(render(helm, {"azure.armEndpoint": "https://a.test"})))
    unread = {name for name in names - {"POD_ID"} if name not in source}  # POD_ID: read by kopf (peering id)
    assert not unread, f"the operator reads none of {sorted(unread)}"


# --- the API server accepts what the chart renders ---------------------------------------------------

DURATION = "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"


def minimal_crd(kind: str, spec_schema: Manifest) -> Manifest:
    """A monitoring.coreos.com CRD (prometheus-operator's are not installed) typed like upstream's for
    the fields the chart sets, with no unknown field allowed, so a typo is refused."""
    plural = f"{kind.lower()}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "required": ["spec"], "properties": {"spec": spec_schema}}
                    },
                }
            ],
        },
    }


SERVICE_MONITOR_CRD = minimal_crd(
    "ServiceMonitor",
    {
        "type": "object",
        "required": ["selector"],
        "properties": {
            "selector": {
                "type": "object",
                "properties": {
                    "matchLabels": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                    }
                },
            },
            "namespaceSelector": {
                "type": "object",
                "properties": {
                    "any": {"type": "boolean"},
                    "matchNames": {"type": "array", "items": {"type": "string"}},
                },
            },
            "endpoints": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "port": {"type": "string"},
                        "path": {"type": "string"},
                        "interval": {"type": "string", "pattern": DURATION},
                        "scrapeTimeout": {"type": "string", "pattern": DURATION},
                    },
                },
            },
        },
    },
)


def install_crds(kube: ControlPlane) -> None:
    """The chart's CRDs, for real: a dry run of the peering object needs its kind to exist."""
    kube.kubectl("apply", "--server-side", "-f", str(CHART / "crds"))
    names = [
        f"crd/{doc['metadata']['name']}"
        for path in (CHART / "crds").glob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    kube.kubectl("wait", "--for=condition=established", *names, "--timeout=60s")


@pytest.fixture
def second_namespace(kube: ControlPlane) -> Iterator[str]:
    with fresh_namespace(kube) as name:
        yield name


@pytest.mark.parametrize("mode", ["defaults", "namespaced-servicemonitor", "sovereign"])
def test_api_server_accepts_the_rendered_chart(
    kube: ControlPlane, helm: str, namespace: str, second_namespace: str, mode: str
) -> None:
    install_crds(kube)
    values: Values = {}
    if mode == "namespaced-servicemonitor":
        kube.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(SERVICE_MONITOR_CRD))
        kube.kubectl("wait", "--for=condition=established", "crd/servicemonitors.monitoring.coreos.com")
        values = {"operator.watchNamespaces": [namespace, second_namespace], **NAMESPACED_WITH_MONITOR}
    elif mode == "sovereign":
        values = SOVEREIGN
    # The pod must pass the "restricted" Pod Security Standard: the API server warns on a dry run.
    kube.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/warn=restricted")
    rendered = template(helm, values, namespace, "smlw", "--include-crds")
    result = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert "PodSecurity" not in result.stderr, result.stderr
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered) if doc}
    accepted = result.stdout.splitlines()
    assert len(accepted) == len([doc for doc in yaml.safe_load_all(rendered) if doc]), result.stdout
    assert all(line.endswith("(server dry run)") for line in accepted), result.stdout
    expected = {"CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"}
    assert expected | {"Service"} <= kinds
    if mode == "namespaced-servicemonitor":
        assert {"Role", "RoleBinding", "KopfPeering", "ServiceMonitor"} <= kinds
    else:
        assert "ClusterKopfPeering" in kinds


@pytest.mark.parametrize("skip_crds", [False, True], ids=["chart-crds", "skip-crds"])
def test_helm_installs_and_uninstalls_the_release(
    kube: ControlPlane, helm: str, namespace: str, skip_crds: bool
) -> None:
    """A real install over CRDs already applied as the README applies them (kubectl, server-side):
    the peering object of a kind the CRDs define, the notes; an uninstall removes everything but the
    CRDs (Helm never deletes those)."""
    install_crds(kube)
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}
    release = f"r{uuid.uuid4().hex[:6]}"
    flags = ["--skip-crds"] if skip_crds else []
    try:
        installed = run(helm, "install", release, str(CHART), "--namespace", namespace, *flags, env=env)
        assert "watching every namespace" in installed.stdout
        kube.kubectl("get", "clusterkopfpeering", PEERING)
        selector = f"app.kubernetes.io/instance={release}"
        kube.kubectl("get", "deployment,serviceaccount,service", "-n", namespace, "-l", selector)
    finally:
        run(helm, "uninstall", release, "--namespace", namespace, env=env, check=False)
    assert kube.kubectl("get", "clusterkopfpeering", PEERING, check=False).returncode != 0
    assert kube.kubectl("get", "clusterrole", f"{release}-secureml-operator", check=False).returncode != 0
    kube.kubectl("get", "crd", "clusterkopfpeerings.kopf.dev", "securemlworkspaces.secureml.io")


# --- alerts, dashboard and the values schema --------------------------------------------------------

ALERTS = CHART / "files" / "alerts.yaml"
DASHBOARD = CHART / "files" / "dashboard.json"
MONITORING: Values = {
    "metrics.serviceMonitor.enabled": True,
    "metrics.prometheusRule.enabled": True,
    "metrics.grafanaDashboard.enabled": True,
}
PROMETHEUS_RULE_CRD = minimal_crd(
    "PrometheusRule",
    {
        "type": "object",
        "properties": {
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "interval": {"type": "string", "pattern": DURATION},
                        "rules": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["expr"],
                                "properties": {
                                    "alert": {"type": "string"},
                                    "record": {"type": "string"},
                                    "expr": {"x-kubernetes-int-or-string": True},
                                    "for": {"type": "string", "pattern": DURATION},
                                    "labels": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                    "annotations": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                },
                            },
                        },
                    },
                },
            }
        },
    },
)


def rule_exprs(rule: Manifest) -> list[str]:
    return [item["expr"] for group in rule["spec"]["groups"] for item in group["rules"]]


def test_chart_lints_with_alerts_and_dashboard(helm: str) -> None:
    result = run(helm, "lint", "--strict", str(CHART), *set_flags(MONITORING))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_alerts_and_dashboard_are_the_chart_files_with_the_releases_job(helm: str) -> None:
    """The PrometheusRule is files/alerts.yaml (what promtool checks and tests) with the ServiceMonitor's
    job, and the dashboard ConfigMap carries files/dashboard.json for Grafana's sidecar."""
    assert not [doc for doc in render(helm) if doc["kind"] in {"PrometheusRule", "ConfigMap"}], "off by default"
    docs = render(helm, MONITORING, "secureml-system", "smlw")
    job = only(docs, "Service")["metadata"]["name"]  # prometheus-operator names a ServiceMonitor's job so
    assert only(docs, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "metrics"
    rule = only(docs, "PrometheusRule")
    assert job == "smlw-secureml-operator-metrics"
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text().replace('job="secureml-operator-metrics"', f'job="{job}"'))
    assert f'absent(up{{job="{job}"}} == 1)' in rule_exprs(rule)
    dashboards = [doc for doc in docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-dashboard")]
    assert len(dashboards) == 1
    assert dashboards[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboards[0]["metadata"]["namespace"] == "secureml-system"
    assert json.loads(dashboards[0]["data"]["secureml-operator.json"]) == json.loads(DASHBOARD.read_text())
    custom = render(
        helm,
        {
            **MONITORING,
            "metrics.prometheusRule.job": "operators",
            "metrics.prometheusRule.labels": {"release": "kube-prometheus-stack"},
            "metrics.grafanaDashboard.namespace": "monitoring",
            "metrics.grafanaDashboard.annotations": {"grafana_folder": "Operators"},
        },
    )
    rule = only(custom, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert 'absent(up{job="operators"} == 1)' in rule_exprs(rule)
    (dashboard,) = [doc for doc in custom if doc["kind"] == "ConfigMap"]
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Operators"}


def test_alerts_without_metrics_are_refused_with_a_message(helm: str) -> None:
    values = {"metrics.prometheusRule.enabled": True, "metrics.port": 0}
    result = run(helm, "template", "smlw", str(CHART), *set_flags(values), check=False)
    assert result.returncode != 0 and "metrics.prometheusRule.enabled needs metrics.port" in result.stderr


def test_api_server_accepts_the_rendered_alerts_and_dashboard(kube: ControlPlane, helm: str, namespace: str) -> None:
    install_crds(kube)
    for crd in (SERVICE_MONITOR_CRD, PROMETHEUS_RULE_CRD):
        kube.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(crd))
        kube.kubectl("wait", "--for=condition=established", f"crd/{crd['metadata']['name']}")
    rendered = template(helm, MONITORING, namespace, "smlw")
    result = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    accepted = result.stdout.splitlines()
    assert len(accepted) == len([doc for doc in yaml.safe_load_all(rendered) if doc]), result.stdout
    assert all(line.endswith("(server dry run)") for line in accepted), result.stdout
    assert "prometheusrule.monitoring.coreos.com/smlw-secureml-operator created (server dry run)" in accepted
    assert "configmap/smlw-secureml-operator-dashboard created (server dry run)" in accepted
    # The CRD above refuses what upstream's would: a rule without an expression.
    broken = next(doc for doc in yaml.safe_load_all(rendered) if doc and doc["kind"] == "PrometheusRule")
    del broken["spec"]["groups"][0]["rules"][0]["expr"]
    refused = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(broken), check=False)
    assert refused.returncode != 0 and "expr" in refused.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": "abc"}, "at '/replicaCount': got string, want integer"),
        (
            {"metrics.prometheusRule.lables": {}},
            "at '/metrics/prometheusRule': additional properties 'lables' not allowed",
        ),
        ({"metrics.service.type": "ExternalName"}, "at '/metrics/service/type': value must be one of"),
    ],
    ids=["wrong-type", "misspelt-key", "not-an-enum-value"],
)
def test_helm_install_refuses_a_wrong_value_with_the_schemas_message(
    kube: ControlPlane, helm: str, namespace: str, values: Values, message: str
) -> None:
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}
    release = f"r{uuid.uuid4().hex[:6]}"
    result = run(
        helm, "install", release, str(CHART), "--namespace", namespace, *set_flags(values), env=env, check=False
    )
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr and message in result.stderr
    assert run(helm, "list", "--namespace", namespace, "--short", env=env).stdout.split() == []


# --- the operator, as the chart's ServiceAccount ------------------------------------------------------


class AuditedControlPlane(ControlPlane):
    """The harness's control plane, with kube-apiserver auditing every ServiceAccount's requests."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.audit_log = workdir / "audit.log"
        policy = workdir / "audit-policy.yaml"
        rule = {"level": "Metadata", "userGroups": ["system:serviceaccounts"]}
        policy.write_text(yaml.safe_dump({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [rule]}))
        super().__init__(
            workdir, apiserver_args=[f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}"]
        )

    def requests_by(self, user: str) -> list[Manifest]:
        """The audit events of one user's resource requests (discovery's non-resource URLs left out)."""
        if not self.audit_log.exists():
            return []
        events = (json.loads(line) for line in self.audit_log.read_text().splitlines())
        seen: dict[str, Manifest] = {}
        for event in events:
            if event["user"]["username"] == user and event.get("objectRef") and "responseStatus" in event:
                seen[event["auditID"]] = event  # the last stage of each request
        return list(seen.values())


@pytest.fixture(scope="module")
def audited_kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditedControlPlane]:
    """A control plane of its own: a cluster-wide operator must not meet other tests' leftovers."""
    with AuditedControlPlane(tmp_path_factory.mktemp("audited-controlplane")) as control_plane:
        yield control_plane


def granted(docs: list[Manifest]) -> set[Grant]:
    return {
        (verb, group, resource)
        for doc in docs
        if doc["kind"] in {"ClusterRole", "Role"}
        for rule in doc["rules"]
        for verb in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }


def used(events: list[Manifest]) -> set[Grant]:
    def resource(ref: Manifest) -> str:
        return ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")

    return {(event["verb"], event["objectRef"].get("apiGroup", ""), resource(event["objectRef"])) for event in events}


def kopf_scope(deployment: Manifest) -> list[str]:
    """The kopf flags equivalent to the Deployment's `python -m secureml_operator` arguments."""
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--standalone" not in args, "in a cluster, replicas must peer"
    namespaces = [arg.removeprefix("--namespace=") for arg in args if arg.startswith("--namespace=")]
    scope = [flag for name in namespaces for flag in ("--namespace", name)] or ["--all-namespaces"]
    return [*scope, "--peering", PEERING]


class ChartInstall:
    """The chart's ServiceAccount, RBAC and peering objects applied, and a kubeconfig with the account's token."""

    def __init__(self, kube: ControlPlane, helm: str, values: Values, workdir: Path) -> None:
        self.namespace = f"ops-{uuid.uuid4().hex[:8]}"
        release = f"r{uuid.uuid4().hex[:6]}"  # cluster-scoped names differ between tests
        kube.kubectl("create", "namespace", self.namespace)
        install_crds(kube)
        if not values.get("operator.watchNamespaces"):
            leftovers = kube.kubectl("get", "smlw", "--all-namespaces", "-o", "name").stdout.split()
            assert not leftovers, f"a cluster-wide operator would reconcile other tests' leftovers: {leftovers}"
        self.docs = render(helm, values, self.namespace, release)
        wanted = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
        objects = [doc for doc in self.docs if doc["kind"] in wanted | {"ClusterKopfPeering", "KopfPeering"}]
        kube.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(doc) for doc in objects))
        account = only(self.docs, "ServiceAccount")["metadata"]["name"]
        self.user = f"system:serviceaccount:{self.namespace}:{account}"
        token = kube.kubectl("create", "token", account, "-n", self.namespace, "--duration=1h").stdout.strip()
        config = yaml.safe_load(kube.kubeconfig.read_text())  # the server URL and CA; the token as the user
        config["users"] = [{"name": account, "user": {"token": token}}]
        config["contexts"][0]["context"]["user"] = account
        self.kubeconfig = workdir / f"{account}.kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.scope = kopf_scope(only(self.docs, "Deployment"))


REFUSAL = re.compile(r"Forbidden|Not enough permissions|(?<![\d.:])403(?!\d)")
"""The API server's refusal as the operator logs it; a 403 inside a timestamp or an id is not one."""


def forbidden_in_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log lines (with tracebacks) of the operator that mention a refusal by the API server."""
    formatter = logging.Formatter()
    lines = []
    for record in caplog.records:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + formatter.formatException(record.exc_info)
        if REFUSAL.search(text):
            lines.append(f"{record.name}: {text[:300]}")
    return lines


def reconcile_and_delete(operator: OperatorEnv) -> None:
    operator.apply(operator.manifest("01-managed-internet-outbound.yaml", drift={"interval": "10s"}))
    operator.wait_ready("litware-internet")
    operator.next_sweep("litware-internet", 30)  # a second walk, with the credential Secret from the cache
    assert operator.arm_resource(f"{WS}mlw-litware-internet") is not None
    operator.kube.kubectl("delete", "smlw", "litware-internet", "-n", operator.namespace, "--timeout=60s")
    assert operator.arm_resource(f"{WS}mlw-litware-internet") is None, "deleting the resource deletes the workspace"


@pytest.mark.parametrize("mode", ["clusterwide", "namespaced"])
def test_operator_works_with_exactly_the_permissions_the_chart_grants(
    audited_kube: AuditedControlPlane,
    helm: str,
    arm_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    mode: str,
) -> None:
    kube = audited_kube
    workload = f"t-{uuid.uuid4().hex[:10]}"
    kube.kubectl("create", "namespace", workload)
    kube.kubectl("label", "namespace", workload, "secureml.io/tenant=audit")
    values: Values = {"operator.watchNamespaces": [workload]} if mode == "namespaced" else {}
    chart = ChartInstall(kube, helm, values, tmp_path)
    # With a tenancy policy that selects the namespace by label, the operator reads its labels too.
    kube.kubectl("apply", "-f", "-", input=json.dumps(AUDIT_POLICY))
    try:
        with running_operator(kube, arm_emulator, workload, monkeypatch, chart.kubeconfig, chart.scope) as operator:
            reconcile_and_delete(operator)
    finally:
        kube.kubectl("delete", "securemltenancypolicy", "default", "--ignore-not-found")
    events = kube.requests_by(chart.user)
    denied = sorted({(e["verb"], e["objectRef"]["resource"]) for e in events if e["responseStatus"]["code"] == 403})
    assert not denied, f"the API server refused the operator: {denied}"
    assert not forbidden_in_log(caplog)
    assert used(events) == granted(chart.docs), "the chart grants exactly the verbs the operator uses"
    secret_reads = [e for e in events if (e["verb"], e["objectRef"]["resource"]) == ("get", "secrets")]
    assert len(secret_reads) == 1, "the credential Secret is read once, then watched: not once per walk"
    peering = "kopfpeerings" if mode == "namespaced" else "clusterkopfpeerings"
    patched = {e["objectRef"]["name"] for e in events if e["verb"] == "patch" and e["objectRef"]["resource"] == peering}
    assert patched == {PEERING}


def test_a_missing_permission_stalls_the_resource_and_shows_in_the_audit_log(
    audited_kube: AuditedControlPlane,
    helm: str,
    arm_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The check above can fail: without `get secrets`, credentialRef cannot be read."""
    kube = audited_kube
    workload = f"t-{uuid.uuid4().hex[:10]}"
    kube.kubectl("create", "namespace", workload)
    chart = ChartInstall(
        kube, helm, {"operator.watchNamespaces": [workload], "rbac.credentialSecrets": False}, tmp_path
    )
    with running_operator(kube, arm_emulator, workload, monkeypatch, chart.kubeconfig, chart.scope) as operator:
        operator.apply(operator.manifest("01-managed-internet-outbound.yaml"))
        operator.wait_for("Stalled", lambda: operator.condition("litware-internet", "Stalled").get("status") == "True")
        assert "403" in operator.condition("litware-internet", "Stalled")["message"]
    # The harness discarded it (finalizer and all) when the operator stopped, so that no later
    # cluster-wide operator in this control plane picks it up.
    kube.kubectl("wait", "--for=delete", "smlw/litware-internet", "-n", workload, "--timeout=30s")
    events = kube.requests_by(chart.user)
    assert {(e["verb"], e["objectRef"]["resource"]) for e in events if e["responseStatus"]["code"] == 403} == {
        ("get", "secrets")
    }
    assert not [request for request in arm_emulator.requests() if request["method"] != "GET"], "nothing written"


# --- the Deployment's own command line and environment --------------------------------------------


class Replicas:
    """The image's `python -OO -m secureml_operator` processes started as the chart's Deployment starts its pods: its
    arguments and environment, the ServiceAccount's token, and the emulator as the cloud."""

    def __init__(self, chart: ChartInstall, arm: Emulator, workdir: Path) -> None:
        self.chart, self.arm, self.workdir = chart, arm, workdir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.health_urls: list[str] = []
        self.metrics_urls: list[str] = []

    def start(self, count: int) -> Replicas:
        operator = container(self.chart.docs)
        rendered_env = {item["name"]: item["value"] for item in operator["env"] if "value" in item}
        for index in range(count):
            # Pods have a network namespace each; processes on one host need ports of their own.
            health, metrics = free_port(), free_port()
            args = [arg for arg in operator["args"] if not arg.startswith("--liveness=")]
            env = {
                **os.environ,
                **rendered_env,
                **self.arm.env,  # the emulator is the cloud (SMLW_ARM_ENDPOINT wins over AZURE_CLOUD)
                "POD_ID": f"replica-{index}",
                "KUBECONFIG": str(self.chart.kubeconfig),
                "SMLW_METRICS_PORT": str(metrics),
                "SMLW_POLLING_INTERVAL_SECONDS": "0.05",
                **HEARTBEAT_ENV,
            }
            log = (self.workdir / f"replica-{index}.log").open("wb")
            self.processes.append(
                subprocess.Popen(
                    [*operator_command(sys.executable), f"--liveness=http://127.0.0.1:{health}/healthz", *args],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
            self.health_urls.append(f"http://127.0.0.1:{health}/healthz")
            self.metrics_urls.append(f"http://127.0.0.1:{metrics}/metrics")
        return self

    def log(self, index: int) -> str:
        return (self.workdir / f"replica-{index}.log").read_text()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def http_get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body: bytes = response.read()
            return body.decode() if response.status == 200 else None
    except OSError:
        return None


@pytest.fixture
def workload(audited_kube: AuditedControlPlane, arm_emulator: Emulator) -> str:
    """A namespace with the emulator's service principal as the Secret examples name in credentialRef."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    audited_kube.kubectl("create", "namespace", name)
    prepare_cluster(audited_kube, arm_emulator, name)
    return name


def test_the_deployments_command_and_environment_run_the_operator(
    audited_kube: AuditedControlPlane, helm: str, arm_emulator: Emulator, workload: str, tmp_path: Path
) -> None:
    chart = ChartInstall(audited_kube, helm, {}, tmp_path)
    replicas = Replicas(chart, arm_emulator, tmp_path).start(1)
    try:
        operator = OperatorEnv(audited_kube, arm_emulator, workload)
        operator.wait_for("/healthz", lambda: http_get(replicas.health_urls[0]), timeout=60)
        reconcile_and_delete(operator)
        metrics = http_get(replicas.metrics_urls[0]) or ""
        assert "secureml_arm_calls_total" in metrics
    finally:
        replicas.stop()
    log = replicas.log(0)
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert records, f"SMLW_LOG_FORMAT=json: expected JSON log lines\n{log[-2000:]}"
    assert not [line for line in log.splitlines() if REFUSAL.search(line)]


def test_two_replicas_elect_one_active(
    audited_kube: AuditedControlPlane, helm: str, arm_emulator: Emulator, workload: str, tmp_path: Path
) -> None:
    chart = ChartInstall(audited_kube, helm, {}, tmp_path)
    replicas = Replicas(chart, arm_emulator, tmp_path).start(2)
    try:
        operator = OperatorEnv(audited_kube, arm_emulator, workload)

        def peers() -> dict[str, Any]:
            out = audited_kube.kubectl("get", "clusterkopfpeering", PEERING, "-o", "json").stdout
            status: dict[str, Any] = json.loads(out).get("status") or {}
            return status if {"replica-0", "replica-1"} <= set(status) else {}

        priorities = {peer["priority"] for peer in operator.wait_for("both replicas peered", peers).values()}
        assert len(priorities) == 2, f"both replicas have priority {priorities}: kopf pauses them all"
        reconcile_and_delete(operator)
    finally:
        replicas.stop()


# --- the documentation ------------------------------------------------------------------------------


def test_install_guide_documents_every_value_with_its_default() -> None:
    """docs/install.md's values table: every key of values.yaml (objects such as `resources` as one
    row), no key that values.yaml lacks, and each backticked default equal to values.yaml's."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = {}
    for line in (REPO_ROOT / "docs" / "install.md").read_text().split("## Values", 1)[1].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1]

    def lookup(key: str) -> Any:
        node = values
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"docs/install.md documents {key}, values.yaml lacks it"
            node = node[part]
        return node

    def leaves(node: dict[str, Any], prefix: str = "") -> Iterator[str]:
        for key, value in node.items():
            if isinstance(value, dict) and value and f"{prefix}{key}" not in rows:
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    assert sorted(set(leaves(values)) - set(rows)) == [], "values.yaml keys missing from docs/install.md"
    for key, default in rows.items():
        value = lookup(key)
        if default.startswith("`") and default.endswith("`"):
            assert yaml.safe_load(default.strip("`")) == value, f"{key}: documented {default}, values.yaml {value!r}"
