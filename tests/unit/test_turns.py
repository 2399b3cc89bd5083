"""Turns: a semaphore whose waiters marked first go before the others, and whose turns are never lost
to a waiter cancelled as its turn came."""

from __future__ import annotations

import asyncio

from secureml_operator.turns import Turns


async def _take(turns: Turns, name: str, first: bool, order: list[str], release: asyncio.Event) -> None:
    async with turns.held(first=first):
        order.append(name)
        await release.wait()


async def test_waiters_marked_first_go_before_the_others_each_in_arrival_order() -> None:
    turns, order, release = Turns(1), list[str](), asyncio.Event()
    holder = asyncio.create_task(_take(turns, "holder", False, order, release))
    await asyncio.sleep(0)
    waiters = [
        asyncio.create_task(_take(turns, name, first, order, release))
        for name, first in [("late-1", False), ("first-1", True), ("late-2", False), ("first-2", True)]
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(holder, *waiters)
    assert order == ["holder", "first-1", "first-2", "late-1", "late-2"]
    assert turns.free == 1


async def test_a_cancelled_waiter_takes_no_turn_and_one_cancelled_as_its_turn_came_passes_it_on() -> None:
    turns, order, release = Turns(1), list[str](), asyncio.Event()
    waiters: dict[str, asyncio.Task[None]] = {}

    async def hold_then_cancel_the_next() -> None:
        await _take(turns, "holder", False, order, release)
        waiters["handed"].cancel()  # its turn was just handed over: cancelled before it runs

    holder = asyncio.create_task(hold_then_cancel_the_next())
    await asyncio.sleep(0)
    for name in ("gone", "handed", "last"):
        waiters[name] = asyncio.create_task(_take(turns, name, False, order, release))
    await asyncio.sleep(0)
    waiters["gone"].cancel()  # while it waits
    release.set()
    await asyncio.wait_for(asyncio.gather(holder, *waiters.values(), return_exceptions=True), 1)
    assert order == ["holder", "last"]
    assert turns.free == 1, "no turn lost"
