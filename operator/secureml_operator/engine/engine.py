"""The one walk behind create, update, drift sweep and delete.

For each node, in dependency order (independent nodes concurrently): GET the live resource,
compare only the fields it owns, write only what differs, await the long-running operation, and
record what it did. In Detect mode the same walk only reports. Steady state costs GETs only.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from azure.core.exceptions import HttpResponseError

from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.fields import ABSENT, FieldDiff, FieldRule, Json, Members, get_path
from secureml_operator.desired.graph import (
    ChildSet,
    DesiredGraph,
    Lifecycle,
    ListPolicy,
    LiveLookup,
    Node,
    Step,
    Verb,
    Write,
)
from secureml_operator.desired.roles import Role
from secureml_operator.engine.ledger import IP_RULE, Entry, Ledger, Origin, entry_key, identity_of
from secureml_operator.engine.ownership import TAG_ADOPTED, TAG_UID, Owner
from secureml_operator.failures import PermanentFailure, TransientFailure


class Mode(Enum):
    ENFORCE = "Enforce"
    DETECT = "Detect"


class Outcome(Enum):
    CREATED = "Created"
    UPDATED = "Updated"
    UNCHANGED = "Unchanged"
    DRIFTED = "Drifted"  # differences found and left alone (Detect mode, or Additive extras)
    DELETED = "Deleted"
    FAILED = "Failed"
    BLOCKED = "Blocked"  # a dependency failed, so this node was not tried


class Action(StrEnum):
    """What the walk did about one difference."""

    CORRECTED = "Corrected"  # written, and Azure kept it
    REVERTED = "Reverted"  # written, and Azure answered with something else (a policy, another writer)
    DETECTED = "Detected"  # found, not corrected (Detect mode)
    REPORTED = "Reported"  # an extra kept under the Additive policy
    SKIPPED = "Skipped"  # left alone: another writer keeps changing it back (engine/conflicts.py)


@dataclass(frozen=True)
class Change:
    """One difference between Azure and the spec, and what the walk did about it."""

    resource: str
    field: str
    expected: str
    actual: str
    action: Action
    writer: str | None = None  # who last changed the resource, where ARM says (systemData)


@dataclass
class NodeResult:
    id: str
    type: str
    outcome: Outcome = Outcome.UNCHANGED
    changes: list[Change] = field(default_factory=list)
    state: str | None = None
    live: Json | None = None
    error: Exception | None = None
    role: Role | None = None  # the node's; None for what a teardown found only in the ledger


@dataclass
class RunReport:
    results: dict[str, NodeResult] = field(default_factory=dict)

    @property
    def failures(self) -> list[NodeResult]:
        return [result for result in self.results.values() if result.outcome is Outcome.FAILED]

    @property
    def changes(self) -> list[Change]:
        return [change for result in self.results.values() for change in result.changes]

    def by_role(self, *roles: Role) -> list[NodeResult]:
        """The results of the nodes with these roles, in the graph's order."""
        return [result for result in self.results.values() if result.role in roles]

    def one(self, role: Role) -> NodeResult | None:
        """The result of the one node with this role, if the graph had it."""
        found = self.by_role(role)
        if len(found) > 1:
            raise ValueError(f"{len(found)} nodes have the role {role}")
        return found[0] if found else None

    def lookup(self, key: str) -> Json | None:
        """The live body a node's walk ended with, by node key (a `LiveLookup`)."""
        result = self.results.get(key)
        return result.live if result else None


WriteListener = Callable[[str, str, str], Awaitable[None]]
"""Called before every write to Azure with (verb, resource id, why): events explain each write."""


async def _ignore_write(_verb: str, _resource: str, _why: str) -> None:
    return None


READ_ONLY_PROPERTIES = ("provisioningState", "resourceGuid")


def _writable(live: Json) -> Json:
    """The live body minus what ARM computes, as the base of a full PUT that keeps others' fields."""
    body = copy.deepcopy(live)
    body.pop("etag", None)
    for name in READ_ONLY_PROPERTIES:
        body.get("properties", {}).pop(name, None)
    return body


OtherClaims = Callable[[str, str], frozenset[Origin]]
"""How other custom resources hold an IP rule on a target: (target id, address) -> their origins."""


def nobody_else(_target: str, _address: str) -> frozenset[Origin]:
    return frozenset()


