"""The emulator's state: resources keyed by lower-cased ARM id, long-running operations, the request
log, faults and throttling buckets. Pure data and bookkeeping; HTTP lives in app.py, what each ARM
resource type does in kinds/."""

from __future__ import annotations

import copy
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from armemu.arm import type_of

Json = dict[str, Any]


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


@dataclass
class Resource:
    id: str  # canonical casing, as first written
    body: Json
    parent: str | None  # lower-cased parent id for child resources

    @property
    def key(self) -> str:
        return self.id.lower()


@dataclass
class Operation:
    """A long-running operation: in progress until `done_at`, then its outcome."""

    id: str
    done_at: float
    result: Json | None = None  # body a Location poll returns at the end (ML style)
    failed: str | None = None  # the error code the operation fails with
    status_code: int = 200
    name: str = ""  # as Azure names it in conflict answers: PutSubnetOperation
    target: str = ""  # the resource it writes

    @property
    def running(self) -> bool:
        return time.monotonic() < self.done_at


@dataclass
class Fault:
    id: str
    method: str
    path: re.Pattern[str]
    status: int = 500
    count: int | None = 1
    probability: float = 1.0
    latency_ms: int = 0
    retry_after: int | None = None
    code: str = "InternalServerError"
    fail_lro: bool = False
    # Close the connection without an answer, as a client timeout or a dropped connection looks to the
    # client: "before" the request is handled (nothing happens), "after" it (the write happened, the
    # answer is lost).
    disconnect: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and bool(self.path.search(path)) and self.count != 0


@dataclass
class Bucket:
    capacity: float
    rate: float
    tokens: float = 0
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    @property
    def remaining(self) -> int:
        return int(self.tokens)


@dataclass
class Policy:
    """An Azure Policy `modify` effect: every create or update of `type` gets `path` set to `value`,
    before it is stored, so the write's own answer already shows the policy's value."""

    id: str
    type: str
    path: str
    value: Any


@dataclass
class Config:
    lro_seconds: float = 0.0  # how long operations stay InProgress (0: done at the first poll)
    retry_after: int = 1
    reads_burst: float = 250
    reads_per_second: float = 25
    writes_burst: float = 200
    writes_per_second: float = 10
    deletes_burst: float = 200  # ARM counts deletes in their own bucket
    deletes_per_second: float = 10
    # While an operation runs (lro_seconds), another write to its VNet, NSG, route table or workspace
    # gets Azure's conflict answer (armemu/conflicts.py).
    conflicts: bool = False
    # Fault: an outbound-rule write while another rule operation of its workspace runs is answered as
    # a success and dropped, as Azure ML is known to do.
    outbound_rule_loss: bool = False
    page_size: int = 10  # items per page of a list; the rest is behind nextLink
    client_id: str = "emulator-client"
    client_secret: str = "emulator-secret"
    tenant_id: str = "00000000-0000-0000-0000-00000000aaaa"


