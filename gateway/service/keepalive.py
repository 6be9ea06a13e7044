"""A stream's items with keep-alives: ``ping`` each time the source stays silent for an
interval, once the first item is out (a ping never comes first).

One task pulls the source ahead into a short queue and the caller drains it, so a keep-alive
can go out while the source is waiting on its upstream. This costs about one loop wake-up
per batch of items; a task and a timed wait per item (``asyncio.wait``) cost ten times more
(docs/performance.md). The pull stops ``MAX_AHEAD`` items ahead of the caller, so a client
that does not read still holds the upstream back.

Example::

    async for event in keepalive(events, 10.0, {"type": "ping"}):
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

__all__ = ["MAX_AHEAD", "keepalive"]

T = TypeVar("T")
MAX_AHEAD = 32


class _Pump(Generic[T]):
    __slots__ = ("done", "error", "heard", "items", "queue", "room", "wake")

    def __init__(self, items: AsyncIterator[T]) -> None:
        self.items = items
        self.queue: deque[T] = deque()
        self.wake: asyncio.Future[None] | None = None  # the caller waits for items on it
        self.room: asyncio.Future[None] | None = None  # the pull waits for the caller on it
        self.done = False
        self.error: BaseException | None = None
        self.heard = False  # an item came since the last tick

    def _wake(self) -> None:
        wake = self.wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def push(self, item: T) -> None:
        self.queue.append(item)
        self._wake()

    async def pull(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for item in self.items:
                self.heard = True
                self.push(item)
                if len(self.queue) >= MAX_AHEAD:
                    self.room = loop.create_future()
                    await self.room
        except Exception as exc:  # the caller raises it, after the items before it
            self.error = exc
        finally:
            self.done = True
            self._wake()

    def tick(self, ping: T) -> None:
        if not self.heard and not self.done:
            self.push(ping)
        self.heard = False


async def keepalive(items: AsyncIterator[T], interval: float, ping: T) -> AsyncIterator[T]:
    """``items``, with ``ping`` after each ``interval`` seconds in which none came."""
    loop = asyncio.get_running_loop()
    pump = _Pump(items)
    task = loop.create_task(pump.pull())
    timer: asyncio.TimerHandle | None = None

    def tick() -> None:
        nonlocal timer
        pump.tick(ping)
        timer = loop.call_later(interval, tick)

    queue = pump.queue
    try:
        while True:
            while queue:
                item = queue.popleft()
                room = pump.room
                if room is not None and not room.done() and len(queue) < MAX_AHEAD // 2:
                    room.set_result(None)
                yield item
                if timer is None:
                    timer = loop.call_later(interval, tick)
            if pump.done:
                if pump.error is not None:
                    raise pump.error
                return
            pump.wake = loop.create_future()
            await pump.wake
    finally:
        if timer is not None:
            timer.cancel()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # the source is closed by whoever owns it, once the pull let go
