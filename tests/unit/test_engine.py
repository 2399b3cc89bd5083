"""The engine on its own, against an in-memory ARM (armfake.py): converge, drift in Enforce and
Detect, extra children under each list policy, ownership refusals and adoption, teardown by the
ledger, conflicting writers, and failures. Each walk is planned the way the reconciler plans it
(preflight's reads, the ledger's allowlists, plan()), and every claim of "no write" is counted on
the fake, which logs every call the engine makes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest
from armfake import ArmFake
from litware import litware, seeded_fake, spec, workspace_of

from secureml_operator import preflight
from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.fields import Json, get_path
from secureml_operator.desired.graph import DesiredGraph, Lifecycle
from secureml_operator.desired.plan import plan
from secureml_operator.engine.conflicts import CONFLICT_THRESHOLD, Conflicts
from secureml_operator.engine.engine import Action, Engine, Mode, Outcome, RunReport, nobody_else
from secureml_operator.engine.ledger import IP_RULE, Ledger, Origin, identity_of
from secureml_operator.engine.ownership import TAG_ADOPTED, Owner
from secureml_operator.failures import classify
from secureml_operator.reconciler import _observed_allowlists

EXAMPLES = ["01", "02", "03", "04", "05", "06"]
OWNER = Owner("team-a", "litware", "0d5e1c2a-0000-4000-8000-00000000000a")
NEXT_DOOR = Owner("team-b", "next-door", "0d5e1c2a-0000-4000-8000-00000000000b")
NOW = "2026-12-02T00:00:00Z"

VNET = litware("Microsoft.Network/virtualNetworks/vnet-litware")
TRAINING = VNET.child("subnets", "training")
NSG = litware("Microsoft.Network/networkSecurityGroups/nsg-mlw-litware-nat-compute")
NAT = litware("Microsoft.Network/natGateways/ng-mlw-litware-nat-egress")
DATA_LAKE = litware("Microsoft.Storage/storageAccounts/dlslitware")
BLOB_ZONE = litware("Microsoft.Network/privateDnsZones/privatelink.blob.core.windows.net")
SOMEONES_IP_RULE = {"value": "198.51.100.10", "action": "Allow"}  # on the data lake before us (armemu seed)
ACCESS = "properties.publicNetworkAccess"


def _workspace(prefix: str) -> ArmId:
    return workspace_of(spec(prefix))


def _adopting(body: Json) -> None:
    body["adoption"] = "Adopt"


def _policy(path: tuple[str, ...], policy: str) -> Callable[[Json], None]:
    def change(body: Json) -> None:
        parent = body
        for key in path:
            parent = parent.setdefault(key, {})
        parent["rulesPolicy"] = policy

    return change


async def prepare(fake: ArmFake, workspace: SecureMLWorkspaceSpec, ledger: Ledger) -> DesiredGraph:
    """As Reconciler.prepare: what only Azure knows (preflight), the IP rules in the ledger, plan()."""
    observed = await preflight.observe(cast(ArmClient, fake), workspace)
    return plan(workspace, _observed_allowlists(ledger, nobody_else, observed))


def engine(
    fake: ArmFake, workspace: SecureMLWorkspaceSpec, ledger: Ledger, owner: Owner = OWNER, **options: Any
) -> Engine:
    """As Reconciler.engine: adoption as the spec says."""
    return Engine(cast(ArmClient, fake), owner, ledger, adopt=workspace.adoption == "Adopt", **options)


async def converge(fake: ArmFake, workspace: SecureMLWorkspaceSpec, ledger: Ledger, **options: Any) -> RunReport:
    return await engine(fake, workspace, ledger, **options).converge(await prepare(fake, workspace, ledger))


async def teardown(fake: ArmFake, workspace: SecureMLWorkspaceSpec, ledger: Ledger) -> RunReport:
    """As Reconciler._teardown: no preflight, the plan only says which allowlists to take back."""
    graph = plan(workspace, _observed_allowlists(ledger, nobody_else))
    return await engine(fake, workspace, ledger).teardown(graph)


async def converged(
    workspace: SecureMLWorkspaceSpec, fake: ArmFake | None = None, owner: Owner = OWNER
) -> tuple[ArmFake, Ledger]:
    """Azure after a successful first reconcile of `workspace`."""
    fake = fake or seeded_fake()
    ledger = Ledger()
    report = await converge(fake, workspace, ledger, owner=owner)
    assert report.failures == [], [(failure.id, failure.error) for failure in report.failures]
    return fake, ledger


def _failure(report: RunReport, arm_id: ArmId) -> Exception:
    result = report.results[arm_id.key]
    assert result.outcome is Outcome.FAILED and result.error is not None, result
    return result.error


# converge ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("example", EXAMPLES)
async def test_converging_from_empty_creates_what_the_plan_declares_and_records_it(example: str) -> None:
    fake, ledger, workspace = seeded_fake(), Ledger(), spec(example)
    announced: list[str] = []

    async def announce(_verb: str, resource: str, _why: str) -> None:
        announced.append(resource)

    graph = await prepare(fake, workspace, ledger)
    report = await engine(fake, workspace, ledger, on_write=announce).converge(graph)

    assert report.failures == []
    for node in graph:
        live = fake.live(node.id)
        assert live is not None, f"{node.id} was not created"
        resolved = node.resolve(report.lookup) if node.resolve else ()
        assert [rule.path for rule in (*node.fields, *resolved) if rule.diff(live)] == [], node.id
        for children in node.children:
            listed = children.live_children(live)
            for child in children.children:
                assert [rule.path for rule in child.fields if rule.diff(listed[child.name])] == [], child.name
                assert ledger.owns(str(node.id.child(children.child_type, child.name)))
        if node.action is not None:
            assert node.action.steps(live, report.lookup) == [], f"{node.action.name} still due on {node.id}"
        entry = ledger.get(str(node.id))
        if node.lifecycle is Lifecycle.EXTERNAL:
            assert entry is None, "someone else's: never ours to delete"
            continue
        assert entry is not None and not entry.pending, node.id
        assert entry.origin is (Origin.SHARED if node.lifecycle is Lifecycle.SHARED else Origin.CREATED)
        assert entry.identity == identity_of(live)
        if node.tagged:
            assert OWNER.tags().items() <= live["tags"].items()
    assert sorted(announced) == sorted(resource for _verb, resource in fake.writes), "a write nobody was told of"


async def test_our_egress_ip_lands_on_the_allowlist_next_to_everyone_elses() -> None:
    """Additive: the target's other IP rules stay; ours is a ledger entry of its own."""
    fake, ledger = await converged(spec("03"))
    nat_ip = get_path(fake.live(litware("Microsoft.Network/publicIPAddresses/pip-mlw-litware-nat-egress-1")) or {},
                      "properties.ipAddress")  # fmt: skip
    rules = get_path(fake.live(DATA_LAKE) or {}, "properties.networkAcls.ipRules")
    assert rules == [SOMEONES_IP_RULE, {"value": nat_ip, "action": "Allow"}]
    assert [(entry.name, entry.origin) for entry in ledger.ip_rules(str(DATA_LAKE))] == [(nat_ip, Origin.CREATED)]


