"""What a subnet sends its traffic through: network security groups and their rules, route tables and
their routes, service endpoint policies and their definitions. Each parent lists its children inline
and is checked with them; the rules themselves are in armemu/rules.py."""

from __future__ import annotations

from armemu import rules
from armemu.arm import get_path
from armemu.kinds.base import ResourceBehaviour
from armemu.kinds.network import SUBNET, UsedBySubnets
from armemu.state import Json, Resource, State

NSG = "microsoft.network/networksecuritygroups"
ROUTE_TABLE = "microsoft.network/routetables"
POLICY = "microsoft.network/serviceendpointpolicies"


class NetworkSecurityGroup(UsedBySubnets):
    kind = NSG
    inline = {"securityRules": "securityRules"}
    defaults = {"properties": {"flushConnection": False}}
    read_only = ("subnets", "defaultSecurityRules")
    subnet_property = "networkSecurityGroup"

    def check_body(self, state: State, resource_id: str, body: Json) -> None:
        rules.check_security_rules(rules.inline_children(resource_id, body, "securityRules"), [])

    def derive(self, state: State, resource: Resource, body: Json, provisioning: str) -> None:
        body["properties"]["defaultSecurityRules"] = [_default_rule(resource.id, *rule) for rule in DEFAULT_RULES]
        super().derive(state, resource, body, provisioning)  # then the subnets using it


class SecurityRule(ResourceBehaviour):
    kind = f"{NSG}/securityrules"
    tracked = False

    def check_body(self, state: State, resource_id: str, body: Json) -> None:
        nsg_id = resource_id.rsplit("/", 2)[0]
        siblings = [(r.id, r.body) for r in state.children(nsg_id, "securityRules") if r.key != resource_id.lower()]
        rules.check_security_rules([(resource_id, body)], siblings)


DEFAULT_RULES = [
    ("AllowVnetInBound", 65000, "Inbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
    ("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "AzureLoadBalancer", "*"),
    ("DenyAllInBound", 65500, "Inbound", "Deny", "*", "*"),
    ("AllowVnetOutBound", 65000, "Outbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
    ("AllowInternetOutBound", 65001, "Outbound", "Allow", "*", "Internet"),
    ("DenyAllOutBound", 65500, "Outbound", "Deny", "*", "*"),
]


def _default_rule(nsg_id: str, name: str, priority: int, direction: str, access: str, source: str, dest: str) -> Json:
    return {
        "id": f"{nsg_id}/defaultSecurityRules/{name}",
        "name": name,
        "properties": {
            "description": f"Default rule {name}",
            "protocol": "*",
            "sourcePortRange": "*",
            "destinationPortRange": "*",
            "sourceAddressPrefix": source,
            "destinationAddressPrefix": dest,
            "access": access,
            "priority": priority,
            "direction": direction,
            "provisioningState": "Succeeded",
        },
    }


class RouteTable(UsedBySubnets):
    kind = ROUTE_TABLE
    inline = {"routes": "routes"}
    defaults = {"properties": {"disableBgpRoutePropagation": False}}
    subnet_property = "routeTable"

    def check_body(self, state: State, resource_id: str, body: Json) -> None:
        for route_id, route in rules.inline_children(resource_id, body, "routes"):
            rules.check_route(route_id, route)


class Route(ResourceBehaviour):
    kind = f"{ROUTE_TABLE}/routes"
    tracked = False

    def check_body(self, state: State, resource_id: str, body: Json) -> None:
        rules.check_route(resource_id, body)


class ServiceEndpointPolicy(ResourceBehaviour):
    kind = POLICY
    inline = {"serviceEndpointPolicyDefinitions": "serviceEndpointPolicyDefinitions"}
    read_only = ("subnets",)

    def check_body(self, state: State, resource_id: str, body: Json) -> None:
        for definition_id, definition in rules.inline_children(resource_id, body, "serviceEndpointPolicyDefinitions"):
            rules.check_policy_definition(definition_id, definition)

    def derive(self, state: State, resource: Resource, body: Json, provisioning: str) -> None:
        body["properties"]["subnets"] = [
            {"id": subnet.id}
            for subnet in state.referring(resource.id, SUBNET)
            if any(
                (policy.get("id") or "").lower() == resource.key
                for policy in get_path(subnet.body, "properties.serviceEndpointPolicies") or []
            )
        ]


class ServiceEndpointPolicyDefinition(ResourceBehaviour):
    kind = f"{POLICY}/serviceendpointpolicydefinitions"
    tracked = False

    def check_body(self, state: State, resource_id: str, body: Json) -> None:
        rules.check_policy_definition(resource_id, body)