# Teardown order, dependents first: what references a resource goes before it. Children whose parent
# we delete too are left to the parent's delete.
TEARDOWN_ORDER = (
    "microsoft.network/privateendpoints/privatednszonegroups",
    "microsoft.network/privateendpoints",
    "microsoft.network/privatednszones/virtualnetworklinks",
    "microsoft.network/virtualnetworks/virtualnetworkpeerings",
    "microsoft.machinelearningservices/workspaces/outboundrules",
    "microsoft.network/virtualnetworks/subnets",
    "microsoft.network/virtualnetworks",
    "microsoft.network/natgateways",
    "microsoft.network/publicipaddresses",
    "microsoft.network/networksecuritygroups/securityrules",
    "microsoft.network/routetables/routes",
    "microsoft.network/serviceendpointpolicies/serviceendpointpolicydefinitions",
    "microsoft.network/networksecuritygroups",
    "microsoft.network/routetables",
    "microsoft.network/serviceendpointpolicies",
    "microsoft.machinelearningservices/workspaces",
    "microsoft.network/privatednszones",
)
DNS_LINK = "microsoft.network/privatednszones/virtualnetworklinks"
PRECONDITION_FAILED = 412


def _teardown_rank(entry: Entry) -> int:
    kind = entry.type.lower()
    return TEARDOWN_ORDER.index(kind) if kind in TEARDOWN_ORDER else 0


