"""Checks and facts only Azure can give, read before any write: a failed check stalls the resource
(Stalled=True with a reason) and nothing in Azure is changed."""

from __future__ import annotations

from secureml_operator.api.models import CustomerNetwork, SecureMLWorkspaceSpec
from secureml_operator.api.rules import contains, overlaps
from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.customer_network import subnet_name
from secureml_operator.desired.fields import Json, get_path
from secureml_operator.desired.observed import Observed
from secureml_operator.engine.errors import PermanentFailure


async def observe(arm: ArmClient, spec: SecureMLWorkspaceSpec) -> Observed:
    """Run the checks, and gather what plan() needs beyond the spec."""
    await _registry_is_premium(arm, spec)
    network = spec.outbound.customer_network
    firewall_ip: str | None = None
    firewall_egress: tuple[str, ...] = ()
    if network is not None:
        await _existing_vnet_has_room(arm, network)
        firewall_ip, firewall_egress = await _firewall(arm, network)
    return Observed(firewall_ip, firewall_egress)


async def _registry_is_premium(arm: ArmClient, spec: SecureMLWorkspaceSpec) -> None:
    registry_id = spec.workspace.container_registry_id
    behind_private_endpoint = spec.outbound.managed_network is not None or bool(
        spec.outbound.customer_network and spec.outbound.customer_network.private_endpoints_for_dependencies
    )
    if not registry_id or not behind_private_endpoint:
        return
    registry = await _existing(arm, registry_id, "container registry")
    sku = str((registry.get("sku") or {}).get("name", ""))
    if sku.lower() != "premium":
        raise PermanentFailure(
            "RegistryNotPremium",
            f"container registry {registry_id} is {sku or 'of unknown SKU'}; a registry behind a "
            "private endpoint must be Premium: upgrade it or reference a Premium registry",
        )


async def _existing_vnet_has_room(arm: ArmClient, network: CustomerNetwork) -> None:
    """An adopted VNet must hold our subnets inside its address space, clear of its other subnets."""
    vnet_id = network.virtual_network.existing_id
    if vnet_id is None:
        return
    vnet = await _existing(arm, vnet_id, "virtual network")
    space = list(get_path(vnet, "properties.addressSpace.addressPrefixes") or [])
    ours = {subnet_name(role, subnet).lower() for role, subnet in network.subnets.roles()}
    others = {
        str(subnet.get("name")): prefix
        for subnet in get_path(vnet, "properties.subnets") or []
        if str(subnet.get("name", "")).lower() not in ours
        for prefix in _prefixes(subnet)
    }
    for role, subnet in network.subnets.roles():
        prefix = subnet.address_prefix
        if not any(contains(outer, prefix) for outer in space):
            raise PermanentFailure(
                "VirtualNetworkTooSmall",
                f"subnet {role} ({prefix}) does not fit in {vnet_id}'s address space {', '.join(space) or 'none'}: "
                "add an address range to the VNet or choose another prefix",
            )
        taken = sorted(name for name, other in others.items() if overlaps(other, prefix))
        if taken:
            raise PermanentFailure(
                "SubnetOverlaps",
                f"subnet {role} ({prefix}) overlaps existing subnet(s) {', '.join(taken)} of {vnet_id}: "
                "choose a free prefix",
            )


def _prefixes(subnet: Json) -> list[str]:
    properties = subnet.get("properties") or {}
    single = properties.get("addressPrefix")
    return [single] if single else list(properties.get("addressPrefixes") or [])


async def _firewall(arm: ArmClient, network: CustomerNetwork) -> tuple[str | None, tuple[str, ...]]:
    """The next hop for 0.0.0.0/0 and the firewall's public IPs (egress), from the firewall itself
    when it is referenced by id."""
    firewall = network.egress.firewall
    if firewall is None:
        return None, ()
    if firewall.id is None:
        return firewall.private_ip_address, ()
    live = await _existing(arm, firewall.id, "firewall")
    configurations = [config.get("properties") or {} for config in get_path(live, "properties.ipConfigurations") or []]
    private = next((config["privateIPAddress"] for config in configurations if config.get("privateIPAddress")), None)
    if private is None:
        raise PermanentFailure(
            "FirewallHasNoPrivateIP",
            f"firewall {firewall.id} has no private IP address (no IP configuration in AzureFirewallSubnet): "
            "routes to it would drop all traffic; finish deploying the firewall",
        )
    public_ids = [get_path(config, "publicIPAddress.id") for config in configurations]
    addresses = []
    for public_id in filter(None, public_ids):
        public_ip = await arm.get(ArmId.parse(str(public_id)))
        if public_ip and get_path(public_ip, "properties.ipAddress"):
            addresses.append(str(get_path(public_ip, "properties.ipAddress")))
    return str(private), tuple(sorted(addresses))


async def _existing(arm: ArmClient, resource_id: str, what: str) -> Json:
    live = await arm.get(ArmId.parse(resource_id))
    if live is None:
        raise PermanentFailure("DependencyNotFound", f"{what} {resource_id} does not exist")
    return live
