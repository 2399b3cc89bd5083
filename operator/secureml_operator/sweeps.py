"""Drift sweeps: one queue ordered by due time, instead of a kopf timer per resource.

kopf's timer woke every resource every second and judged "due" from a body only its per-object
worker refreshed: under load a sweep fired again a second after the last one ended, and new
resources starved. Here each resource's next sweep is computed from the start of its last one, a
bounded pool runs what is due, and `Pacing` spreads each subscription's sweeps so their reads fit a
share of its ARM read budget: when the declared intervals cannot fit, every interval of that
subscription is stretched by the same factor, reported per resource and per subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import heapq
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from secureml_operator import metrics
from secureml_operator.azure import budget

log = logging.getLogger(__name__)

SWEEP_SHARE = 0.5  # of a subscription's read rate for routine sweeps: the rest for reconciles and other tools
# A stretch is the first of these preferred numbers (ISO 3's rounded R10 series, a decade further on
# again) that fits, so it changes by a quarter at least: each change is a status patch on every resource
# of the subscription, and 0.1 steps patched them all at almost every sweep while the stretch climbed.
STRETCHES = (1.0, 1.25, 1.6, 2.0, 2.5, 3.2, 4.0, 5.0, 6.3, 8.0)
# A stretch grows as soon as the sweeps need it, and shrinks only once a smaller one would still leave
# them this fraction to spare: a sweep's reads vary with who read a shared target first in its window.
STRETCH_HYSTERESIS = 0.15
READS_SMOOTHING = 0.3  # weight of a sweep's reads in the resource's running estimate
JITTER = 0.05  # the next sweep comes up to this fraction of the interval early: sweeps do not fall in step
# A sweep yields ARM's budget to reconciles until it is this fraction of its interval late; past that it
# goes ahead of them. While a thousand resources were applied, reconciles took the whole budget, sweeps
# due meanwhile waited for it up to 380 s and the resources they were for went unchecked past their
# interval + 10 % (16 of 1000).
ROUTINE_LATENESS = 0.05
SWEEP_WORKERS = 32  # sweeps at once; they wait on ARM far more than on the CPU

Key = tuple[str, str]  # namespace, name


class Outcome(enum.Enum):
    CHECKED = "checked"  # compared with Azure: the next sweep one (effective) interval later
    SKIPPED = "skipped"  # not sweepable now (its spec awaits a reconcile, or it is stalled): look again later
    GONE = "gone"  # deleted: forgotten
    RETRY = "retry"  # a transient failure: again after the resource's backoff


@dataclass(frozen=True)
class SweepResult:
    outcome: Outcome
    retry_after: float = 0.0


Sweep = Callable[[str, str, float], Awaitable[SweepResult]]  # namespace, name, effective interval
# Seconds until the read budgets of these subscriptions have room for a routine sweep (0: now)
RoutineWait = Callable[[Iterable[str]], float]


@dataclass
class Tracked:
    key: Key
    interval: float  # declared (spec.drift.interval, or the operator's default), seconds
    due: float = 0.0  # time.monotonic() it is next looked at
    owed: float | None = None  # when its sweep was due, while its start is put off for ARM's budget
    reads: dict[str, float] = field(default_factory=dict)  # per sweep, by subscription: a running estimate
    counted: bool = False  # a sweep counted `reads`; until then they are what its reconcile expected
    checked_at: float = 0.0  # time.monotonic() its last completed sweep started; 0: none yet
    # A reconcile is queued for it: no sweep until that reconcile says what one would read (`expect`).
    # Swept meanwhile, a resource applied with a thousand others was read from the API server at every
    # declared interval, skipped each time, until its turn came.
    waiting: bool = False

    def learn(self, reads: Counter[str]) -> None:
        """Fold one sweep's reads into the estimate (its first sweep sets it)."""
        if not self.counted:
            self.reads = {subscription: float(count) for subscription, count in reads.items()}
            self.counted = True
            return
        self.reads = {
            subscription: known + READS_SMOOTHING * (reads.get(subscription, 0) - known)
            for subscription in {*self.reads, *reads}
            if (known := self.reads.get(subscription, 0.0)) or reads.get(subscription)
        }


