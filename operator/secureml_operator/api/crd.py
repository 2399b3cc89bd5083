"""Generate the CRD (and the API reference) from the models: `python -m secureml_operator.api.crd [--check]`.

pydantic's JSON schema is turned into a Kubernetes structural schema: $refs inlined, optional fields
unwrapped from anyOf-null, titles dropped, lists defaulted to [] and optional objects to {} (so CEL
rules and nested defaults always see them), lists keyed by name marked as maps, and each model's
rules from api/rules.py attached as x-kubernetes-validations.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from secureml_operator.api.models import GROUP, KIND, PLURAL, VERSION, Spec, Status
from secureml_operator.api.rules import (
    MAX_PORT,
    PRIVATE_RANGES_TEXT,
    RESERVED_NSG_RULE_NAMES,
    RESERVED_OUTBOUND_RULE_NAMES,
    RESERVED_ROUTE_NAMES,
    RULES,
    cel_rules_for,
    display_names,
)
from secureml_operator.api.tenancy import (
    TENANCY_KIND,
    TENANCY_PLURAL,
    TenancyPolicySpec,
    render_admission_policy,
    render_chart_template,
    tenancy_cel_rules_for,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
CRD_PATH = REPO_ROOT / "crds" / f"{PLURAL}.{GROUP}.yaml"
REFERENCE_PATH = REPO_ROOT / "docs" / "api.md"
TENANCY_CRD_PATH = REPO_ROOT / "crds" / f"{TENANCY_PLURAL}.{GROUP}.yaml"
ADMISSION_POLICY_PATH = REPO_ROOT / "deploy" / "tenancy" / "admission-policy.yaml"
CHART_ADMISSION_POLICY_PATH = REPO_ROOT / "charts" / "secureml-operator" / "templates" / "tenancy-admission-policy.yaml"
MAP_LISTS = {"rules", "extraRules", "extraRoutes", "tenants"}

PRINTER_COLUMNS = [
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Isolation", "type": "string", "jsonPath": ".status.isolation"},
    {"name": "Public", "type": "string", "jsonPath": ".spec.inbound.publicNetworkAccess"},
    {"name": "Egress", "type": "string", "jsonPath": ".status.egressIPs[0]"},
    {"name": "Drift", "type": "integer", "jsonPath": ".status.drift.correctionsTotal"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _validations(model: str) -> list[dict[str, str]]:
    """x-kubernetes-validations of a model: api/rules.py's, or api/tenancy.py's for the policy."""
    return cel_rules_for(model) + tenancy_cel_rules_for(model)


def _structural(node: dict[str, Any], defs: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    if "$ref" in node:
        model = node["$ref"].rsplit("/", 1)[-1]
        resolved = _structural(defs[model], defs)
        rules = _validations(model)
        if rules:
            resolved["x-kubernetes-validations"] = rules
        if node.get("description"):
            resolved["description"] = node["description"]
        return resolved
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        merged = {**options[0], **{k: v for k, v in node.items() if k not in ("anyOf", "default", "title")}}
        return _structural(merged, defs, name)
    schema: dict[str, Any] = {}
    for key in (
        "description",
        "type",
        "enum",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minProperties",
        "maxProperties",
    ):
        if key in node:
            schema[key] = node[key]
    for source, target in (("minItems", "minItems"), ("maxItems", "maxItems")):
        if source in node:
            schema[target] = node[source]
    if "default" in node and node["default"] is not None:
        schema["default"] = node["default"]
    if node.get("type") == "object" or "properties" in node:
        schema["type"] = "object"
        properties = node.get("properties", {})
        required = set(node.get("required", []))
        schema["properties"] = {}
        for key, child in properties.items():
            converted = _structural(child, defs, key)
            if key not in required and "default" not in converted and converted.get("type") == "array":
                converted["default"] = []
            schema["properties"][key] = converted
        if not schema["properties"]:
            del schema["properties"]  # the API server drops an empty map: a second server-side applier would conflict
        if isinstance(node.get("additionalProperties"), dict):  # a map, e.g. matchLabels
            schema["additionalProperties"] = _structural(node["additionalProperties"], defs)
        if required:
            schema["required"] = sorted(required)
    if node.get("type") == "array":
        schema["items"] = _structural(node["items"], defs)
        if name in MAP_LISTS:
            schema["x-kubernetes-list-type"] = "map"
            schema["x-kubernetes-list-map-keys"] = ["name"]
    return schema


def _object_defaults(schema: dict[str, Any], model: type) -> None:
    """Fields with a default factory get its value, fully expanded: the API server checks defaults
    against the CEL rules without applying nested defaults first."""
    for field_name, field in model.model_fields.items():  # type: ignore[attr-defined]
        child = schema.get("properties", {}).get(field.alias or field_name)
        if child is None:
            continue
        if field.default_factory is not None:
            value = field.default_factory()
            child["default"] = (
                value.model_dump(by_alias=True, exclude_none=True) if hasattr(value, "model_dump") else value
            )
        target = child.get("items", child)
        for option in (field.annotation, *getattr(field.annotation, "__args__", ())):
            for inner in (option, *getattr(option, "__args__", ())):
                if isinstance(inner, type) and hasattr(inner, "model_fields"):
                    _object_defaults(target, inner)


def schema_of(model: type) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True)  # type: ignore[attr-defined]
    schema = _structural({k: v for k, v in raw.items() if k != "$defs"}, raw.get("$defs", {}))
    rules = _validations(model.__name__)
    if rules:
        schema["x-kubernetes-validations"] = rules
    _object_defaults(schema, model)
    return schema


def _definition(
    kind: str,
    plural: str,
    short_name: str,
    scope: str,
    description: str,
    schemas: dict[str, Any],
    printer_columns: list[dict[str, str]],
    status_subresource: bool = False,
    validations: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A CustomResourceDefinition of one served and stored version; `schemas`: spec (and status)."""
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True}
    if status_subresource:
        version["subresources"] = {"status": {}}
    version["additionalPrinterColumns"] = printer_columns
    root: dict[str, Any] = {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
        | schemas,
    }
    if validations:
        root["x-kubernetes-validations"] = validations
    version["schema"] = {"openAPIV3Schema": root}
    names = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": names | {"shortNames": [short_name], "categories": ["azure"]},
            "versions": [version],
        },
    }


