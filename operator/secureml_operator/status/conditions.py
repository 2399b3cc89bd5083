"""Conditions in the metav1.Condition shape, merged into the live list by type.

They are applied as a kopf `patch.fns` transformation, which kopf turns into a JSON-patch against
the freshest body, so conditions set by anyone else are never clobbered, and lastTransitionTime
moves only when a condition's status really changes (what kstatus and `kubectl wait` rely on).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import kopf

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
INBOUND_ISOLATED = "InboundIsolated"
OUTBOUND_ISOLATED = "OutboundIsolated"
IN_SYNC = "InSync"
PRIVATE_ENDPOINTS_APPROVED = "PrivateEndpointsApproved"
ALL = (READY, RECONCILING, STALLED, INBOUND_ISOLATED, OUTBOUND_ISOLATED, IN_SYNC, PRIVATE_ENDPOINTS_APPROVED)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str

    def as_dict(self, generation: int, transition_time: str) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": "True" if self.status else "False",
            "reason": self.reason,
            "message": self.message[:1000],
            "observedGeneration": generation,
            "lastTransitionTime": transition_time,
        }


def merge_conditions(existing: list[dict[str, Any]], updates: list[Condition], generation: int) -> list[dict[str, Any]]:
    """The existing list with `updates` applied by type; untouched types are kept as they are."""
    merged = [dict(condition) for condition in existing]
    by_type = {condition.get("type"): condition for condition in merged}
    stamp = now()
    for update in updates:
        current = by_type.get(update.type)
        status = "True" if update.status else "False"
        transition = current["lastTransitionTime"] if current and current.get("status") == status else stamp
        fresh = update.as_dict(generation, transition)
        if current is None:
            merged.append(fresh)
            by_type[update.type] = fresh
        else:
            current.clear()
            current.update(fresh)
    return merged


def conditions_patch(updates: list[Condition], generation: int) -> Callable[[kopf.RawBody], None]:
    """A kopf `patch.fns` entry: merge `updates` into whatever conditions the body has now, and set
    observedGeneration in the same change, so no reader sees the new generation with old conditions."""

    def apply(body: kopf.RawBody) -> None:
        status = cast(dict[str, Any], body).setdefault("status", {})
        status["conditions"] = merge_conditions(status.get("conditions") or [], updates, generation)
        status["observedGeneration"] = generation

    return apply
