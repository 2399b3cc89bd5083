"""Owned fields: what one desired resource asserts about a live ARM body, and how to make it so.

A node never compares whole bodies (ARM adds read-only and defaulted fields, others own the rest);
it lists the fields it owns. Lists whose extra entries are a security risk (IP rules) are owned as
a set of members under a policy: Authoritative (extras are drift) or Additive (extras are kept).
"""

from __future__ import annotations

import copy
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from secureml_operator.azure.ids import id_key

Json = dict[str, Any]
ABSENT = "absent"


def get_path(body: Json, path: str) -> Any:
    current: Any = body
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def set_path(body: Json, path: str, value: Any) -> None:
    parts = path.split(".")
    current = body
    for part in parts[:-1]:
        child = current.get(part)
        if not isinstance(child, dict):
            child = current[part] = {}
        current = child
    current[parts[-1]] = copy.deepcopy(value)


def normalize(value: Any) -> Any:
    """ARM echoes ids and enum values in its own casing: compare them case-insensitively."""
    if isinstance(value, str):
        return id_key(value) if value.startswith("/subscriptions/") else value.casefold()
    if isinstance(value, list):
        return [normalize(item) for item in value]
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items() if item is not None}
    return value


def render(value: Any) -> str:
    """A short, stable text for status and events (never a whole body)."""
    if value is None:
        return ABSENT
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    return repr(value)


@dataclass(frozen=True)
class FieldDiff:
    field: str
    expected: str
    actual: str


@dataclass(frozen=True)
class Exact:
    """The field must hold exactly this value (a missing field differs unless value is None)."""

    path: str
    value: Any

    def diff(self, live: Json) -> FieldDiff | None:
        actual = get_path(live, self.path)
        if normalize(actual) == normalize(self.value):
            return None
        return FieldDiff(self.path, render(self.value), render(actual))

    def apply(self, body: Json, live: Json | None = None) -> None:
        set_path(body, self.path, self.value)


@dataclass(frozen=True)
class Members:
    """A list owned by membership: each member identified by `key` (a dotted path, or the item itself)."""

    path: str
    members: tuple[Any, ...]
    key: str | None = None
    authoritative: bool = True
    forbidden: tuple[Any, ...] = ()  # Additive: members we put there before and must take out again

    def _key(self, item: Any) -> Hashable:
        value = get_path(item, self.key) if self.key and isinstance(item, dict) else item
        return normalize(value) if not isinstance(value, dict | list) else repr(normalize(value))

    def diff(self, live: Json) -> FieldDiff | None:
        actual = get_path(live, self.path) or []
        have = {self._key(item) for item in actual}
        want = {self._key(item) for item in self.members}
        missing, extra = want - have, have - want
        stale = have & {self._key(item) for item in self.forbidden}
        if missing or stale or (self.authoritative and extra):
            return FieldDiff(self.path, render(self._labels(self.members)), render(self._labels(actual)))
        return None

    def _labels(self, items: Any) -> list[str]:
        return sorted(str(item.get(self.key) if self.key and isinstance(item, dict) else item) for item in items)

    def extras(self, live: Json) -> list[str]:
        """Members present in Azure that the spec does not declare (reported under Additive)."""
        want = {self._key(item) for item in self.members}
        actual = get_path(live, self.path) or []
        return self._labels([item for item in actual if self._key(item) not in want])

    def apply(self, body: Json, live: Json | None = None) -> None:
        """Authoritative: exactly the members. Additive: the live list, less the forbidden members, plus
        missing members."""
        if self.authoritative or live is None:
            set_path(body, self.path, list(self.members))
            return
        forbidden = {self._key(item) for item in self.forbidden} - {self._key(item) for item in self.members}
        current = [item for item in get_path(live, self.path) or [] if self._key(item) not in forbidden]
        have = {self._key(item) for item in current}
        current.extend(item for item in self.members if self._key(item) not in have)
        set_path(body, self.path, current)


def contains(live: Any, declared: Any) -> bool:
    """`live` holds at least what is declared: every declared key with a value that holds at least
    its own, lists item by item in order and of the same length, other values equal (normalized)."""
    if isinstance(declared, dict):
        return isinstance(live, dict) and all(contains(live.get(key), value) for key, value in declared.items())
    if isinstance(declared, list):
        return (
            isinstance(live, list)
            and len(live) == len(declared)
            and all(contains(have, want) for have, want in zip(live, declared, strict=True))
        )
    return bool(normalize(live) == normalize(declared))


@dataclass(frozen=True)
class Contains:
    """The field holds this structure, with whatever defaults Azure fills in inside it: an Azure
    Firewall rule collection comes back with empty lists and flags no one sent. An entry more or
    less, or any declared value changed, differs."""

    path: str
    value: Any

    def diff(self, live: Json) -> FieldDiff | None:
        actual = get_path(live, self.path)
        if contains(actual, self.value):
            return None
        return FieldDiff(self.path, render(_names(self.value)), render(_names(actual)))

    def apply(self, body: Json, live: Json | None = None) -> None:
        set_path(body, self.path, self.value)


def _names(value: Any) -> Any:
    """A list of named entries as its names, for status and events."""
    if isinstance(value, list) and all(isinstance(item, dict) and "name" in item for item in value):
        return [str(item["name"]) for item in value]
    return value


FieldRule = Exact | Members | Contains
