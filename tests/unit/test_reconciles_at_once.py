"""The operator bounds the reconciles that walk Azure at once (SMLW_MAX_WORKERS) itself, rather
than through kopf's worker limit, under which kopf queued every watch event of each object waiting
for a worker, each with the whole body."""

from __future__ import annotations

import asyncio
import dataclasses

import kopf
from armfake import ArmFake
from test_live_body import FakeAccess, _resource

from secureml_operator.engine.ledger import Ledger
from secureml_operator.reconciler import Reconciler, ResourceMemo, Target


class CountingReconciler(Reconciler):
    """Walks nothing: counts how many walks are under way at once."""

    def __init__(self, access: FakeAccess) -> None:
        super().__init__(access)
        self.walking = 0
        self.most_at_once = 0
        self.walked: list[str] = []

    async def _walk(self, target: Target, sweep: bool) -> None:
        self.walking += 1
        self.most_at_once = max(self.most_at_once, self.walking)
        await asyncio.sleep(0.01)
        self.walked.append(target.owner.name)
        self.walking -= 1


def _target(name: str) -> Target:
    raw = _resource(1, Ledger())
    raw["metadata"]["name"] = name
    return Target(kopf.Body(raw), kopf.Patch(), ResourceMemo())  # type: ignore[arg-type]


async def test_no_more_reconciles_walk_at_once_than_max_workers() -> None:
    access = FakeAccess(ArmFake())
    access.settings = dataclasses.replace(access.settings, max_workers=2)
    reconciler = CountingReconciler(access)
    names = [f"ws-{index}" for index in range(6)]

    await asyncio.gather(*(reconciler.reconcile(_target(name)) for name in names))

    assert reconciler.most_at_once == 2
    assert sorted(reconciler.walked) == names, "every reconcile walked, in turn"
