"""The compute subnets' network security group (Role.NETWORK_SECURITY_GROUP).

Its security rules are a child set under the spec's rulesPolicy: the rules Azure ML needs
(azureml_network.py: outbound to the VNet and the service tags compute must reach, or only to the
hub firewall; inbound from Azure ML when compute has public IPs), then the spec's extra rules.
"""

from __future__ import annotations

from secureml_operator.api.models import CustomerNetwork, SecureMLWorkspaceSpec
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired import azureml_network as aml
from secureml_operator.desired.graph import ChildSet, ChildSpec, DesiredGraph, ListPolicy, Node
from secureml_operator.desired.names import network_resource
from secureml_operator.desired.roles import Role


def nsg_id(spec: SecureMLWorkspaceSpec) -> ArmId:
    return network_resource(spec, "networkSecurityGroups", f"nsg-{spec.workspace.name}-compute")


def _rules(location: str, network: CustomerNetwork) -> tuple[ChildSpec, ...]:
    through_firewall = network.egress.firewall is not None
    rules = aml.required_nsg_rules(location, network.compute_public_ip, through_firewall)
    extras = [
        aml.RuleSpec(
            extra.name, extra.direction, extra.access, extra.priority, extra.protocol,
            extra.destination_address_prefix, tuple(extra.destination_port_ranges), extra.source_address_prefix,
        )
        for extra in network.network_security.extra_rules
    ]  # fmt: skip
    return tuple(ChildSpec.exact(rule.name, rule.properties()) for rule in [*rules, *extras])


def add_nsg(graph: DesiredGraph, spec: SecureMLWorkspaceSpec) -> Node:
    network = spec.outbound.customer_network
    assert network is not None
    policy = ListPolicy(network.network_security.rules_policy)
    rules = ChildSet("securityRules", "properties.securityRules", _rules(spec.azure.location, network), policy)
    return graph.add(
        Node(
            id=nsg_id(spec),
            create_body={"location": spec.azure.location},
            role=Role.NETWORK_SECURITY_GROUP,
            children=(rules,),
        )
    )
