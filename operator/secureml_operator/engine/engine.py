"""The one walk behind create, update, drift sweep and delete.

For each node, in dependency order (independent nodes concurrently): GET the live resource,
compare only the fields it owns, write only what differs, await the long-running operation, and
record what it did. In Detect mode the same walk only reports. Steady state costs GETs only.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

from azure.core.exceptions import HttpResponseError

from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.fields import ABSENT, FieldDiff, Json, get_path
from secureml_operator.desired.graph import ChildSet, DesiredGraph, Lifecycle, ListPolicy, Node, Step
from secureml_operator.engine.errors import PermanentFailure
from secureml_operator.engine.ownership import Owner


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


@dataclass(frozen=True)
class Change:
    """One difference between Azure and the spec, and what the walk did about it."""

    resource: str
    field: str
    expected: str
    actual: str
    action: str  # Corrected | Detected | Reported (kept under Additive) | Skipped (conflicting writer)


@dataclass
class NodeResult:
    id: str
    type: str
    outcome: Outcome = Outcome.UNCHANGED
    changes: list[Change] = field(default_factory=list)
    state: str | None = None
    live: Json | None = None
    error: Exception | None = None


@dataclass
class RunReport:
    results: dict[str, NodeResult] = field(default_factory=dict)

    @property
    def failures(self) -> list[NodeResult]:
        return [result for result in self.results.values() if result.outcome is Outcome.FAILED]

    @property
    def changes(self) -> list[Change]:
        return [change for result in self.results.values() for change in result.changes]

    def live(self, arm_id: ArmId) -> Json | None:
        return self.lookup(arm_id.key)

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


@dataclass
class Engine:
    arm: ArmClient
    owner: Owner
    mode: Mode = Mode.ENFORCE
    on_write: WriteListener = _ignore_write
    frozen_fields: frozenset[tuple[str, str]] = frozenset()  # (resource key, field) left alone

    @property
    def enforcing(self) -> bool:
        return self.mode is Mode.ENFORCE

    async def converge(self, graph: DesiredGraph) -> RunReport:
        """Drive (or, in Detect mode, compare) Azure toward the graph."""
        return await self._walk(graph, self._converge_node, reverse=False)

    async def teardown(self, graph: DesiredGraph) -> RunReport:
        """Delete what we own, dependents first; of external resources, remove only our children."""
        return await self._walk(graph, self._teardown_node, reverse=True)

    async def _walk(
        self, graph: DesiredGraph, visit: Callable[[Node, NodeResult], Awaitable[None]], reverse: bool
    ) -> RunReport:
        report = RunReport()
        done: dict[str, asyncio.Event] = {node.key: asyncio.Event() for node in graph}

        def waits_for(node: Node) -> list[str]:
            if reverse:
                return [dependent.key for dependent in graph.dependents(node.key)]
            return list(node.depends_on)

        def live(key: str) -> Json | None:
            return None if reverse else report.lookup(key)

        async def run(node: Node) -> None:
            result = report.results[node.key] = NodeResult(str(node.id), node.id.type)
            try:
                for key in waits_for(node):
                    await done[key].wait()
                blockers = [key for key in waits_for(node) if report.results[key].outcome in _UNUSABLE]
                if blockers:
                    result.outcome = Outcome.BLOCKED
                    return
                if node.resolve is not None:
                    node = dataclasses.replace(node, fields=node.fields + node.resolve(live))
                await visit(node, result)
            except (HttpResponseError, PermanentFailure) as error:
                result.outcome, result.error = Outcome.FAILED, error
            finally:
                done[node.key].set()

        await asyncio.gather(*(run(node) for node in graph))
        return report

    async def _converge_node(self, node: Node, result: NodeResult) -> None:
        live = await self.arm.get(node.id)
        if live is None:
            if node.lifecycle is Lifecycle.EXTERNAL:
                if not node.must_exist:
                    return
                raise PermanentFailure("DependencyNotFound", f"{node.id} does not exist")
            live = await self._create(node, result)
        else:
            live = await self._update(node, live, result)
        changes_before = len(result.changes)
        for children in node.children:
            await self._converge_children(node, children, live, result)
        if node.action is not None and live is not None:
            await self._run_steps(node, node.action.steps(live), result)
        wrote = any(change.action == "Corrected" for change in result.changes[changes_before:])
        if self.enforcing and live is not None and wrote:
            live = await self.arm.get(node.id) or live  # what child writes and actions changed, for the status
        result.live = live
        result.state = get_path(live or {}, "properties.provisioningState")

    async def _create(self, node: Node, result: NodeResult) -> Json | None:
        result.changes.append(
            Change(str(node.id), "resource", "present", ABSENT, "Corrected" if self.enforcing else "Detected")
        )
        if not self.enforcing:
            result.outcome = Outcome.DRIFTED
            return None
        body = copy.deepcopy(node.create_body or {})
        for rule in node.fields:
            rule.apply(body)
        if node.tagged:
            body["tags"] = {**body.get("tags", {}), **self.owner.tags()}
        await self.on_write("Create", str(node.id), "declared in the spec and absent in Azure")
        live = await self.arm.put(node.id, body)
        result.outcome = Outcome.CREATED
        return live

    async def _update(self, node: Node, live: Json, result: NodeResult) -> Json:
        adopting = False
        if node.lifecycle is Lifecycle.OWNED and node.tagged:
            adopting = self.owner.check(str(node.id), live.get("tags") or {})
        diffs = [diff for rule in node.fields if (diff := rule.diff(live)) is not None]
        diffs = self._unfrozen(node.id, diffs, result)
        if adopting:
            diffs.append(FieldDiff("tags", "owned by this resource", "untagged"))
        if not diffs:
            return live
        result.changes.extend(self._changes(str(node.id), diffs))
        if not self.enforcing:
            result.outcome = Outcome.DRIFTED
            return live
        if node.write == "patch":
            body: Json = {}
            for rule in node.fields:
                if any(diff.field == rule.path for diff in diffs):
                    rule.apply(body, live)
        else:
            body = _writable(live)
            for rule in node.fields:
                rule.apply(body, live)
        if adopting:
            body["tags"] = {**(live.get("tags") or {}), **self.owner.tags(adopted=True)}
        await self.on_write("Update", str(node.id), "; ".join(f"{d.field}: {d.actual} -> {d.expected}" for d in diffs))
        if node.write == "patch":
            updated = await self.arm.patch(node.id, body)
        else:
            updated = await self.arm.put(node.id, body, etag=live.get("etag"))
        result.outcome = Outcome.UPDATED
        return updated

    def _unfrozen(self, arm_id: ArmId, diffs: list[FieldDiff], result: NodeResult) -> list[FieldDiff]:
        """Fields another writer keeps flipping back are reported, no longer fought."""
        kept = []
        for diff in diffs:
            if (arm_id.key, diff.field) in self.frozen_fields:
                result.changes.append(Change(str(arm_id), diff.field, diff.expected, diff.actual, "Skipped"))
            else:
                kept.append(diff)
        return kept

    def _changes(self, resource: str, diffs: list[FieldDiff]) -> list[Change]:
        action = "Corrected" if self.enforcing else "Detected"
        return [Change(resource, diff.field, diff.expected, diff.actual, action) for diff in diffs]

    async def _converge_children(self, node: Node, children: ChildSet, live: Json | None, result: NodeResult) -> None:
        existing = children.live_children(live or {})
        for child in children.children:
            child_id = node.id.child(children.child_type, child.name)
            current = existing.get(child.name)
            if current is None:
                diffs = [FieldDiff("resource", "present", ABSENT)]
                body = copy.deepcopy(child.body)
            else:
                diffs = [diff for rule in child.fields if (diff := rule.diff(current)) is not None]
                diffs = self._unfrozen(child_id, diffs, result)
                body = _writable(current)
            if not diffs:
                continue
            result.changes.extend(self._changes(str(child_id), diffs))
            if not self.enforcing:
                result.outcome = Outcome.DRIFTED
                continue
            for rule in child.fields:
                rule.apply(body, current)
            await self.on_write(
                "Create" if current is None else "Update",
                str(child_id),
                "; ".join(f"{d.field}: {d.actual} -> {d.expected}" for d in diffs),
            )
            await self.arm.put(child_id, body)
            if result.outcome is Outcome.UNCHANGED:
                result.outcome = Outcome.UPDATED
        declared = {child.name.lower() for child in children.children}
        for name in sorted(existing):
            if name.lower() in declared:
                continue
            extra_id = node.id.child(children.child_type, name)
            if children.policy is ListPolicy.ADDITIVE or not self.enforcing:
                action = "Reported" if children.policy is ListPolicy.ADDITIVE else "Detected"
                result.changes.append(Change(str(extra_id), "resource", ABSENT, "present", action))
                if result.outcome is Outcome.UNCHANGED:
                    result.outcome = Outcome.DRIFTED
                continue
            result.changes.append(Change(str(extra_id), "resource", ABSENT, "present", "Corrected"))
            await self.on_write("Delete", str(extra_id), "not declared in the spec (Authoritative policy)")
            await self.arm.delete(extra_id)
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
                    "Corrected" if self.enforcing else "Detected",
                )
            )
            if not self.enforcing:
                continue
            await self.on_write("Post" if step.verb == "post" else "Update", str(step.target), step.reason)
            if step.verb == "post":
                await self.arm.provision_managed_network(step.target, bool(step.body.get("includeSpark")))
            else:
                await self.arm.put(step.target, step.body)
            if result.outcome is Outcome.UNCHANGED:
                result.outcome = Outcome.UPDATED

    async def _teardown_node(self, node: Node, result: NodeResult) -> None:
        live = await self.arm.get(node.id)
        if live is None:
            result.outcome = Outcome.DELETED
            return
        if node.lifecycle is Lifecycle.OWNED and (not node.tagged or self.owner.created(live.get("tags") or {})):
            await self.on_write("Delete", str(node.id), "the custom resource is deleted (deletionPolicy Delete)")
            await self.arm.delete(node.id)
            result.outcome = Outcome.DELETED
            return
        # Someone else's, shared, or adopted: take back only what we put there: resolved fields (in a
        # teardown they resolve to "none of ours", e.g. our allowlist entries) and declared children.
        if node.lifecycle is Lifecycle.EXTERNAL and node.resolve is not None:
            await self._update(node, live, result)
        for children in node.children:
            existing = {name.lower() for name in children.live_children(live)}
            for child in children.children:
                if child.name.lower() in existing:
                    child_id = node.id.child(children.child_type, child.name)
                    await self.on_write("Delete", str(child_id), "declared by the deleted custom resource")
                    await self.arm.delete(child_id)
        result.outcome = Outcome.UNCHANGED


_UNUSABLE = (Outcome.FAILED, Outcome.BLOCKED)
__all__ = ["Change", "Engine", "Mode", "NodeResult", "Outcome", "RunReport"]