@pytest.mark.parametrize("example", EXAMPLES)
async def test_a_second_converge_writes_nothing(example: str) -> None:
    workspace = spec(example)
    fake, ledger = await converged(workspace)
    writes = len(fake.writes)
    report = await converge(fake, workspace, ledger)
    assert fake.writes[writes:] == []
    assert report.changes == []
    assert {result.outcome for result in report.results.values()} == {Outcome.UNCHANGED}


async def test_managed_network_is_provisioned_and_our_pending_connection_approved_not_a_strangers() -> None:
    """Actions read the walk's other live bodies: the target's approval needs the workspace's id."""
    workspace = spec("01")
    fake, ledger = await converged(workspace)
    assert get_path(fake.live(_workspace("01")) or {}, "properties.managedNetwork.status") == {
        "status": "Active",
        "sparkReady": True,
    }
    guid = get_path(fake.live(_workspace("01")) or {}, "properties.workspaceId")
    ours = DATA_LAKE.child("privateEndpointConnections", "ours")
    strangers = DATA_LAKE.child("privateEndpointConnections", "strangers")
    for connection, group in ((ours, f"azureml-managed-{guid}"), (strangers, "rg-other")):
        endpoint = f"/subscriptions/s/resourceGroups/{group}/providers/Microsoft.Network/privateEndpoints/"
        fake.seed(
            connection,
            {
                "properties": {
                    "privateEndpoint": {"id": endpoint + "mlw-litware-internet-datalake"},
                    "privateLinkServiceConnectionState": {"status": "Pending"},
                }
            },
        )  # as Azure ML does when the rule's managed endpoint asks for a connection
    writes = len(fake.writes)
    await converge(fake, workspace, ledger)
    state = "properties.privateLinkServiceConnectionState.status"
    assert (get_path(fake.live(ours) or {}, state), get_path(fake.live(strangers) or {}, state)) == (
        "Approved",
        "Pending",
    )
    assert fake.writes[writes:] == [("put", str(ours))]


