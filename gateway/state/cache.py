"""The response cache: answers to identical deterministic requests, for a while.

Keys are opaque (the caller hashes tenant, model and the normalized request). Two
implementations of :class:`~gateway.state.base.ResponseCache`: :class:`MemoryResponseCache`,
one process's LRU bounded in entries and bytes, and :class:`RedisResponseCache`, shared by
the replicas (``SET llmgw:cache:<key> PX ttl``). A cache is an optimization, so a Redis
outage is never an error: reads miss, writes are skipped, the outage is logged once, and
Redis is not asked again for a short pause (a blackholed Redis must not add its timeout to
every request). An error Redis answers, or a bug, is not an outage
(:mod:`gateway.backends.redis_failures`): it is raised.

Example::

    cache = MemoryResponseCache()
    await cache.put(key, body, ttl=300)
    assert await cache.get(key) == body
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from redis.asyncio import Redis

from gateway.backends.redis_failures import RETRY_REDIS_AFTER, Outage, unreachable

__all__ = ["KEY_PREFIX", "MemoryResponseCache", "RedisResponseCache"]

log = logging.getLogger("gateway.state")

KEY_PREFIX = "llmgw:cache:"


class MemoryResponseCache:
    """A bounded LRU with per-entry expiry; see the module docstring.

    Past ``max_entries`` entries or ``max_bytes`` of values, the least recently used go.
    """

    def __init__(self, *, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024,
                 clock: Callable[[], float] = time.monotonic):
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be at least 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> expiry
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        self._drop(key)
        if ttl <= 0 or len(value) > self.max_bytes:
            return
        self._entries[key] = (self._clock() + ttl, value)
        self._bytes += len(value)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= len(evicted)

    async def aclose(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[1])


class RedisResponseCache:
    """The cache in Redis, failing to a miss; see the module docstring.

    ``redis`` is the process's shared client: :meth:`aclose` leaves it open.
    """

    def __init__(self, redis: Redis, *, retry_after: float = RETRY_REDIS_AFTER,
                 clock: Callable[[], float] = time.monotonic):
        self._redis = redis
        self._outage = Outage(
            log, down="redis unreachable: the response cache misses until it is back",
            back="redis reachable again: the response cache is back",
            retry_after=retry_after, clock=clock)

    @property
    def degraded(self) -> bool:
        """Redis failed and has not answered since."""
        return self._outage.degraded

    def __repr__(self) -> str:
        return "RedisResponseCache(url=<hidden>)"

    async def get(self, key: str) -> bytes | None:
        if not self._outage.usable():
            return None
        try:
            value = await self._redis.get(KEY_PREFIX + key)
        except Exception as exc:
            if not unreachable(exc):
                raise
            self._outage.failed(exc)
            return None
        self._outage.recovered()
        if isinstance(value, str):  # a client made with decode_responses
            return value.encode()
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        if ttl <= 0 or not self._outage.usable():
            return
        try:
            await self._redis.set(KEY_PREFIX + key, value, px=max(1, int(ttl * 1000)))
        except Exception as exc:
            if not unreachable(exc):
                raise
            self._outage.failed(exc)
            return
        self._outage.recovered()

    async def aclose(self) -> None:
        return None
