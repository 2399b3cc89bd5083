"""Conflicting writers: fields (and resources) another writer keeps changing back, counted in status.

Each drift sweep that has to correct the same field again, or whose write Azure did not keep (an
Azure Policy `modify`, a writer racing us), adds one to that field's count. A field corrected in
CONFLICT_THRESHOLD consecutive sweeps is a fight: the operator stops correcting it and says so
(`InSync=False`, reason ConflictingWriter). The counts live in `status.conflicts`, so a restart or a
failover to another replica remembers them; a new generation of the spec, or a new value of the
RESET_ANNOTATION, starts them afresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from secureml_operator.desired.fields import Json
from secureml_operator.engine.engine import Action, Change
from secureml_operator.engine.ledger import entry_key

CONFLICT_THRESHOLD = 3  # sweeps in a row that had to correct one field before we stop fighting over it
RESET_ANNOTATION = "secureml.io/reset-conflicts"  # any new value forgets the counts: the fight resumes
FOUGHT = (Action.CORRECTED, Action.REVERTED)  # a correction was needed, or ours did not stick


@dataclass(frozen=True)
class Fight:
    resource: str
    field: str
    sweeps: int
    since: str
    writer: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return entry_key(self.resource), self.field

    @property
    def stopped(self) -> bool:
        return self.sweeps >= CONFLICT_THRESHOLD

    def as_status(self) -> Json:
        body: Json = {
            "resource": self.resource,
            "field": self.field,
            "sweeps": self.sweeps,
            "since": self.since,
            "stopped": self.stopped,
        }
        return body | ({"writer": self.writer} if self.writer else {})


@dataclass(frozen=True)
class Conflicts:
    generation: int
    reset: str | None = None
    fights: dict[tuple[str, str], Fight] = field(default_factory=dict)

    @classmethod
    def from_status(cls, status: Json, generation: int, reset: str | None) -> Conflicts:
        """The counts in status, unless the spec or the reset annotation changed since they began."""
        saved = status.get("conflicts") or {}
        if saved.get("observedGeneration") != generation or saved.get("reset") != reset:
            return cls(generation, reset)
        fights = [
            Fight(
                str(item["resource"]), str(item["field"]), int(item["sweeps"]), str(item["since"]), item.get("writer")
            )
            for item in saved.get("fields") or []
        ]
        return cls(generation, reset, {fight.key: fight for fight in fights})

    @property
    def stopped(self) -> frozenset[tuple[str, str]]:
        """(resource key, field) the walk leaves alone."""
        return frozenset(key for key, fight in self.fights.items() if fight.stopped)

    def after_sweep(self, changes: Iterable[Change], now: str) -> Conflicts:
        """Counts after one sweep: a field fought again counts one more, a stopped fight that still
        differs stays, and anything Azure now agrees on is forgotten."""
        fights: dict[tuple[str, str], Fight] = {}
        for change in changes:
            key = (entry_key(change.resource), change.field)
            previous = self.fights.get(key)
            writer = change.writer or (previous.writer if previous else None)
            if change.action in FOUGHT and key not in fights:
                sweeps = (previous.sweeps if previous else 0) + 1
                since = previous.since if previous else now
                fights[key] = Fight(change.resource, change.field, sweeps, since, writer)
            elif change.action is Action.SKIPPED and previous is not None:
                fights[key] = replace(previous, writer=writer)
        return replace(self, fights=fights)

    def as_status(self) -> Json:
        return {
            "observedGeneration": self.generation,
            "reset": self.reset,
            "fields": [fight.as_status() for _, fight in sorted(self.fights.items())],
        }