def fitting(need: float) -> float:
    """The smallest stretch of the series (`STRETCHES`, then by decades) that is at least `need`."""
    decade = 1.0
    while True:
        for stretch in STRETCHES:
            if stretch * decade >= need - 1e-9:
                return round(stretch * decade, 6)
        decade *= 10


class Pacing:
    """Per subscription, the read rate the declared sweeps need (reads per sweep / interval, summed)
    against the share of the budget sweeps may take; the stretch that makes them fit."""

    def __init__(self, reads_per_second: float, share: float = SWEEP_SHARE) -> None:
        self.allowed = reads_per_second * share
        self.demand: dict[str, float] = {}
        self._stretch: dict[str, float] = {}
        self._warned: set[str] = set()
        self.on_change: Callable[[str], None] = lambda _subscription: None  # a subscription's stretch changed

    def add(self, tracked: Tracked, sign: int = 1) -> None:
        for subscription, reads in tracked.reads.items():
            self.demand[subscription] = self.demand.get(subscription, 0.0) + sign * reads / tracked.interval

    @contextlib.contextmanager
    def revising(self, tracked: Tracked) -> Iterator[None]:
        """A tracked resource's interval or reads changed in the block: its demand is taken out
        before and put back after, and only then are the stretches settled (never in between)."""
        before = set(tracked.reads)
        self.add(tracked, -1)
        yield
        self.add(tracked)
        self.settle(before | set(tracked.reads))

    def _fit(self, subscription: str) -> None:
        need = self.demand.get(subscription, 0.0) / self.allowed if self.allowed > 0 else 1.0
        current = self.stretch(subscription)
        if need > current:
            self._stretch[subscription] = fitting(need)
        elif (spare := fitting(need / (1 - STRETCH_HYSTERESIS))) < current:
            self._stretch[subscription] = spare

    def stretch(self, subscription: str) -> float:
        return self._stretch.get(subscription, 1.0)

    def effective(self, tracked: Tracked) -> float:
        """The declared interval, stretched by the most crowded subscription the resource reads in."""
        return tracked.interval * max((self.stretch(s) for s in tracked.reads), default=1.0)

    def settle(self, subscriptions: set[str]) -> None:
        """After demand changed (added and removed: not in between), each subscription's stretch, as
        a metric too; a warning the first time one is stretched."""
        for subscription in subscriptions:
            before = self.stretch(subscription)
            self._fit(subscription)
            stretch = self.stretch(subscription)
            metrics.SWEEP_STRETCH.labels(subscription).set(stretch)
            if stretch != before:
                self.on_change(subscription)
            if stretch > 1 and subscription not in self._warned:
                self._warned.add(subscription)
                log.warning(
                    "drift intervals stretched to fit the ARM read budget",
                    extra={
                        "subscription": subscription,
                        "stretch": stretch,
                        "reads_per_second_needed": round(self.demand.get(subscription, 0.0), 2),
                        "reads_per_second_for_sweeps": self.allowed,
                    },
                )
            elif stretch == 1:
                self._warned.discard(subscription)


