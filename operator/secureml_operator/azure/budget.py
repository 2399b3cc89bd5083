"""The ARM request budget: a per-subscription token bucket below ARM's own limits, and counting.

ARM throttles per subscription (reads 250 burst / 25 per s, writes and deletes 200 / 10 per s).
Every HTTP attempt an SDK client makes passes through `ArmBudgetPolicy`, which waits for a token
before sending and counts the call, so the operator slows itself down instead of being throttled,
and the cost of a reconcile is visible.

ARM counts requests as they arrive, so a token is taken only when its request can go out at once:
each request first holds one of a bounded number of places in flight, and the HTTP pool never
makes one wait (arm.py). Drift sweeps on time (`ROUTINE_UNTIL`) leave half of each bucket to reconciles;
overdue ones go ahead of them (the pacing keeps the sweeps within half of the bucket's rate).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy

from secureml_operator.metrics import ARM_CALLS, ARM_CALLS_BY_SUBSCRIPTION, ARM_THROTTLED
from secureml_operator.turns import Turns

READ_METHODS = frozenset({"GET", "HEAD"})
# Requests of one bucket (a subscription's reads, or its writes) in flight at once. A request holds
# its place from before its token until its answer, so it never waits for a connection holding a
# token: requests granted over seconds then reached ARM together, as 429s, though the bucket was below
# ARM's. 32 keeps 20 reads a second flowing with answers up to 1.5 s, and sends a burst in a few round
# trips. What can still hold granted requests back (a token refresh in the SDK's authentication
# policy, which runs after this one) adds at most 32 to a burst: less than ARM's limits exceed the
# default budget by (50 reads, 40 writes). A subscription holds at most 2 x 32 connections (the HTTP
# pool has no limit of its own: one below this bound would make granted requests wait again).
IN_FLIGHT = 32
# Until this time.monotonic(), a drift sweep's requests are routine: they take a token only while
# more than half of the bucket remains, so reconciles of new and changed resources always find tokens.
# Set by the sweep scheduler to a little after the sweep was due; from then on the sweep is overdue
# and its requests go ahead of the reconciles' for places and tokens: queued with them, its walk
# would take as long as the reconciles keep the queue (a thousand resources applied at once). 0: not
# a sweep.
ROUTINE_UNTIL: ContextVar[float] = ContextVar("ROUTINE_UNTIL", default=0.0)
ROUTINE_RESERVE = 0.5  # of each bucket, left by routine requests
# Set by the sweep scheduler to a fresh Counter per sweep: every read attempt made in that context
# (retries and operation polls included) adds 1 under its lower-cased subscription, for pacing.
WALK_READS: ContextVar[Counter[str] | None] = ContextVar("WALK_READS", default=None)


@dataclass(frozen=True)
class BudgetSettings:
    """Default sizes leave 20% of ARM's budget to other clients of the subscription."""

    reads_burst: float = 200
    reads_per_second: float = 20
    writes_burst: float = 160
    writes_per_second: float = 8


