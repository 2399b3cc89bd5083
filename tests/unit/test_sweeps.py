"""The drift sweep scheduler: each resource swept once per (effective) interval from the start of
its last sweep, never twice at once, a bounded pool, the first sweeps spread over one interval, and
per subscription the intervals stretched so that the sweeps' reads fit their share of the budget."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections import Counter
from collections.abc import Iterable

import kopf
import pytest
from prometheus_client import REGISTRY

from secureml_operator.azure import budget
from secureml_operator.reconciler import settled, sweepable
from secureml_operator.sweeps import Outcome, Pacing, SweepResult, SweepScheduler, Tracked

SUB_A, SUB_B = "sub-a", "sub-b"


def _tracked(name: str, interval: float, **reads: int) -> Tracked:
    """A resource whose sweeps counted `reads`."""
    counted = {subscription: float(count) for subscription, count in reads.items()}
    return Tracked(("ns", name), interval, reads=counted, counted=True)


def test_intervals_stretch_only_where_the_declared_sweeps_need_more_than_their_share() -> None:
    pacing = Pacing(reads_per_second=20)  # half for sweeps: 10 reads/s
    for index in range(100):  # 100 x 8 reads a minute in A: 13.3 reads/s
        pacing.add(_tracked(f"a{index}", 60, **{SUB_A: 8}))
    pacing.add(_tracked("b", 60, **{SUB_B: 8}))
    pacing.settle({SUB_A, SUB_B})
    assert pacing.stretch(SUB_A) == pytest.approx(1.6), "13.3/10, rounded up to the series' next"
    assert pacing.stretch(SUB_B) == 1.0
    assert pacing.effective(_tracked("x", 60, **{SUB_B: 3})) == 60
    assert pacing.effective(_tracked("hub", 60, **{SUB_A: 1, SUB_B: 5})) == pytest.approx(96), "its most crowded"
    for index in range(40):
        pacing.add(_tracked(f"a{index}", 60, **{SUB_A: 8}), -1)
    pacing.settle({SUB_A})
    assert pacing.stretch(SUB_A) == pytest.approx(1.0), "60 x 8 a minute fits 10/s with room: no stretch left"


def test_a_stretch_grows_at_once_and_shrinks_only_once_the_sweeps_need_clearly_less() -> None:
    pacing = Pacing(reads_per_second=20)
    reader = _tracked("r", 1.0, **{SUB_A: 15})
    pacing.add(reader)

    def swept(reads: dict[str, float]) -> float:
        pacing.add(reader, -1)
        reader.reads = reads
        pacing.add(reader)
        pacing.settle({SUB_A})
        return pacing.stretch(SUB_A)

    assert swept({SUB_A: 15}) == pytest.approx(1.6)
    learned = _tracked("l", 1.0, **{SUB_A: 15})
    learned.learn(Counter({SUB_A: 13}))  # a sweep that found a shared target already read in its window
    assert learned.reads[SUB_A] == pytest.approx(15 + 0.3 * (13 - 15))
    assert swept(learned.reads) == pytest.approx(1.6), "1.44 fits in 1.6: unchanged, no status patch"
    assert swept({SUB_A: 11}) == pytest.approx(1.6), "1.25 would leave 1.1 less than 15 % to spare: unchanged"
    assert swept({SUB_A: 10}) == pytest.approx(1.25)
    assert swept({SUB_A: 12}) == pytest.approx(1.25), "fits: unchanged"
    assert swept({SUB_A: 17}) == pytest.approx(2.0), "more: at once, to the series' next that fits"


def test_a_stretched_subscription_is_reported_as_a_metric() -> None:
    pacing = Pacing(reads_per_second=2)
    pacing.add(_tracked("a", 10, **{"sub-metric": 30}))
    pacing.settle({"sub-metric"})
    assert REGISTRY.get_sample_value("secureml_sweep_interval_stretch", {"subscription": "sub-metric"}) == 3.2


class Recorder:
    """The sweep the scheduler calls: records when each resource was swept and what ran at once."""

    def __init__(self, outcome: Outcome = Outcome.CHECKED, seconds: float = 0.0, reads: int = 0) -> None:
        self.outcome, self.seconds, self.reads = outcome, seconds, reads
        self.started: dict[str, list[float]] = {}
        self.running: set[str] = set()
        self.most_at_once = 0
        self.overlapped = False
        self.routine: list[bool] = []

    async def __call__(self, namespace: str, name: str, effective: float) -> SweepResult:
        self.overlapped |= name in self.running
        self.running.add(name)
        self.most_at_once = max(self.most_at_once, len(self.running))
        self.started.setdefault(name, []).append(time.monotonic())
        self.routine.append(time.monotonic() < budget.ROUTINE_UNTIL.get())
        walk = budget.WALK_READS.get()
        if walk is not None:
            walk[SUB_A] += self.reads
        try:
            await asyncio.sleep(self.seconds)
        finally:  # done, or cancelled
            self.running.discard(name)
        return SweepResult(self.outcome, retry_after=0.1)


async def _run(scheduler: SweepScheduler, seconds: float) -> None:
    scheduler.start()
    await asyncio.sleep(seconds)
    await scheduler.stop()


async def test_each_resource_is_swept_once_per_interval_never_twice_at_once_within_the_pool() -> None:
    sweep = Recorder(seconds=0.05)
    scheduler = SweepScheduler(sweep, Pacing(reads_per_second=1000), workers=4)
    tracked_at = time.monotonic()
    for index in range(20):
        scheduler.track("ns", f"r{index}", 0.4)
    await _run(scheduler, 1.5)

    assert set(sweep.started) == {f"r{index}" for index in range(20)}
    firsts = sorted(times[0] - tracked_at for times in sweep.started.values())
    assert firsts[-1] - firsts[0] > 0.1, "first sweeps spread over the interval, not all at once"
    gaps = [b - a for times in sweep.started.values() for a, b in itertools.pairwise(times)]
    assert gaps and min(gaps) >= 0.4 * 0.95 - 0.01, "never again before its interval (less the jitter)"
    assert not sweep.overlapped
    assert sweep.most_at_once <= 4
    assert not sweep.running, "stop() returns once the sweeps under way have ended (cancelled)"


async def test_a_sweep_that_starts_late_no_longer_yields_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three resources due at once and one worker: the first sweep is on time and routine, the next
    two start 0.3 and 0.6 s late, past 5 % of their 2 s interval, and queue with the reconciles."""
    monkeypatch.setattr(random, "uniform", lambda low, high: low)  # first sweeps due when tracked
    sweep = Recorder(seconds=0.3)
    scheduler = SweepScheduler(sweep, Pacing(reads_per_second=1000), workers=1)
    for index in range(3):
        scheduler.track("ns", f"due{index}", 2.0)
    await _run(scheduler, 0.8)

    assert sweep.routine == [True, False, False]


