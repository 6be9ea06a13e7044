"""Failed authentication, limited per client address.

A client address whose credentials failed ``limit`` times within ``window`` seconds is
refused (429, ``Retry-After`` until the window ends) before its next credential is looked
at: guessing keys costs the guesser, not the key store. Per replica, in memory, bounded
(past ``MAX_ADDRESSES`` the table starts again). Clients behind one NAT share an address:
the limit is generous for that reason (docs/reliability.md).

Example::

    limiter = FailedAuthLimiter(limit=30, window=60)
    limiter.check("203.0.113.9")   # raises RateLimitedError once it failed 30 times
    limiter.failed("203.0.113.9")
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.errors import RateLimitedError

__all__ = ["MAX_ADDRESSES", "FailedAuthLimiter"]

MAX_ADDRESSES = 10_000


class FailedAuthLimiter:
    def __init__(self, *, limit: int = 30, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, tuple[float, int]] = {}  # address -> (window start, count)

    def check(self, address: str) -> None:
        """Refuse ``address`` while it is over the limit (never, with a limit of 0)."""
        if not self.limit:
            return
        entry = self._failures.get(address)
        if entry is None or entry[1] < self.limit:
            return
        left = entry[0] + self.window - self._clock()
        if left <= 0:
            del self._failures[address]
            return
        raise RateLimitedError(
            "too many failed authentication attempts from this address; retry after "
            f"{left:.0f}s", retry_after=left, scope="failed_auth")

    def failed(self, address: str) -> None:
        now = self._clock()
        start, count = self._failures.get(address, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        if len(self._failures) >= MAX_ADDRESSES and address not in self._failures:
            self._failures.clear()
        self._failures[address] = (start, count + 1)