@dataclass
class Engine:
    arm: ArmClient
    owner: Owner
    ledger: Ledger = field(default_factory=Ledger)
    mode: Mode = Mode.ENFORCE
    on_write: WriteListener = _ignore_write
    frozen_fields: frozenset[tuple[str, str]] = frozenset()  # (resource key, field) left alone
    adopt: bool = False  # spec.adoption: Adopt lets the walk manage what exists and nobody created
    other_claims: OtherClaims = nobody_else
    _prefetched: dict[str, Json | None] = field(default_factory=dict)

    @property
    def enforcing(self) -> bool:
        return self.mode is Mode.ENFORCE

    async def converge(self, graph: DesiredGraph) -> RunReport:
        """Drive (or, in Detect mode, compare) Azure toward the graph. Ownership of every resource
        the ledger does not vouch for is settled first, read-only: a refusal writes nothing."""
        claims = RunReport()
        unclaimed = [node for node in graph if not self._vouched(node)]  # in a sweep, mostly none
        for generation in _by_depth(unclaimed):  # a child's claim may rest on its parent's: parents first
            claims.results.update(
                (await self._walk(generation, self._claim_node, reverse=False, ordered=False)).results
            )
            if claims.failures:
                return claims
        return await self._walk(graph, self._converge_node, reverse=False)

    async def teardown(self, graph: DesiredGraph) -> RunReport:
        """Take back what the ledger says we put on others' resources (allowlist entries), then
        delete exactly the ledger's Created entries whose live identity still matches, dependents
        first, and the Shared private DNS entries nobody else needs any more. Adopted resources, and
        anything not in the ledger, are left alone."""
        cleanups = DesiredGraph()
        for node in graph:
            if node.lifecycle is Lifecycle.EXTERNAL and node.resolve is not None:
                cleanups.nodes[node.key] = dataclasses.replace(node, depends_on=())
        report = await self._walk(cleanups, self._teardown_external, reverse=True)
        created = [
            entry
            for entry in self.ledger.entries.values()
            if entry.origin is Origin.CREATED or (entry.origin is Origin.SHARED and entry.type != IP_RULE)
        ]
        doomed = {entry.key for entry in created if entry.type != IP_RULE and entry.origin is Origin.CREATED}
        for rank in sorted({_teardown_rank(entry) for entry in created}):
            batch = [
                entry
                for entry in created
                if entry.type != IP_RULE and _teardown_rank(entry) == rank and not _parent_in(entry, doomed)
            ]
            await asyncio.gather(*(self._delete_entry(entry, report, doomed) for entry in batch))
            if report.failures:
                return report
        for entry in [entry for entry in created if entry.type != IP_RULE and _parent_in(entry, doomed)]:
            self.ledger.forget(entry.id)  # went with its parent
        for entry in [entry for entry in self.ledger.entries.values() if entry.origin is Origin.ADOPTED]:
            await self._release_adopted(entry, report)
        return report

    async def _walk(
        self,
        graph: DesiredGraph,
        visit: Callable[[Node, NodeResult, LiveLookup], Awaitable[None]],
        reverse: bool,
        ordered: bool = True,
    ) -> RunReport:
        report = RunReport()
        done: dict[str, asyncio.Event] = {node.key: asyncio.Event() for node in graph}

        def waits_for(node: Node) -> list[str]:
            if not ordered:
                return []
            if reverse:
                return [dependent.key for dependent in graph.dependents(node.key)]
            return list(node.depends_on)

        def live(key: str) -> Json | None:
            return None if reverse else report.lookup(key)

        async def run(node: Node) -> None:
            result = report.results[node.key] = NodeResult(str(node.id), node.id.type, role=node.role)
            try:
                for key in waits_for(node):
                    await done[key].wait()
                blockers = [key for key in waits_for(node) if report.results[key].outcome in _UNUSABLE]
                if blockers:
                    result.outcome = Outcome.BLOCKED
                    return
                if node.resolve is not None and ordered:
                    node = dataclasses.replace(node, fields=node.fields + node.resolve(live))
                await visit(node, result, live)
            except Exception as error:  # every failure is the node's outcome (errors.classify)
                result.outcome, result.error = Outcome.FAILED, error
            finally:
                done[node.key].set()

        await asyncio.gather(*(run(node) for node in graph))
        return report

    # ownership ---------------------------------------------------------------------------------
    def _vouched(self, node: Node) -> bool:
        """Whether a node needs no claim: not ours to own, or the ledger already says it is."""
        return node.lifecycle is not Lifecycle.OWNED or self.ledger.manages(str(node.id))

    async def _claim_node(self, node: Node, _result: NodeResult, _live: LiveLookup) -> None:
        """Read-only: settle who owns a resource the ledger does not vouch for (kept for the walk)."""
        live = await self.arm.get(node.id)
        self._prefetched[node.key] = live
        if live is not None:
            self._ownership(node, live)

    def _ownership(self, node: Node, live: Json) -> Origin:
        """Created (ours), or Adopted (the spec opted in); anything else is refused."""
        resource = str(node.id)
        entry = self.ledger.get(resource)
        if entry is not None and not entry.pending:
            recorded, now = entry.identity, identity_of(live)
            if not (recorded and now and recorded.lower() != now.lower()):
                return entry.origin
            self.ledger.forget(resource)  # deleted and recreated by someone else since: not ours
            entry = None
        tags = (live.get("tags") or {}) if node.tagged else {}
        owner_uid = tags.get(TAG_UID)
        if entry is not None:  # we announced a create and lost its answer: ours if it bears our mark
            if not node.tagged or owner_uid == self.owner.uid:
                origin = Origin.ADOPTED if tags.get(TAG_ADOPTED) == "true" else Origin.CREATED
                self.ledger.confirm(resource, node.id.type, origin, live)
                return origin
            self.ledger.forget(resource)
        if owner_uid and owner_uid != self.owner.uid:
            raise PermanentFailure(
                "OwnedByAnotherResource",
                f"{resource} is managed by another SecureMLWorkspace; choose another name, or delete "
                "that resource first",
            )
        parent = node.id.parent
        if not node.tagged and parent is not None and self.ledger.owns(str(parent)):
            self.ledger.confirm(resource, node.id.type, Origin.CREATED, live)  # inside our own parent
            return Origin.CREATED
        if not self.adopt:
            raise PermanentFailure(
                "ExistsUnowned",
                f"{resource} already exists and was not created by this SecureMLWorkspace; nothing was "
                "changed. Set spec.adoption: Adopt to manage it (adopted resources are never deleted), "
                "or choose another name",
            )
        self.ledger.confirm(resource, node.id.type, Origin.ADOPTED, live)
        return Origin.ADOPTED

    def _settle(self, node: Node, live: Json) -> Origin | None:
        """Who the existing resource of a node is for us: ownership is checked for what we own; a
        shared resource (a private DNS zone or link) the operator made, for us or for another
        workspace that uses it too, is recorded as Shared, so whichever of them goes last removes
        it; one without the operator's mark is someone else's and only adjusted."""
        if node.lifecycle is Lifecycle.OWNED:
            return self._ownership(node, live)
        entry = self.ledger.get(str(node.id))
        if node.lifecycle is Lifecycle.SHARED and (entry is None or entry.pending):
            if _owner_uid(live) is not None:
                self.ledger.confirm(str(node.id), node.id.type, Origin.SHARED, live)
            elif entry is not None:
                self.ledger.forget(str(node.id))
        return None

    # converge ------------------------------------------------------------------------------------
    async def _read(self, node: Node) -> Json | None:
        """A node's live body; one others own (a dependency, the hub, a shared zone) may come from
        the sweep window's shared read."""
        if node.key in self._prefetched:
            return self._prefetched.pop(node.key)
        if node.lifecycle is Lifecycle.OWNED:
            return await self.arm.get(node.id)
        return await self.arm.get_shared(node.id)

    async def _converge_node(self, node: Node, result: NodeResult, lookup: LiveLookup) -> None:
        live = await self._read(node)
        before = live
        if live is None:
            if node.lifecycle is Lifecycle.EXTERNAL:
                if not node.must_exist:
                    return
                raise PermanentFailure("DependencyNotFound", f"{node.id} does not exist")
            live = await self._create(node, result)
        else:
            live = await self._update(node, live, result, self._settle(node, live))
        changes_before = len(result.changes)
        for children in node.children:
            await self._converge_children(node, children, live, result)
        if node.action is not None and live is not None:
            await self._run_steps(node, node.action.steps(live, lookup), result)
        wrote = any(change.action in WRITTEN for change in result.changes[changes_before:])
        if self.enforcing and live is not None and wrote:
            live = await self.arm.get(node.id) or live  # what child writes and actions changed, for the status
        if self.enforcing and node.resolve is not None:
            self._record_members(node, before or {})
        result.live = live
        result.state = get_path(live or {}, "properties.provisioningState")

    async def _create(self, node: Node, result: NodeResult) -> Json | None:
        missing = self._unfrozen(node.id, [FieldDiff("resource", "present", ABSENT)], result)
        if not missing:
            return None
        result.changes.extend(self._changes(str(node.id), missing))
        if not self.enforcing:
            result.outcome = Outcome.DRIFTED
            return None
        body = copy.deepcopy(node.create_body or {})
        for rule in node.fields:
            rule.apply(body)
        if node.tagged:
            body["tags"] = {**body.get("tags", {}), **self.owner.tags()}
        parent = node.id.parent
        inside_our_parent = parent is not None and self.ledger.owns(str(parent))
        origin = Origin.SHARED if node.lifecycle is Lifecycle.SHARED else Origin.CREATED
        if not inside_our_parent:  # a crash after the create must not orphan it: announce it first
            await self.ledger.intend(str(node.id), node.id.type, origin)
        await self.on_write("Create", str(node.id), "declared in the spec and absent in Azure")
        try:
            live = await self.arm.put(node.id, body, create_only=True)
        except HttpResponseError as error:
            if error.status_code != PRECONDITION_FAILED:
                raise
            if not node.tagged:  # no mark to tell our own retried create from someone else's: not ours
                self.ledger.forget(str(node.id))
            existing = await self.arm.get(node.id)
            if existing is None:
                raise TransientFailure("CreateRaced", f"{node.id} appeared and vanished while created") from error
            return await self._update(node, existing, result, self._settle(node, existing))
        self.ledger.confirm(str(node.id), node.id.type, origin, live)
        overridden = [diff for rule in node.fields if (diff := rule.diff(live)) is not None]  # a policy `modify`
        result.changes.extend(Change(str(node.id), d.field, d.expected, d.actual, Action.REVERTED) for d in overridden)
        result.outcome = Outcome.CREATED
        return live

    async def _update(self, node: Node, live: Json, result: NodeResult, origin: Origin | None) -> Json:
        marks = self.owner.tags(adopted=origin is Origin.ADOPTED) if node.tagged and origin is not None else {}
        tags = live.get("tags") or {}
        remark = any(tags.get(key) != value for key, value in marks.items())
        diffs = [diff for rule in node.fields if (diff := rule.diff(live)) is not None]
        diffs = self._unfrozen(node.id, diffs, result)
        if remark:  # the ownership tags are only a hint for people: the ledger decides, the tags follow it
            diffs.append(FieldDiff("tags", f"{origin.value.lower() if origin else ''} by this resource", "other"))
        if not diffs:
            return live
        if not self.enforcing:
            result.changes.extend(self._changes(str(node.id), diffs, live))
            result.outcome = Outcome.DRIFTED
            return live
        if node.write is Write.PATCH:
            body: Json = {}
            for rule in node.fields:
                if any(diff.field == rule.path for diff in diffs):
                    rule.apply(body, live)
        else:
            body = _writable(live)
            for rule in node.fields:
                rule.apply(body, live)
        if remark:
            kept = {key: value for key, value in tags.items() if key not in self.owner.tags(adopted=True)}
            body["tags"] = {**kept, **marks}
        self.ledger.with_changes(str(node.id), [diff.field for diff in diffs])
        await self.on_write("Update", str(node.id), "; ".join(f"{d.field}: {d.actual} -> {d.expected}" for d in diffs))
        if node.write is Write.PATCH:
            updated = await self.arm.patch(node.id, body)
        else:
            updated = await self.arm.put(node.id, body, etag=live.get("etag"))
        result.changes.extend(self._read_back(str(node.id), diffs, node.fields, updated, live))
        result.outcome = Outcome.UPDATED
        return updated

    def _record_members(self, node: Node, before: Json) -> None:
        """Resolved member lists (our egress IPs on a target's allowlist) are ledger entries one by
        one: Created when we added the member (or another resource of ours did), Claimed when it was
        there before us. Members no longer wanted leave the ledger."""
        target = str(node.id)
        for rule in node.fields:
            if not isinstance(rule, Members) or rule.key is None or rule.authoritative:
                continue
            present = {str(get_path(item, rule.key)).lower() for item in get_path(before, rule.path) or []}
            wanted = {str(get_path(member, rule.key)) for member in rule.members}
            for address in wanted:
                if self.ledger.get(target, address) is not None:
                    continue
                others = self.other_claims(target, address)
                added = address.lower() not in present or Origin.CREATED in others
                origin = Origin.CREATED if added else Origin.CLAIMED
                self.ledger.record(Entry(target, IP_RULE, origin, name=address))
            for entry in self.ledger.ip_rules(target):
                if entry.name not in wanted:
                    self.ledger.forget(target, entry.name)

    def _unfrozen(
        self, arm_id: ArmId, diffs: list[FieldDiff], result: NodeResult, live: Json | None = None
    ) -> list[FieldDiff]:
        """Fields (or the existence of a resource) another writer keeps changing back are reported,
        no longer fought."""
        kept = []
        for diff in diffs:
            if (arm_id.key, diff.field) in self.frozen_fields:
                result.changes.append(
                    Change(str(arm_id), diff.field, diff.expected, diff.actual, Action.SKIPPED, _writer(live))
                )
            else:
                kept.append(diff)
        return kept

    def _changes(self, resource: str, diffs: list[FieldDiff], live: Json | None = None) -> list[Change]:
        action = Action.CORRECTED if self.enforcing else Action.DETECTED
        return [Change(resource, diff.field, diff.expected, diff.actual, action, _writer(live)) for diff in diffs]

    @staticmethod
    def _read_back(
        resource: str, diffs: list[FieldDiff], rules: Sequence[FieldRule], written: Json, live: Json | None
    ) -> list[Change]:
        """What Azure answered the write with: a field that still differs did not stick (an Azure
        Policy `modify`, or a writer racing us), and is a conflict, not a correction."""
        after = {diff.field: diff for rule in rules if (diff := rule.diff(written)) is not None}
        writer = _writer(live)
        return [
            Change(resource, diff.field, diff.expected, after[diff.field].actual, Action.REVERTED, writer)
            if diff.field in after
            else Change(resource, diff.field, diff.expected, diff.actual, Action.CORRECTED, writer)
            for diff in diffs
        ]

    async def _converge_children(self, node: Node, children: ChildSet, live: Json | None, result: NodeResult) -> None:
        existing = children.live_children(live or {})
        parent_ours = self.ledger.owns(str(node.id))
        for child in children.children:
            child_id = node.id.child(children.child_type, child.name)
            current = existing.get(child.name)
            if current is None:
                diffs = [FieldDiff("resource", "present", ABSENT)]
                body = copy.deepcopy(child.body)
            else:
                entry = self.ledger.get(str(child_id))
                if self.enforcing and (entry is None or entry.pending):
                    # Announced and there: our create, whose answer was lost. Unannounced: the
                    # parent's creator made it (us, when the parent is ours), or we adopt it.
                    origin = Origin.CREATED if parent_ours or entry is not None else Origin.ADOPTED
                    self.ledger.confirm(str(child_id), child_id.type, origin, current)
                diffs = [diff for rule in child.fields if (diff := rule.diff(current)) is not None]
                body = _writable(current)
            diffs = self._unfrozen(child_id, diffs, result, current)
            if not diffs:
                continue
            if not self.enforcing:
                result.changes.extend(self._changes(str(child_id), diffs, current))
                result.outcome = Outcome.DRIFTED
                continue
            for rule in child.fields:
                rule.apply(body, current)
            await self.on_write(
                "Create" if current is None else "Update",
                str(child_id),
                "; ".join(f"{d.field}: {d.actual} -> {d.expected}" for d in diffs),
            )
            if current is None and not parent_ours:
                await self.ledger.intend(str(child_id), child_id.type)
            written = await self.arm.put(child_id, body)
            result.changes.extend(self._read_back(str(child_id), diffs, child.fields, written, current))
            if current is None:
                self.ledger.confirm(str(child_id), child_id.type, Origin.CREATED, written)
            else:
                self.ledger.with_changes(str(child_id), [diff.field for diff in diffs])
            if result.outcome is Outcome.UNCHANGED:
                result.outcome = Outcome.UPDATED
        declared = {child.name.lower() for child in children.children}
        for name in sorted(existing):
            if name.lower() in declared:
                continue
            extra_id = node.id.child(children.child_type, name)
            writer = _writer(existing[name])
            ours = self.ledger.owns(str(extra_id))  # we made it and the spec dropped it: ours to remove
            kept = children.policy is ListPolicy.ADDITIVE and not ours
            if not kept and not self._unfrozen(extra_id, [FieldDiff("resource", ABSENT, "present")], result):
                continue
            if kept or not self.enforcing:
                action = Action.REPORTED if kept else Action.DETECTED
                result.changes.append(Change(str(extra_id), "resource", ABSENT, "present", action, writer))
                if result.outcome is Outcome.UNCHANGED:
                    result.outcome = Outcome.DRIFTED
                continue
            result.changes.append(Change(str(extra_id), "resource", ABSENT, "present", Action.CORRECTED, writer))
            why = "created by this resource and no longer in the spec" if ours else "not declared in the spec"
            await self.on_write("Delete", str(extra_id), f"{why} ({children.policy.value} policy)")
            await self.arm.delete(extra_id)
            self.ledger.forget(str(extra_id))
            if result.outcome is Outcome.UNCHANGED:
                result.outcome = Outcome.UPDATED

    async def _run_steps(self, node: Node, steps: list[Step], result: NodeResult) -> None:
        for step in steps:
            result.changes.append(
                Change(
                    str(step.target),
                    step.reason,
                    "done",
                    "pending",
                    Action.CORRECTED if self.enforcing else Action.DETECTED,
                )
            )
            if not self.enforcing:
                continue
            await self.on_write("Post" if step.verb is Verb.POST else "Update", str(step.target), step.reason)
            if step.verb is Verb.POST:
                await self.arm.provision_managed_network(step.target, bool(step.body.get("includeSpark")))
            else:
                await self.arm.put(step.target, step.body)
            if result.outcome is Outcome.UNCHANGED:
                result.outcome = Outcome.UPDATED

    # teardown ------------------------------------------------------------------------------------
    async def _teardown_external(self, node: Node, result: NodeResult, _live: LiveLookup) -> None:
        """Someone else's resource: take out the members we put there (they resolve to none of ours)."""
        live = await self.arm.get(node.id)
        if live is not None:
            await self._update(node, live, result, None)
        self._record_members(node, live or {})

    async def _delete_entry(self, entry: Entry, report: RunReport, doomed: set[str]) -> None:
        arm_id = ArmId.parse(entry.id)
        result = report.results[entry.key] = NodeResult(entry.id, entry.type)
        try:
            live = await self.arm.get(arm_id)
            in_use = await self._still_used(entry, live or {}, doomed)
            if live is None:
                result.outcome = Outcome.DELETED
            elif not self._still_ours(entry, live):
                result.changes.append(Change(entry.id, "resource", "ours", "replaced by someone else", Action.SKIPPED))
            elif in_use:
                result.changes.append(Change(entry.id, "resource", "deleted", in_use, Action.SKIPPED))
            else:
                await self.on_write("Delete", entry.id, "its creator is deleted (deletionPolicy Delete)")
                await self.arm.delete(arm_id)
                result.outcome = Outcome.DELETED
            self.ledger.forget(entry.id)
        except Exception as error:  # every failure is the entry's outcome (errors.classify)
            result.outcome, result.error = Outcome.FAILED, error

    async def _still_used(self, entry: Entry, live: Json, doomed: set[str]) -> str | None:
        """Why a shared private DNS entry must stay, or None. A link stays while others may resolve
        through it: its VNet stays and someone else's record set is in its zone. A zone stays while
        any link or record set but its own SOA remains (ours went before it)."""
        if entry.origin is not Origin.SHARED or not live:
            return None
        if entry.type.lower() == DNS_LINK:
            vnet = get_path(live, "properties.virtualNetwork.id") or ""
            zone_id = ArmId.parse(entry.id).parent
            zone = await self.arm.get(zone_id) if entry_key(vnet) not in doomed and zone_id else None
            others = _record_sets_of_others(zone or {})
            return f"still links {vnet} for {others} record set(s) of others" if others else None
        links = int(get_path(live, "properties.numberOfVirtualNetworkLinks") or 0)
        records = _record_sets_of_others(live)
        return f"still used: {links} link(s), {records} record set(s) of others" if links or records else None

    def _still_ours(self, entry: Entry, live: Json) -> bool:
        """The live resource is the one we created: same Azure identity, and no one else's mark. A
        create whose answer was lost (pending) counts only with our mark, where it can carry one
        (a tracked resource: it has a location)."""
        now = identity_of(live)
        if entry.identity and now and entry.identity.lower() != now.lower():
            return False
        owner_uid = _owner_uid(live)
        if entry.pending and "location" in live:
            return owner_uid == self.owner.uid
        if entry.origin is Origin.SHARED:  # the operator's mark, for whichever workspace made it
            return owner_uid is not None
        return owner_uid is None or owner_uid == self.owner.uid

    async def _release_adopted(self, entry: Entry, report: RunReport) -> None:
        """An adopted resource stays; only our ownership tags come off, so it can be adopted again."""
        arm_id = ArmId.parse(entry.id)
        result = report.results[entry.key] = NodeResult(entry.id, entry.type)
        try:
            live = await self.arm.get(arm_id)
            tags = dict((live or {}).get("tags") or {})
            if live is not None and tags.get(TAG_UID) == self.owner.uid:
                kept = {key: value for key, value in tags.items() if key not in self.owner.tags(adopted=True)}
                await self.on_write("Update", entry.id, "adopted by the deleted resource: our tags removed")
                await self.arm.put(arm_id, {**_writable(live), "tags": kept}, etag=live.get("etag"))
            self.ledger.forget(entry.id)
        except Exception as error:  # every failure is the entry's outcome (errors.classify)
            result.outcome, result.error = Outcome.FAILED, error


