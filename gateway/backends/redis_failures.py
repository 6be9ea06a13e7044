"""What a call on a Redis client raises when Redis cannot be reached.

Every Redis-backed part (breakers, limits, the response cache, conversations) catches
exactly this and degrades as documented instead of failing the request:

- ``RedisError``: redis-py's own errors (connection, timeout, a server still loading);
- ``OSError``: socket errors that reach us unwrapped (``TimeoutError`` is one);
- ``RuntimeError``: uvloop's "unable to perform operation on <TCPTransport closed=True>",
  which redis-py lets through when Redis goes away between its connect and the health
  check it writes right after (a CI run of tests/reliability/test_faults.py saw it turn
  one chat request into a 500 while Redis was stopping;
  tests/integration/test_redis_transport_closed.py holds the rule).
"""

from __future__ import annotations

from redis.exceptions import RedisError

__all__ = ["UNREACHABLE"]

UNREACHABLE: tuple[type[Exception], ...] = (RedisError, OSError, RuntimeError)
