"""What each node of the desired graph is *for*, so status finds a walk's results by purpose (the
workspace's private endpoint, the training subnet), never by ARM type or position.

A subnet's role as the spec and `status.subnets` spell it (`training`, `scoring`,
`privateEndpoints`) is a `SubnetRole`: the one table of subnet roles, their default names, which
carry compute, and the node role of each.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    WORKSPACE = "workspace"
    APPROVAL_TARGET = "approvalTarget"  # a PrivateEndpoint rule's target: read, its connections approved
    VIRTUAL_NETWORK = "virtualNetwork"  # the customer VNet (ours, or adopted and only read)
    NETWORK_SECURITY_GROUP = "networkSecurityGroup"
    ROUTE_TABLE = "routeTable"
    EGRESS_PUBLIC_IP = "egressPublicIp"  # one of the NAT gateway's public IPs
    NAT_GATEWAY = "natGateway"
    SERVICE_ENDPOINT_POLICY = "serviceEndpointPolicy"
    TRAINING_SUBNET = "trainingSubnet"
    SCORING_SUBNET = "scoringSubnet"
    PRIVATE_ENDPOINTS_SUBNET = "privateEndpointsSubnet"
    HUB_PEERING = "hubPeering"  # our VNet's peering to the hub
    HUB_PEERING_BACK = "hubPeeringBack"  # the hub's peering to us, when the hub is ours to change
    HUB_VIRTUAL_NETWORK = "hubVirtualNetwork"  # read after the peering: its side of the pair
    DEPENDENCY_PRIVATE_ENDPOINT = "dependencyPrivateEndpoint"  # storage, key vault, registry
    WORKSPACE_PRIVATE_ENDPOINT = "workspacePrivateEndpoint"
    DNS_ZONE = "dnsZone"
    DNS_LINK = "dnsLink"  # a private DNS zone's link to the VNet
    DNS_ZONE_GROUP = "dnsZoneGroup"  # a private endpoint's registration in its zones
    ALLOWLIST_TARGET = "allowlistTarget"  # allowlistEgressOn: our egress IPs in its IP rules
    FIREWALL_RULES = "firewallRules"  # our rule collection group in the hub firewall's policy


PRIVATE_ENDPOINTS = (Role.WORKSPACE_PRIVATE_ENDPOINT, Role.DEPENDENCY_PRIVATE_ENDPOINT)


class SubnetRole(StrEnum):
    """A subnet's role, as the spec (`customerNetwork.subnets`) and `status.subnets` spell it."""

    TRAINING = "training"
    SCORING = "scoring"
    PRIVATE_ENDPOINTS = "privateEndpoints"

    @property
    def node_role(self) -> Role:
        return _SUBNETS[self][0]

    @property
    def default_name(self) -> str:
        """The subnet's name when the spec gives none."""
        return _SUBNETS[self][1]

    @property
    def compute(self) -> bool:
        """Compute runs in it: the NSG, routes, NAT gateway and service endpoints apply."""
        return _SUBNETS[self][2]


_SUBNETS: dict[SubnetRole, tuple[Role, str, bool]] = {
    SubnetRole.TRAINING: (Role.TRAINING_SUBNET, "training", True),
    SubnetRole.SCORING: (Role.SCORING_SUBNET, "scoring", True),
    SubnetRole.PRIVATE_ENDPOINTS: (Role.PRIVATE_ENDPOINTS_SUBNET, "private-endpoints", False),
}
