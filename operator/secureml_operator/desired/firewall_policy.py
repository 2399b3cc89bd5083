"""The hub firewall's allow rules for this workspace's compute (Role.FIREWALL_RULES), when
`egress.firewall.policyId` names the firewall's policy: one rule collection group,
`secureml-<workspace>`, that the operator creates in that policy, keeps in sync like its NSG rules and
deletes with the resource. Everything else in the policy is someone else's and never touched.

The group holds two collections, both allowing traffic from the compute subnets only: network rules
to the service tags Azure ML needs that a firewall accepts, and application rules to the FQDNs it
needs in the workspace's region (azureml_network.py; sources in docs/firewall-policy.md). Azure
fills in defaults inside each rule, so the collections are owned as a structure they must contain
(`Contains`): a rule changed, added or removed is drift.
"""

from __future__ import annotations

import hashlib

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired import azureml_network as aml
from secureml_operator.desired.fields import Contains, Exact, Json
from secureml_operator.desired.graph import DesiredGraph, Node
from secureml_operator.desired.roles import Role
from secureml_operator.desired.vnet import declared_subnets

# Groups of one policy are processed by priority (100-65000); whether Azure refuses two groups with
# the same one is not documented (the emulator refuses: docs/emulator.md). The platform's own groups
# usually sit low; ours are spread over the upper half by the workspace's name, so two workspaces
# sharing a policy rarely collide.
PRIORITY_FIRST, PRIORITY_SPAN = 32768, 32000
SERVICE_TAG_COLLECTION, FQDN_COLLECTION = "azureml-service-tags", "azureml-fqdns"


def rule_collection_group_id(spec: SecureMLWorkspaceSpec) -> ArmId | None:
    firewall = spec.outbound.hub_firewall
    if firewall is None or not firewall.policy_id:
        return None
    return ArmId.parse(firewall.policy_id).child("ruleCollectionGroups", f"secureml-{spec.workspace.name}")


def group_priority(workspace: str) -> int:
    return PRIORITY_FIRST + int(hashlib.sha256(workspace.lower().encode()).hexdigest(), 16) % PRIORITY_SPAN


def rule_collections(spec: SecureMLWorkspaceSpec) -> list[Json]:
    network = spec.outbound.customer_network
    assert network is not None
    sources = [subnet.address_prefix for role, subnet in declared_subnets(network) if role.compute]
    network_rules = [
        {
            "ruleType": "NetworkRule",
            "name": f"{tag}-{protocol}".replace(".", "-"),
            "ipProtocols": [protocol.upper()],
            "sourceAddresses": sources,
            "destinationAddresses": [tag],
            "destinationPorts": list(ports),
        }
        for tag, protocol, ports in aml.firewall_service_tags(spec.azure.location)
    ]
    application_rules = [
        {
            "ruleType": "ApplicationRule",
            "name": name,
            "sourceAddresses": sources,
            "protocols": [_protocol(protocol) for protocol in protocols],
            "targetFqdns": list(fqdns),
        }
        for name, protocols, fqdns in aml.firewall_fqdns(spec.azure.location)
    ]
    return [
        _allow(SERVICE_TAG_COLLECTION, 100, network_rules),
        _allow(FQDN_COLLECTION, 200, application_rules),
    ]


def _protocol(protocol: str) -> Json:
    """`Https:443` as an application rule spells it."""
    kind, port = protocol.split(":")
    return {"protocolType": kind, "port": int(port)}


def _allow(name: str, priority: int, rules: list[Json]) -> Json:
    return {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": name,
        "priority": priority,
        "action": {"type": "Allow"},
        "rules": rules,
    }


def add_firewall_rules(graph: DesiredGraph, spec: SecureMLWorkspaceSpec) -> None:
    group_id = rule_collection_group_id(spec)
    if group_id is None:
        return
    priority, collections = group_priority(spec.workspace.name), rule_collections(spec)
    graph.add(
        Node(
            id=group_id,
            create_body={"properties": {"priority": priority, "ruleCollections": collections}},
            role=Role.FIREWALL_RULES,
            fields=(Exact("properties.priority", priority), Contains("properties.ruleCollections", collections)),
            tagged=False,  # a policy's child: no tags; the ledger alone says it is ours
        )
    )
