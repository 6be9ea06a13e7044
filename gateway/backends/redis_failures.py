"""What counts as Redis being unreachable: the transport's own failures, and nothing else.

Every Redis-backed part (breakers, limits, the response cache, conversations) degrades as
documented when :func:`unreachable` says so, and lets any other error through: an error reply
(a script's bug, a key of the wrong type) or a bug in the gateway is a 500, logged, never a
silent fail-open.

:class:`Outage` is the window each part keeps after a failure: it stops asking Redis for a
short while, and says once in the log that it has fallen back and once that Redis is back.

Example::

    outage = Outage(log, down="redis unreachable: X falls back", back="redis back: X")
    if outage.usable():
        try:
            reply = await pipe.call(command)
        except Exception as exc:
            if not unreachable(exc):
                raise
            outage.failed(exc)
        else:
            outage.recovered()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["RETRY_REDIS_AFTER", "TRANSPORT_ERRORS", "Outage", "unreachable"]

RETRY_REDIS_AFTER = 2.0  # seconds a part leaves Redis alone after a transport failure

TRANSPORT_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
"""redis-py's connection errors (refused, closed, a server still loading, the pipe's own) and
timeouts, and socket errors that reach us unwrapped (asyncio's ``TimeoutError`` is one)."""

# uvloop's words for a write on a transport that closed under redis-py, which redis-py lets
# through as a bare RuntimeError when Redis goes away between its connect and the health
# check it writes right after (tests/integration/test_redis_transport_closed.py).
_CLOSED_TRANSPORT = "; the handler is closed"


def unreachable(exc: BaseException) -> bool:
    """True when ``exc`` says Redis could not be reached; False for an error reply or a bug."""
    return isinstance(exc, TRANSPORT_ERRORS) or (
        type(exc) is RuntimeError and str(exc).endswith(_CLOSED_TRANSPORT))


class Outage:
    """Whether a Redis-backed part should ask Redis now. After :meth:`failed` it should not
    for ``retry_after`` seconds; ``degraded`` stays true from a failure until Redis answers
    again (:meth:`recovered`), which readiness reports."""

    def __init__(self, log: logging.Logger, *, down: str, back: str,
                 retry_after: float = RETRY_REDIS_AFTER,
                 clock: Callable[[], float] = time.monotonic):
        self._log = log
        self._down, self._back = down, back
        self._retry_after = retry_after
        self._clock = clock
        self._until = 0.0
        self.degraded = False

    def usable(self) -> bool:
        return self._clock() >= self._until

    def failed(self, exc: BaseException) -> None:
        self._until = self._clock() + self._retry_after
        if not self.degraded:
            self.degraded = True
            self._log.warning(self._down, extra={"fields": {"error": type(exc).__name__}})

    def recovered(self) -> None:
        if self.degraded:
            self.degraded = False
            self._log.info(self._back)