# drift ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Drift:
    example: str
    resource: ArmId  # what someone changed behind our back, and what the correction writes
    path: str
    value: Any
    field: str  # the owned field that differs

    def __str__(self) -> str:
        return f"{self.resource.types[-1]}:{self.field}"


DRIFTS = [
    Drift("06", _workspace("06"), "properties.networkAcls.ipRules", [{"value": "0.0.0.0/0"}],
          "properties.networkAcls.ipRules"),
    Drift("03", TRAINING, "properties.networkSecurityGroup", None, "properties.networkSecurityGroup.id"),
    Drift("03", NSG.child("securityRules", "DenyAllOutbound"), "properties.access", "Allow", "properties.access"),
    Drift("02", _workspace("02").child("outboundRules", "huggingface"), "properties.destination",
          "exfiltrate.example.com", "properties.destination"),
]  # fmt: skip


@pytest.mark.parametrize("drift", DRIFTS, ids=str)
async def test_drift_in_an_owned_field_is_corrected_in_enforce_writing_only_that_resource(drift: Drift) -> None:
    workspace = spec(drift.example)
    fake, ledger = await converged(workspace)
    declared = get_path(fake.live(drift.resource) or {}, drift.path)
    fake.set_field(drift.resource, drift.path, drift.value)
    writes = len(fake.writes)
    report = await converge(fake, workspace, ledger)
    assert [(change.resource, change.field, change.action) for change in report.changes] == [
        (str(drift.resource), drift.field, Action.CORRECTED)
    ]
    assert {resource for _verb, resource in fake.writes[writes:]} == {str(drift.resource)}
    assert get_path(fake.live(drift.resource) or {}, drift.path) == declared


@pytest.mark.parametrize("drift", DRIFTS, ids=str)
async def test_drift_in_detect_mode_is_reported_and_left_alone(drift: Drift) -> None:
    workspace = spec(drift.example)
    fake, ledger = await converged(workspace)
    fake.set_field(drift.resource, drift.path, drift.value)
    writes = len(fake.writes)
    report = await converge(fake, workspace, ledger, mode=Mode.DETECT)
    assert [(change.resource, change.field, change.action) for change in report.changes] == [
        (str(drift.resource), drift.field, Action.DETECTED)
    ]
    assert fake.writes[writes:] == []
    assert get_path(fake.live(drift.resource) or {}, drift.path) == drift.value


# extra children ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Extra:
    example: str
    parent: ArmId
    child_type: str
    policy_at: tuple[str, ...]  # where the spec keeps the list's rulesPolicy
    body: Json

    def __str__(self) -> str:
        return self.child_type


AZURE_MANAGED_RULE = {"properties": {"type": "FQDN", "category": "Required", "destination": "login.microsoft.com"}}
EXTRAS = [
    Extra("03", NSG, "securityRules", ("outbound", "customerNetwork", "networkSecurity"),
          {"properties": {"protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": "3389",
                          "sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "access": "Allow",
                          "priority": 150, "direction": "Inbound"}}),
    Extra("02", _workspace("02"), "outboundRules", ("outbound", "managedNetwork"),
          {"properties": {"type": "FQDN", "category": "UserDefined", "destination": "example.org"}}),
]  # fmt: skip


@pytest.mark.parametrize("extra", EXTRAS, ids=str)
@pytest.mark.parametrize(
    ("policy", "action", "kept"), [("Authoritative", Action.CORRECTED, False), ("Additive", Action.REPORTED, True)]
)
async def test_an_extra_child_is_removed_under_authoritative_and_reported_under_additive(
    extra: Extra, policy: str, action: Action, kept: bool
) -> None:
    workspace = spec(extra.example, _policy(extra.policy_at, policy))
    fake, ledger = await converged(workspace)
    added = extra.parent.child(extra.child_type, "added-in-the-portal")
    azure_managed = _workspace("02").child("outboundRules", "required-by-azure")
    fake.seed(added, extra.body)
    fake.seed(azure_managed, AZURE_MANAGED_RULE)  # Azure's own rules are never ours to judge
    writes = len(fake.writes)
    report = await converge(fake, workspace, ledger)
    assert [(change.resource, change.action) for change in report.changes] == [(str(added), action)]
    assert fake.writes[writes:] == ([] if kept else [("delete", str(added))])
    assert (fake.live(added) is not None) is kept
    assert fake.live(azure_managed) is not None


