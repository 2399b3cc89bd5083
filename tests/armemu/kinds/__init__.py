"""What each ARM resource type does beyond the generic handling of the front (armemu/app.py): one
behaviour class per type (`base.ResourceBehaviour`), grouped by family, registered in `BEHAVIOURS`
under its lower-cased ARM type.

- network: virtual networks, subnets, peerings, NAT gateways, public IPs, firewalls, private link
  services, private endpoints
- traffic: network security groups and rules, route tables and routes, service endpoint policies and
  definitions
- firewall: Azure Firewall policies and their rule collection groups
- dns: private DNS zones, their virtual network links and A records, private endpoint DNS zone groups
- ml: Azure ML workspaces, outbound rules, workspace private endpoint connections
- targets: storage accounts, key vaults, container registries (and their private endpoint
  connections), Application Insights components
"""

from armemu.kinds import dns, firewall, ml, network, targets, traffic
from armemu.kinds.base import BEHAVIOURS, ResourceBehaviour, behaviour, render, resource_guid_types

FAMILIES = (network, traffic, firewall, dns, ml, targets)  # importing them registers their behaviours

__all__ = ["BEHAVIOURS", "FAMILIES", "ResourceBehaviour", "behaviour", "render", "resource_guid_types"]
