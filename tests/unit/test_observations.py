"""What is read from Azure before planning: each kind declares its observation (plan.OBSERVATIONS),
preflight.observe runs them in order against the in-memory ARM. What they find is what plan()
is given; what they refuse stalls the resource with the reason and message asserted here."""

from __future__ import annotations

from typing import Any, cast

import pytest
from armfake import ArmFake
from litware import litware, seeded_fake, spec
from plancases import CASES, HUB_FIREWALL_SEEN

from armemu.seed import HUB_FIREWALL
from secureml_operator import preflight
from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired import private_endpoint, route_table, vnet
from secureml_operator.desired.observed import Observed
from secureml_operator.desired.plan import OBSERVATIONS
from secureml_operator.failures import PermanentFailure

REGISTRY = litware("Microsoft.ContainerRegistry/registries/crlitware")
CLIENTS = str(litware("Microsoft.Network/virtualNetworks/vnet-litware-clients"))  # 10.2.0.0/16, private-endpoints
FIREWALL = ArmId.parse(HUB_FIREWALL)


async def _observe(fake: ArmFake, workspace: SecureMLWorkspaceSpec) -> Observed:
    return await preflight.observe(cast(ArmClient, fake), workspace)


async def _refusal(fake: ArmFake, workspace: SecureMLWorkspaceSpec) -> PermanentFailure:
    with pytest.raises(PermanentFailure) as refused:
        await _observe(fake, workspace)
    return refused.value


def _in_clients_vnet(training: str, private_endpoints: dict[str, str]) -> Any:
    def change(body: dict[str, Any]) -> None:
        network = body["outbound"]["customerNetwork"]
        network["virtualNetwork"] = {"existingId": CLIENTS}
        network["subnets"] = {"training": {"addressPrefix": training}, "privateEndpoints": private_endpoints}

    return change


def test_each_kind_that_reads_azure_declares_it_and_they_run_in_order() -> None:
    assert (private_endpoint.observe, vnet.observe, route_table.observe) == OBSERVATIONS


async def test_the_firewall_is_read_for_the_next_hop_and_the_egress_ips() -> None:
    fake = seeded_fake()
    assert await _observe(fake, spec("04")) == HUB_FIREWALL_SEEN
    by_ip = next(case for case in CASES if case.name == "firewall-by-ip-public-compute")
    before = len(fake.calls)
    assert await _observe(fake, by_ip.spec()) == by_ip.observed
    assert str(FIREWALL) not in {resource for _, resource in fake.calls[before:]}, "given in the spec: not read"


@pytest.mark.parametrize("example", ["01", "03", "05", "06"])
async def test_without_a_firewall_nothing_is_observed(example: str) -> None:
    assert await _observe(seeded_fake(), spec(example)) == Observed()


async def test_a_registry_behind_a_private_endpoint_must_be_premium() -> None:
    fake = seeded_fake()
    fake.set_field(REGISTRY, "sku.name", "Basic")
    failure = await _refusal(fake, spec("03"))
    assert (failure.reason, failure.message) == (
        "RegistryNotPremium",
        f"container registry {REGISTRY} is Basic; a registry behind a private endpoint must be Premium: "
        "upgrade it or reference a Premium registry",
    )


async def test_the_registry_is_checked_before_the_firewall() -> None:
    fake = seeded_fake()
    fake.set_field(REGISTRY, "sku.name", "Standard")
    fake.remove(FIREWALL)
    assert (await _refusal(fake, spec("04"))).reason == "RegistryNotPremium"


async def test_a_firewall_must_exist_and_have_a_private_ip() -> None:
    fake = seeded_fake()
    fake.set_field(FIREWALL, "properties.ipConfigurations", [])
    failure = await _refusal(fake, spec("04"))
    assert (failure.reason, failure.message) == (
        "FirewallHasNoPrivateIP",
        f"firewall {FIREWALL} has no private IP address (no IP configuration in AzureFirewallSubnet): routes "
        "to it would drop all traffic; finish deploying the firewall",
    )
    fake.remove(FIREWALL)
    failure = await _refusal(fake, spec("04"))
    assert (failure.reason, failure.message) == ("DependencyNotFound", f"firewall {FIREWALL} does not exist")


async def test_an_adopted_vnet_must_hold_our_subnets() -> None:
    fake = seeded_fake()
    outside = spec("03", _in_clients_vnet("10.0.40.0/24", {"addressPrefix": "10.2.1.0/24"}))
    failure = await _refusal(fake, outside)
    assert (failure.reason, failure.message) == (
        "VirtualNetworkTooSmall",
        f"subnet training (10.0.40.0/24) does not fit in {CLIENTS}'s address space 10.2.0.0/16: add an address "
        "range to the VNet or choose another prefix",
    )
    clash = spec("03", _in_clients_vnet("10.2.1.0/25", {"addressPrefix": "10.2.3.0/24", "name": "snet-pe"}))
    failure = await _refusal(fake, clash)
    assert (failure.reason, failure.message) == (
        "SubnetOverlaps",
        f"subnet training (10.2.1.0/25) overlaps existing subnet(s) private-endpoints of {CLIENTS}: choose a free "
        "prefix",
    )
    ours = spec("03", _in_clients_vnet("10.2.40.0/24", {"addressPrefix": "10.2.1.0/24"}))
    assert await _observe(fake, ours) == Observed(), "its subnet named as ours is ours to adopt, not a clash"
