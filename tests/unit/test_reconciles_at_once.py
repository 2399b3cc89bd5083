"""The operator queues reconciles itself and walks at most SMLW_MAX_WORKERS of them at once. kopf's
handler only asks for the walk and returns: under kopf's worker limit, kopf queued every watch event
of each object waiting for a worker, each with the whole body, and a handler waiting for its turn
held kopf's copy of the body until then (docs/bench-scale.md, stops 26 and 30)."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses

import kopf
from armfake import ArmFake
from test_engine import OWNER
from test_live_body import FakeAccess, _resource

from secureml_operator.engine.ledger import Ledger
from secureml_operator.reconciler import Reconciler, ResourceMemo

Key = tuple[str, str]


class CountingReconciler(Reconciler):
    """Walks nothing: counts walks, how many are under way at once, and fails as told."""

    def __init__(self, access: FakeAccess) -> None:
        super().__init__(access)
        self.walking = 0
        self.most_at_once = 0
        self.walked: list[str] = []
        self.transient_failures: dict[str, int] = {}  # name: walks that fail before one succeeds
        self.hold = asyncio.Event()  # walks wait for it once set to block
        self.hold.set()

    async def _reconcile_now(self, namespace: str, name: str, memo: ResourceMemo) -> float | None:
        self.walking += 1
        self.most_at_once = max(self.most_at_once, self.walking)
        await self.hold.wait()
        await asyncio.sleep(0.01)
        self.walked.append(name)
        self.walking -= 1
        if self.transient_failures.get(name):
            self.transient_failures[name] -= 1
            return 0.05
        return None

    async def settled(self) -> None:
        """Until no requested walk is queued or under way."""
        while self._requested:
            await asyncio.gather(*self._requested.values())


def _body(name: str) -> kopf.Body:
    raw = _resource(1, Ledger())
    raw["metadata"]["name"] = name
    return kopf.Body(raw)  # type: ignore[arg-type]


def _reconciler(max_workers: int) -> CountingReconciler:
    access = FakeAccess(ArmFake())
    access.settings = dataclasses.replace(access.settings, max_workers=max_workers)
    return CountingReconciler(access)


async def test_no_more_reconciles_walk_at_once_than_max_workers() -> None:
    reconciler = _reconciler(max_workers=2)
    names = [f"ws-{index}" for index in range(6)]

    for name in names:
        reconciler.request(_body(name))
    await reconciler.settled()

    assert reconciler.most_at_once == 2
    assert sorted(reconciler.walked) == names, "every reconcile walked, once"


async def test_the_handler_returns_while_every_worker_is_busy() -> None:
    reconciler = _reconciler(max_workers=1)
    reconciler.hold.clear()
    reconciler.request(_body("busy"))
    await asyncio.sleep(0.01)
    assert reconciler.walking == 1, "the one worker is taken"

    reconciler.request(_body("waiting"))  # returns at once: nothing waits holding the body

    assert reconciler.walked == []
    reconciler.hold.set()
    await reconciler.settled()
    assert reconciler.walked == ["busy", "waiting"]


async def test_a_request_during_a_walk_walks_the_resource_again() -> None:
    reconciler = _reconciler(max_workers=2)
    reconciler.hold.clear()
    reconciler.request(_body("changed"))
    await asyncio.sleep(0.01)

    reconciler.request(_body("changed"))  # the spec changed while the first walk was under way
    reconciler.request(_body("changed"))  # and again: still one walk more, of the spec it has then
    reconciler.hold.set()
    await reconciler.settled()

    assert reconciler.walked == ["changed", "changed"]


async def test_a_transient_failure_is_walked_again_after_its_backoff() -> None:
    reconciler = _reconciler(max_workers=1)
    reconciler.transient_failures["flaky"] = 2

    reconciler.request(_body("flaky"))
    reconciler.request(_body("steady"))
    await reconciler.settled()

    assert reconciler.walked.count("flaky") == 3, "two failures, then the walk that succeeded"
    assert reconciler.walked.count("steady") == 1
    assert reconciler.walked.index("steady") < reconciler.walked.index("flaky", 1), (
        "a resource backing off does not hold a worker"
    )


async def test_a_reconcile_retried_after_its_backoff_goes_ahead_of_the_walks_not_yet_begun() -> None:
    """Ten resources queue behind one that fails; its backoff (0.05 s) ends while most of the ten
    (0.01 s a walk or more) still wait: it is walked again next, not after them."""
    reconciler = _reconciler(max_workers=1)
    reconciler.transient_failures["flaky"] = 1
    others = [f"queued-{index}" for index in range(10)]
    for name in ["flaky", *others]:
        reconciler.request(_body(name))
    await reconciler.settled()

    assert sorted(reconciler.walked) == sorted(["flaky", "flaky", *others])
    assert reconciler.walked.index("flaky", 1) <= 7, reconciler.walked


async def test_stop_cancels_the_queued_reconciles() -> None:
    reconciler = _reconciler(max_workers=1)
    reconciler.hold.clear()
    for name in ("a", "b"):
        reconciler.request(_body(name))
    await asyncio.sleep(0.01)

    await reconciler.stop()

    assert reconciler.walked == []
    assert not reconciler._requested


async def test_a_resource_created_again_under_its_name_is_walked_again() -> None:
    reconciler = _reconciler(max_workers=1)
    reconciler.hold.clear()
    reconciler.request(_body("again"))
    await asyncio.sleep(0.01)

    reconciler.forget(OWNER.namespace, "again")  # deleted while its walk was under way
    reconciler.request(_body("again"))  # and created again: a new memo
    reconciler.hold.set()
    await reconciler.settled()

    assert reconciler.walked == ["again", "again"]


HANDLER_BODY: contextvars.ContextVar[str] = contextvars.ContextVar("HANDLER_BODY", default="")


class ContextReconciler(CountingReconciler):
    """Notes what a walk's context holds of the handler that asked for it."""

    def __init__(self, access: FakeAccess) -> None:
        super().__init__(access)
        self.seen: dict[str, str] = {}

    async def _reconcile_now(self, namespace: str, name: str, memo: ResourceMemo) -> float | None:
        self.seen[name] = HANDLER_BODY.get()
        return None


async def test_a_queued_walk_does_not_keep_the_handlers_context() -> None:
    """kopf's handler context holds its cause, with the whole body: a walk queued for minutes must
    not keep it alive (at 5000 resources applied at once, every waiting body again)."""
    reconciler = ContextReconciler(_reconciler(max_workers=1).access)

    def handler(name: str) -> None:
        HANDLER_BODY.set(f"the body of {name}")
        reconciler.request(_body(name))

    for name in ("first", "second"):
        contextvars.copy_context().run(handler, name)
    await reconciler.settled()

    # Every walk runs in a copy of the context the first handler had (kopf's event posting is in it):
    # one body for the process's life, not one per waiting walk.
    assert reconciler.seen == {"first": "the body of first", "second": "the body of first"}
