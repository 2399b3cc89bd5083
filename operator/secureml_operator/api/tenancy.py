"""Tenancy: which namespaces may point the operator at which Azure subscriptions, resource groups
and resources. One cluster-scoped SecureMLTenancyPolicy named `default` (secureml.io/v1alpha1)
lists the tenants; the CRD in crds/ is generated from the models below (`make crds`).

The same check runs in two places, stated once here:

- at `kubectl apply`, a ValidatingAdmissionPolicy whose CEL (`admission_policy()`) reads the policy
  through its binding's paramRef (no policy object: the request is allowed);
- in the operator, `evaluate()`: with the policy it gives the same verdict and the same messages
  (`admission_message()` is what the API server shows); without one, the operator acts only within
  its own allowed subscriptions (SMLW_ALLOWED_SUBSCRIPTIONS, Helm value tenancy.allowedSubscriptions).

Semantics: a namespace may use what the union of the tenants that match it allow (by name, or by
matchLabels on the namespace's labels); a namespace no tenant matches may not use the operator.
The workspace must sit in an allowed subscription (and, when the tenant lists resourceGroups, one
of those resource groups); every ARM id the spec references (`referenced_ids()`) must be in an
allowed subscription / resource group or under an allowed resourceIdPrefix. requireCredentialRef
on any matching tenant makes spec.azure.credentialRef mandatory. ARM ids compare case-insensitively.
Messages name only the namespace's own values, never another tenant's or namespace's.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import Field

from secureml_operator.api.models import GROUP, PLURAL, RESOURCE_GROUP, VERSION, Model, Spec
from secureml_operator.api.rules import Rule

TENANCY_KIND, TENANCY_PLURAL = "SecureMLTenancyPolicy", "securemltenancypolicies"
POLICY_NAME = "default"  # the only SecureMLTenancyPolicy read: the binding's paramRef and the operator
ADMISSION_POLICY_NAME = "secureml-tenancy"  # the ValidatingAdmissionPolicy and binding of the plain manifest

GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

SubscriptionId = Annotated[str, Field(pattern=GUID, min_length=36, max_length=36)]
ResourceGroupRef = Annotated[str, Field(pattern=GUID[:-1] + f"/{RESOURCE_GROUP}$", max_length=127)]
IdPrefix = Annotated[str, Field(pattern=r"^/subscriptions/[^/]+(/[^/]+)*$", max_length=400)]
NamespaceName = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]
LabelValue = Annotated[str, Field(max_length=63)]


# The two cross-list rules compare subscription ids exactly (as written): the CRD's cost budget
# has no room for lowerAscii() in a loop over loops. Checks of workspaces ignore case.
TENANCY_RULES: tuple[Rule, ...] = (
    Rule(
        "policy-named-default",
        TENANCY_KIND,
        f"self.metadata.name == '{POLICY_NAME}'",
        f"the operator and its admission policy read only the SecureMLTenancyPolicy named {POLICY_NAME}: "
        "put every tenant in that one",
    ),
    Rule(
        "tenant-selects-namespaces",
        "Tenant",
        "size(self.namespaces) > 0 || has(self.namespaceSelector)",
        "a tenant needs namespaces or a namespaceSelector",
        lambda t: bool(t.namespaces) or t.namespace_selector is not None,
    ),
    Rule(
        "resource-groups-in-subscriptions",
        "Tenant",
        "self.resourceGroups.all(g, g.substring(0, 36) in self.subscriptions)",
        "every resourceGroups entry must be <subscriptionId>/<resourceGroup> of a subscription in the tenant's "
        "subscriptions (written the same way)",
        lambda t: all(g[:36] in t.subscriptions for g in t.resource_groups),
    ),
    Rule(
        "subscriptions-narrowed-by-resource-groups",
        "Tenant",
        "size(self.resourceGroups) == 0 || self.subscriptions.all(s, self.resourceGroups.exists(g, g.startsWith(s)))",
        "with resourceGroups, the tenant may use only those resource groups: give every subscription at least one "
        "(to allow a whole subscription, list it in another tenant for the same namespaces)",
        lambda t: (
            not t.resource_groups or all(any(g.startswith(s) for g in t.resource_groups) for s in t.subscriptions)
        ),
    ),
)


@functools.cache
def tenancy_rules_for(scope: str) -> tuple[Rule, ...]:
    """As `rules_for`, of TENANCY_RULES."""
    return tuple(rule for rule in TENANCY_RULES if rule.scope == scope)


def tenancy_cel_rules_for(scope: str) -> list[dict[str, str]]:
    return [rule.x_kubernetes_validation() for rule in tenancy_rules_for(scope) if rule.cel is not None]


class TenancyModel(Model):
    """Like the SecureMLWorkspace models, with the rules of TENANCY_RULES."""

    cross_field_rules: ClassVar[Callable[[str], Sequence[Rule]]] = staticmethod(tenancy_rules_for)


class NamespaceSelector(TenancyModel):
    """Namespaces by their labels."""

    match_labels: dict[str, LabelValue] = Field(
        min_length=1,
        max_length=20,
        description="Labels a namespace must all carry, with these values (at least one: an empty selector "
        "would match every namespace).",
    )


class Tenant(TenancyModel):
    """A team: its namespaces, and the Azure scopes they may use."""

    name: str = Field(pattern=DNS_LABEL, max_length=63, description="The tenant's name, unique in the policy.")
    namespaces: list[NamespaceName] = Field(
        default_factory=list, max_length=100, description="Namespaces of the tenant, by name."
    )
    namespace_selector: NamespaceSelector | None = Field(
        default=None, description="Namespaces of the tenant, by label (with namespaces: either matches)."
    )
    subscriptions: list[SubscriptionId] = Field(
        default_factory=list,
        max_length=50,
        description="Subscriptions (GUIDs) the tenant's workspaces may live in and reference resources of.",
    )
    resource_groups: list[ResourceGroupRef] = Field(
        default_factory=list,
        max_length=50,
        description="<subscriptionId>/<resourceGroup> entries: when set, only these resource groups of the "
        "subscriptions may be used; empty: any resource group of the subscriptions.",
    )
    resource_id_prefixes: list[IdPrefix] = Field(
        default_factory=list,
        max_length=50,
        description="ARM id prefixes the tenant may also reference outside its subscriptions, e.g. a shared "
        "hub VNet or firewall: /subscriptions/<id>/resourceGroups/<name>[/providers/...]. Not a place for "
        "workspaces.",
    )
    require_credential_ref: bool = Field(
        default=False,
        description="The tenant's namespaces must set spec.azure.credentialRef (their own service principal) "
        "instead of using the operator's identity.",
    )


class TenancyPolicySpec(TenancyModel):
    """Which namespaces may use the operator, and which Azure scopes each may use."""

    tenants: list[Tenant] = Field(
        default_factory=list,
        max_length=100,
        description="The tenants. A namespace may use what the tenants matching it allow together; a namespace "
        "no tenant matches may not use the operator.",
    )


# --- the ARM ids a SecureMLWorkspace spec references ------------------------------------------------

# Paths under spec, camelCase. `field[]` is a list of ids; `field[name]` a list of objects keyed by
# name (only plain fields after it). tests/unit/test_tenancy.py checks this covers every ArmId field.
REFERENCES: tuple[str, ...] = (
    "workspace.storageAccountId",
    "workspace.keyVaultId",
    "workspace.containerRegistryId",
    "workspace.applicationInsightsId",
    "workspace.identity.userAssignedIdentityId",
    "inbound.privateEndpoint.subnetId",
    "outbound.managedNetwork.rules[name].privateEndpoint.serviceResourceId",
    "outbound.customerNetwork.virtualNetwork.existingId",
    "outbound.customerNetwork.egress.firewall.id",
    "outbound.customerNetwork.egress.firewall.policyId",
    "outbound.customerNetwork.egress.firewall.hubVirtualNetworkId",
    "outbound.customerNetwork.allowlistEgressOn[]",
)
PLACE_PATH = "spec.azure"  # referenced_ids() first entry: the workspace's own subscription and resource group


def _document(spec: Spec | Mapping[str, Any]) -> dict[str, Any]:
    model = spec if isinstance(spec, Spec) else Spec.model_validate(spec)
    document: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True)
    return document


def _walk(node: Any, segments: Sequence[str], path: str) -> list[tuple[str, str]]:
    if not segments:
        return [(path, node)] if isinstance(node, str) else []
    head, rest = segments[0], segments[1:]
    if not isinstance(node, dict):
        return []
    if head.endswith("[]"):
        field = head[:-2]
        return [(f"{path}.{field}", item) for item in node.get(field) or [] if isinstance(item, str)]
    if head.endswith("[name]"):
        field = head[: -len("[name]")]
        found: list[tuple[str, str]] = []
        for item in node.get(field) or []:
            found += _walk(item, rest, f"{path}.{field}[name={item.get('name')}]")
        return found
    return _walk(node[head], rest, f"{path}.{head}") if head in node else []


def referenced_ids(spec: Spec | Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field path, ARM id) for the workspace's own place (`spec.azure`, as the resource group's id)
    and then every ARM id the spec references, in REFERENCES order."""
    return _references(_document(spec))


