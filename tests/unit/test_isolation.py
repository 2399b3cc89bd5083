"""InboundIsolated, OutboundIsolated and the hub peering, from the effective configuration Azure
reports (the live bodies of a walk), never from the spec's mode."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from apicases import example

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired import azureml_network as aml
from secureml_operator.desired.graph import Lifecycle
from secureml_operator.desired.nat_gateway import nat_gateway_id
from secureml_operator.desired.observed import Observed
from secureml_operator.desired.peering import hub_peering_ids
from secureml_operator.desired.plan import plan
from secureml_operator.desired.vnet import subnet_ids, virtual_network_id
from secureml_operator.desired.workspace import workspace_id
from secureml_operator.engine.engine import NodeResult, RunReport
from secureml_operator.settings import OperatorSettings
from secureml_operator.status import isolation
from secureml_operator.status.conditions import Condition
from secureml_operator.status.report import isolation_conditions

Json = dict[str, Any]
FIREWALL_IP = "10.1.0.4"
TRAINING = ipaddress.IPv4Network("10.0.40.0/24")


def _spec(name: str, change: Any = None) -> SecureMLWorkspaceSpec:
    manifest = example(name)
    if change is not None:
        change(manifest["spec"])
    return SecureMLWorkspaceSpec.model_validate(manifest["spec"])


HUB = _spec("04-customer-vnet-hub-firewall.yaml")
NAT = _spec("03-customer-vnet-nat.yaml")
MANAGED = _spec("02-managed-approved-outbound.yaml")


def _route(name: str, prefix: str, hop: str, address: str | None = None) -> Json:
    properties = {"addressPrefix": prefix, "nextHopType": hop} | ({"nextHopIpAddress": address} if address else {})
    return {"name": name, "properties": properties}


def _rule(name: str, priority: int, access: str, destination: str, **extra: Any) -> Json:
    properties = {
        "priority": priority,
        "direction": "Outbound",
        "access": access,
        "protocol": "*",
        "sourceAddressPrefix": "*",
        "sourcePortRange": "*",
        "destinationAddressPrefix": destination,
        "destinationPortRange": "*",
    }
    return {"name": name, "properties": properties | extra}


def _operator_rules(through_firewall: bool) -> list[Json]:
    """The NSG rules the operator declares for no-public-IP compute."""
    rules = aml.required_nsg_rules("brazilsouth", compute_public_ip=False, through_firewall=through_firewall)
    return [{"name": rule.name, "properties": rule.properties()} for rule in rules]


def _from(source: str, **extra: Any) -> Json:
    return _rule("FromElsewhere", 150, "Allow", "Internet", sourceAddressPrefix=source, **extra)


TO_FIREWALL = _route(aml.FIREWALL_ROUTE, "0.0.0.0/0", "VirtualAppliance", FIREWALL_IP)
FIREWALL_EGRESS = isolation.Egress(firewall_ip=FIREWALL_IP)
NAT_ID = str(nat_gateway_id(NAT))
NAT_EGRESS = isolation.Egress(nat_gateway=nat_gateway_id(NAT))
SPLIT = [_route("low", "0.0.0.0/1", "Internet"), _route("high", "128.0.0.0/1", "Internet")]
ALLOW_WEB = _rule("AllowWeb", 150, "Allow", "Internet", protocol="Tcp", destinationPortRange="443")


# addresses -----------------------------------------------------------------------------------------


def test_public_part_leaves_out_private_and_reserved_space() -> None:
    net = ipaddress.IPv4Network
    assert isolation.public_part(net("10.0.0.0/8")) == ()
    assert isolation.public_part(net("192.168.1.0/24")) == ()
    assert isolation.public_part(net("203.0.113.0/24")) == (net("203.0.113.0/24"),)
    assert isolation.public_part(net("10.0.0.0/7")) == (net("11.0.0.0/8"),)


@pytest.mark.parametrize(
    ("prefixes", "covers"),
    [
        (["0.0.0.0/0"], True),
        (["0.0.0.0/1", "128.0.0.0/1"], True),
        (["0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/2"], True),
        ([f"{first}.0.0.0/8" for first in range(1, 224) if first not in (10, 127)], True),  # every public /8
        (["0.0.0.0/1"], False),
        (["0.0.0.0/1", "128.0.0.0/2"], False),
        ([f"{first}.0.0.0/8" for first in range(1, 223) if first not in (10, 127)], False),  # all but 223/8
        ([], False),
    ],
)
def test_covers_internet_takes_the_entries_together(prefixes: list[str], covers: bool) -> None:
    assert isolation.covers_internet(ipaddress.IPv4Network(prefix) for prefix in prefixes) is covers


# inbound -------------------------------------------------------------------------------------------


def _workspace(access: str = "Enabled", default_action: str = "Deny", *ranges: str) -> Json:
    acls = {"defaultAction": default_action, "ipRules": [{"value": value, "action": "Allow"} for value in ranges]}
    return {"properties": {"publicNetworkAccess": access, "networkAcls": acls}}


@pytest.mark.parametrize(
    ("workspace", "expected"),
    [
        (_workspace("Disabled", "Allow", "0.0.0.0/0"), (True, "PublicAccessDisabled")),
        (_workspace("Enabled", "Allow"), (False, "PublicAccessEnabled")),
        ({"properties": {"publicNetworkAccess": "Enabled"}}, (False, "PublicAccessEnabled")),
        ({"properties": {}}, (False, "PublicAccessEnabled")),
        (_workspace("Enabled", "Deny"), (True, "SelectedIPsOnly")),
        (_workspace("Enabled", "Deny", "203.0.113.7", "198.51.100.0/24", "10.0.0.0/8"), (True, "SelectedIPsOnly")),
        (None, (False, "NotVerified")),
    ],
)
def test_inbound_reads_the_live_access_and_default_action(workspace: Json | None, expected: tuple[bool, str]) -> None:
    condition = isolation.inbound(workspace, widest_prefix=8)
    assert (condition.status, condition.reason) == expected


@pytest.mark.parametrize(
    ("ranges", "named"),
    [
        (["203.0.113.7", "0.0.0.0/0"], "entries that cover the whole internet: 0.0.0.0/0"),
        (
            ["203.0.113.7", "0.0.0.0/1", "128.0.0.0/1"],
            "together cover the whole internet: 0.0.0.0/1, 128.0.0.0/1, 203.0.113.7",
        ),
        (["10.0.0.0/16", "0.0.0.0/1"], "wider than /8 (SMLW_ALLOWLIST_WIDEST_PREFIX): 0.0.0.0/1"),
        (["10.0.0.0/7"], "wider than /8 (SMLW_ALLOWLIST_WIDEST_PREFIX): 10.0.0.0/7"),
        (["203.0.113.7", "pypi.org"], "not IPv4 addresses or ranges: pypi.org"),
        (["2001:db8::/32"], "not IPv4 addresses or ranges: 2001:db8::/32"),
    ],
)
def test_an_allowlist_too_broad_is_not_isolation_and_is_named(ranges: list[str], named: str) -> None:
    condition = isolation.inbound(_workspace("Enabled", "Deny", *ranges), widest_prefix=8)
    assert (condition.status, condition.reason) == (False, "AllowlistTooBroad")
    assert named in condition.message


def test_the_widest_prefix_is_a_setting() -> None:
    workspace = _workspace("Enabled", "Deny", "10.0.0.0/8")
    assert isolation.inbound(workspace, widest_prefix=8).status is True
    assert isolation.inbound(workspace, widest_prefix=16).reason == "AllowlistTooBroad"
    half = _workspace("Enabled", "Deny", "0.0.0.0/1")
    assert isolation.inbound(half, widest_prefix=0).status is True, "half the internet, and no limit"
    everything = _workspace("Enabled", "Deny", "0.0.0.0/0")
    assert isolation.inbound(everything, widest_prefix=0).reason == "AllowlistTooBroad", (
        "the internet, whatever the limit"
    )


def test_a_long_list_of_offenders_is_cut_short() -> None:
    ranges = [f"{first}.0.0.0/7" for first in range(20, 40, 2)]
    message = isolation.inbound(_workspace("Enabled", "Deny", *ranges), widest_prefix=8).message
    assert message.endswith("20.0.0.0/7, 22.0.0.0/7, 24.0.0.0/7, 26.0.0.0/7, 28.0.0.0/7 and 5 more")


def test_the_limit_is_read_from_the_environment() -> None:
    assert OperatorSettings.from_env({}).allowlist_widest_prefix == 8
    assert OperatorSettings.from_env({"SMLW_ALLOWLIST_WIDEST_PREFIX": "16"}).allowlist_widest_prefix == 16
    assert OperatorSettings.from_env({"SMLW_ALLOWLIST_WIDEST_PREFIX": "0"}).allowlist_widest_prefix == 0


@pytest.mark.parametrize("value", ["33", "-1", "/8", "eight"])
def test_a_bad_limit_is_refused_by_name(value: str) -> None:
    with pytest.raises(ValueError, match=f"SMLW_ALLOWLIST_WIDEST_PREFIX='{value}' is not an IPv4 prefix length"):
        OperatorSettings.from_env({"SMLW_ALLOWLIST_WIDEST_PREFIX": value})


# routes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routes", "leaks"),
    [
        ([TO_FIREWALL], []),
        ([TO_FIREWALL, *SPLIT], ["route low (0.0.0.0/1)", "route high (128.0.0.0/1)"]),
        ([TO_FIREWALL, SPLIT[0]], ["route low (0.0.0.0/1)"]),
        ([TO_FIREWALL, _route("onprem", "10.0.0.0/8", "Internet")], []),
        ([TO_FIREWALL, _route("partner", "203.0.113.0/24", "Internet")], ["route partner (203.0.113.0/24)"]),
        ([TO_FIREWALL, _route("wide", "10.0.0.0/7", "Internet")], ["route wide (10.0.0.0/7)"]),
        ([TO_FIREWALL, _route("azureml", "AzureMachineLearning", "Internet")], []),
        ([TO_FIREWALL, _route("drop", "0.0.0.0/1", "None"), _route("vpn", "128.0.0.0/1", "VirtualNetworkGateway")], []),
        (
            [TO_FIREWALL, SPLIT[0], _route("a", "0.0.0.0/2", "VirtualAppliance", FIREWALL_IP),
             _route("b", "64.0.0.0/2", "VirtualAppliance", FIREWALL_IP)],
            [],
        ),  # the /1 to Internet is the longest match for no address
        ([], ["Azure's system route 0.0.0.0/0"]),
        ([SPLIT[0]], ["route low (0.0.0.0/1)", "Azure's system route 0.0.0.0/0"]),
        ([_route("elsewhere", "0.0.0.0/0", "VirtualAppliance", "10.9.9.9")], ["route elsewhere (0.0.0.0/0)"]),
    ],
)  # fmt: skip
def test_routes_that_beat_the_firewall_route_are_named(routes: list[Json], leaks: list[str]) -> None:
    found = isolation.route_leaks(routes, FIREWALL_EGRESS, nat_attached=None)
    assert [leak.split(" sends ")[0] for leak in found] == leaks


def test_a_route_leak_says_where_the_traffic_goes_instead() -> None:
    internet, appliance = isolation.route_leaks(
        [SPLIT[0], _route("elsewhere", "0.0.0.0/0", "VirtualAppliance", "10.9.9.9")], FIREWALL_EGRESS, None
    )
    assert internet == "route low (0.0.0.0/1) sends public addresses to the internet, not through the firewall 10.1.0.4"
    assert appliance.endswith("to the appliance 10.9.9.9, not through the firewall 10.1.0.4")


def test_an_unknown_firewall_address_vouches_for_no_appliance() -> None:
    assert isolation.route_leaks([TO_FIREWALL], isolation.Egress(), None) != []


@pytest.mark.parametrize(
    ("routes", "attached", "leaks"),
    [
        ([], NAT_ID, 0),
        ([], NAT_ID.upper(), 0),
        (SPLIT, NAT_ID, 0),  # Internet next hops leave through the subnet's NAT gateway
        ([], None, 1),
        ([], NAT_ID.replace("ng-", "ng-other-"), 1),
        ([_route("nva", "0.0.0.0/0", "VirtualAppliance", "10.0.5.4")], NAT_ID, 1),
    ],
)
def test_with_nat_egress_the_internet_is_reached_only_through_our_gateway(
    routes: list[Json], attached: str | None, leaks: int
) -> None:
    found = isolation.route_leaks(routes, NAT_EGRESS, attached)
    assert len(found) == leaks, found
    assert all("not through the NAT gateway ng-mlw-litware-nat-egress" in leak for leak in found)


# NSG -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "leaks"),
    [
        (_operator_rules(through_firewall=True), []),
        (_operator_rules(through_firewall=False), []),  # service tags allowed, then everything denied
        ([*_operator_rules(True), ALLOW_WEB], ["rule AllowWeb (priority 150)"]),
        ([*_operator_rules(True), {**ALLOW_WEB, "properties": {**ALLOW_WEB["properties"], "priority": 250}}], []),
        ([*_operator_rules(True), _rule("AllowDns", 150, "Allow", "8.8.8.8/32")], ["rule AllowDns (priority 150)"]),
        ([*_operator_rules(True), _rule("AllowStorage", 150, "Allow", "Storage.BrazilSouth")], []),
        ([*_operator_rules(True), _rule("AllowPeer", 150, "Allow", "10.1.0.0/16")], []),
        ([*_operator_rules(True), _rule("AllowAll", 150, "Allow", "*")], ["rule AllowAll (priority 150)"]),
        ([], ["Azure's default rule AllowInternetOutBound (priority 65001)"]),
        (
            [rule for rule in _operator_rules(True) if rule["name"] != "DenyAllOutbound"],
            ["Azure's default rule AllowInternetOutBound (priority 65001)"],
        ),
        ([_rule("Deny443", 150, "Deny", "Internet", destinationPortRange="443")], ["Azure's default rule"]),
        ([_rule("DenyTcp", 150, "Deny", "Internet", protocol="Tcp")], ["Azure's default rule"]),
        ([_rule("DenyHalf", 150, "Deny", "0.0.0.0/1")], ["Azure's default rule"]),
        ([_rule("DenyOthers", 150, "Deny", "*", sourceAddressPrefix="10.0.40.0/25")], ["Azure's default rule"]),
        ([_rule("DenyBoth", 150, "Deny", "", destinationAddressPrefixes=["0.0.0.0/1", "128.0.0.0/1"])], []),
        ([_rule("DenyPorts", 150, "Deny", "*", destinationPortRange="", destinationPortRanges=["0-65535"])], []),
        ([_rule("DenyVnet", 150, "Deny", "Internet", sourceAddressPrefix="VirtualNetwork")], []),
        ([_rule("DenyWider", 150, "Deny", "Internet", sourceAddressPrefix="10.0.0.0/16")], []),
        ([_from("10.99.0.0/24"), *_operator_rules(True)], []),
        ([_from("AzureLoadBalancer"), *_operator_rules(True)], []),
        ([_from("10.0.0.0/16"), *_operator_rules(True)], ["rule FromElsewhere (priority 150)"]),
        ([_from("", sourceApplicationSecurityGroups=[{"id": "asg"}]), *_operator_rules(True)],
         ["rule FromElsewhere (priority 150)"]),
        ([*_operator_rules(True), _rule("Inbound", 150, "Allow", "Internet", direction="Inbound")], []),
    ],
)  # fmt: skip
def test_nsg_allows_to_the_internet_before_a_full_deny_are_named(rules: list[Json], leaks: list[str]) -> None:
    found = isolation.nsg_leaks(rules, TRAINING)
    assert len(found) == len(leaks), found
    assert all(leak.startswith(prefix) for leak, prefix in zip(found, leaks, strict=True)), found


def test_an_nsg_leak_names_the_rule_and_its_destination() -> None:
    (leak,) = isolation.nsg_leaks([*_operator_rules(True), ALLOW_WEB], TRAINING)
    assert leak == "rule AllowWeb (priority 150) allows outbound traffic to Internet"


def test_without_the_subnet_prefix_only_a_deny_for_everyone_counts() -> None:
    rules = [_rule("DenyWider", 150, "Deny", "Internet", sourceAddressPrefix="10.0.0.0/16")]
    assert isolation.nsg_leaks(rules, None) != []
    assert isolation.nsg_leaks(_operator_rules(True), None) == []


# customer VNet, whole subnets ---------------------------------------------------------------------


def _ids(spec: SecureMLWorkspaceSpec) -> dict[str, ArmId]:
    """Node ids of a plan by ARM type (the last segment)."""
    return {node.id.type.rsplit("/", 1)[-1].lower(): node.id for node in plan(spec, Observed(FIREWALL_IP))}


def _network(
    spec: SecureMLWorkspaceSpec,
    routes: list[Json] | None,
    rules: list[Json],
    nat: str | None = None,
    attach: dict[str, str] | None = None,
) -> dict[str, Json]:
    """Live bodies by node key: the compute subnets with our route table (when `routes` is given),
    NSG and `nat` attached, plus whatever `attach` replaces."""
    ids = _ids(spec)
    live: dict[str, Json] = {ids["networksecuritygroups"].key: {"properties": {"securityRules": rules}}}
    references: dict[str, str] = {"networkSecurityGroup": str(ids["networksecuritygroups"])}
    if routes is not None:
        live[ids["routetables"].key] = {"properties": {"routes": routes}}
        references["routeTable"] = str(ids["routetables"])
    if nat is not None:
        references["natGateway"] = nat
    references |= attach or {}
    for role, subnet_id in subnet_ids(spec).items():
        prefix = {"training": "10.0.40.0/24", "scoring": "10.0.90.0/24"}.get(role, "10.0.20.0/24")
        attached = {kind: {"id": value} for kind, value in references.items() if value}
        live[subnet_id.key] = {"name": subnet_id.name, "properties": {"addressPrefix": prefix, **attached}}
    return live


def _report(spec: SecureMLWorkspaceSpec, live: dict[str, Json]) -> RunReport:
    """A walk of the spec's plan that ended with these live bodies, each result with its node's role."""
    nodes = plan(spec, Observed(FIREWALL_IP)).nodes
    return RunReport(
        {
            key: NodeResult(key, "t", live=body, role=nodes[key].role if key in nodes else None)
            for key, body in live.items()
        }
    )


def _outbound(spec: SecureMLWorkspaceSpec, live: dict[str, Json], firewall_ip: str | None = FIREWALL_IP) -> Condition:
    return isolation.customer_outbound(spec, _report(spec, live), firewall_ip)


def test_the_hub_layout_as_planned_is_isolated() -> None:
    condition = _outbound(HUB, _network(HUB, [TO_FIREWALL], _operator_rules(True)))
    assert (condition.status, condition.reason) == (True, "CustomerVNet")
    assert "leave training, scoring only through the firewall 10.1.0.4" in condition.message


def test_split_routes_to_the_internet_are_not_isolation() -> None:
    condition = _outbound(HUB, _network(HUB, [TO_FIREWALL, *SPLIT], _operator_rules(True)))
    assert (condition.status, condition.reason) == (False, "RouteBypassesEgress")
    assert "route low (0.0.0.0/1) sends public addresses to the internet" in condition.message
    assert "route high (128.0.0.0/1)" in condition.message
    assert "(subnet training, scoring)" in condition.message, "one line per leak, naming every subnet it affects"


def test_an_nsg_allow_above_the_deny_is_not_isolation() -> None:
    condition = _outbound(HUB, _network(HUB, [TO_FIREWALL], [*_operator_rules(True), ALLOW_WEB]))
    assert (condition.status, condition.reason) == (False, "NsgAllowsInternet")
    nsg = "network security group nsg-mlw-litware-hub-compute"
    assert f"{nsg}: rule AllowWeb (priority 150) allows outbound traffic to Internet" in condition.message


def test_routes_are_named_before_nsg_rules_and_both_are_listed() -> None:
    condition = _outbound(HUB, _network(HUB, [TO_FIREWALL, SPLIT[0]], [*_operator_rules(True), ALLOW_WEB]))
    assert condition.reason == "RouteBypassesEgress"
    assert "route low" in condition.message and "AllowWeb" in condition.message


def test_a_detached_route_table_or_nsg_leaves_azures_defaults() -> None:
    detached = _network(
        HUB, [TO_FIREWALL], _operator_rules(True), attach={"routeTable": "", "networkSecurityGroup": ""}
    )
    condition = _outbound(HUB, detached)
    assert condition.reason == "RouteBypassesEgress"
    assert "Azure's system route 0.0.0.0/0 sends public addresses to the internet" in condition.message
    assert "no network security group: Azure's default rule AllowInternetOutBound" in condition.message


def test_what_the_walk_did_not_read_is_not_vouched_for() -> None:
    foreign = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/routeTables/rt-someone-else"
    condition = _outbound(HUB, _network(HUB, [TO_FIREWALL], _operator_rules(True), attach={"routeTable": foreign}))
    assert (condition.status, condition.reason) == (False, "NotVerified")
    assert "route table rt-someone-else was not read" in condition.message
    unread = _outbound(HUB, {})
    assert (unread.status, unread.reason) == (False, "NotVerified")
    assert "the subnet was not read (subnet training, scoring)" in unread.message


def test_without_the_firewall_address_the_firewall_route_is_not_vouched_for() -> None:
    condition = _outbound(HUB, _network(HUB, [TO_FIREWALL], _operator_rules(True)), firewall_ip=None)
    assert (condition.status, condition.reason) == (False, "RouteBypassesEgress")
    assert "(its private IP was not read)" in condition.message


def test_nat_egress_is_isolated_while_our_gateway_is_attached() -> None:
    rules = _operator_rules(through_firewall=False)
    assert _outbound(NAT, _network(NAT, None, rules, nat=NAT_ID)).status is True
    detached = _outbound(NAT, _network(NAT, None, rules))
    assert (detached.status, detached.reason) == (False, "RouteBypassesEgress")
    assert "not through the NAT gateway ng-mlw-litware-nat-egress" in detached.message


def test_egress_none_is_never_isolated() -> None:
    def public_compute(spec: Json) -> None:
        network = spec["outbound"]["customerNetwork"]
        network.update(computePublicIp=True, egress={"none": {}}, allowlistEgressOn=[])

    spec = _spec("03-customer-vnet-nat.yaml", public_compute)
    condition = _outbound(spec, _network(spec, None, _operator_rules(False)))
    assert (condition.status, condition.reason) == (False, "NoEgressControl")


# managed network -----------------------------------------------------------------------------------


def _managed(mode: str, status: str = "Active") -> Json:
    return {"properties": {"managedNetwork": {"isolationMode": mode, "status": {"status": status}}}}


@pytest.mark.parametrize(
    ("workspace", "provision_now", "expected"),
    [
        (_managed("AllowOnlyApprovedOutbound"), True, (True, "AllowOnlyApprovedOutbound")),
        (_managed("AllowOnlyApprovedOutbound", "Inactive"), True, (False, "ManagedNetworkInactive")),
        (_managed("AllowInternetOutbound"), True, (False, "AllowInternetOutbound")),
        (_managed("AllowInternetOutbound", "Inactive"), True, (False, "AllowInternetOutbound")),
        (_managed("Disabled"), True, (False, "ManagedNetworkDisabled")),
        ({"properties": {}}, True, (False, "ManagedNetworkDisabled")),
        (None, True, (False, "NotVerified")),
    ],
)
def test_managed_outbound_reads_the_live_isolation_mode(
    workspace: Json | None, provision_now: bool, expected: tuple[bool, str]
) -> None:
    condition = isolation.managed_outbound(workspace, provision_now)
    assert (condition.status, condition.reason) == expected


def test_an_inactive_network_says_when_it_provisions() -> None:
    later = isolation.managed_outbound(_managed("AllowOnlyApprovedOutbound", "Inactive"), provision_now=False)
    assert later.message.endswith("it provisions when the first compute starts")
    now = isolation.managed_outbound(_managed("AllowOnlyApprovedOutbound", "Inactive"), provision_now=True)
    assert "provisions" not in now.message


# isolation_conditions: the live bodies win over the spec ------------------------------------------


def test_conditions_follow_azure_not_the_spec() -> None:
    assert MANAGED.inbound.public_network_access == "Disabled"
    assert MANAGED.outbound.managed_network is not None
    assert MANAGED.outbound.managed_network.isolation_mode == "AllowOnlyApprovedOutbound"
    opened = {"properties": _workspace("Enabled", "Deny", "0.0.0.0/0")["properties"]}
    opened["properties"] |= _managed("AllowInternetOutbound")["properties"]
    inbound, outbound = isolation_conditions(
        MANAGED, _report(MANAGED, {workspace_id(MANAGED).key: opened}), Observed(), 8
    )
    assert (inbound.status, inbound.reason) == (False, "AllowlistTooBroad")
    assert (outbound.status, outbound.reason) == (False, "AllowInternetOutbound")


def test_conditions_use_the_firewall_address_preflight_read_and_the_limit() -> None:
    live = _network(HUB, [TO_FIREWALL], _operator_rules(True))
    live[workspace_id(HUB).key] = _workspace("Enabled", "Deny", "10.0.0.0/8")
    report = _report(HUB, live)
    inbound, outbound = isolation_conditions(HUB, report, Observed(FIREWALL_IP), allowlist_widest_prefix=16)
    assert (inbound.reason, outbound.status) == ("AllowlistTooBroad", True)
    _, elsewhere = isolation_conditions(HUB, report, Observed("10.1.0.5"), 8)
    assert (elsewhere.status, elsewhere.reason) == (False, "RouteBypassesEgress")


# hub peering ---------------------------------------------------------------------------------------

SPOKE = virtual_network_id(HUB)
PEERING, HUB_VNET = hub_peering_ids(HUB) or pytest.fail("example 4 peers with its hub")


def _peering(state: str, remote: ArmId = HUB_VNET, name: str = "to-hub") -> Json:
    return {"name": name, "properties": {"peeringState": state, "remoteVirtualNetwork": {"id": str(remote)}}}


def _hub(*peerings: Json) -> Json:
    return {"properties": {"virtualNetworkPeerings": list(peerings)}}


def _sides(ours: Json | None, hub: Json | None) -> dict[str, Json]:
    return {key: body for key, body in ((PEERING.key, ours), (HUB_VNET.key, hub)) if body is not None}


def test_both_sides_connected_is_ready_and_reported() -> None:
    live = _sides(_peering("Connected"), _hub(_peering("Connected", SPOKE, "hub-to-litware")))
    assert isolation.peering_failure(HUB, live.get) is None
    peering = isolation.hub_peering(HUB, live.get)
    assert peering is not None
    assert peering.as_status() == {
        "hubVirtualNetworkId": str(HUB_VNET),
        "name": "to-hub",
        "state": "Connected",
        "remoteName": "hub-to-litware",
        "remoteState": "Connected",
    }


@pytest.mark.parametrize(
    ("ours", "hub", "states", "says"),
    [
        (_peering("Initiated"), _hub(), ("Initiated", "Missing"), "the hub has no peering back"),
        (
            _peering("Initiated"),
            _hub(_peering("Connected", ArmId.parse(str(SPOKE).replace("spoke", "other")))),
            ("Initiated", "Missing"),
            "must peer vnet-hub with " + str(SPOKE),
        ),
        (_peering("Disconnected"), _hub(), ("Disconnected", "Missing"), "Delete to-hub (the operator creates it"),
        (_peering("Initiated"), None, ("Initiated", "Unknown"), "the hub's side is Unknown"),
        (None, _hub(), ("Missing", "Missing"), "is Missing"),
        (_peering("Connected"), _hub(_peering("Disconnected", SPOKE)), ("Connected", "Disconnected"), "Disconnected"),
    ],
)
def test_a_peering_not_connected_on_both_sides_keeps_the_resource_from_ready(
    ours: Json | None, hub: Json | None, states: tuple[str, str], says: str
) -> None:
    live = _sides(ours, hub)
    peering = isolation.hub_peering(HUB, live.get)
    assert peering is not None
    assert (peering.state, peering.remote_state) == states
    assert peering.as_status().get("remoteName") == peering.remote, "named only when the hub has a side"
    failure = isolation.peering_failure(HUB, live.get)
    assert failure is not None and failure.transient
    assert failure.reason == "PeeringNotConnected"
    assert says in failure.message


def _unpeered(spec: Json) -> None:
    spec["outbound"]["customerNetwork"]["egress"]["firewall"].update(peering=False, peerFromHub=False)


def _hub_not_ours(spec: Json) -> None:
    spec["outbound"]["customerNetwork"]["egress"]["firewall"]["peerFromHub"] = False


def test_only_a_peering_the_operator_makes_is_checked() -> None:
    nothing: dict[str, Json] = {}
    assert isolation.peering_failure(NAT, nothing.get) is None
    assert isolation.peering_failure(_spec("04-customer-vnet-hub-firewall.yaml", _unpeered), nothing.get) is None


def test_the_plan_reads_the_hub_after_peering_with_it() -> None:
    graph = plan(HUB, Observed(FIREWALL_IP))
    hub = graph.nodes[HUB_VNET.key]
    assert (hub.lifecycle, hub.create_body, hub.fields, hub.children) == (Lifecycle.EXTERNAL, None, (), ())
    back = graph.nodes[HUB_VNET.child("virtualNetworkPeerings", "to-vnet-litware-spoke").key]
    assert (back.lifecycle, back.depends_on) == (Lifecycle.OWNED, (PEERING.key,)), "peerFromHub: ours too"
    assert hub.depends_on == (back.key,), "read after both sides exist, so the walk sees the pair"
    assert graph.nodes[PEERING.key].create_body is not None
    not_ours = plan(_spec("04-customer-vnet-hub-firewall.yaml", _hub_not_ours), Observed(FIREWALL_IP))
    assert not_ours.nodes[HUB_VNET.key].depends_on == (PEERING.key,)
    assert back.key not in not_ours.nodes, "a hub that is not ours is only read"
    unpeered = plan(_spec("04-customer-vnet-hub-firewall.yaml", _unpeered), Observed(FIREWALL_IP))
    assert HUB_VNET.key not in unpeered.nodes and PEERING.key not in unpeered.nodes
