"""The tenancy admission policy on a real kube-apiserver: deploy/tenancy/admission-policy.yaml with
the example SecureMLTenancyPolicy (team-a by name, team-b by label) refuses at `kubectl apply` what
api/tenancy.evaluate() refuses, with the message admission_message() gives, and admits everything
when no policy object exists."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from apicases import MANAGED, Manifest, example

from kubeharness import ControlPlane, wait_for
from secureml_operator.api.crd import ADMISSION_POLICY_PATH, CRD_PATH, TENANCY_CRD_PATH
from secureml_operator.api.tenancy import ADMISSION_POLICY_NAME, admission_message, evaluate

pytestmark = pytest.mark.integration

EXAMPLE_POLICY = ADMISSION_POLICY_PATH.parent / "example-policy.yaml"
HUB = "04-customer-vnet-hub-firewall.yaml"
SUB = "00000000-0000-0000-0000-000000000000"
OTHER_SUB = "22222222-2222-2222-2222-222222222222"
LITWARE = f"/subscriptions/{SUB}/resourceGroups/rg-litware"
TEAM_B_RG = f"/subscriptions/{SUB}/resourceGroups/rg-team-b"
DENIED = f"ValidatingAdmissionPolicy '{ADMISSION_POLICY_NAME}' with binding '{ADMISSION_POLICY_NAME}' denied request"


@dataclass
class Tenancy:
    kube: ControlPlane
    team_a: str
    team_b: str
    team_c: str
    policy: Manifest

    def apply(self, namespace: str, manifest: Manifest, *flags: str) -> subprocess.CompletedProcess[str]:
        return self.kube.kubectl("apply", "-n", namespace, *flags, "-f", "-", input=json.dumps(manifest), check=False)

    def labels(self, namespace: str) -> dict[str, str]:
        found = json.loads(self.kube.kubectl("get", "namespace", namespace, "-o", "json").stdout)["metadata"]
        labels: dict[str, str] = found.get("labels", {})
        return labels

    def expected(self, namespace: str, manifest: Manifest) -> str:
        """What the Python twin says the API server must answer."""
        violations = evaluate(manifest["spec"], namespace, self.labels(namespace), self.policy["spec"], ())
        assert violations, "the twin admits this manifest"
        return admission_message(violations)

    def refused(self, namespace: str, manifest: Manifest) -> str:
        result = self.apply(namespace, manifest)
        assert result.returncode != 0, f"{manifest['metadata']['name']} was admitted in {namespace}"
        assert DENIED in result.stderr, result.stderr
        return result.stderr

    def enforcing(self) -> bool:
        """The API server has picked up the policy: a namespace without tenant is refused."""
        return self.apply(self.team_c, named(example(MANAGED), "probe"), "--dry-run=server").returncode != 0

    def restore_policy(self) -> None:
        self.kube.kubectl("apply", "-f", "-", input=json.dumps(self.policy))
        wait_for("the tenancy policy to be enforced", self.enforcing, timeout=60)

    def remove_policy(self) -> None:
        self.kube.kubectl("delete", "securemltenancypolicy", "default", "--ignore-not-found")
        wait_for("admission without a policy", lambda: not self.enforcing(), timeout=60)


def named(manifest: Manifest, name: str) -> Manifest:
    manifest = copy.deepcopy(manifest)
    manifest["metadata"]["name"] = name
    return manifest


def for_team_b(manifest: Manifest, change: Callable[[dict[str, Any]], object] = lambda spec: None) -> Manifest:
    """A copy in team-b's resource group, with its own credentials, then `change`d."""
    moved: Manifest = yaml.safe_load(yaml.safe_dump(manifest).replace(LITWARE, TEAM_B_RG))
    moved["spec"]["azure"]["resourceGroup"] = "rg-team-b"
    moved["spec"]["azure"]["credentialRef"] = {"name": "team-b-principal"}
    change(moved["spec"])
    return moved


