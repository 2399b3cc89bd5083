"""Azure Firewall policies and their rule collection groups. A policy lists its groups, the firewalls
using it and its child policies by id (read-only, derived); a group is written by its own endpoint and
checked against its siblings and its policy's DNS proxy (armemu/rules.py). Writes to the groups of one
policy take the policy's lock (armemu/conflicts.py)."""

from __future__ import annotations

from armemu import rules
from armemu.arm import get_path
from armemu.kinds.base import ResourceBehaviour
from armemu.kinds.helpers import referencing
from armemu.kinds.network import FIREWALL
from armemu.state import Json, Resource, State

FIREWALL_POLICY = "microsoft.network/firewallpolicies"
RULE_COLLECTION_GROUP = f"{FIREWALL_POLICY}/rulecollectiongroups"


def _referencing(state: State, kind: str, prop: str, resource_id: str) -> list[Json]:
    """`{id}` of each resource of `kind` whose `properties.<prop>.id` is `resource_id`."""
    return [{"id": other.id} for other in referencing(state, kind, prop, resource_id)]


class FirewallPolicy(ResourceBehaviour):
    kind = FIREWALL_POLICY
    references = (("properties.basePolicy.id", "firewallpolicies"),)

    def derive(self, state: State, resource: Resource, body: Json, provisioning: str) -> None:
        properties = body["properties"]
        groups = state.children(resource.id, "ruleCollectionGroups")
        properties["ruleCollectionGroups"] = [{"id": group.id} for group in groups]
        properties["firewalls"] = _referencing(state, FIREWALL, "firewallPolicy", resource.id)
        properties["childPolicies"] = _referencing(state, FIREWALL_POLICY, "basePolicy", resource.id)


class RuleCollectionGroup(ResourceBehaviour):
    kind = RULE_COLLECTION_GROUP
    tracked = False

    def check_body(self, state: State, resource_id: str, body: Json) -> None:
        policy_id = resource_id.rsplit("/", 2)[0]
        others = [
            (group.id, group.body)
            for group in state.children(policy_id, "ruleCollectionGroups")
            if group.key != resource_id.lower()
        ]
        policy = state.get(policy_id)
        dns_proxy = bool(policy and get_path(policy.body, "properties.dnsSettings.enableProxy"))
        rules.check_rule_collection_group(resource_id, body, others, dns_proxy)
