"""The ownership ledger: what this custom resource created or adopted in Azure, kept in its status.

Ownership is decided here, never by Azure tags alone (anyone who can write a resource can write its
tags). An entry is written ahead of the create it announces (`pending`), so a create whose answer
was lost to a crash is recognised on restart: the resource exists, carries our uid, and the ledger
says we were about to create it. Teardown deletes exactly the `Created` entries whose live identity
still matches, and the `Shared` private DNS entries nobody else uses any more; `Adopted` resources
are never deleted; `Claimed` IP rules were there before us.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from secureml_operator.azure.ids import ArmId, key_of
from secureml_operator.desired.fields import Json, get_path


class Origin(enum.Enum):
    CREATED = "Created"  # we created it: deleted with the custom resource
    ADOPTED = "Adopted"  # it existed, the spec opted in (spec.adoption: Adopt): managed, never deleted
    CLAIMED = "Claimed"  # an IP rule that was on the target before us: needed, never removed by us
    # Shared by design (private DNS zones and their VNet links): a link goes when the VNet it links is
    # deleted with us or no record of anyone else's is in its zone, a zone when no link or record of
    # anyone else's remains in it.
    SHARED = "Shared"


SHARED_PREFIX = "microsoft.network/privatednszones"
IP_RULE = "ipRule"  # an allowlist entry on a target's IP rules: `id` is the target, `name` the address


@dataclass(frozen=True)
class Entry:
    id: str
    type: str
    origin: Origin
    identity: str | None = None  # resourceGuid / workspaceId as Azure reported it at creation
    pending: bool = False  # written ahead of a create whose outcome is not known yet
    name: str | None = None  # the IP address of an IP_RULE entry
    changed: tuple[str, ...] = ()  # Adopted: the fields we changed on it

    @property
    def key(self) -> str:
        return entry_key(self.id, self.name)

    def as_status(self) -> Json:
        # `changed` is always written: the CRD defaults it to [], and a patch without it would read
        # back different from what was sent (kopf warns of an inconsistent merge on every write).
        body: Json = {"id": self.id, "type": self.type, "origin": self.origin.value, "changed": list(self.changed)}
        optional = {"identity": self.identity, "pending": self.pending or None, "name": self.name}
        return body | {key: value for key, value in optional.items() if value is not None}

    @classmethod
    def from_status(cls, item: Json) -> Entry:
        return cls(
            id=str(item["id"]),
            type=str(item.get("type") or ArmId.parse(str(item["id"])).type),
            origin=Origin(item.get("origin", Origin.CREATED.value)),
            identity=item.get("identity"),
            pending=bool(item.get("pending")),
            name=item.get("name"),
            changed=tuple(item.get("changed") or ()),
        )


def entry_key(resource_id: str, name: str | None = None) -> str:
    key = key_of(resource_id) if resource_id.startswith("/") else resource_id.lower()
    return f"{key}#{name.lower()}" if name else key


def identity_of(live: Json) -> str | None:
    """Azure's own identity for a resource: it changes when the resource is deleted and recreated."""
    return get_path(live, "properties.resourceGuid") or get_path(live, "properties.workspaceId") or None


Persist = Callable[[list[Json]], Awaitable[None]]


async def _keep_in_memory(_entries: list[Json]) -> None:
    return None


@dataclass
class Ledger:
    """The entries of one custom resource; `persist` writes them to its status (write-ahead)."""

    entries: dict[str, Entry] = field(default_factory=dict)
    persist: Persist = _keep_in_memory
    # Creates are announced concurrently: one write at a time, each of the entries as they are when
    # it starts, so a slower, older write never lands after a newer one and drops an announcement.
    _writing: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    @classmethod
    def from_status(cls, status: Json, persist: Persist = _keep_in_memory) -> Ledger:
        items = status.get("ledger") or [
            # Written before the ledger existed: what `status.resources` listed, to be confirmed by
            # its tags as the walk meets it (private DNS zones and links were shared: never ours).
            {"id": item["id"], "type": item.get("type"), "pending": True}
            for item in status.get("resources") or []
            if item.get("id") and not str(item.get("type", "")).lower().startswith(SHARED_PREFIX)
        ]
        entries = [Entry.from_status(item) for item in items]
        return cls({entry.key: entry for entry in entries}, persist)

    def get(self, resource_id: str, name: str | None = None) -> Entry | None:
        return self.entries.get(entry_key(resource_id, name))

    def owns(self, resource_id: str) -> bool:
        """Created (and confirmed) by this resource."""
        entry = self.get(resource_id)
        return entry is not None and entry.origin is Origin.CREATED and not entry.pending

    def manages(self, resource_id: str) -> bool:
        """Created or adopted, and confirmed: the walk needs no ownership check for it."""
        entry = self.get(resource_id)
        return entry is not None and not entry.pending and entry.origin is not Origin.CLAIMED

    def record(self, entry: Entry) -> None:
        self.entries[entry.key] = entry

    async def intend(self, resource_id: str, resource_type: str, origin: Origin = Origin.CREATED) -> None:
        """Announce a create before it is sent, and make the announcement durable. An announcement
        that could not be written is withdrawn: the create will not be sent."""
        self.record(Entry(resource_id, resource_type, origin, pending=True))
        try:
            async with self._writing:
                await self.persist(self.as_status())
        except BaseException:
            self.forget(resource_id)
            raise

    def confirm(self, resource_id: str, resource_type: str, origin: Origin, live: Json | None, **extra: Any) -> None:
        previous = self.get(resource_id)
        changed = tuple(sorted({*(previous.changed if previous else ()), *extra.pop("changed", ())}))
        self.record(Entry(resource_id, resource_type, origin, identity_of(live or {}), changed=changed, **extra))

    def forget(self, resource_id: str, name: str | None = None) -> None:
        self.entries.pop(entry_key(resource_id, name), None)

    def ip_rules(self, target: str) -> list[Entry]:
        prefix = entry_key(target) + "#"
        return [entry for key, entry in self.entries.items() if key.startswith(prefix) and entry.type == IP_RULE]

    def with_changes(self, resource_id: str, fields: Iterable[str]) -> None:
        entry = self.get(resource_id)
        if entry is not None and entry.origin is Origin.ADOPTED:
            self.record(replace(entry, changed=tuple(sorted({*entry.changed, *fields}))))

    def as_status(self) -> list[Json]:
        return [entry.as_status() for _, entry in sorted(self.entries.items())]

    def __len__(self) -> int:
        return len(self.entries)