@pytest.fixture(scope="module")
def tenancy(kube: ControlPlane) -> Iterator[Tenancy]:
    suffix = uuid.uuid4().hex[:6]
    team_a, team_b, team_c = (f"team-{letter}-{suffix}" for letter in "abc")
    for path in (CRD_PATH, TENANCY_CRD_PATH):
        kube.kubectl("apply", "--server-side", "-f", str(path))
    kube.kubectl(
        "wait",
        "--for=condition=established",
        "crd/securemlworkspaces.secureml.io",
        "crd/securemltenancypolicies.secureml.io",
        "--timeout=60s",
    )
    for namespace in (team_a, team_b, team_c):
        kube.kubectl("create", "namespace", namespace)
    kube.kubectl("label", "namespace", team_b, "secureml.io/tenant=team-b")
    policy = yaml.safe_load(EXAMPLE_POLICY.read_text())
    assert policy["spec"]["tenants"][0]["namespaces"] == ["team-a"]
    policy["spec"]["tenants"][0]["namespaces"] = [team_a]
    state = Tenancy(kube, team_a, team_b, team_c, policy)
    kube.kubectl("apply", "-f", str(ADMISSION_POLICY_PATH))
    try:
        state.restore_policy()
        yield state
    finally:
        state.remove_policy()  # before the binding goes: later tests in this control plane are not refused
        kube.kubectl("delete", "-f", str(ADMISSION_POLICY_PATH), "--ignore-not-found")
        for namespace in (team_a, team_b, team_c):
            kube.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_team_a_is_admitted_in_its_resource_group_and_on_the_shared_hub(tenancy: Tenancy) -> None:
    for manifest in (example(MANAGED), example(HUB)):
        result = tenancy.apply(tenancy.team_a, manifest)
        assert result.returncode == 0, result.stderr
    names = tenancy.kube.kubectl("get", "smlw", "-n", tenancy.team_a, "-o", "name").stdout.split()
    assert len(names) == 2


def test_team_b_is_admitted_in_its_own_resource_group(tenancy: Tenancy) -> None:
    manifest = for_team_b(example(MANAGED))
    assert evaluate(manifest["spec"], tenancy.team_b, tenancy.labels(tenancy.team_b), tenancy.policy["spec"], ()) == []
    result = tenancy.apply(tenancy.team_b, manifest)
    assert result.returncode == 0, result.stderr


STORAGE_LITWARE = f"{LITWARE}/providers/Microsoft.Storage/storageAccounts/stlitware"
TEAM_B_CASES: list[tuple[str, str, Callable[[dict[str, Any]], object], str]] = [
    (
        "subscription",
        MANAGED,
        lambda spec: spec["azure"].update(subscriptionId=OTHER_SUB),
        f"spec.azure.subscriptionId: subscription {OTHER_SUB} is not allowed for namespace {{ns}} "
        "by SecureMLTenancyPolicy default",
    ),
    (
        "resource-group",
        MANAGED,
        lambda spec: spec["azure"].update(resourceGroup="rg-litware"),
        f"spec.azure.resourceGroup: resource group rg-litware of subscription {SUB} is not allowed for "
        "namespace {ns} by SecureMLTenancyPolicy default",
    ),
    (
        "storage",
        MANAGED,
        lambda spec: spec["workspace"].update(storageAccountId=STORAGE_LITWARE),
        f"spec.workspace.storageAccountId: {STORAGE_LITWARE} is in resource group rg-litware of subscription "
        f"{SUB}, which is not allowed for namespace {{ns}}",
    ),
    (
        "hub",
        HUB,
        lambda spec: None,
        "spec.outbound.customerNetwork.egress.firewall.id: /subscriptions/11111111-1111-1111-1111-111111111111/"
        "resourceGroups/rg-connectivity/providers/Microsoft.Network/azureFirewalls/fw-hub is in subscription "
        "11111111-1111-1111-1111-111111111111, which is not allowed for namespace {ns}",
    ),
    (
        "no-credential-ref",
        MANAGED,
        lambda spec: spec["azure"].pop("credentialRef"),
        "spec.azure.credentialRef: namespace {ns} must bring its own credentials under SecureMLTenancyPolicy default",
    ),
    (
        "rule-target",
        "01-managed-internet-outbound.yaml",
        lambda spec: spec["outbound"]["managedNetwork"]["rules"][0]["privateEndpoint"].update(
            serviceResourceId=STORAGE_LITWARE
        ),
        f"spec.outbound.managedNetwork.rules[name=datalake].privateEndpoint.serviceResourceId: {STORAGE_LITWARE}",
    ),
]