def _references(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    azure = document["azure"]
    place = f"/subscriptions/{azure['subscriptionId']}/resourceGroups/{azure['resourceGroup']}"
    found = [(PLACE_PATH, place)]
    for reference in REFERENCES:
        found += _walk(document, reference.split("."), "spec")
    return found


# --- messages: one template each, formatted in Python and compiled to CEL -------------------------

_BY = f"by SecureMLTenancyPolicy {POLICY_NAME}"
NO_TENANT = (
    "namespace {namespace} may not use the secureml operator: no tenant of SecureMLTenancyPolicy "
    + POLICY_NAME
    + " matches it; ask your cluster administrator to add the namespace to a tenant"
)
PLACE_SUBSCRIPTION = (
    "spec.azure.subscriptionId: subscription {subscription} is not allowed for namespace {namespace} "
    + _BY
    + "; use a subscription of your tenant"
)
PLACE_RESOURCE_GROUP = (
    "spec.azure.resourceGroup: resource group {resourceGroup} of subscription {subscription} is not allowed "
    "for namespace {namespace} " + _BY + "; use a resource group of your tenant"
)
CREDENTIAL_REQUIRED = (
    "spec.azure.credentialRef: namespace {namespace} must bring its own credentials under SecureMLTenancyPolicy "
    + POLICY_NAME
    + "; name a Secret with tenantId, clientId and clientSecret instead of using the operator's identity"
)
REFERENCE_SUBSCRIPTION = (
    "{path}: {id} is in subscription {subscription}, which is not allowed for namespace {namespace} "
    + _BY
    + "; reference a resource in your tenant's subscriptions or under its resourceIdPrefixes"
)
REFERENCE_RESOURCE_GROUP = (
    "{path}: {id} is in resource group {resourceGroup} of subscription {subscription}, which is not allowed "
    "for namespace {namespace} " + _BY + "; reference a resource in your tenant's resource groups or under its "
    "resourceIdPrefixes"
)
_OPERATOR_ONLY = (
    "without a SecureMLTenancyPolicy the operator acts only within its allowed subscriptions "
    "(SMLW_ALLOWED_SUBSCRIPTIONS, Helm value tenancy.allowedSubscriptions)"
)
UNLISTED_PLACE = (
    "spec.azure.subscriptionId: subscription {subscription} is not allowed: "
    + _OPERATOR_ONLY
    + "; use one of those, or ask your cluster administrator to allow it"
)
UNLISTED_REFERENCE = (
    "{path}: {id} is in subscription {subscription}, which is not allowed: "
    + _OPERATOR_ONLY
    + "; reference a resource in one of those"
)
MESSAGE_LIMIT = 4  # violations shown by the API server (its message must stay under 5 KiB)


def admission_message(violations: Sequence[str]) -> str:
    """What the admission policy answers for these violations (evaluate's list, in its order)."""
    if len(violations) <= MESSAGE_LIMIT:
        return "; ".join(violations)
    return "; ".join(violations[:MESSAGE_LIMIT]) + f"; and {len(violations) - MESSAGE_LIMIT} more"


def _parts(arm_id: str) -> tuple[str, str]:
    """The subscription and resource group of an ARM id (the CRD guarantees the shape)."""
    segments = arm_id.split("/")
    return segments[2], segments[4]


def matching_tenants(policy: TenancyPolicySpec, namespace: str, namespace_labels: Mapping[str, str]) -> list[Tenant]:
    return [
        tenant
        for tenant in policy.tenants
        if namespace in tenant.namespaces
        or (
            tenant.namespace_selector is not None
            and all(namespace_labels.get(key) == value for key, value in tenant.namespace_selector.match_labels.items())
        )
    ]


def _in_scope(tenants: Sequence[Tenant], subscription: str, group: str) -> bool:
    """In a subscription (and, where the tenant lists them, a resource group) some tenant allows."""
    scopes = [{s.lower() for s in tenant.resource_groups or tenant.subscriptions} for tenant in tenants]
    return any(subscription.lower() in scope or f"{subscription}/{group}".lower() in scope for scope in scopes)


def _under_prefix(tenants: Sequence[Tenant], arm_id: str) -> bool:
    lowered = arm_id.lower()
    prefixes = [prefix.lower() for tenant in tenants for prefix in tenant.resource_id_prefixes]
    return any(lowered == prefix or lowered.startswith(prefix + "/") for prefix in prefixes)


def _policy(policy: TenancyPolicySpec | Mapping[str, Any]) -> TenancyPolicySpec:
    return policy if isinstance(policy, TenancyPolicySpec) else TenancyPolicySpec.model_validate(policy)


def may_reach(
    arm_id: str,
    namespace: str,
    namespace_labels: Mapping[str, str],
    policy: TenancyPolicySpec | Mapping[str, Any] | None,
    allowed_subscriptions: Collection[str],
) -> bool:
    """Whether the namespace may reference this one id (the rule `evaluate` applies to each)."""
    subscription, group = _parts(arm_id)
    if policy is None:
        return subscription.lower() in {entry.lower() for entry in allowed_subscriptions}
    tenants = matching_tenants(_policy(policy), namespace, namespace_labels)
    return _in_scope(tenants, subscription, group) or _under_prefix(tenants, arm_id)


def evaluate(
    spec: Spec | Mapping[str, Any],
    namespace: str,
    namespace_labels: Mapping[str, str],
    policy: TenancyPolicySpec | Mapping[str, Any] | None,
    allowed_subscriptions: Collection[str],
) -> list[str]:
    """Why `namespace` may not have this workspace (empty: it may). `policy`: the spec of the
    SecureMLTenancyPolicy named `default`, or None when there is none; then only
    `allowed_subscriptions` (the operator's own setting) may be used."""
    document = _document(spec)
    references = _references(document)
    (_, place), others = references[0], references[1:]
    subscription, resource_group = _parts(place)
    if policy is None:
        allowed = {entry.lower() for entry in allowed_subscriptions}
        violations = [] if subscription.lower() in allowed else [UNLISTED_PLACE.format(subscription=subscription)]
        for path, arm_id in others:
            if _parts(arm_id)[0].lower() not in allowed:
                violations.append(UNLISTED_REFERENCE.format(path=path, id=arm_id, subscription=_parts(arm_id)[0]))
        return violations
    tenants = matching_tenants(_policy(policy), namespace, namespace_labels)
    if not tenants:
        return [NO_TENANT.format(namespace=namespace)]
    subscriptions = {s.lower() for tenant in tenants for s in tenant.subscriptions}
    values = {"namespace": namespace, "subscription": subscription, "resourceGroup": resource_group}
    violations = []
    if not _in_scope(tenants, subscription, resource_group):
        template = PLACE_RESOURCE_GROUP if subscription.lower() in subscriptions else PLACE_SUBSCRIPTION
        violations.append(template.format(**values))
    if any(tenant.require_credential_ref for tenant in tenants) and "credentialRef" not in document["azure"]:
        violations.append(CREDENTIAL_REQUIRED.format(**values))
    for path, arm_id in others:
        sub, group = _parts(arm_id)
        if _in_scope(tenants, sub, group) or _under_prefix(tenants, arm_id):
            continue
        template = REFERENCE_RESOURCE_GROUP if sub.lower() in subscriptions else REFERENCE_SUBSCRIPTION
        violations.append(
            template.format(path=path, id=arm_id, subscription=sub, resourceGroup=group, namespace=namespace)
        )
    return violations


# --- the same check as a ValidatingAdmissionPolicy --------------------------------------------------


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cel_message(template: str, fields: Mapping[str, str]) -> str:
    """A message template as a CEL string expression; `fields` maps each placeholder to CEL."""
    pieces = []
    for text, field, _, _ in string.Formatter().parse(template):
        if text:
            pieces.append(_literal(text))
        if field is not None:
            pieces.append(f"string({fields[field]})")
    return " + ".join(pieces)


def _cel_reference(reference: str) -> str:
    """A CEL list of [path, id] pairs for one REFERENCES entry (absent fields give [])."""
    segments = reference.split(".")
    expression, path, guards = "object.spec", "spec", []
    for index, segment in enumerate(segments):
        rest = segments[index + 1 :]
        if segment.endswith("[]"):
            assert not rest, reference
            field = segment[:-2]
            guards.append(f"has({expression}.{field})")
            body = f"{expression}.{field}.map(i, [{_literal(f'{path}.{field}')}, string(i)])"
            return f"({' && '.join(guards)} ? {body} : [])"
        if segment.endswith("[name]"):
            assert rest and not any("[" in s for s in rest), reference
            field = segment[: -len("[name]")]
            guards.append(f"has({expression}.{field})")
            item, item_guards = "r", []
            for child in rest:
                item_guards.append(f"has({item}.{child})")
                item += f".{child}"
            item_path = f"{_literal(f'{path}.{field}[name=')} + string(r.name) + {_literal('].' + '.'.join(rest))}"
            body = (
                f"{expression}.{field}.filter(r, {' && '.join(item_guards)})"
                f".map(r, [{item_path}, string({item})])"
            )  # fmt: skip
            return f"({' && '.join(guards)} ? {body} : [])"
        guards.append(f"has({expression}.{segment})")
        expression, path = f"{expression}.{segment}", f"{path}.{segment}"
    return f"({' && '.join(guards)} ? [[{_literal(path)}, string({expression})]] : [])"


def _violations_cel() -> str:
    place = {
        "namespace": "variables.namespaceName",
        "subscription": "object.spec.azure.subscriptionId",
        "resourceGroup": "object.spec.azure.resourceGroup",
    }
    # r: [path, id, subscription, resource group, lower-cased id]
    reference = {
        "path": "r[0]",
        "id": "r[1]",
        "subscription": "r[2]",
        "resourceGroup": "r[3]",
        "namespace": "variables.namespaceName",
    }
    in_scope = (
        "variables.scopes.exists(l, {sub}.lowerAscii() in l || ({sub} + '/' + {group}).lowerAscii() in l)"
    ).format
    subscription_allowed = "variables.subscriptions.exists(l, {sub}.lowerAscii() in l)".format
    under_prefix = "variables.prefixes.exists(l, l.exists(p, r[4] == p || r[4].startsWith(p + '/')))"
    sub, group = place["subscription"], place["resourceGroup"]
    return "\n".join(
        [
            f"size(variables.matching) == 0 ? [{_cel_message(NO_TENANT, place)}] :",
            f"  ({in_scope(sub=sub, group=group)} ? [] : [{subscription_allowed(sub=sub)}",
            f"    ? {_cel_message(PLACE_RESOURCE_GROUP, place)}",
            f"    : {_cel_message(PLACE_SUBSCRIPTION, place)}]) +",
            "  (variables.matching.exists(t, t.?requireCredentialRef.orValue(false))"
            " && !has(object.spec.azure.credentialRef)",
            f"    ? [{_cel_message(CREDENTIAL_REQUIRED, place)}] : []) +",
            f"  variables.references.filter(r, !({in_scope(sub='r[2]', group='r[3]')} || {under_prefix}))",
            f"    .map(r, {subscription_allowed(sub='r[2]')}",
            f"      ? {_cel_message(REFERENCE_RESOURCE_GROUP, reference)}",
            f"      : {_cel_message(REFERENCE_SUBSCRIPTION, reference)})",
        ]
    )


VARIABLES: tuple[tuple[str, str], ...] = (
    ("namespaceName", "namespaceObject.metadata.name"),
    ("labels", "has(namespaceObject.metadata.labels) ? namespaceObject.metadata.labels : {}"),
    ("tenants", "params.?spec.?tenants.orValue([])"),
    (
        "matching",
        "variables.tenants.filter(t,\n"
        "  variables.namespaceName in t.?namespaces.orValue([]) ||\n"
        "  (has(t.namespaceSelector) && t.namespaceSelector.matchLabels.all(k,\n"
        "    k in variables.labels && variables.labels[k] == t.namespaceSelector.matchLabels[k])))",
    ),
    ("subscriptions", "variables.matching.map(t, t.?subscriptions.orValue([]).map(s, s.lowerAscii()))"),
    (
        "scopes",
        "variables.matching.map(t, (size(t.?resourceGroups.orValue([])) > 0\n"
        "  ? t.resourceGroups : t.?subscriptions.orValue([])).map(s, s.lowerAscii()))",
    ),
    ("prefixes", "variables.matching.map(t, t.?resourceIdPrefixes.orValue([]).map(p, p.lowerAscii()))"),
    ("referenced", " +\n".join(_cel_reference(reference) for reference in REFERENCES)),
    (
        "references",
        "variables.referenced.map(r, [r[0], r[1], r[1].split('/')[2], r[1].split('/')[4], r[1].lowerAscii()])",
    ),
    ("violations", _violations_cel()),
)
MESSAGE_CEL = (
    f"size(variables.violations) <= {MESSAGE_LIMIT} ? variables.violations.join('; ') :\n"
    f"  [{', '.join(f'variables.violations[{i}]' for i in range(MESSAGE_LIMIT))}].join('; ') +\n"
    f"  '; and ' + string(size(variables.violations) - {MESSAGE_LIMIT}) + ' more'"
)


def admission_policy_spec() -> dict[str, Any]:
    """The ValidatingAdmissionPolicy's spec: evaluate() in CEL, for CREATE and for UPDATEs that change
    the spec (an existing workspace's finalizers and annotations stay writable under a stricter policy)."""
    return {
        "failurePolicy": "Fail",
        "paramKind": {"apiVersion": f"{GROUP}/{VERSION}", "kind": TENANCY_KIND},
        "matchConstraints": {
            "resourceRules": [
                {
                    "apiGroups": [GROUP],
                    "apiVersions": [VERSION],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": [PLURAL],
                }
            ]
        },
        "matchConditions": [
            {"name": "spec-written", "expression": "request.operation == 'CREATE' || object.spec != oldObject.spec"}
        ],
        "variables": [{"name": name, "expression": expression} for name, expression in VARIABLES],
        "validations": [
            {"expression": "size(variables.violations) == 0", "messageExpression": MESSAGE_CEL, "reason": "Forbidden"}
        ],
    }


def binding_spec(policy_name: str) -> dict[str, Any]:
    return {
        "policyName": policy_name,
        "paramRef": {"name": POLICY_NAME, "parameterNotFoundAction": "Allow"},
        "validationActions": ["Deny"],
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the CEL) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, width=120)