class ShortBudget:
    """The scheduler's `routine_wait`: SUB_A's read budget is below half until `back` (monotonic)."""

    def __init__(self, back: float) -> None:
        self.back = back

    def __call__(self, subscriptions: Iterable[str]) -> float:
        return max(0.0, self.back - time.monotonic()) if SUB_A in subscriptions else 0.0


def _due_now(scheduler: SweepScheduler, name: str, subscription: str, interval: float) -> None:
    """A resource whose reconcile expects its sweeps to read in `subscription`; first sweep due now."""
    scheduler.track("ns", name, interval, reconciling=True)
    scheduler.expect("ns", name, Counter({subscription: 1}))


async def test_a_sweep_on_time_waits_for_its_budget_holding_no_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """One worker; a sweep in a subscription whose budget is short for 0.2 s is due first, one in
    another subscription just after: the second is swept at once, the first once its budget is back,
    still on time (5 % of its 10 s interval is 0.5 s) and routine."""
    monkeypatch.setattr(random, "uniform", lambda low, high: low)
    sweep = Recorder(seconds=0.05)
    began = time.monotonic()
    scheduler = SweepScheduler(sweep, Pacing(reads_per_second=1000), ShortBudget(began + 0.2), workers=1)
    _due_now(scheduler, "short", SUB_A, 10.0)
    _due_now(scheduler, "free", SUB_B, 10.0)
    await _run(scheduler, 0.4)

    assert sweep.started["free"][0] - began < 0.1, "the worker was not held by the sweep waiting for its budget"
    assert 0.2 <= sweep.started["short"][0] - began < 0.3
    assert sweep.routine == [True, True]