# ownership -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tags", "adoption", "reason"),
    [({}, None, "ExistsUnowned"), (NEXT_DOOR.tags(), _adopting, "OwnedByAnotherResource")],
    ids=["nobody's", "another resource's, even with adoption"],
)
async def test_an_existing_resource_the_ledger_does_not_vouch_for_is_refused_without_a_write(
    tags: dict[str, str], adoption: Callable[[Json], None] | None, reason: str
) -> None:
    fake = seeded_fake()
    existing = fake.seed(NSG, {"location": "brazilsouth", "tags": tags, "properties": {}})
    report = await converge(fake, spec("03", adoption), Ledger())
    failure = classify(_failure(report, NSG))
    assert (failure.reason, failure.transient) == (reason, False)
    assert fake.writes == []
    assert fake.live(NSG) == existing


async def test_with_adoption_an_existing_resource_is_managed_marked_and_its_changes_recorded() -> None:
    fake = seeded_fake()
    workspace = _workspace("06")
    properties = {"publicNetworkAccess": "Disabled"}
    fake.seed(workspace, {"location": "brazilsouth", "tags": {"cost-center": "42"}, "properties": properties})
    ledger = Ledger()
    report = await converge(fake, spec("06", _adopting), ledger)
    assert report.failures == []
    entry = ledger.get(str(workspace))
    assert entry is not None and entry.origin is Origin.ADOPTED and ACCESS in entry.changed
    live = fake.live(workspace) or {}
    assert live["tags"] == {"cost-center": "42", **OWNER.tags(adopted=True)} and live["tags"][TAG_ADOPTED] == "true"
    assert get_path(live, ACCESS) == "Enabled"


async def test_a_resource_created_by_someone_else_while_we_create_it_is_refused_not_taken() -> None:
    """Absent when ownership was settled, present when our create arrives: If-None-Match saves it."""
    fake = seeded_fake()
    racer = {"location": "brazilsouth", "tags": NEXT_DOOR.tags(), "properties": {}}
    fake.before("put", NSG, lambda: fake.seed(NSG, racer))  # our create arrives second: 412
    ledger = Ledger()
    report = await converge(fake, spec("03"), ledger)
    assert classify(_failure(report, NSG)).reason == "OwnedByAnotherResource"
    assert ledger.get(str(NSG)) is None
    assert (fake.live(NSG) or {})["tags"] == NEXT_DOOR.tags()
    assert not [resource for _verb, resource in fake.writes if resource.startswith(str(NSG) + "/")]


# teardown ------------------------------------------------------------------------------------------
async def test_teardown_deletes_exactly_the_ledgers_created_entries_and_leaves_the_rest_as_it_was() -> None:
    """An adopted workspace, a neighbour's NSG and DNS record, someone's IP rule, the examples' world."""
    fake = seeded_fake()
    workspace = _workspace("03")
    fake.seed(workspace, {"location": "brazilsouth", "tags": {"cost-center": "42"}, "properties": {}})  # adopted
    next_door_nsg = litware("Microsoft.Network/networkSecurityGroups/nsg-team-b")
    next_door = fake.seed(next_door_nsg, {"location": "brazilsouth", "tags": NEXT_DOOR.tags(), "properties": {}})
    there_before = fake.ids()
    adopting = spec("03", _adopting)
    fake, ledger = await converged(adopting, fake)
    # the team next door registers a record in a private DNS zone we created (shared by design)
    record = fake.seed(BLOB_ZONE.child("A", "stteamb"), {"properties": {"ttl": 10}})
    entries = list(ledger.entries.values())
    writes = len(fake.writes)

    report = await teardown(fake, adopting, ledger)

    assert report.failures == []
    created = [entry for entry in entries if entry.origin is Origin.CREATED and entry.type != IP_RULE]
    assert [entry.id for entry in created if fake.live(ArmId.parse(entry.id)) is not None] == []
    shared = [entry for entry in entries if entry.origin is Origin.SHARED]
    assert [entry.id for entry in shared if fake.live(ArmId.parse(entry.id))] == [str(BLOB_ZONE)], "still in use"
    assert fake.live(BLOB_ZONE.child("A", "stteamb")) == record
    assert fake.live(next_door_nsg) == next_door
    assert (fake.live(workspace) or {})["tags"] == {"cost-center": "42"}, "adopted: only our marks come off"
    assert get_path(fake.live(DATA_LAKE) or {}, "properties.networkAcls.ipRules") == [SOMEONES_IP_RULE]
    known = {entry.id.lower() for entry in entries}
    assert {resource.lower() for verb, resource in fake.writes[writes:] if verb == "delete"} <= known
    assert there_before <= fake.ids(), "what existed before us is still there"
    assert ledger.entries == {}


