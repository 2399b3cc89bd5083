"""The ARM request budget: a per-subscription token bucket below ARM's own limits, and counting.

ARM throttles per subscription (reads 250 burst / 25 per s, writes and deletes 200 / 10 per s).
Every HTTP attempt an SDK client makes passes through `ArmBudgetPolicy`, which waits for a token
before sending and counts the call, so the operator slows itself down instead of being throttled,
and the cost of a reconcile is visible.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy

from secureml_operator.metrics import ARM_CALLS, ARM_CALLS_BY_SUBSCRIPTION, ARM_THROTTLED

READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class BudgetSettings:
    """Default sizes leave 20% of ARM's budget to other clients of the subscription."""

    reads_burst: float = 200
    reads_per_second: float = 20
    writes_burst: float = 160
    writes_per_second: float = 8


class TokenBucket:
    def __init__(self, burst: float, per_second: float) -> None:
        self.capacity = burst
        self.rate = per_second
        self.tokens = burst
        self.updated = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


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
    """Placed after the SDK's retry policy: each attempt takes a token and is counted."""

    def __init__(self, budget: SubscriptionBudget) -> None:
        super().__init__()
        self.budget = budget

    async def send(self, request: PipelineRequest) -> PipelineResponse:  # type: ignore[type-arg]
        http_request = request.http_request
        method = http_request.method.upper()
        bucket = self.budget.reads if method in READ_METHODS else self.budget.writes
        await bucket.take()
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
