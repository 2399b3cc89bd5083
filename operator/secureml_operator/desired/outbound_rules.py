"""The managed network's outbound rules: a child set of the workspace, listed inline in its GET as
a map and written through the outbound-rule endpoint, under the spec's rulesPolicy.

The spec's FQDN, service-tag and private-endpoint rules, then each preset's FQDNs (names from
api/presets.py). The rules Azure ML adds itself (required, recommended, dependency) are never touched.
"""

from __future__ import annotations

from secureml_operator.api.models import ManagedNetwork, SecureMLWorkspaceSpec
from secureml_operator.api.presets import PRESET_FQDNS, preset_rule_name
from secureml_operator.desired.fields import Exact, FieldRule, Json, get_path
from secureml_operator.desired.graph import ChildSet, ChildSpec, ListPolicy

AZURE_MANAGED_RULE_CATEGORIES = frozenset({"required", "recommended", "dependency"})


def child_sets(spec: SecureMLWorkspaceSpec) -> tuple[ChildSet, ...]:
    """The workspace's outbound rules (none without a managed network)."""
    managed = spec.outbound.managed_network
    if managed is None:
        return ()
    rules = ChildSet(
        child_type="outboundRules",
        inline_path="properties.managedNetwork.outboundRules",
        children=_rules(managed),
        policy=ListPolicy(managed.rules_policy),
        inline_is_map=True,
        ignore=_azure_managed,
    )
    return (rules,)


def _rules(managed: ManagedNetwork) -> tuple[ChildSpec, ...]:
    rules: list[ChildSpec] = []
    destination: Json
    for rule in managed.rules or []:
        if rule.fqdn is not None:
            rules.append(_fqdn_rule(rule.name, rule.fqdn))
        elif rule.service_tag is not None:
            tag = rule.service_tag
            destination = {
                "serviceTag": tag.tag,
                "protocol": tag.protocol,
                "portRanges": tag.port_ranges,
                "action": "Allow",
            }
            rules.append(_rule(rule.name, "ServiceTag", destination, list(destination)))
        elif rule.private_endpoint is not None:
            target = rule.private_endpoint
            destination = {
                "serviceResourceId": target.service_resource_id,
                "subresourceTarget": target.subresource_target,
                "sparkEnabled": bool(target.spark_enabled),
            }
            rules.append(_rule(rule.name, "PrivateEndpoint", destination, list(destination)))
    for preset in managed.presets or []:
        rules.extend(_fqdn_rule(preset_rule_name(preset, fqdn), fqdn) for fqdn in PRESET_FQDNS[preset])
    return tuple(rules)


def _fqdn_rule(name: str, fqdn: str) -> ChildSpec:
    body = {"properties": {"type": "FQDN", "category": "UserDefined", "destination": fqdn}}
    return ChildSpec(name, body, (Exact("properties.type", "FQDN"), Exact("properties.destination", fqdn)))


def _rule(name: str, kind: str, destination: Json, owned: list[str]) -> ChildSpec:
    body = {"properties": {"type": kind, "category": "UserDefined", "destination": destination}}
    fields: list[FieldRule] = [Exact("properties.type", kind)]
    fields += [Exact(f"properties.destination.{key}", destination[key]) for key in owned]
    return ChildSpec(name, body, tuple(fields))


def _azure_managed(rule: Json) -> bool:
    return str(get_path(rule, "properties.category") or "").lower() in AZURE_MANAGED_RULE_CATEGORIES