@pytest.mark.parametrize("example", EXAMPLES)
async def test_a_full_lifecycle_leaves_azure_as_it_found_it(example: str) -> None:
    """Create, then delete: what existed before is back as it was (etags aside), nothing of ours is left."""
    fake = seeded_fake()
    before = {key: _without_etag(fake.live(ArmId.parse(key))) for key in fake.ids()}
    fake, ledger = await converged(spec(example), fake)
    report = await teardown(fake, spec(example), ledger)
    assert report.failures == []
    assert {key: _without_etag(fake.live(ArmId.parse(key))) for key in fake.ids()} == before
    assert ledger.entries == {}


def _without_etag(body: Json | None) -> Json:
    return {key: value for key, value in (body or {}).items() if key != "etag"}


async def test_teardown_leaves_a_created_resource_someone_has_since_replaced() -> None:
    workspace = spec("03")
    fake, ledger = await converged(workspace)
    replacement = {"location": "brazilsouth", "sku": {"name": "Standard"}, "properties": {}}
    fake.remove(NAT)
    fake.seed(NAT, replacement)  # deleted and recreated behind our back: a new resourceGuid
    report = await teardown(fake, workspace, ledger)
    assert report.failures == []
    assert fake.live(NAT) is not None
    assert [change.action for change in report.results[NAT.key].changes] == [Action.SKIPPED]
    assert ("delete", str(NAT)) not in fake.writes


async def test_a_shared_dns_zone_and_link_the_workspace_next_door_resolves_through_stay() -> None:
    """Examples 5 and 2 put their workspace endpoints in one client VNet: the same private DNS zones
    and VNet links. The first creates them; tearing it down must not cut the second off."""
    fake, ours = await converged(spec("05"))
    fake, _theirs = await converged(spec("02"), fake, owner=NEXT_DOOR)
    shared = [entry for entry in ours.entries.values() if entry.origin is Origin.SHARED]
    assert len(shared) == 4, "two zones and their links, created by us"
    report = await teardown(fake, spec("05"), ours)
    assert report.failures == []
    assert [entry.id for entry in shared if fake.live(ArmId.parse(entry.id)) is None] == []
    assert fake.live(litware("Microsoft.Network/privateEndpoints/pe-mlw-litware-approved")) is not None
    assert fake.live(litware("Microsoft.Network/privateEndpoints/pe-mlw-litware-private")) is None


@pytest.mark.parametrize("first", ["05", "02"])
async def test_the_last_workspace_using_a_shared_dns_zone_removes_it_whichever_created_it(first: str) -> None:
    """The two workspaces of the test above, deleted in either order: the zones and links go with the
    last one, also when the other one made them. A zone the platform made (no operator mark) stays."""
    fake = seeded_fake()
    platform_zone = litware("Microsoft.Network/privateDnsZones/privatelink.notebooks.azure.net")
    fake.seed(platform_zone, {"location": "global", "tags": {"owner": "platform"}, "properties": {}})
    before = {key: _without_etag(fake.live(ArmId.parse(key))) for key in fake.ids()}
    owners = {"05": OWNER, "02": NEXT_DOOR}
    ledgers = {}
    for example in owners:
        fake, ledgers[example] = await converged(spec(example), fake, owner=owners[example])
    second = "02" if first == "05" else "05"
    for example in owners:  # the API zone and both links: the operator made them; not the platform's zone
        dns = [entry for entry in ledgers[example].entries.values() if "privatednszones" in entry.key]
        assert [entry.origin for entry in dns] == [Origin.SHARED] * 3, example
        assert platform_zone.key not in ledgers[example].entries

    for example in (first, second):
        report = await engine(fake, spec(example), ledgers[example], owner=owners[example]).teardown(
            plan(spec(example), _observed_allowlists(ledgers[example], nobody_else))
        )
        assert report.failures == []

    assert {key: _without_etag(fake.live(ArmId.parse(key))) for key in fake.ids()} == before