class State:
    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.reset()

    def reset(self) -> None:
        self.resources: dict[str, Resource] = {}
        # Indexes of `resources`, kept by put and delete: renders and checks ask for a resource's children,
        # the resources of a type, and the resources naming an id, on every GET. A scan of every resource for
        # each would cost time in proportion to the whole estate (20,000 resources at a thousand workspaces).
        self._children: dict[str, dict[str, Resource]] = {}  # parent key -> child key -> child
        self._of_type: dict[str, dict[str, Resource]] = {}  # type_of -> key -> resource
        self._referrers: dict[str, dict[str, Resource]] = {}  # lower-cased id -> key -> resource whose body names it
        self.operations: dict[str, Operation] = {}
        self.requests: list[Json] = []
        self.faults: list[Fault] = []
        self.policies: list[Policy] = []
        self.buckets: dict[tuple[str, str], Bucket] = {}
        self.allocated_ips: dict[str, str] = {}
        self.locks: dict[str, list[Operation]] = {}  # lower-cased lock scope -> operations started in it

    # resources -------------------------------------------------------------------------------
    def get(self, resource_id: str) -> Resource | None:
        return self.resources.get(resource_id.lower().rstrip("/"))

    def put(self, resource_id: str, body: Json, parent: str | None) -> Resource:
        existing = self.get(resource_id)
        if existing is not None:
            self._unindex(existing)
        canonical = existing.id if existing else resource_id.rstrip("/")
        resource = Resource(canonical, body, parent.lower() if parent else None)
        self.resources[resource.key] = resource
        self._index(resource)
        return resource

    def delete(self, resource_id: str) -> None:
        key = resource_id.lower().rstrip("/")
        for child in list(self._children.get(key, {})):
            self.delete(child)
        resource = self.resources.pop(key, None)
        if resource is not None:
            self._unindex(resource)

    def children(self, parent_id: str, child_type: str | None = None) -> list[Resource]:
        found = self._children.get(parent_id.lower().rstrip("/"), {}).values()
        if child_type:
            found = [r for r in found if r.key.rsplit("/", 2)[-2] == child_type.lower()]
        return sorted(found, key=lambda r: r.key)

    def of_type(self, kind: str) -> list[Resource]:
        """The resources of one type (as `type_of` names it), ordered by id."""
        return sorted(self._of_type.get(kind, {}).values(), key=lambda r: r.key)

    def referring(self, resource_id: str, kind: str) -> list[Resource]:
        """The resources of type `kind` whose body names `resource_id` as an `id` anywhere, ordered by id."""
        found = self._referrers.get(resource_id.lower().rstrip("/"), {}).values()
        return sorted((r for r in found if type_of(r.id) == kind), key=lambda r: r.key)

    def find(self, predicate: Any) -> list[Resource]:
        return [resource for resource in self.resources.values() if predicate(resource)]

    def _index(self, resource: Resource) -> None:
        if resource.parent:
            self._children.setdefault(resource.parent, {})[resource.key] = resource
        self._of_type.setdefault(type_of(resource.id), {})[resource.key] = resource
        for named in _ids_in(resource.body):
            self._referrers.setdefault(named, {})[resource.key] = resource

    def _unindex(self, resource: Resource) -> None:
        if resource.parent:
            _discard(self._children, resource.parent, resource.key)
        _discard(self._of_type, type_of(resource.id), resource.key)
        for named in _ids_in(resource.body):
            _discard(self._referrers, named, resource.key)

    def snapshot(self) -> list[Json]:
        return [
            {"id": r.id, "body": copy.deepcopy(r.body)} for r in sorted(self.resources.values(), key=lambda r: r.key)
        ]

    # operations ------------------------------------------------------------------------------
    def start_operation(
        self,
        result: Json | None = None,
        status_code: int = 200,
        failed: str | None = None,
        scope: str | None = None,
        name: str = "",
        target: str = "",
    ) -> Operation:
        """An operation; with a `scope`, it holds that scope's lock until it ends."""
        operation = Operation(
            str(uuid.uuid4()), time.monotonic() + self.config.lro_seconds, result, failed, status_code, name, target
        )
        self.operations[operation.id] = operation
        if scope is not None:
            self.locks.setdefault(scope.lower(), []).append(operation)
        return operation

    def running_in(self, scope: str) -> list[Operation]:
        """The operations still running in a lock scope (finished ones are forgotten)."""
        running = [operation for operation in self.locks.get(scope.lower(), []) if operation.running]
        self.locks[scope.lower()] = running
        return running

    # policies --------------------------------------------------------------------------------
    def add_policy(self, spec: Json) -> Policy:
        policy = Policy(str(uuid.uuid4()), str(spec["type"]).lower(), str(spec["path"]), spec["value"])
        self.policies.append(policy)
        return policy

    def apply_policies(self, resource_type: str, body: Json) -> Json:
        """The body as the policies in force modify it (a copy)."""
        modified = copy.deepcopy(body)
        for policy in self.policies:
            if policy.type != resource_type.lower():
                continue
            *parents, last = policy.path.split(".")
            target = modified
            for part in parents:
                target = target.setdefault(part, {})
            target[last] = copy.deepcopy(policy.value)
        return modified

    # faults and throttling ---------------------------------------------------------------------
    def add_fault(self, spec: Json) -> Fault:
        fault = Fault(
            id=str(uuid.uuid4()),
            method=str(spec.get("method", "*")).upper(),
            path=re.compile(spec.get("path", ".*"), re.IGNORECASE),
            status=int(spec.get("status", 500)),
            count=spec.get("count", 1),
            probability=float(spec.get("probability", 1.0)),
            latency_ms=int(spec.get("latencyMs", 0)),
            retry_after=spec.get("retryAfter"),
            code=str(spec.get("code", "InternalServerError")),
            fail_lro=bool(spec.get("failLro", False)),
            disconnect=spec.get("disconnect"),
        )
        if fault.disconnect not in (None, "before", "after"):
            raise ValueError(f"disconnect must be 'before' or 'after', not {fault.disconnect!r}")
        self.faults.append(fault)
        return fault

    def bucket(self, subscription: str, kind: str) -> Bucket:
        """The token bucket of one subscription for `kind`: reads, writes or deletes."""
        key = (subscription.lower(), kind)
        if key not in self.buckets:
            burst, rate = getattr(self.config, f"{kind}_burst"), getattr(self.config, f"{kind}_per_second")
            self.buckets[key] = Bucket(burst, rate)
        return self.buckets[key]


def _ids_in(body: Any) -> set[str]:
    """Every ARM id a body names as an `id` (references to other resources), lower-cased."""
    found: set[str] = set()
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "id" and isinstance(value, str) and value.lower().startswith("/subscriptions/"):
                found.add(value.lower().rstrip("/"))
            elif isinstance(value, dict | list):
                found |= _ids_in(value)
    elif isinstance(body, list):
        for item in body:
            found |= _ids_in(item)
    return found


def _discard(index: dict[str, dict[str, Resource]], name: str, key: str) -> None:
    entries = index.get(name)
    if entries is not None:
        entries.pop(key, None)
        if not entries:
            del index[name]