def crd() -> dict[str, Any]:
    spec_schema, status_schema = schema_of(Spec), schema_of(Status)
    status_schema["properties"]["conditions"]["x-kubernetes-list-type"] = "map"
    status_schema["properties"]["conditions"]["x-kubernetes-list-map-keys"] = ["type"]
    # Until the operator first writes status, the API server shows observedGeneration 0: kstatus
    # (Flux, `kubectl wait`) then reads a new resource as InProgress instead of Current.
    status_schema["default"] = {"observedGeneration": 0}
    return _definition(
        KIND, PLURAL, "smlw", "Namespaced",
        "How one Azure Machine Learning workspace is network-isolated.",
        {"spec": spec_schema, "status": status_schema}, PRINTER_COLUMNS, status_subresource=True,
    )  # fmt: skip


def render_crd() -> str:
    header = "# Generated by `make crds` from operator/secureml_operator/api/models.py: do not edit.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=120)


def tenancy_crd() -> dict[str, Any]:
    """SecureMLTenancyPolicy: cluster-scoped, one object named `default` (api/tenancy.py)."""
    return _definition(
        TENANCY_KIND, TENANCY_PLURAL, "smltp", "Cluster",
        "Which namespaces may use the secureml operator, and which Azure subscriptions, resource groups "
        "and resources each may use. Only the object named default is read.",
        {"spec": schema_of(TenancyPolicySpec)},
        [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
        validations=_validations(TENANCY_KIND),
    )  # fmt: skip


def render_tenancy_crd() -> str:
    header = "# Generated by `make crds` from operator/secureml_operator/api/tenancy.py: do not edit.\n"
    return header + yaml.safe_dump(tenancy_crd(), sort_keys=False, width=120)


def _reference_rows(schema: dict[str, Any], prefix: str) -> list[str]:
    rows = []
    required = set(schema.get("required", []))
    for key, child in schema.get("properties", {}).items():
        path = f"{prefix}.{key}"
        kind = child.get("type", "")
        if "enum" in child:
            kind = " \\| ".join(str(value) for value in child["enum"])
        default = f" (default `{child['default']}`)" if "default" in child and child["default"] not in ({}, []) else ""
        flag = " **required**" if key in required else ""
        description = child.get("description", "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{path}` | {kind}{flag} | {description}{default} |")
        target = child.get("items", child) if kind == "array" else child
        rows += _reference_rows(target, path + ("[]" if kind == "array" else ""))
    return rows


def render_reference() -> str:
    spec_schema = schema_of(Spec)
    lines = [
        "# SecureMLWorkspace API reference (secureml.io/v1alpha1)",
        "",
        "Generated by `make crds` from `operator/secureml_operator/api/models.py`: do not edit.",
        "`kubectl explain securemlworkspace.spec` shows the same descriptions.",
        "",
        "## Spec",
        "",
        "| field | type | description |",
        "|---|---|---|",
        *_reference_rows(spec_schema, "spec"),
        "",
        "## Rules checked at `kubectl apply`",
        "",
        "| rule | applies to | message |",
        "|---|---|---|",
    ]
    for rule in RULES:
        kind = "transition (on update)" if rule.transition else "every write"
        kind += "" if rule.cel else ", by the schema's list keys"
        lines.append(f"| `{rule.id}` | {rule.scope}, {kind} | {rule.message} |")
    lines += [
        "",
        "## Addresses, ports and names",
        "",
        "- IPv4 only: every address and CIDR field refuses IPv6 until the operator supports it.",
        "- `egress.firewall.privateIpAddress` and `extraRoutes[].nextHopIpAddress` are next hops inside your",
        f"  network: private addresses, in {PRIVATE_RANGES_TEXT} (the RFC 1918 ranges and RFC 6598's shared",
        "  address space, which Azure accepts in a VNet's address space).",
        f"- Ports are 1-{MAX_PORT} and a range `low-high` starts at its low end, in every field and form:",
        "  `serviceTag.portRanges` (`443`, `80,443`, `8000-8080`, or `*` alone) and",
        "  `extraRules[].destinationPortRanges` (`[443, 8000-8080]`, or `[*]` alone).",
        "- FQDN rules take no `ports`. Azure's FQDN outbound rule has no port setting (its REST model,",
        "  `FqdnOutboundRule`, holds only `destination`) and always allows ports 80 and 443 only (Azure ML's",
        "  managed network limitations: the FQDN outbound rules only support ports 80 and 443). A rule that",
        "  sets `ports` is refused rather than its ports dropped unnoticed; the field stays in the schema so",
        "  the refusal can say why. For other ports use a `serviceTag` rule, or a customer VNet behind your",
        "  own firewall.",
        "- A wildcard `fqdn` keeps at least two labels below the wildcard: `*.blob.core.windows.net`, not",
        "  `*.com` (a whole top-level domain).",
        "- Names the operator derives are reserved, ignoring case as ARM does: an extra rule or route of the",
        "  same name would be rewritten by every sweep.",
        *(
            f"  - `{field}`: {', '.join(f'`{name}`' for name in display_names(names))}"
            for field, names in (
                ("extraRules[].name", RESERVED_NSG_RULE_NAMES),
                ("extraRoutes[].name", RESERVED_ROUTE_NAMES),
                ("managedNetwork.rules[].name", RESERVED_OUTBOUND_RULE_NAMES),
            )
        ),
        "",
        "## Checked by the operator (needs Azure)",
        "",
        "These report `Stalled=True` with the reason shown, and the operator writes nothing to Azure:",
        "",
        "- `RegistryNotPremium`: a container registry behind a private endpoint (any managed network, or",
        "  `privateEndpointsForDependencies`) must be Premium.",
        "- `DependencyNotFound`: a referenced resource (registry, existing VNet, firewall, target) does not exist.",
        "- `VirtualNetworkTooSmall`: a subnet does not fit in the address space of `virtualNetwork.existingId`.",
        "- `SubnetOverlaps`: a subnet overlaps a subnet someone else already has in that VNet.",
        "- `FirewallHasNoPrivateIP`: `egress.firewall.id` names a firewall with no private IP yet.",
        "- `OwnedByAnotherResource`: the workspace (or a resource we would create) belongs to another",
        "  SecureMLWorkspace (which one is not said).",
        "- `ExistsUnowned`: a resource the spec names exists and this resource did not create it; set",
        "  `spec.adoption: Adopt` to manage it ([security](security.md#explicit-adoption)).",
        "- `NotPermitted`: the namespace may not use a subscription, resource group or resource the spec names",
        "  (the tenancy policy, or `SMLW_ALLOWED_SUBSCRIPTIONS` without one); checked before any Azure call.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when crds/ or docs/api.md are stale")
    args = parser.parse_args(argv)
    outputs = {
        CRD_PATH: render_crd(),
        REFERENCE_PATH: render_reference(),
        TENANCY_CRD_PATH: render_tenancy_crd(),
        ADMISSION_POLICY_PATH: render_admission_policy(),
        CHART_ADMISSION_POLICY_PATH: render_chart_template(),
    }
    stale = [path for path, text in outputs.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(REPO_ROOT)} (run `make crds`)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