# conflicting writers -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "fought"), [(False, Action.CORRECTED), (True, Action.REVERTED)], ids=["a person", "an Azure Policy"]
)
async def test_a_field_fought_over_for_the_threshold_of_sweeps_is_left_alone_after(
    policy: bool, fought: Action
) -> None:
    """Sweeps as the drift timer runs them: the conflict counts carried from one to the next."""
    target, workspace, fake = _workspace("06"), spec("06"), seeded_fake()
    if policy:  # every write of the workspace ends with public access disabled
        fake.modify(target.type, ACCESS, "Disabled")
    fake, ledger = await converged(workspace, fake)
    graph = await prepare(fake, workspace, ledger)
    conflicts = Conflicts(generation=1)

    async def sweep() -> tuple[list[Action], int]:
        nonlocal conflicts
        if not policy:
            fake.set_field(target, ACCESS, "Disabled")
        writes = len(fake.writes)
        report = await engine(fake, workspace, ledger, frozen_fields=conflicts.stopped).converge(graph)
        conflicts = conflicts.after_sweep(report.changes, NOW)
        return [change.action for change in report.changes if change.field == ACCESS], len(fake.writes) - writes

    for _ in range(CONFLICT_THRESHOLD):
        assert await sweep() == ([fought], 1)
    assert conflicts.stopped == {(target.key, ACCESS)}
    assert await sweep() == ([Action.SKIPPED], 0)
    assert get_path(fake.live(target) or {}, ACCESS) == "Disabled"


# failures ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("verb", "status", "code", "reason"),
    [
        ("put", 503, "ServiceUnavailable", "AzureUnavailable"),
        ("put", 409, "AnotherOperationInProgress", "AzureUnavailable"),
        ("get", 429, "TooManyRequests", "Throttled"),
    ],
)
async def test_a_transient_azure_failure_fails_the_node_its_dependents_wait_and_a_retry_converges(
    verb: str, status: int, code: str, reason: str
) -> None:
    fake, ledger, workspace = seeded_fake(), Ledger(), spec("03")
    fake.fail(verb, NSG, status, code)
    report = await converge(fake, workspace, ledger)
    failure = classify(_failure(report, NSG))
    assert (failure.reason, failure.transient) == (reason, True)
    assert fake.live(TRAINING) is None, "the subnet waits for its NSG"
    assert (await converge(fake, workspace, ledger)).failures == []
    assert fake.live(TRAINING) is not None


async def test_a_create_whose_answer_was_lost_is_ours_on_the_retry() -> None:
    """The write-ahead ledger entry and our tag make the resource ours, not ExistsUnowned."""
    fake, ledger, workspace = seeded_fake(), Ledger(), spec("03")
    fake.fail("put", NSG, 500, "InternalServerError", after_write=True)
    report = await converge(fake, workspace, ledger)
    assert classify(_failure(report, NSG)).transient
    entry = ledger.get(str(NSG))
    assert entry is not None and entry.pending, "announced before it was sent"
    writes = len(fake.writes)
    assert (await converge(fake, workspace, ledger)).failures == []
    assert ledger.owns(str(NSG))
    assert ("put", str(NSG)) not in fake.writes[writes:], "found, not created again"


def _adopting_additive_without_huggingface(body: Json) -> None:
    _adopting(body)
    _policy(("outbound", "managedNetwork"), "Additive")(body)
    body["outbound"]["managedNetwork"]["rules"] = [
        rule for rule in body["outbound"]["managedNetwork"]["rules"] if rule["name"] != "huggingface"
    ]


async def test_a_child_create_whose_answer_was_lost_is_ours_on_the_retry() -> None:
    fake = seeded_fake()
    workspace = _workspace("02")
    fake.seed(workspace, {"location": "brazilsouth", "properties": {}})
    rule = workspace.child("outboundRules", "huggingface")
    fake.fail("put", rule, 500, "InternalServerError", after_write=True)
    ledger = Ledger()
    adopting = spec("02", _adopting)
    await converge(fake, adopting, ledger)
    assert (await converge(fake, adopting, ledger)).failures == []
    assert ledger.owns(str(rule))
    await converge(fake, spec("02", _adopting_additive_without_huggingface), ledger)
    assert fake.live(rule) is None, "we created it and the spec dropped it: ours to remove"