async def cancelled(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until each has ended."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class SweepScheduler:
    """Tracks every resource a reconcile has seen; sweeps each once per effective interval."""

    def __init__(
        self, sweep: Sweep, pacing: Pacing, routine_wait: RoutineWait | None = None, workers: int = SWEEP_WORKERS
    ) -> None:
        self._sweep = sweep
        self.pacing = pacing
        self._routine_wait = routine_wait or (lambda _subscriptions: 0.0)
        pacing.on_change = self._restretched
        self._tracked: dict[Key, Tracked] = {}
        self._queue: list[tuple[float, int, Key]] = []  # (due, tiebreak, key); stale entries skipped
        self._counter = 0
        self._changed = asyncio.Event()
        self._slots = asyncio.Semaphore(workers)
        self._running: set[asyncio.Task[None]] = set()
        self._context: contextvars.Context | None = None
        self._runner: asyncio.Task[None] | None = None

    def track(self, namespace: str, name: str, interval: float, reconciling: bool = False) -> None:
        """A resource a handler saw. Its first sweep comes at a random point within one interval, so
        a thousand resources applied (or resumed) at once are swept spread out, not in one burst; when
        a reconcile of it is queued (`reconciling`), within one interval of that reconcile (`expect`).
        The context of the first caller (a kopf handler) is kept: sweeps post kopf events from it."""
        if self._context is None:
            self._context = contextvars.copy_context()
        key = (namespace, name)
        tracked = self._tracked.get(key)
        if tracked is None:
            tracked = self._tracked[key] = Tracked(key, interval, due=math.inf, waiting=reconciling)
            if not reconciling:
                self._schedule(tracked, time.monotonic() + random.uniform(0, interval))
        elif tracked.interval != interval:
            with self.pacing.revising(tracked):
                tracked.interval = interval
            if not tracked.waiting:
                self._schedule(tracked, min(tracked.due, time.monotonic() + self.pacing.effective(tracked)))
        self._publish(tracked)

    def expect(self, namespace: str, name: str, reads: Counter[str]) -> None:
        """The reads a reconcile expects each sweep of the resource to make, until a sweep counts
        them: the subscription's stretch is about right before the first sweeps, rather than found by
        them one at a time (each change of it is a status patch on every resource it stretches). A
        resource not yet swept has its first sweep moved (or, waiting for this, set) within its
        effective interval."""
        tracked = self._tracked.get((namespace, name))
        expected = {subscription: float(count) for subscription, count in reads.items()}
        if tracked is None:
            return
        known = tracked.counted or tracked.reads == expected
        if known and not tracked.waiting:
            return
        if not known:
            with self.pacing.revising(tracked):
                tracked.reads = expected
        if tracked.waiting or tracked.due != math.inf:  # not sweeping now
            tracked.waiting = False
            self._schedule(tracked, time.monotonic() + random.uniform(0, self.pacing.effective(tracked)))
        self._publish(tracked)

    def forget(self, namespace: str, name: str) -> None:
        tracked = self._tracked.pop((namespace, name), None)
        if tracked is not None:
            with self.pacing.revising(tracked):
                tracked.reads = {}  # its demand goes
        metrics.RESOURCES.forget(namespace, name)

    def effective_interval(self, namespace: str, name: str) -> float | None:
        tracked = self._tracked.get((namespace, name))
        return None if tracked is None else self.pacing.effective(tracked)

    def __len__(self) -> int:
        return len(self._tracked)

    def _schedule(self, tracked: Tracked, due: float, owed: float | None = None) -> None:
        tracked.due, tracked.owed = due, owed
        self._counter += 1
        heapq.heappush(self._queue, (due, self._counter, tracked.key))
        self._changed.set()

    def task_context(self) -> contextvars.Context:
        """The context of a task of the operator's own (a sweep, a queued reconcile): a copy of the
        first handler's that tracked a resource, for kopf's event posting. Not the caller's: a
        handler's context holds kopf's cause, with the resource's whole body, as long as the task lives."""
        return (self._context or contextvars.Context()).copy()

    def _restretched(self, subscription: str) -> None:
        """A subscription's stretch changed. A resource already swept keeps the sweep it has, on the
        interval its gauge reports, and takes the new one from that sweep on: pulled forward at once,
        every sweep a shrink left overdue came due together (a fifth of a thousand from x5 to x4), a
        burst of reads the pacing exists to prevent. A resource not swept yet has its first sweep
        spread within the new interval if it was further away, and reports that interval."""
        now = time.monotonic()
        for tracked in self._tracked.values():
            if subscription not in tracked.reads or tracked.checked_at or tracked.due == math.inf:
                continue
            effective = self.pacing.effective(tracked)
            if now + effective < tracked.due:
                self._schedule(tracked, now + random.uniform(0, effective))
            self._publish(tracked)

    def _publish(self, tracked: Tracked) -> None:
        metrics.RESOURCES.effective_interval(*tracked.key, self.pacing.effective(tracked))

    def start(self) -> None:
        self._runner = asyncio.create_task(self.run(), name="drift sweeps")

    async def stop(self) -> None:
        """No new sweeps, and the ones under way cancelled: the clients they use close next."""
        await cancelled([task for task in (self._runner, *self._running) if task is not None])

    async def run(self) -> None:
        """Forever: wait for the earliest due resource, then sweep it in a free worker. A sweep on
        time whose subscriptions' read budgets are below half waits for them, or until it is late,
        holding no worker: waiting inside its walk instead, while reconciles of many new resources keep
        the budgets low, each sweep holds a worker for 5 % of its interval, and the few workers cannot
        start the sweeps due in the meantime."""
        while True:
            tracked, due = await self._next_due()
            routine_until = due + self.pacing.effective(tracked) * ROUTINE_LATENESS
            if (wait := min(self._routine_wait(tracked.reads), routine_until - time.monotonic())) > 0:
                self._schedule(tracked, time.monotonic() + wait, owed=due)
                continue
            await self._slots.acquire()
            metrics.SWEEP_START_DELAY.observe(max(0.0, time.monotonic() - due))
            task = asyncio.create_task(self._one(tracked, routine_until), context=self.task_context())
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _next_due(self) -> tuple[Tracked, float]:
        """The earliest due resource once its time comes, and when it was due."""
        while True:
            self._changed.clear()
            while self._queue:
                due, _, key = self._queue[0]
                tracked = self._tracked.get(key)
                if tracked is None or tracked.due != due:  # forgotten, or rescheduled since
                    heapq.heappop(self._queue)
                    continue
                wait = due - time.monotonic()
                if wait <= 0:
                    heapq.heappop(self._queue)
                    tracked.due = math.inf  # running: not queued until it is rescheduled
                    return tracked, due if tracked.owed is None else tracked.owed
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
                # lands as the event is set, and stop() then waited for this loop forever
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._changed.wait()
                break
            else:
                await self._changed.wait()

    async def _one(self, tracked: Tracked, routine_until: float) -> None:
        started, reads, effective = time.monotonic(), Counter[str](), self.pacing.effective(tracked)
        try:
            # this task's own context: reconciles go ahead of it until it is late, it of them from then on
            budget.ROUTINE_UNTIL.set(routine_until)
            budget.WALK_READS.set(reads)  # ARM reads by subscription, counted by the budget policy
            result = await self._sweep(*tracked.key, effective)
        except Exception:  # the sweep reports its own failures; this is a bug, and sweeping goes on
            log.exception("drift sweep failed unexpectedly", extra={"resource": "/".join(tracked.key)})
            result = SweepResult(Outcome.RETRY, retry_after=tracked.interval)
        finally:
            self._slots.release()
        if self._tracked.get(tracked.key) is not tracked:
            return  # forgotten while it ran
        if result.outcome is Outcome.GONE:
            self.forget(*tracked.key)
            return
        if result.outcome is Outcome.CHECKED:
            tracked.checked_at = started
            with self.pacing.revising(tracked):
                tracked.learn(reads)
        if result.outcome is Outcome.RETRY:
            due = time.monotonic() + result.retry_after
        else:
            due = started + self.pacing.effective(tracked) * (1 - random.uniform(0, JITTER))
        self._schedule(tracked, max(due, time.monotonic()))
        self._publish(tracked)  # the interval its sweeps are scheduled on from here