def admission_policy(name: str = ADMISSION_POLICY_NAME) -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its binding, as plain manifests."""
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": admission_policy_spec(),
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": binding_spec(name),
        },
    ]


def render_admission_policy() -> str:
    header = (
        "# Generated by `make crds` from operator/secureml_operator/api/tenancy.py: do not edit.\n"
        f"# Checks SecureMLWorkspaces against the SecureMLTenancyPolicy named {POLICY_NAME} at `kubectl apply`\n"
        "# (no such policy: allowed). The Helm chart installs the same (value tenancy.admissionPolicy).\n"
    )
    return header + "---\n".join(_dump(document) for document in admission_policy())


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line if line.strip() else line for line in text.splitlines(keepends=True))


CHART_NAME = '{{ include "secureml-operator.fullname" . }}-tenancy'
CHART_LABELS = '    {{- include "secureml-operator.labels" . | nindent 4 }}\n'


def render_chart_template() -> str:
    """charts/secureml-operator/templates/tenancy-admission-policy.yaml."""
    specs = {
        "ValidatingAdmissionPolicy": _dump(admission_policy_spec()),
        "ValidatingAdmissionPolicyBinding": _dump(binding_spec(CHART_NAME)),
    }
    for text in specs.values():
        assert "{{" not in text.replace(CHART_NAME, ""), "CEL must not contain Go template delimiters"
    documents = [
        "apiVersion: admissionregistration.k8s.io/v1\n"
        f"kind: {kind}\n"
        "metadata:\n"
        f"  name: {CHART_NAME}\n"
        "  labels:\n" + CHART_LABELS + "spec:\n" + _indent(text, 2)
        for kind, text in specs.items()
    ]
    guid = GUID.replace("\\", "\\\\")
    return (
        "{{/* Generated by `make crds` from operator/secureml_operator/api/tenancy.py: do not edit. */}}\n"
        "{{- range .Values.tenancy.allowedSubscriptions }}\n"
        f'{{{{- if not (regexMatch "{guid}" (toString .)) }}}}\n'
        '{{- fail (printf "tenancy.allowedSubscriptions: %q is not a subscription id (a GUID)" (toString .)) }}\n'
        "{{- end }}\n"
        "{{- end }}\n"
        "{{- if .Values.tenancy.admissionPolicy }}\n" + "---\n".join(documents) + "{{- end }}\n"
    )