def _writer(live: Json | None) -> str | None:
    """Who last changed a resource, where ARM says (systemData, on the types that carry it)."""
    return get_path(live or {}, "systemData.lastModifiedBy") or None


def _record_sets_of_others(zone: Json) -> int:
    """A private DNS zone's record sets but its SOA, which comes with the zone (ours went already)."""
    return int(get_path(zone, "properties.numberOfRecordSets") or 1) - 1


def _owner_uid(live: Json) -> str | None:
    """The uid in a live resource's ownership tag (a mark, checked against the ledger)."""
    uid = (live.get("tags") or {}).get(TAG_UID)
    return str(uid) if uid is not None else None


def _by_depth(nodes: list[Node]) -> list[DesiredGraph]:
    """The nodes in generations: those whose parent is not among them, then their children, and so
    on (dependencies dropped: each generation is walked unordered)."""
    keys = {node.key for node in nodes}

    def depth(node: Node) -> int:
        parent, levels = node.id.parent, 0
        while parent is not None and parent.key in keys:
            parent, levels = parent.parent, levels + 1
        return levels

    generations: dict[int, DesiredGraph] = {}
    for node in nodes:
        generation = generations.setdefault(depth(node), DesiredGraph())
        generation.nodes[node.key] = dataclasses.replace(node, depends_on=())
    return [generations[level] for level in sorted(generations)]


def _parent_in(entry: Entry, keys: set[str]) -> bool:
    parent = ArmId.parse(entry.id).parent
    return parent is not None and parent.key in keys


_UNUSABLE = (Outcome.FAILED, Outcome.BLOCKED)
WRITTEN = (Action.CORRECTED, Action.REVERTED)
__all__ = ["Action", "Change", "Engine", "Mode", "NodeResult", "Outcome", "RunReport"]
