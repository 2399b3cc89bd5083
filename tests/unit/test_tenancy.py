# ruff: noqa: E501  (a table reads best one case per line)
"""Tenancy (api/tenancy.py): every ARM id a spec references, the policy's verdict and messages, the
operator-only fallback, the policy's own rules, and the generated admission policy and chart template."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from apicases import CUSTOMER, MANAGED, Manifest, example
from pydantic import ValidationError

from secureml_operator.api import tenancy
from secureml_operator.api.crd import ADMISSION_POLICY_PATH, CHART_ADMISSION_POLICY_PATH, TENANCY_CRD_PATH
from secureml_operator.api.models import ARM_ID, Spec
from secureml_operator.api.tenancy import (
    REFERENCES,
    TenancyPolicySpec,
    admission_message,
    evaluate,
    referenced_ids,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_POLICY = REPO_ROOT / "deploy" / "tenancy" / "example-policy.yaml"
HUB = "04-customer-vnet-hub-firewall.yaml"
SUB = "00000000-0000-0000-0000-000000000000"
HUB_SUB = "11111111-1111-1111-1111-111111111111"
OTHER_SUB = "22222222-2222-2222-2222-222222222222"
LITWARE = f"/subscriptions/{SUB}/resourceGroups/rg-litware"
TEAM_B_RG = f"/subscriptions/{SUB}/resourceGroups/rg-team-b"
FOREIGN = f"/subscriptions/{OTHER_SUB}/resourceGroups/rg-x/providers/Microsoft.Storage/storageAccounts/stx"
TEAM_B_LABELS = {"secureml.io/tenant": "team-b", "kubernetes.io/metadata.name": "ml-b"}


def policy() -> TenancyPolicySpec:
    return TenancyPolicySpec.model_validate(yaml.safe_load(EXAMPLE_POLICY.read_text())["spec"])


def spec_of(manifest: Manifest) -> Spec:
    return Spec.model_validate(manifest["spec"])


def retarget(manifest: Manifest, base: str) -> Manifest:
    """A copy whose workspace and references (but the hub's) move to resource group `base`."""
    text = yaml.safe_dump(manifest).replace(LITWARE, base)
    moved: Manifest = yaml.safe_load(text)
    moved["spec"]["azure"]["resourceGroup"] = base.rsplit("/", 1)[-1]
    moved["spec"]["azure"]["credentialRef"] = {"name": "team-b-principal"}
    return moved


# --- referenced_ids covers every ARM id of the API ---------------------------------------------------


def _arm_id_paths(node: dict[str, Any], defs: dict[str, Any], path: str) -> set[str]:
    """REFERENCES-style paths of every ARM-id string in the JSON schema of Spec."""
    if "$ref" in node:
        return _arm_id_paths(defs[node["$ref"].rsplit("/", 1)[-1]], defs, path)
    found: set[str] = set()
    for option in node.get("anyOf", []):
        found |= _arm_id_paths(option, defs, path)
    if node.get("pattern") == ARM_ID:
        found.add(path)
    if node.get("type") == "array":
        items = node["items"]
        resolved = defs[items["$ref"].rsplit("/", 1)[-1]] if "$ref" in items else items
        marker = "[name]" if "name" in resolved.get("properties", {}) else "[]"
        found |= {f"{path}{marker}" + p[len(path) :] for p in _arm_id_paths(items, defs, path)}
    for key, child in node.get("properties", {}).items():
        found |= _arm_id_paths(child, defs, f"{path}.{key}" if path else key)
    return found


def test_references_cover_every_arm_id_field_of_the_api() -> None:
    schema = Spec.model_json_schema(by_alias=True)
    assert _arm_id_paths(schema, schema["$defs"], "") == set(REFERENCES)


def _set(document: dict[str, Any], reference: str, value: str) -> None:
    """Put `value` at a REFERENCES path of a spec document, creating what is missing."""
    node = document
    segments = reference.split(".")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment.endswith("[]"):
            node.setdefault(segment[:-2], []).append(value)
            return
        if segment.endswith("[name]"):
            rules = node.setdefault(segment[: -len("[name]")], [])
            rules.append({"name": "tenancy-target", "privateEndpoint": {"subresourceTarget": "blob"}})
            node = rules[-1]
            continue
        if last:
            node[segment] = value
        else:
            node = node.setdefault(segment, {})


FIREWALL = "/providers/Microsoft.Network/azureFirewalls/fw"
TYPED_IDS = {  # fields whose id must name one ARM type (api/rules.py): what they get instead of FOREIGN's
    "firewall.id": FIREWALL,
    "firewall.policyId": "/providers/Microsoft.Network/firewallPolicies/afwp",
}


def _reference_case(reference: str) -> tuple[str, Manifest]:
    """An example whose field at `reference` holds an id in another subscription (value, manifest)."""
    manifest = copy.deepcopy(example(CUSTOMER if "customerNetwork" in reference else MANAGED))
    spec = manifest["spec"]
    if reference.startswith("outbound.customerNetwork.virtualNetwork"):
        spec["outbound"]["customerNetwork"]["virtualNetwork"].pop("name")
    if reference.startswith("outbound.customerNetwork.egress.firewall"):
        spec["outbound"]["customerNetwork"]["egress"] = {"firewall": {"id": LITWARE + FIREWALL}}
    if reference == "workspace.identity.userAssignedIdentityId":
        spec["workspace"]["identity"] = {"type": "UserAssigned"}
    if reference == "inbound.privateEndpoint.subnetId":
        spec["inbound"]["privateEndpoint"] = {}
    typed = next((suffix for field, suffix in TYPED_IDS.items() if reference.endswith(field)), None)
    value = FOREIGN.rsplit("/providers/", 1)[0] + typed if typed else FOREIGN
    _set(spec, reference, value)
    return value, manifest


def _expected_path(reference: str) -> str:
    return "spec." + reference.replace("[name]", "[name=tenancy-target]").replace("[]", "")


@pytest.mark.parametrize("reference", REFERENCES)
def test_every_referenced_id_is_reported_with_its_path(reference: str) -> None:
    value, manifest = _reference_case(reference)
    found = referenced_ids(spec_of(manifest))
    assert (_expected_path(reference), value) in found
    assert found[0] == ("spec.azure", LITWARE)


@pytest.mark.parametrize("reference", REFERENCES)
def test_every_referenced_id_outside_the_tenant_is_refused(reference: str) -> None:
    value, manifest = _reference_case(reference)
    violations = evaluate(spec_of(manifest), "team-a", {}, policy(), frozenset())
    path = _expected_path(reference)
    assert [v for v in violations if v.startswith(f"{path}: {value} ")] == [
        tenancy.REFERENCE_SUBSCRIPTION.format(path=path, id=value, subscription=OTHER_SUB, namespace="team-a")
    ]
    unlisted = evaluate(spec_of(manifest), "team-a", {}, None, {SUB, HUB_SUB})
    assert unlisted == [tenancy.UNLISTED_REFERENCE.format(path=path, id=value, subscription=OTHER_SUB)]


def test_a_dict_spec_gives_the_same_ids_as_the_model() -> None:
    manifest = example(HUB)
    assert referenced_ids(manifest["spec"]) == referenced_ids(spec_of(manifest))
    assert [path for path, _ in referenced_ids(manifest["spec"])] == [
        "spec.azure",
        "spec.workspace.storageAccountId",
        "spec.workspace.keyVaultId",
        "spec.workspace.containerRegistryId",
        "spec.outbound.customerNetwork.egress.firewall.id",
        "spec.outbound.customerNetwork.egress.firewall.policyId",
        "spec.outbound.customerNetwork.egress.firewall.hubVirtualNetworkId",
    ]


# --- the verdict, table-driven ---------------------------------------------------------------------


def _msg(template: str, **values: str) -> str:
    return template.format(**values)


@dataclass(frozen=True)
class Verdict:
    id: str
    base: str
    namespace: str
    labels: dict[str, str]
    mutate: Callable[[Manifest], Manifest] = lambda m: m
    expected: list[str] = field(default_factory=list)
    policy: Callable[[TenancyPolicySpec], TenancyPolicySpec | None] = lambda p: p
    allowed: frozenset[str] = frozenset()


def _edit(change: Callable[[dict[str, Any]], object]) -> Callable[[Manifest], Manifest]:
    def apply(manifest: Manifest) -> Manifest:
        change(manifest["spec"])
        return manifest

    return apply


def _team_b(change: Callable[[dict[str, Any]], object] = lambda s: None) -> Callable[[Manifest], Manifest]:
    def apply(manifest: Manifest) -> Manifest:
        moved = retarget(manifest, TEAM_B_RG)
        change(moved["spec"])
        return moved

    return apply


def _with_tenant(**tenant: Any) -> Callable[[TenancyPolicySpec], TenancyPolicySpec]:
    def apply(current: TenancyPolicySpec) -> TenancyPolicySpec:
        document = current.model_dump(by_alias=True)
        document["tenants"].append(tenant)
        return TenancyPolicySpec.model_validate(document)

    return apply


STORAGE_LITWARE = f"{LITWARE}/providers/Microsoft.Storage/storageAccounts/stlitware"
HUB_FIREWALL = (
    f"/subscriptions/{HUB_SUB}/resourceGroups/rg-connectivity/providers/Microsoft.Network/azureFirewalls/fw-hub"
)
HUB_VNET = (
    f"/subscriptions/{HUB_SUB}/resourceGroups/rg-connectivity/providers/Microsoft.Network/virtualNetworks/vnet-hub"
)
HUB_POLICY = (
    f"/subscriptions/{HUB_SUB}/resourceGroups/rg-connectivity/providers/Microsoft.Network/firewallPolicies/afwp-hub"
)
B = {"namespace": "ml-b"}

VERDICTS = [
    Verdict("team-a-by-name", MANAGED, "team-a", {}),
    Verdict("team-a-hub-prefix", HUB, "team-a", {}),
    Verdict("team-a-case-insensitive", HUB, "team-a", {}, _edit(lambda s: s["workspace"].update(
        storageAccountId=STORAGE_LITWARE.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/").replace("/RESOURCEGROUPS/", "/resourceGroups/").replace("/PROVIDERS/", "/providers/")))),
    Verdict("team-b-by-label", MANAGED, "ml-b", TEAM_B_LABELS, _team_b()),
    Verdict("no-tenant", MANAGED, "team-c", {"kubernetes.io/metadata.name": "team-c"},
            expected=[_msg(tenancy.NO_TENANT, namespace="team-c")]),
    Verdict("label-value-differs", MANAGED, "ml-b", {"secureml.io/tenant": "team-bb"}, _team_b(),
            expected=[_msg(tenancy.NO_TENANT, namespace="ml-b")]),
    Verdict("team-b-wrong-subscription", MANAGED, "ml-b", TEAM_B_LABELS, _team_b(lambda s: s["azure"].update(subscriptionId=OTHER_SUB)),
            expected=[_msg(tenancy.PLACE_SUBSCRIPTION, subscription=OTHER_SUB, **B)]),
    Verdict("team-b-wrong-resource-group", MANAGED, "ml-b", TEAM_B_LABELS, _team_b(lambda s: s["azure"].update(resourceGroup="rg-litware")),
            expected=[_msg(tenancy.PLACE_RESOURCE_GROUP, subscription=SUB, resourceGroup="rg-litware", **B)]),
    Verdict("team-b-foreign-storage", MANAGED, "ml-b", TEAM_B_LABELS, _team_b(lambda s: s["workspace"].update(storageAccountId=STORAGE_LITWARE)),
            expected=[_msg(tenancy.REFERENCE_RESOURCE_GROUP, path="spec.workspace.storageAccountId", id=STORAGE_LITWARE, subscription=SUB, resourceGroup="rg-litware", **B)]),
    Verdict("team-b-hub", HUB, "ml-b", TEAM_B_LABELS, _team_b(), expected=[
        _msg(tenancy.REFERENCE_SUBSCRIPTION, path="spec.outbound.customerNetwork.egress.firewall.id", id=HUB_FIREWALL, subscription=HUB_SUB, **B),
        _msg(tenancy.REFERENCE_SUBSCRIPTION, path="spec.outbound.customerNetwork.egress.firewall.policyId", id=HUB_POLICY, subscription=HUB_SUB, **B),
        _msg(tenancy.REFERENCE_SUBSCRIPTION, path="spec.outbound.customerNetwork.egress.firewall.hubVirtualNetworkId", id=HUB_VNET, subscription=HUB_SUB, **B)]),
    Verdict("team-b-without-credentials", MANAGED, "ml-b", TEAM_B_LABELS, _team_b(lambda s: s["azure"].pop("credentialRef")),
            expected=[_msg(tenancy.CREDENTIAL_REQUIRED, **B)]),
    Verdict("prefix-is-not-a-place", MANAGED, "team-a", {}, _edit(lambda s: s["azure"].update(subscriptionId=HUB_SUB)),
            expected=[_msg(tenancy.PLACE_SUBSCRIPTION, subscription=HUB_SUB, namespace="team-a")]),
    Verdict("prefix-ends-at-a-segment", HUB, "team-a", {}, _edit(lambda s: s["outbound"]["customerNetwork"]["egress"]["firewall"].update(id=HUB_FIREWALL + "2")),
            expected=[_msg(tenancy.REFERENCE_SUBSCRIPTION, path="spec.outbound.customerNetwork.egress.firewall.id", id=HUB_FIREWALL + "2", subscription=HUB_SUB, namespace="team-a")]),
    Verdict("union-of-tenants", MANAGED, "ml-b", TEAM_B_LABELS, _team_b(lambda s: s["workspace"].update(storageAccountId=FOREIGN)),
            policy=_with_tenant(name="team-b-data", namespaceSelector={"matchLabels": {"secureml.io/tenant": "team-b"}}, subscriptions=[OTHER_SUB])),
    Verdict("union-whole-subscription", MANAGED, "ml-b", TEAM_B_LABELS, _team_b(lambda s: s["azure"].update(resourceGroup="rg-anything")),
            policy=_with_tenant(name="team-b-sandbox", namespaces=["ml-b"], subscriptions=[SUB.upper()])),
    Verdict("credentials-required-by-any-tenant", MANAGED, "team-a", TEAM_B_LABELS, expected=[_msg(tenancy.CREDENTIAL_REQUIRED, namespace="team-a")]),
    Verdict("no-policy-allowed", HUB, "anywhere", {}, policy=lambda p: None, allowed=frozenset({SUB, HUB_SUB})),
    Verdict("no-policy-nothing-allowed", MANAGED, "anywhere", {}, _edit(lambda s: s["workspace"].pop("applicationInsightsId")), policy=lambda p: None, expected=[
        _msg(tenancy.UNLISTED_PLACE, subscription=SUB),
        *(_msg(tenancy.UNLISTED_REFERENCE, path=f"spec.{path}", id=value, subscription=SUB) for path, value in [
            ("workspace.storageAccountId", STORAGE_LITWARE),
            ("workspace.keyVaultId", f"{LITWARE}/providers/Microsoft.KeyVault/vaults/kv-litware"),
            ("workspace.containerRegistryId", f"{LITWARE}/providers/Microsoft.ContainerRegistry/registries/crlitware"),
            ("inbound.privateEndpoint.subnetId", f"{LITWARE}/providers/Microsoft.Network/virtualNetworks/vnet-litware-clients/subnets/private-endpoints")])]),
    Verdict("no-policy-hub-unlisted", HUB, "anywhere", {}, policy=lambda p: None, allowed=frozenset({SUB}), expected=[
        _msg(tenancy.UNLISTED_REFERENCE, path="spec.outbound.customerNetwork.egress.firewall.id", id=HUB_FIREWALL, subscription=HUB_SUB),
        _msg(tenancy.UNLISTED_REFERENCE, path="spec.outbound.customerNetwork.egress.firewall.policyId", id=HUB_POLICY, subscription=HUB_SUB),
        _msg(tenancy.UNLISTED_REFERENCE, path="spec.outbound.customerNetwork.egress.firewall.hubVirtualNetworkId", id=HUB_VNET, subscription=HUB_SUB)]),
]  # fmt: skip


@pytest.mark.parametrize("case", VERDICTS, ids=lambda c: c.id)
def test_verdict(case: Verdict) -> None:
    manifest = case.mutate(copy.deepcopy(example(case.base)))
    verdict = evaluate(spec_of(manifest), case.namespace, case.labels, case.policy(policy()), case.allowed)
    assert verdict == case.expected


def test_messages_never_name_other_tenants_or_namespaces() -> None:
    """No message shows a policy entry (a tenant's name, namespaces, subscriptions, resource groups,
    prefixes, labels) that the namespace did not write in its own spec."""
    secret = {
        "name": "secret-team",
        "namespaces": ["secret-namespace"],
        "subscriptions": [OTHER_SUB],
        "resourceGroups": [f"{OTHER_SUB}/rg-secret"],
        "resourceIdPrefixes": [f"/subscriptions/{HUB_SUB}/resourceGroups/rg-secret-hub"],
    }
    with_secret = _with_tenant(**secret)(policy())
    entries = set()
    for tenant in with_secret.tenants:
        entries |= {tenant.name, *tenant.namespaces, *tenant.subscriptions, *tenant.resource_id_prefixes}
        entries |= {group.split("/", 1)[1] for group in tenant.resource_groups}
        entries |= set((tenant.namespace_selector.match_labels if tenant.namespace_selector else {}).values())
    checked = 0
    for case in VERDICTS:
        manifest = case.mutate(copy.deepcopy(example(case.base)))
        own = yaml.safe_dump(manifest["spec"]).lower() + case.namespace
        hidden = {entry for entry in entries if entry.lower() not in own}
        for text in evaluate(spec_of(manifest), case.namespace, case.labels, with_secret, frozenset()):
            checked += 1
            assert not [entry for entry in hidden if entry.lower() in text.lower()], text
    assert checked >= 8


def test_the_policy_may_be_given_as_its_stored_spec() -> None:
    stored = yaml.safe_load(EXAMPLE_POLICY.read_text())["spec"]
    manifest = example(MANAGED)
    assert evaluate(manifest["spec"], "team-c", {}, stored, frozenset()) == [
        _msg(tenancy.NO_TENANT, namespace="team-c")
    ]


def test_admission_message_shows_the_first_violations_and_counts_the_rest() -> None:
    assert admission_message([]) == ""
    assert admission_message(["a", "b"]) == "a; b"
    assert admission_message([str(i) for i in range(7)]) == "0; 1; 2; 3; and 3 more"


def test_admission_message_fits_the_api_servers_limit() -> None:
    """The API server drops a messageExpression result over 5 KiB: the worst case stays below."""
    longest = f"/subscriptions/{OTHER_SUB}/resourceGroups/{'r' * 90}/providers/Microsoft.Storage/storageAccounts/"
    longest += "s" * (400 - len(longest))
    manifest = example(CUSTOMER)
    manifest["spec"]["outbound"]["customerNetwork"]["allowlistEgressOn"] = [longest] * 20
    namespace = "n" * 63
    long_policy = _with_tenant(name="long", namespaces=[namespace], subscriptions=[SUB])(policy())
    violations = evaluate(spec_of(manifest), namespace, {}, long_policy, frozenset())
    assert len(violations) > tenancy.MESSAGE_LIMIT
    assert len(admission_message(violations).encode()) < 5 * 1024


# --- the policy's own rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant", "message"),
    [
        ({"name": "t", "subscriptions": [SUB]}, "a tenant needs namespaces or a namespaceSelector"),
        ({"name": "t", "namespaces": ["a"], "subscriptions": [SUB], "resourceGroups": [f"{OTHER_SUB}/rg"]},
         "every resourceGroups entry must be"),
        ({"name": "t", "namespaces": ["a"], "subscriptions": [SUB, OTHER_SUB], "resourceGroups": [f"{SUB}/rg"]},
         "give every subscription at least one"),
        ({"name": "t", "namespaceSelector": {"matchLabels": {}}}, "at least 1 item"),
        ({"name": "t", "namespaces": ["a"], "subscriptions": ["zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"]}, "String should match pattern"),
        ({"name": "t", "namespaces": ["a"], "resourceIdPrefixes": ["/subscriptions/x/"]}, "String should match pattern"),
    ],
)  # fmt: skip
def test_invalid_tenants_are_refused(tenant: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TenancyPolicySpec.model_validate({"tenants": [tenant]})


def test_the_example_policy_is_valid_and_named_default() -> None:
    document = yaml.safe_load(EXAMPLE_POLICY.read_text())
    assert document["kind"] == tenancy.TENANCY_KIND and document["metadata"]["name"] == tenancy.POLICY_NAME
    assert [tenant.name for tenant in policy().tenants] == ["team-a", "team-b"]


# --- generated manifests --------------------------------------------------------------------------


def test_the_crd_carries_the_policys_rules_and_bounds() -> None:
    crd = yaml.safe_load(TENANCY_CRD_PATH.read_text())
    assert crd["spec"]["scope"] == "Cluster"
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["x-kubernetes-validations"][0]["rule"] == "self.metadata.name == 'default'"
    tenants = schema["properties"]["spec"]["properties"]["tenants"]
    assert tenants["maxItems"] and tenants["x-kubernetes-list-map-keys"] == ["name"]
    item = tenants["items"]
    assert len(item["x-kubernetes-validations"]) == 3
    for key in ("namespaces", "subscriptions", "resourceGroups", "resourceIdPrefixes"):
        assert item["properties"][key]["maxItems"] and item["properties"][key]["items"]["maxLength"]
    labels = item["properties"]["namespaceSelector"]["properties"]["matchLabels"]
    assert labels["additionalProperties"] == {"type": "string", "maxLength": 63} and labels["minProperties"] == 1


def test_the_admission_policy_reads_the_default_policy_and_allows_without_it() -> None:
    vap, binding = yaml.safe_load_all(ADMISSION_POLICY_PATH.read_text())
    assert vap["spec"]["paramKind"] == {"apiVersion": "secureml.io/v1alpha1", "kind": tenancy.TENANCY_KIND}
    assert vap["spec"]["matchConstraints"]["resourceRules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert binding["spec"]["paramRef"] == {"name": "default", "parameterNotFoundAction": "Allow"}
    assert binding["spec"]["policyName"] == vap["metadata"]["name"]
    names = [variable["name"] for variable in vap["spec"]["variables"]]
    assert names == [name for name, _ in tenancy.VARIABLES]
    for template in (tenancy.NO_TENANT, tenancy.PLACE_SUBSCRIPTION, tenancy.REFERENCE_RESOURCE_GROUP):
        literal = template.split("{")[0] or template.split("}")[1].split("{")[0]
        assert literal in vap["spec"]["variables"][-1]["expression"]


def test_the_chart_template_holds_the_same_policy() -> None:
    text = CHART_ADMISSION_POLICY_PATH.read_text()
    body = text.split("{{- if .Values.tenancy.admissionPolicy }}\n", 1)[1].rsplit("{{- end }}", 1)[0]
    rendered = body.replace('{{ include "secureml-operator.fullname" . }}-tenancy', tenancy.ADMISSION_POLICY_NAME)
    rendered = rendered.replace('    {{- include "secureml-operator.labels" . | nindent 4 }}\n', "    {}\n")
    chart_docs = list(yaml.safe_load_all(rendered))
    plain_docs = list(yaml.safe_load_all(ADMISSION_POLICY_PATH.read_text()))
    assert [doc["spec"] for doc in chart_docs] == [doc["spec"] for doc in plain_docs]
