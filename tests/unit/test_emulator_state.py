"""The emulator's indexes of its resources (children, by type, by the ids a body names) answer what a
scan of every resource would, through creates, updates that move a reference, and cascading deletes."""

from __future__ import annotations

import random

from armemu.arm import get_path, type_of
from armemu.state import State

GROUP = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
NETWORK = f"{GROUP}/providers/Microsoft.Network"
VNETS = [f"{NETWORK}/virtualNetworks/vnet-{index}" for index in range(3)]
NSGS = [f"{NETWORK}/networkSecurityGroups/NSG-{index}" for index in range(3)]  # referred to in other casings
SUBNET = "microsoft.network/virtualnetworks/subnets"


def _scanned(state: State, parent: str, target: str) -> tuple[list[str], list[str], list[str]]:
    """Children of `parent`, subnets, and subnets naming `target`, by a scan of every resource."""
    every = sorted(state.resources.values(), key=lambda r: r.key)
    return (
        [r.key for r in every if r.parent == parent.lower()],
        [r.key for r in every if type_of(r.id) == SUBNET],
        [
            r.key
            for r in every
            if type_of(r.id) == SUBNET
            and (get_path(r.body, "properties.networkSecurityGroup.id") or "").lower() == target.lower()
        ],
    )


def _indexed(state: State, parent: str, target: str) -> tuple[list[str], list[str], list[str]]:
    keys = lambda found: [r.key for r in found]  # noqa: E731
    return keys(state.children(parent)), keys(state.of_type(SUBNET)), keys(state.referring(target, SUBNET))


def test_the_indexes_answer_as_a_scan_of_every_resource_would() -> None:
    draw = random.Random(7)
    state = State()
    for vnet in VNETS:
        state.put(vnet, {"properties": {}}, None)
    for step in range(400):
        vnet = draw.choice(VNETS)
        subnet = f"{vnet}/subnets/s{draw.randrange(6)}"
        if step % 50 == 49:  # a VNet goes, and its subnets with it
            state.delete(vnet.upper())
            state.put(vnet, {"properties": {}}, None)
        elif draw.random() < 0.2:
            state.delete(subnet)
        else:  # created, or updated to name another NSG (or none), in any casing
            nsg = draw.choice([*NSGS, None])
            named = {"networkSecurityGroup": {"id": draw.choice([nsg.lower(), nsg.upper(), nsg])}} if nsg else {}
            state.put(subnet, {"properties": named}, vnet)
        for parent, target in ((vnet, nsg) for nsg in NSGS):
            assert _indexed(state, parent, target) == _scanned(state, parent, target), step
    assert state.of_type(SUBNET), "the walk left subnets to compare"
    assert any(state.referring(nsg, SUBNET) for nsg in NSGS), "and subnets naming an NSG"


def test_a_resource_updated_to_name_another_id_leaves_the_first_ones_referrers() -> None:
    state = State()
    subnet = f"{VNETS[0]}/subnets/default"
    state.put(VNETS[0], {"properties": {}}, None)
    state.put(subnet, {"properties": {"networkSecurityGroup": {"id": NSGS[0]}}}, VNETS[0])
    state.put(subnet, {"properties": {"networkSecurityGroup": {"id": NSGS[1]}}}, VNETS[0])

    assert state.referring(NSGS[0], SUBNET) == []
    assert [r.id for r in state.referring(NSGS[1].upper(), SUBNET)] == [subnet]
