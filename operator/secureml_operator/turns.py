"""A semaphore whose waiters marked `first` get their turn before the others, each kind in the order
they came: overdue drift sweeps ahead of reconciles for ARM's budget (azure/budget.py), a reconcile
retried after its backoff ahead of the first reconciles of resources applied after it (reconciler.py)."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator


class Turns:
    def __init__(self, count: int) -> None:
        self.free = count
        self._waiting: list[tuple[bool, int, asyncio.Future[None]]] = []  # (not first, arrival, turn)
        self._arrivals = itertools.count()

    @contextlib.asynccontextmanager
    async def held(self, first: bool = False) -> AsyncIterator[None]:
        await self._acquire(first)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, first: bool) -> None:
        if self.free > 0:  # one is free only while nobody waits
            self.free -= 1
            return
        turn = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (not first, next(self._arrivals), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed its turn as it was cancelled: pass it on
                self._release()
            raise

    def _release(self) -> None:
        while self._waiting:
            turn = heapq.heappop(self._waiting)[2]
            if not turn.done():  # not cancelled while it waited
                turn.set_result(None)
                return
        self.free += 1
