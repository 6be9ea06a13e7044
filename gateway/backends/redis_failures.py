"""What counts as Redis being unreachable: the transport's own failures, and nothing else.

Every Redis-backed part (breakers, limits, the response cache, conversations) degrades as
documented when :func:`unreachable` says so, and lets any other error through: an error reply
(a script's bug, a key of the wrong type) or a bug in the gateway is a 500, logged, never a
silent fail-open.

Example::

    try:
        reply = await pipe.call(command)
    except Exception as exc:
        if not unreachable(exc):
            raise
        return fail_open(exc)
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["TRANSPORT_ERRORS", "unreachable"]

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
