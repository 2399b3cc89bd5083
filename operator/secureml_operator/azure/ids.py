"""ARM resource ids: parse them once, compare them case-insensitively, build child ids."""

from __future__ import annotations

import functools
from dataclasses import dataclass


class InvalidArmId(ValueError):
    """A string that is not an ARM resource id: in a spec, or in what Azure sent back."""


@dataclass(frozen=True)
class ArmId:
    """`/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{child}/{name}...]`."""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @classmethod
    def parse(cls, value: str) -> ArmId:
        parts = _segments(value)
        tail = parts[6:]
        return cls(
            subscription=parts[1],
            resource_group=parts[3],
            namespace=parts[5],
            types=tuple(tail[0::2]),
            names=tuple(tail[1::2]),
        )

    @property
    def type(self) -> str:
        """`Microsoft.Network/routeTables/routes`: the resource type ARM and the SDK tables use."""
        return "/".join((self.namespace, *self.types))

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def parent(self) -> ArmId | None:
        if len(self.types) == 1:
            return None
        return ArmId(self.subscription, self.resource_group, self.namespace, self.types[:-1], self.names[:-1])

    @property
    def top(self) -> ArmId:
        """The top-level resource this one lives in (itself when it is one): a subnet's VNet."""
        return ArmId(self.subscription, self.resource_group, self.namespace, self.types[:1], self.names[:1])

    def child(self, child_type: str, name: str) -> ArmId:
        return ArmId(
            self.subscription,
            self.resource_group,
            self.namespace,
            (*self.types, child_type),
            (*self.names, name),
        )

    def __str__(self) -> str:
        return self._text

    # Cached (in the instance's __dict__, beside the frozen fields): a walk formats and compares the
    # same ids many times over.
    @functools.cached_property
    def _text(self) -> str:
        segments = [f"{kind}/{name}" for kind, name in zip(self.types, self.names, strict=True)]
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{self.namespace}/" + "/".join(segments)
        )

    @functools.cached_property
    def key(self) -> str:
        """ARM ids are case-insensitive: use this to compare or index them."""
        return id_key(str(self))


def resource_id(subscription: str, resource_group: str, namespace: str, *type_name_pairs: str) -> ArmId:
    """Build an id from `type, name, [child type, child name, ...]`."""
    return ArmId(subscription, resource_group, namespace, type_name_pairs[0::2], type_name_pairs[1::2])


def _segments(value: str) -> list[str]:
    """The id's segments between slashes; InvalidArmId when they do not make an ARM resource id."""
    parts = value.strip("/").split("/")
    if (
        len(parts) < 8
        or len(parts) % 2 != 0
        or parts[0].lower() != "subscriptions"
        or parts[2].lower() != "resourcegroups"
        or parts[4].lower() != "providers"
    ):
        raise InvalidArmId(f"not an ARM resource id: {value!r}")
    return parts


def key_of(value: str) -> str:
    """`ArmId.parse(value).key`, without building the id: the ledger keys every entry it looks up."""
    return "/" + "/".join(_segments(value)).lower()


def id_key(value: str | None) -> str:
    """The one comparison of ARM ids (parsed or as Azure sent them): case-insensitive, a trailing
    slash ignored. `ArmId.key` is this of the parsed id."""
    return (value or "").lower().rstrip("/")


def same_id(left: str | None, right: str | None) -> bool:
    return id_key(left) == id_key(right)
