"""The ARM request budget: what reaches ARM never outruns the bucket, routine sweeps yield to
reconciles, and a walk's reads are counted. Through `ArmBudgetPolicy` itself, with the SDK pipeline's
next step played by a small ARM whose connection pool and answers take time."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from azure.core.pipeline import PipelineContext, PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy
from azure.core.rest import HttpRequest

from secureml_operator.azure.budget import (
    IN_FLIGHT,
    ROUTINE_UNTIL,
    WALK_READS,
    ArmBudgetPolicy,
    BudgetRegistry,
    BudgetSettings,
    SubscriptionBudget,
    TokenBucket,
)

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
HUB = "11111111-1111-1111-1111-111111111111"


@dataclass
class Answer:
    status_code: int = 200


class SlowArm(AsyncHTTPPolicy):  # type: ignore[type-arg]
    """ARM behind a pool of IN_FLIGHT connections: notes when each request reaches it (it has a
    connection), whether it had to wait for one, and answers after `seconds`, or not before `until`
    (a stall: every request out is answered at that moment)."""

    def __init__(self, seconds: float = 0.0, until: float = 0.0) -> None:
        super().__init__()
        self.seconds, self.until = seconds, until
        self.pool = asyncio.Semaphore(IN_FLIGHT)
        self.arrivals: list[float] = []
        self.pool_waits = 0
        self.paths: list[str] = []

    async def send(self, request: PipelineRequest) -> PipelineResponse:  # type: ignore[type-arg]
        self.pool_waits += self.pool.locked()
        async with self.pool:
            self.arrivals.append(time.monotonic())
            self.paths.append(request.http_request.url)
            await asyncio.sleep(max(self.seconds, self.until - time.monotonic()))
        return PipelineResponse(request.http_request, Answer(), request.context)  # type: ignore[arg-type]


def _policy(settings: BudgetSettings, arm: SlowArm, subscription: str = SUBSCRIPTION) -> ArmBudgetPolicy:
    policy = ArmBudgetPolicy(SubscriptionBudget(settings, subscription))
    policy.next = arm
    return policy


async def _send(policy: ArmBudgetPolicy, method: str = "GET", name: str = "vnet") -> None:
    url = (
        f"https://management.test/subscriptions/{policy.budget.subscription}/resourceGroups/rg"
        f"/providers/Microsoft.Network/virtualNetworks/{name}?api-version=2024-05-01"
    )
    await policy.send(PipelineRequest(HttpRequest(method, url), PipelineContext(None)))


def _most_in_any_window(arrivals: Sequence[float], burst: float, rate: float) -> float:
    """The largest excess, over every window between two arrivals, of the arrivals in it over what
    the bucket allows in it (burst + rate x its length): at most 0 when ARM never sees more."""
    ordered = sorted(arrivals)
    return max(
        (j - i + 1) - (burst + rate * (ordered[j] - ordered[i]))
        for i in range(len(ordered))
        for j in range(i, len(ordered))
    )


async def test_arm_sees_no_more_than_the_bucket_grants_even_when_answers_stall() -> None:
    """The measured 429s: tokens taken while requests waited for a connection, so requests granted
    over seconds reached ARM together once connections freed. Here ARM stalls for a second and then
    answers everything out at once; the requests it then lets through still arrive at the bucket's
    pace, because none holds a token before it holds a place in flight."""
    burst, rate = 10, 100.0
    arm = SlowArm(seconds=0.005, until=time.monotonic() + 1.0)
    policy = _policy(BudgetSettings(reads_burst=burst, reads_per_second=rate), arm)
    await asyncio.gather(*(_send(policy, name=f"vnet-{n}") for n in range(120)))
    assert len(arm.arrivals) == 120
    assert arm.pool_waits == 0, "no request with a token waited for a connection"
    # one token of slack: the bucket and this check read the clock at slightly different moments
    assert _most_in_any_window(arm.arrivals, burst, rate) <= 1
    assert policy.budget.calls[("GET", "Microsoft.Network/virtualNetworks")] == 120, "counted as before"


async def test_a_request_holds_its_place_in_flight_until_its_answer() -> None:
    arm = SlowArm(seconds=0.5)
    policy = _policy(BudgetSettings(reads_burst=1000, reads_per_second=1000), arm)
    sending = asyncio.gather(*(_send(policy, name=f"vnet-{n}") for n in range(IN_FLIGHT + 8)))
    await asyncio.sleep(0.1)
    assert len(arm.arrivals) == IN_FLIGHT, "the rest wait for a place, without a token"
    assert policy.budget.reads.tokens >= 1000 - IN_FLIGHT - 1
    await sending
    assert len(arm.arrivals) == IN_FLIGHT + 8 and arm.pool_waits == 0


async def test_take_with_a_reserve_leaves_it_in_the_bucket() -> None:
    bucket = TokenBucket(10, 1)
    for _ in range(5):
        await asyncio.wait_for(bucket.take(reserve=5), 1)
    assert 5 <= bucket.tokens < 5.5
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(bucket.take(reserve=5), 0.1)
    await asyncio.wait_for(bucket.take(), 1)  # without a reserve, the tokens are there
    tiny = TokenBucket(1, 1)  # a reserve is capped at capacity - 1, or a token could never come
    await asyncio.wait_for(tiny.take(reserve=tiny.capacity / 2), 1)


async def test_routine_requests_leave_half_the_bucket_and_places_to_reconciles() -> None:
    """Routine sweeps stop at half the bucket, and while they wait for it they hold at most half
    the places in flight: reconciles of new and changed resources find both tokens and places."""
    arm = SlowArm()
    policy = _policy(BudgetSettings(reads_burst=10, reads_per_second=0.1), arm)

    async def sweep() -> None:
        ROUTINE_UNTIL.set(time.monotonic() + 60)  # in this task's context only
        await asyncio.gather(*(_send(policy, name=f"routine-{n}") for n in range(40)))

    routine = asyncio.create_task(sweep())
    await asyncio.sleep(0.1)
    assert len(arm.arrivals) == 5, "routine reads take tokens only while more than half the bucket remains"
    await asyncio.wait_for(asyncio.gather(*(_send(policy, name=f"reconcile-{n}") for n in range(5))), 1)
    assert [path.split("/")[-1].split("?")[0] for path in arm.paths[5:]] == [f"reconcile-{n}" for n in range(5)]
    assert policy.budget.reads.tokens < 1, "the reconciles had the other half"
    assert not routine.done(), "the routine reads still wait for their reserve"
    routine.cancel()
    with pytest.raises(asyncio.CancelledError):
        await routine


async def test_a_sweep_past_its_routine_time_takes_the_whole_bucket() -> None:
    """An overdue sweep (ROUTINE_UNTIL passed) queues with the reconciles: no half kept back."""
    arm = SlowArm()
    policy = _policy(BudgetSettings(reads_burst=10, reads_per_second=0.1), arm)

    async def late_sweep() -> None:
        ROUTINE_UNTIL.set(time.monotonic() - 1)  # in this task's context only
        await asyncio.gather(*(_send(policy, name=f"late-{n}") for n in range(10)))

    await asyncio.wait_for(late_sweep(), 1)
    assert len(arm.arrivals) == 10


async def test_an_overdue_sweep_goes_ahead_of_the_reconciles_queued_before_it() -> None:
    """Reconciles hold every place and drain the bucket; a sweep past its routine time sends its
    requests next, not after theirs (the pacing keeps the sweeps within half the rate)."""
    arm = SlowArm()
    policy = _policy(BudgetSettings(reads_burst=1, reads_per_second=50), arm)
    reconciles = asyncio.gather(*(_send(policy, name=f"reconcile-{n}") for n in range(IN_FLIGHT + 20)))
    await asyncio.sleep(0.1)
    queued = len(arm.paths)

    async def overdue_sweep() -> None:
        ROUTINE_UNTIL.set(time.monotonic() - 1)  # in this task's context only
        await asyncio.gather(*(_send(policy, name=f"overdue-{n}") for n in range(5)))

    await asyncio.wait_for(overdue_sweep(), 2)
    after = [path.split("/")[-1].split("?")[0] for path in arm.paths[queued:]]
    assert IN_FLIGHT + 20 - queued > 20, "most reconciles were still waiting"
    assert after.index("overdue-4") <= 6, after  # at most one reconcile in between (the one already taking)
    await reconciles


def test_a_routine_sweep_may_start_once_each_of_its_read_buckets_is_over_half() -> None:
    registry = BudgetRegistry(BudgetSettings(reads_burst=100, reads_per_second=10))
    assert registry.routine_wait([SUBSCRIPTION, HUB]) == 0
    registry.for_subscription(HUB).reads.tokens = 30  # 21 missing for 51
    assert registry.routine_wait([SUBSCRIPTION, HUB.upper()]) == pytest.approx(2.1, abs=0.01)
    assert registry.routine_wait([SUBSCRIPTION]) == 0
    assert registry.routine_wait([]) == 0


async def test_a_walk_counts_its_read_attempts_per_subscription() -> None:
    arm = SlowArm()
    settings = BudgetSettings()
    home, hub = _policy(settings, arm, SUBSCRIPTION), _policy(settings, arm, HUB)

    async def walk(reads: Sequence[tuple[ArmBudgetPolicy, str]]) -> Counter[str]:
        counted: Counter[str] = Counter()
        WALK_READS.set(counted)
        for policy, method in reads:
            await _send(policy, method)
        return counted

    first, second = await asyncio.gather(
        walk([(home, "GET"), (home, "HEAD"), (home, "PUT"), (hub, "GET"), (home, "DELETE")]),
        walk([(hub, "GET"), (hub, "GET"), (hub, "PATCH")]),
    )
    assert first == {SUBSCRIPTION: 2, HUB: 1}, "GET and HEAD count, writes do not"
    assert second == {HUB: 2}, "each walk counts only its own reads"
    await _send(home)  # outside any walk: counted on the budget only
    assert WALK_READS.get() is None
    assert home.budget.calls[("GET", "Microsoft.Network/virtualNetworks")] == 2
    assert home.budget.calls[("HEAD", "Microsoft.Network/virtualNetworks")] == 1
