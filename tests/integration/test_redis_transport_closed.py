"""Redis going away between redis-py's connect and its first write: uvloop then raises
``RuntimeError`` ("unable to perform operation on <TCPTransport closed=True>"), not a
``RedisError``. A CI run saw that escape the breaker's ``record`` and turn a chat request
into a 500 while Redis was stopping (tests/reliability/test_faults.py). Every Redis-backed
part must treat it as Redis being unreachable (gateway/backends/redis_failures.py): breakers and
limits go local or open, the cache misses, conversations answer 503.

The client is real and talks to a real redis-server until the test cuts it; from then on
each command fails exactly as uvloop fails it."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from gateway.config import CircuitBreakerConfig
from gateway.errors import UnavailableError
from gateway.resilience import Outcome
from gateway.resilience.redis_breaker import RedisBreakerGroup
from gateway.state.cache import RedisResponseCache
from gateway.state.redis_store import RedisConversationStore
from gateway.tenancy.limits.redis import RedisRateLimiter
from gateway.tenancy.models import Limits
from tests.servers import RedisServer

CLOSED = ("unable to perform operation on <TCPTransport closed=True reading=False "
          "0x55a096358990>; the handler is closed")
CONFIG = CircuitBreakerConfig(consecutive_failures=3, failure_ratio=0.5, min_requests=100,
                              interval=30, open_timeout=0.5, half_open_requests=2)  # type: ignore[arg-type]


class CuttableConnection(Connection):
    """A connection of the client's pool, cut with it: what the limiter's pipelined
    connection (gateway/backends/redis_pipe.py) writes fails the same way."""

    cut_off = False

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if CuttableConnection.cut_off:
            raise RuntimeError(CLOSED)
        await super().send_packed_command(command, check_health)


class Cuttable(Redis):
    """A real client; after :meth:`cut`, every command fails as on a closed transport."""

    cut_off = False

    def cut(self) -> None:
        self.cut_off = True
        CuttableConnection.cut_off = True

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.cut_off:
            raise RuntimeError(CLOSED)
        return await super().execute_command(*args, **options)


@pytest.fixture
async def redis(redis_server: RedisServer) -> Any:
    CuttableConnection.cut_off = False
    client = Cuttable.from_url(redis_server.url, socket_timeout=0.5, socket_connect_timeout=0.5,
                               connection_class=CuttableConnection)
    yield client
    CuttableConnection.cut_off = False
    await client.aclose()


async def test_a_breaker_permit_taken_from_redis_is_recorded_without_it(redis: Cuttable) -> None:
    group = RedisBreakerGroup(redis, CONFIG)
    breaker = group.breaker("up")
    permit = await breaker.allow()
    assert permit is not None and permit.shared  # from Redis
    redis.cut()
    await breaker.record(permit, Outcome.SUCCESS)  # the request that got this far is served
    local = await breaker.allow()
    assert local is not None and not local.shared  # the local breaker decides now
    await group.aclose()


async def test_limits_fail_open_and_release_quietly(redis: Cuttable) -> None:
    limiter = RedisRateLimiter(redis)
    limits = Limits(requests_per_second=100, concurrent_requests=5)
    held = await limiter.acquire("tenant", limits)
    assert held.allowed and held.lease
    redis.cut()
    await limiter.release("tenant", held.lease)
    await limiter.charge("tenant", Limits(tokens_per_minute=1000), 10)
    assert (await limiter.acquire("other", limits)).allowed  # open, as documented
    assert limiter.degraded
    await limiter.aclose()


async def test_the_cache_misses_and_conversations_answer_503(redis: Cuttable) -> None:
    cache = RedisResponseCache(redis)
    await cache.put("k", b"v", 60)
    assert await cache.get("k") == b"v"
    store = RedisConversationStore(redis)
    redis.cut()
    assert await cache.get("k") is None
    await cache.put("k2", b"v", 60)
    assert cache.degraded
    with pytest.raises(UnavailableError):
        await store.get("resp_1", "owner")
    with pytest.raises(UnavailableError):
        await store.delete("resp_1", "owner")
