"""Process lifecycle state shared by the facade and the core: draining, in-flight work.

Example::

    drain = DrainState()
    drain.in_flight.enter(); ...; drain.in_flight.exit()
    await drain.in_flight.wait_idle(timeout=15)
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

__all__ = ["DrainState", "InFlight"]


class InFlight:
    """Counts requests being served, so shutdown can wait for them."""

    __slots__ = ("_idle", "count")

    def __init__(self) -> None:
        self.count = 0
        self._idle: asyncio.Event | None = None  # made lazily, on the serving loop

    def _event(self) -> asyncio.Event:
        if self._idle is None:
            self._idle = asyncio.Event()
            if self.count == 0:
                self._idle.set()
        return self._idle

    def enter(self) -> None:
        self.count += 1
        if self._idle is not None:
            self._idle.clear()

    def exit(self) -> None:
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """True when nothing is in flight, False when ``timeout`` passed first."""
        event = self._event()
        if self.count == 0:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return self.count == 0


@dataclass(slots=True)
class DrainState:
    """``draining`` turns true on SIGTERM; readiness reads it."""

    draining: bool = False
    in_flight: InFlight = field(default_factory=InFlight)