@pytest.mark.parametrize(("case", "base", "change", "fragment"), TEAM_B_CASES, ids=[c[0] for c in TEAM_B_CASES])
def test_team_b_is_refused_what_it_may_not_use(
    tenancy: Tenancy, case: str, base: str, change: Callable[[dict[str, Any]], object], fragment: str
) -> None:
    manifest = named(for_team_b(example(base), change), f"b-{case}")
    stderr = tenancy.refused(tenancy.team_b, manifest)
    assert fragment.format(ns=tenancy.team_b) in stderr
    assert tenancy.expected(tenancy.team_b, manifest) in stderr, "the API server and evaluate() disagree"
    assert tenancy.team_a not in stderr and "rg-team-b" not in stderr.replace(TEAM_B_RG, "")


def test_team_b_sees_every_problem_of_an_unchanged_example_counted(tenancy: Tenancy) -> None:
    manifest = named(example(MANAGED), "b-litware")
    manifest["spec"]["azure"]["credentialRef"] = {"name": "team-b-principal"}
    stderr = tenancy.refused(tenancy.team_b, manifest)
    assert tenancy.expected(tenancy.team_b, manifest) in stderr
    assert "; and 2 more" in stderr  # place + 5 references in rg-litware: four shown


def test_a_namespace_no_tenant_matches_is_refused(tenancy: Tenancy) -> None:
    stderr = tenancy.refused(tenancy.team_c, example(MANAGED))
    assert (
        f"namespace {tenancy.team_c} may not use the secureml operator: no tenant of SecureMLTenancyPolicy default "
        "matches it"
    ) in stderr
    assert tenancy.expected(tenancy.team_c, example(MANAGED)) in stderr
    assert "team-a" not in stderr and "team-b" not in stderr


def test_without_a_policy_everything_is_admitted_and_later_only_spec_changes_are_checked(tenancy: Tenancy) -> None:
    outsider = named(example(MANAGED), "c-before-policy")
    try:
        tenancy.remove_policy()
        assert tenancy.apply(tenancy.team_c, outsider).returncode == 0
        anywhere = named(
            for_team_b(example(MANAGED), lambda spec: spec["azure"].update(subscriptionId=OTHER_SUB)), "b-x"
        )
        assert tenancy.apply(tenancy.team_b, anywhere, "--dry-run=server").returncode == 0
    finally:
        tenancy.restore_policy()
    # The workspace created before the policy stays writable where its spec is untouched (labels,
    # finalizers: the operator can still finish with it), and is checked again when the spec changes.
    kube, namespace = tenancy.kube, tenancy.team_c
    kube.kubectl("label", "smlw", "c-before-policy", "-n", namespace, "team=none")
    patch = json.dumps({"spec": {"drift": {"interval": "5m"}}})
    result = kube.kubectl("patch", "smlw", "c-before-policy", "-n", namespace, "--type=merge", "-p", patch, check=False)
    assert result.returncode != 0 and "no tenant of SecureMLTenancyPolicy default matches it" in result.stderr
    kube.kubectl("delete", "smlw", "c-before-policy", "-n", namespace)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["metadata"].update(name="team-a-only"), "read only the SecureMLTenancyPolicy named default"),
        (
            lambda p: p["spec"]["tenants"][1].update(resourceGroups=[f"{OTHER_SUB}/rg-team-b"]),
            "every resourceGroups entry must be <subscriptionId>/<resourceGroup> of a subscription",
        ),
        (
            lambda p: p["spec"]["tenants"][1].pop("namespaceSelector"),
            "a tenant needs namespaces or a namespaceSelector",
        ),
        (
            lambda p: p["spec"]["tenants"][1]["namespaceSelector"].update(matchLabels={}),
            "should have at least 1 properties",
        ),
    ],
    ids=["named-otherwise", "foreign-resource-group", "no-namespaces", "empty-selector"],
)
def test_the_policy_crd_refuses_a_policy_that_would_mislead(
    tenancy: Tenancy, change: Callable[[Manifest], object], message: str
) -> None:
    policy = copy.deepcopy(tenancy.policy)
    change(policy)
    result = tenancy.kube.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(policy), check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