async def test_a_sweep_whose_budget_stays_short_starts_once_late_and_goes_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The budget never comes back: the sweep starts 5 % of its interval late, no longer routine (its
    requests then go ahead of the reconciles'), and its start delay says how late."""
    monkeypatch.setattr(random, "uniform", lambda low, high: low)
    total = "secureml_sweep_start_delay_seconds_sum"
    before = REGISTRY.get_sample_value(total) or 0.0
    sweep = Recorder()
    began = time.monotonic()
    scheduler = SweepScheduler(sweep, Pacing(reads_per_second=1000), ShortBudget(math.inf), workers=1)
    _due_now(scheduler, "short", SUB_A, 4.0)
    await _run(scheduler, 0.4)

    assert 0.2 <= sweep.started["short"][0] - began < 0.3
    assert sweep.routine == [False]
    assert (REGISTRY.get_sample_value(total) or 0.0) - before >= 0.2, "measured from when it was due"


async def test_sweeps_waiting_for_a_worker_are_measured_late() -> None:
    """Three resources due together and one worker: the second starts a sweep later than due, the
    third two sweeps later: the delay histogram is how an operator that cannot keep up shows it."""
    count, total = "secureml_sweep_start_delay_seconds_count", "secureml_sweep_start_delay_seconds_sum"
    before = REGISTRY.get_sample_value(count) or 0.0, REGISTRY.get_sample_value(total) or 0.0
    sweep = Recorder(seconds=0.2)
    scheduler = SweepScheduler(sweep, Pacing(reads_per_second=1000), workers=1)
    for index in range(3):
        scheduler.track("ns", f"queued{index}", 0.01)  # due within 10 ms, and again every 10 ms
    await _run(scheduler, 0.5)

    started = sum(len(times) for times in sweep.started.values())
    assert started >= 2, sweep.started
    assert (REGISTRY.get_sample_value(count) or 0.0) - before[0] == started
    waited = sum(0.2 * place for place in range(started))  # 0, 0.2, 0.4 s: each waits for those before it
    assert (REGISTRY.get_sample_value(total) or 0.0) - before[1] >= waited - 0.1


async def test_a_slow_sweep_does_not_trigger_again_on_its_own_end() -> None:
    sweep = Recorder(seconds=0.3)
    scheduler = SweepScheduler(sweep, Pacing(reads_per_second=1000))
    scheduler.track("ns", "slow", 0.5)
    await _run(scheduler, 1.6)
    gaps = [b - a for a, b in zip(sweep.started["slow"], sweep.started["slow"][1:], strict=False)]
    assert gaps and min(gaps) >= 0.5 * 0.95 - 0.01, "the next from the start of the last, not from its end"


async def test_gone_resources_are_forgotten_and_failed_ones_come_back_after_their_backoff() -> None:
    gone, failing = Recorder(Outcome.GONE), Recorder(Outcome.RETRY)
    first = SweepScheduler(gone, Pacing(reads_per_second=1000))
    first.track("ns", "deleted", 0.2)
    second = SweepScheduler(failing, Pacing(reads_per_second=1000))
    second.track("ns", "flaky", 10.0)
    second._schedule(second._tracked[("ns", "flaky")], time.monotonic())  # due now, not within 10 s
    await asyncio.gather(_run(first, 0.6), _run(second, 0.45))
    assert len(gone.started["deleted"]) == 1 and len(first) == 0
    assert len(failing.started["flaky"]) >= 3, "retried after its 0.1 s backoff, not after its 10 s interval"


def _effective_gauge(name: str) -> float:
    return _effective_gauge_in("stretched", name)


def _effective_gauge_in(namespace: str, name: str) -> float:
    labels = {"resource_namespace": namespace, "resource_name": name}
    return REGISTRY.get_sample_value("secureml_drift_effective_interval_seconds", labels) or 0.0


async def test_reads_counted_during_sweeps_stretch_the_interval_and_say_so() -> None:
    sweep = Recorder(reads=30)
    scheduler = SweepScheduler(sweep, Pacing(reads_per_second=20))  # 10 reads/s for sweeps
    for index in range(4):
        scheduler.track("stretched", f"r{index}", 1.0)
    await _run(scheduler, 2.0)  # each swept once (the next is 3 s or more away): 4 x 30 reads a second
    assert scheduler.pacing.stretch(SUB_A) == pytest.approx(12.5), "12, to the series' next"
    assert scheduler.effective_interval("stretched", "r0") == pytest.approx(12.5)
    # Each resource's gauge is the interval its next sweep was scheduled with: the last one swept saw all four.
    gauges = [_effective_gauge(f"r{index}") for index in range(4)]
    assert max(gauges) == pytest.approx(12.5) and min(gauges) >= 3.0, gauges
    scheduler.forget("stretched", "r0")
    scheduler.forget("stretched", "r1")
    labels = {"resource_namespace": "stretched", "resource_name": "r0"}
    assert REGISTRY.get_sample_value("secureml_drift_effective_interval_seconds", labels) is None
    assert scheduler.pacing.stretch(SUB_A) == pytest.approx(8.0), "their reads no longer count: 6 needs 8"


async def test_a_stretch_that_shrinks_applies_from_each_resources_next_sweep_not_in_a_burst() -> None:
    sweep = Recorder(reads=30)
    scheduler = SweepScheduler(sweep, Pacing(reads_per_second=20))  # 10 reads/s for sweeps
    for index in range(4):
        scheduler.track("shrinking", f"r{index}", 1.0)
    await _run(scheduler, 2.0)  # each swept once: 4 x 30 reads a second need x12.5
    tracked = sorted(scheduler._tracked.values(), key=lambda one: one.due - one.checked_at)
    assert tracked[-1].due - tracked[-1].checked_at > 8.0, "the last one swept was scheduled 12.5 s on"
    scheduled = {kept.key: (kept.due, _effective_gauge_in("shrinking", kept.key[1])) for kept in tracked[2:]}
    for gone in tracked[:2]:
        scheduler.forget(*gone.key)
    assert scheduler.pacing.stretch(SUB_A) == pytest.approx(8.0)
    for kept in tracked[2:]:
        due, gauge = scheduled[kept.key]
        assert kept.due == due, "its sweep stays where it was: none are pulled forward together"
        assert _effective_gauge_in("shrinking", kept.key[1]) == gauge, "the interval that sweep is on"

    last = tracked[-1]
    scheduler._schedule(last, time.monotonic())  # its sweep comes
    await _run(scheduler, 0.3)
    assert last.due - last.checked_at == pytest.approx(8.0, rel=0.06), "from it on, the new interval"
    assert _effective_gauge_in("shrinking", last.key[1]) == pytest.approx(8.0)


async def test_the_reads_a_reconcile_expects_stretch_the_interval_before_any_sweep_until_one_counts() -> None:
    sweep = Recorder(reads=0)
    scheduler = SweepScheduler(sweep, Pacing(reads_per_second=20))  # 10 reads/s for sweeps
    for index in range(40):
        scheduler.track("expected", f"r{index}", 1.0)
        scheduler.expect("expected", f"r{index}", Counter({SUB_A: 1}))
    assert scheduler.pacing.stretch(SUB_A) == pytest.approx(4.0), "40 x 1 read a second, before any sweep"
    waits = [tracked.due - time.monotonic() for tracked in scheduler._tracked.values()]
    assert 1.0 < max(waits) <= 4.0, "first sweeps spread over the effective interval, not the declared 1 s"
    for other in scheduler._tracked.values():
        scheduler._schedule(other, time.monotonic() + 60)  # none swept meanwhile, however slow this machine
    tracked = scheduler._tracked[("expected", "r0")]
    scheduler._schedule(tracked, time.monotonic())  # swept now, alone
    await _run(scheduler, 0.3)
    assert tracked.reads == {SUB_A: 0.0}, "a sweep's count replaces what the reconcile expected"
    scheduler.expect("expected", "r0", Counter({SUB_A: 1}))
    assert tracked.reads == {SUB_A: 0.0}, "and a later reconcile's expectation does not undo it"
    assert scheduler.pacing.stretch(SUB_A) == pytest.approx(4.0), "3.9: within the hysteresis"


async def test_a_resource_whose_reconcile_is_queued_is_swept_only_after_that_reconcile() -> None:
    """Applied with many others, its reconcile waits its turn: sweeping it meanwhile read it at every
    interval only to skip it. Its first sweep comes within one interval of the reconcile."""
    sweep = Recorder()
    scheduler = SweepScheduler(sweep, Pacing(reads_per_second=1000))
    scheduler.track("ns", "queued", 0.1, reconciling=True)
    scheduler.track("ns", "resumed", 0.1)  # Ready before a restart: its sweeps take over at once
    await _run(scheduler, 0.4)
    assert "queued" not in sweep.started, "no sweep before its reconcile"
    assert len(sweep.started["resumed"]) >= 2

    reconciled = time.monotonic()
    scheduler.expect("ns", "queued", Counter({SUB_A: 1}))
    await _run(scheduler, 0.4)
    assert sweep.started["queued"][0] - reconciled <= 0.1 + 0.05, "within one interval of its reconcile"
    assert len(sweep.started["queued"]) >= 2, "and once per interval from then on"


def _body(generation: int, observed: int, **conditions: str) -> kopf.Body:
    listed = [{"type": kind, "status": value} for kind, value in conditions.items()]
    return kopf.Body(
        {"metadata": {"generation": generation}, "status": {"observedGeneration": observed, "conditions": listed}}
    )  # type: ignore[arg-type]


def test_after_a_restart_only_a_resource_ready_for_its_spec_is_left_to_its_sweeps() -> None:
    assert settled(_body(2, 2, Ready="True", Stalled="False"))
    assert not settled(_body(2, 2, Ready="False", Reconciling="True")), "a walk a failure cut short: walk again"
    assert sweepable(_body(2, 2, Ready="False", Reconciling="True")), "its sweeps retry it meanwhile"
    assert not settled(_body(3, 2, Ready="True")) and not sweepable(_body(3, 2, Ready="True")), "a new spec"
    assert not settled(_body(2, 2, Ready="False", Stalled="True")) and not sweepable(_body(2, 2, Stalled="True"))