class TokenBucket:
    """Tokens refill at `per_second` up to `burst`; each request takes one (`sending`)."""

    def __init__(self, burst: float, per_second: float) -> None:
        self.capacity = burst
        self.rate = per_second
        self.tokens = burst
        self.updated = time.monotonic()
        # Takers wait in turn, the first one asleep holding the lock; takers with a reserve, and
        # overdue ones, queue apart, so one waiting for its reserve never holds up the others.
        self.lock = asyncio.Lock()
        self.reserving = asyncio.Lock()
        self.overdue = asyncio.Lock()
        self.overdue_waiting = 0  # every other taker leaves them a token each
        self.places = Turns(IN_FLIGHT)  # an overdue sweep's requests first
        # Requests with a reserve hold at most half the places while they wait for it, so the
        # others always find places too.
        self.reserved_places = asyncio.Semaphore(IN_FLIGHT // 2)

    async def take(self, reserve: float = 0, overdue: bool = False) -> None:
        """Take one token once the bucket holds `reserve` more than that one (routine requests yield
        to the rest) and, unless `overdue`, one more for each overdue taker waiting (they go first).
        A reserve is capped at the capacity less one, so a token can always come."""
        reserve = min(reserve, self.capacity - 1)
        self.overdue_waiting += overdue
        try:
            async with self.overdue if overdue else self.reserving if reserve > 0 else self.lock:
                while True:
                    missing = self._take(reserve if overdue else reserve + self.overdue_waiting)
                    if not missing:
                        return
                    await asyncio.sleep(missing / self.rate)
        finally:
            self.overdue_waiting -= overdue

    def refilled_in(self, reserve: float) -> float:
        """Seconds until the bucket holds `reserve` more than one token (0: it does now)."""
        return max(0.0, self._missing(reserve)) / self.rate

    def _missing(self, reserve: float) -> float:
        """Refill; the tokens missing for one more than `reserve` (0 or less: none)."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return reserve + 1 - self.tokens

    def _take(self, reserve: float) -> float:
        """Take a token if that leaves `reserve` and return 0, else the tokens still missing."""
        missing = self._missing(reserve)
        if missing > 0:
            return missing
        self.tokens -= 1
        return 0

    @contextlib.asynccontextmanager
    async def sending(self, reserve: float = 0, overdue: bool = False) -> AsyncIterator[None]:
        """A place in flight, then a token (`take`): held until the response is in."""
        async with contextlib.AsyncExitStack() as held:
            if reserve > 0:
                await held.enter_async_context(self.reserved_places)
            await held.enter_async_context(self.places.held(first=overdue))
            await self.take(reserve, overdue)
            yield


@dataclass
class SubscriptionBudget:
    settings: BudgetSettings
    subscription: str = ""  # lower-cased: the metrics' label
    reads: TokenBucket = field(init=False)
    writes: TokenBucket = field(init=False)
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.reads = TokenBucket(self.settings.reads_burst, self.settings.reads_per_second)
        self.writes = TokenBucket(self.settings.writes_burst, self.settings.writes_per_second)


def resource_type_of(path: str) -> str:
    """`Microsoft.Network/routeTables/routes` for a request path: names dropped, a trailing action kept."""
    segments = [segment for segment in path.split("?")[0].split("/") if segment]
    lowered = [segment.lower() for segment in segments]
    if "providers" not in lowered:
        return "Microsoft.Resources/resourceGroups" if "resourcegroups" in lowered else "other"
    after = segments[lowered.index("providers") + 1 :]
    return "/".join([after[0], *after[1::2]]) if after else "other"


class ArmBudgetPolicy(AsyncHTTPPolicy):  # type: ignore[type-arg]
    """Placed after the SDK's retry policy: each attempt takes a place in flight and a token (with
    half the bucket in reserve while `ROUTINE_UNTIL`, ahead of the others after it), and is counted
    (on `WALK_READS` too, for reads)."""

    def __init__(self, budget: SubscriptionBudget) -> None:
        super().__init__()
        self.budget = budget

    async def send(self, request: PipelineRequest) -> PipelineResponse:  # type: ignore[type-arg]
        http_request = request.http_request
        method = http_request.method.upper()
        read = method in READ_METHODS
        bucket = self.budget.reads if read else self.budget.writes
        routine_until = ROUTINE_UNTIL.get()
        routine = time.monotonic() < routine_until
        reserve = bucket.capacity * ROUTINE_RESERVE if routine else 0
        async with bucket.sending(reserve, overdue=routine_until > 0 and not routine):
            walk = WALK_READS.get()
            if read and walk is not None:
                walk[self.budget.subscription] += 1
            response: PipelineResponse = await self.next.send(request)  # type: ignore[type-arg]
        resource_type = resource_type_of(http_request.url.split("://", 1)[-1].partition("/")[2])
        status = response.http_response.status_code
        self.budget.calls[(method, resource_type)] += 1
        ARM_CALLS.labels(method, resource_type, str(status)).inc()
        ARM_CALLS_BY_SUBSCRIPTION.labels(self.budget.subscription, str(status)).inc()
        if status == 429:
            ARM_THROTTLED.labels(method, resource_type).inc()
        return response


class BudgetRegistry:
    """One budget per subscription, shared by every client and custom resource that uses it."""

    def __init__(self, settings: BudgetSettings | None = None) -> None:
        self.settings = settings or BudgetSettings()
        self._budgets: dict[str, SubscriptionBudget] = {}

    def for_subscription(self, subscription_id: str) -> SubscriptionBudget:
        key = subscription_id.lower()
        if key not in self._budgets:
            self._budgets[key] = SubscriptionBudget(self.settings, key)
        return self._budgets[key]

    def routine_wait(self, subscriptions: Iterable[str]) -> float:
        """Seconds until each of these subscriptions' read buckets holds more than half: a sweep on
        time waits that long to start (0: it may start now)."""
        buckets = [self.for_subscription(subscription).reads for subscription in subscriptions]
        return max((bucket.refilled_in(bucket.capacity * ROUTINE_RESERVE) for bucket in buckets), default=0.0)
