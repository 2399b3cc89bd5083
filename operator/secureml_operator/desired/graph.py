"""The desired state: a graph of ARM resources, each owning some fields, with dependencies.

`plan()` builds it from a spec without any I/O; the engine walks it. A node is one ARM resource;
its child resources that must be written through their own endpoints (security rules, routes,
outbound rules) are a `ChildSet` on the parent, read from the parent's single GET.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.fields import Exact, FieldRule, Json, get_path
from secureml_operator.desired.roles import Role


class Lifecycle(Enum):
    """Who owns the resource's existence."""

    OWNED = "Owned"  # created (or adopted) and tagged by us; deleted with the custom resource
    EXTERNAL = "External"  # someone else's (an existing VNet, a storage account): we only adjust fields
    SHARED = "Shared"  # shared infrastructure (private DNS zones): created when absent, never deleted


class ListPolicy(Enum):
    """How a list is owned (the API's `rulesPolicy`, converted once where a kind reads it)."""

    AUTHORITATIVE = "Authoritative"
    ADDITIVE = "Additive"


class Write(StrEnum):
    """How the engine updates a node that exists."""

    PUT = "put"  # the live body with the owned fields set, sent whole with If-Match
    PATCH = "patch"  # only the owned fields that differ


class Verb(StrEnum):
    """What a Step sends."""

    POST = "post"  # an ARM action (provisioning the managed network)
    PUT = "put"  # a (child) resource


@dataclass(frozen=True)
class ChildSpec:
    name: str
    body: Json
    fields: tuple[FieldRule, ...]

    @classmethod
    def exact(cls, name: str, properties: Mapping[str, object]) -> ChildSpec:
        """A child that owns each of its properties exactly (an NSG rule, a route)."""
        fields = tuple(Exact(f"properties.{key}", value) for key, value in properties.items())
        return cls(name, {"properties": dict(properties)}, fields)


@dataclass(frozen=True)
class ChildSet:
    """Children listed inline in the parent's GET and written through their own endpoints."""

    child_type: str
    inline_path: str
    children: tuple[ChildSpec, ...]
    policy: ListPolicy = ListPolicy.AUTHORITATIVE
    inline_is_map: bool = False  # Azure ML lists outbound rules as {name: properties}
    ignore: Callable[[Json], bool] | None = None  # children Azure itself manages (never touched)

    def live_children(self, parent: Json) -> dict[str, Json]:
        """`{name: child body}` in the child endpoint's shape, whichever way the parent lists them."""
        listed = get_path(parent, self.inline_path)
        if self.inline_is_map:
            mapping: dict[str, Json] = listed if isinstance(listed, dict) else {}
            children = {name: {"name": name, "properties": value} for name, value in mapping.items()}
        else:
            items: list[Json] = listed if isinstance(listed, list) else []
            children = {child["name"]: child for child in items if "name" in child}
        return {name: child for name, child in children.items() if not (self.ignore and self.ignore(child))}


LiveLookup = Callable[[str], Json | None]
Resolver = Callable[[LiveLookup], tuple[FieldRule, ...]]
"""Extra owned fields computed during a walk from the live bodies of the nodes a node depends on
(e.g. our NAT gateway's public IPs on an allowlist). In a teardown every lookup answers None."""


@dataclass(frozen=True)
class Node:
    """One ARM resource: how to create it, which fields it owns, what it waits for."""

    id: ArmId
    create_body: Json | None
    role: Role  # what it is for: status finds the walk's results by it
    fields: tuple[FieldRule, ...] = ()
    depends_on: tuple[str, ...] = ()
    lifecycle: Lifecycle = Lifecycle.OWNED
    write: Write = Write.PUT
    children: tuple[ChildSet, ...] = ()
    tagged: bool = True  # child resources and some types carry no tags
    action: Action | None = None
    resolve: Resolver | None = None  # fields that depend on other nodes' live bodies (see Resolver)
    must_exist: bool = True  # False: an external resource we only clean up, fine when it is gone

    @property
    def key(self) -> str:
        return self.id.key

    @classmethod
    def external(
        cls,
        arm_id: ArmId,
        role: Role,
        depends_on: tuple[str, ...] = (),
        *,
        write: Write = Write.PUT,
        action: Action | None = None,
        resolve: Resolver | None = None,
        must_exist: bool = True,
    ) -> Node:
        """Someone else's resource: never created or deleted, only read (and what it owns adjusted)."""
        return cls(
            id=arm_id, create_body=None, role=role, depends_on=depends_on, lifecycle=Lifecycle.EXTERNAL,
            write=write, action=action, resolve=resolve, must_exist=must_exist,
        )  # fmt: skip


@dataclass(frozen=True)
class Step:
    """One write an action wants: `post` an ARM action, or `put` a (child) resource."""

    verb: Verb
    target: ArmId
    body: Json
    reason: str


@dataclass(frozen=True)
class Action:
    """Writes that follow a converged node, decided from its live body (empty when nothing is due).

    Used for what is not a field of the resource itself: provisioning the managed network, approving
    the private endpoint connections our rules create on their targets.
    """

    name: str
    steps: Callable[[Json, LiveLookup], list[Step]]  # (this node's live body, the walk's other bodies)


@dataclass
class DesiredGraph:
    """`anchor`: the node every independent node waits for (the workspace). Every name in the graph
    derives from the workspace's, so whoever creates the workspace is the one owner of them all: two
    resources racing for one workspace never split its parts between them."""

    nodes: dict[str, Node] = field(default_factory=dict)
    anchor: str | None = None

    def add(self, node: Node) -> Node:
        if node.key in self.nodes:
            raise ValueError(f"duplicate node {node.id}")
        if not node.depends_on and self.anchor is not None:
            node = dataclasses.replace(node, depends_on=(self.anchor,))
        missing = [dependency for dependency in node.depends_on if dependency not in self.nodes]
        if missing:
            raise ValueError(f"{node.id} depends on nodes not yet in the graph: {missing}")
        self.nodes[node.key] = node
        return node

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def dependents(self, key: str) -> list[Node]:
        return [node for node in self.nodes.values() if key in node.depends_on]