# --- the chart's values ---------------------------------------------------------------------------

CHART = ADMISSION_POLICY_PATH.parents[2] / "charts" / "secureml-operator"


@pytest.fixture(scope="module")
def helm() -> str:
    """hack/helm.py builds helm once (cached) and prints its path, as for tests/integration/test_chart.py."""
    result = subprocess.run(
        [sys.executable, str(CHART.parents[1] / "hack" / "helm.py")], check=True, text=True, stdout=subprocess.PIPE
    )
    return result.stdout.strip().splitlines()[-1]


def helm_template(helm: str, *flags: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [helm, "template", "smlw", str(CHART), "--namespace", "secureml-system", *flags],
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert not check or result.returncode == 0, result.stderr
    return result


def test_the_chart_installs_the_policy_and_passes_the_allowed_subscriptions(helm: str) -> None:
    subscriptions = [SUB, OTHER_SUB]
    flags = ["--set-json", f"tenancy.allowedSubscriptions={json.dumps(subscriptions)}"]
    docs = [doc for doc in yaml.safe_load_all(helm_template(helm, *flags).stdout) if doc]
    policies = [doc for doc in docs if doc["kind"].startswith("ValidatingAdmissionPolicy")]
    assert [(doc["kind"], doc["metadata"]["name"]) for doc in policies] == [
        ("ValidatingAdmissionPolicy", "smlw-secureml-operator-tenancy"),
        ("ValidatingAdmissionPolicyBinding", "smlw-secureml-operator-tenancy"),
    ]
    plain = list(yaml.safe_load_all(ADMISSION_POLICY_PATH.read_text()))
    assert policies[0]["spec"] == plain[0]["spec"]
    assert policies[1]["spec"] == {**plain[1]["spec"], "policyName": "smlw-secureml-operator-tenancy"}
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    env = {item["name"]: item.get("value") for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SMLW_ALLOWED_SUBSCRIPTIONS"] == ",".join(subscriptions)
    role = next(doc for doc in docs if doc["kind"] == "ClusterRole")
    assert {"apiGroups": ["secureml.io"], "resources": ["securemltenancypolicies"], "verbs": ["list", "watch"]} in (
        role["rules"]
    )


def test_the_chart_can_leave_the_policy_out_and_refuses_a_malformed_subscription(helm: str) -> None:
    without = helm_template(helm, "--set", "tenancy.admissionPolicy=false").stdout
    assert "ValidatingAdmissionPolicy" not in without
    assert 'name: SMLW_ALLOWED_SUBSCRIPTIONS\n              value: ""' in without
    bad = helm_template(helm, "--set-json", 'tenancy.allowedSubscriptions=["sub-1"]', check=False)
    assert bad.returncode != 0 and 'tenancy.allowedSubscriptions: "sub-1" is not a subscription id' in bad.stderr
