"""An error that is not Redis being unreachable is an error on every Redis path, never an outage.

A real redis-server answering with an error reply (a script that fails on a key of the wrong
type: WRONGTYPE), and bugs met on the way (a value of the wrong type, an exception from the
connection no transport raises), must reach the caller as themselves, to become a logged
500, and not be failed open: a limiter that admits everything, a breaker that forgets the
shared state, a cache that misses, a store that answers 503 would each hide the bug for as
long as it lasts. Outages keep degrading: test_redis_transport_closed.py, test_redis_pipe.py,
test_redis_ratelimit.py, test_redis_breaker.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import DataError, ResponseError

from gateway.config import CircuitBreakerConfig
from gateway.resilience.redis_breaker import RedisBreakerGroup
from gateway.state.base import ConversationRecord
from gateway.state.cache import RedisResponseCache
from gateway.state.redis_store import RedisConversationStore
from gateway.tenancy.admission import Admission
from gateway.tenancy.auth import Identity
from gateway.tenancy.limits import RedisRateLimiter
from gateway.tenancy.memory_store import MemoryTenantStore
from gateway.tenancy.models import Limits, Tenant
from gateway.tenancy.usage import Budgets, UsageRecorder
from tests.servers import RedisServer

CONFIG = CircuitBreakerConfig(consecutive_failures=3, failure_ratio=0.5, min_requests=100,
                              interval=30, open_timeout=0.5, half_open_requests=2)  # type: ignore[arg-type]
LIMITS = Limits(requests_per_minute=100, concurrent_requests=1)


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    yield client
    await client.aclose()


def fail_opens() -> float:
    return REGISTRY.get_sample_value("gateway_rate_limit_fail_open_total") or 0.0


async def test_a_limit_script_failing_in_redis_is_raised_not_admitted(redis: Redis) -> None:
    await redis.set("llmgw:rl:{tenant:wrong}", "a string, where the script keeps a hash")
    limiter = RedisRateLimiter(redis)
    before = fail_opens()
    try:
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await limiter.acquire("tenant:wrong", LIMITS)
        assert not limiter.degraded and fail_opens() == before
        held = await limiter.acquire("tenant:right", LIMITS)  # the others are limited still
        assert held.allowed and held.lease
        assert not (await limiter.acquire("tenant:right", LIMITS)).allowed
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await limiter.charge("tenant:wrong", Limits(tokens_per_minute=10), 5)
    finally:
        await limiter.aclose()


class BuggyConnection(Connection):
    """A real connection whose next reply comes with an exception no transport raises."""

    fail_next_read = False

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        value = await super().read_response(*args, **kwargs)
        if BuggyConnection.fail_next_read:
            BuggyConnection.fail_next_read = False
            raise TypeError("a bug met while reading a reply")
        return value


async def test_a_bug_under_the_limiter_is_raised_not_failed_open(
    redis_server: RedisServer,
) -> None:
    client = Redis.from_url(redis_server.url, socket_timeout=0.5,
                            connection_class=BuggyConnection)
    limiter = RedisRateLimiter(client)
    before = fail_opens()
    try:
        assert (await limiter.acquire("tenant:x", LIMITS)).allowed
        BuggyConnection.fail_next_read = True
        with pytest.raises(TypeError, match="a bug"):
            await limiter.acquire("tenant:y", LIMITS)
        assert not limiter.degraded and fail_opens() == before
    finally:
        BuggyConnection.fail_next_read = False
        await limiter.aclose()
        await client.aclose()


async def test_a_limiter_error_gives_back_the_slots_admission_took(redis: Redis) -> None:
    """Nobody settles a request that was not admitted: admission releases what it took."""
    await redis.set("llmgw:rl:{tenant:ten_1}", "a string, where the script keeps a hash")
    limiter = RedisRateLimiter(redis)
    store = MemoryTenantStore()
    admission = Admission(limiter, Budgets(store), UsageRecorder(store),
                          identity_limits=Limits(concurrent_requests=1), cipher=None)
    identity = Identity(kind="api_key", subject="key_1", tenant_id="ten_1",
                        tenant=Tenant(id="ten_1", name="acme", limits=LIMITS))
    try:
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await admission.admit(identity, "gpt-4o-mini")
        assert await redis.zcard("llmgw:rl:{api_key:key_1}:c") == 0  # the identity's slot
    finally:
        await limiter.aclose()


async def test_a_breaker_script_failing_in_redis_is_raised_not_forgotten(redis: Redis) -> None:
    await redis.set("llmgw:cb:up", "a string, where the script keeps a hash")
    group = RedisBreakerGroup(redis, CONFIG)
    try:
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await group.breaker("up").allow()
        assert not group.degraded
        permit = await group.breaker("other").allow()
        assert permit is not None and permit.shared  # Redis still decides
    finally:
        await group.aclose()


async def test_the_cache_raises_errors_that_are_not_an_outage(redis: Redis) -> None:
    await redis.hset("llmgw:cache:wrong", "field", "a hash, where the cache keeps a string")
    cache = RedisResponseCache(redis)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await cache.get("wrong")
    with pytest.raises(DataError):
        await cache.put("k", {"not": "bytes"}, ttl=60)  # type: ignore[arg-type]
    assert not cache.degraded
    await cache.put("k", b"v", ttl=60)
    assert await cache.get("k") == b"v"


class Bugged(Redis):
    """A real client whose commands fail with a RuntimeError that is not a closed transport."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        raise RuntimeError("await wasn't used with future")


async def test_only_uvloops_closed_transport_counts_among_runtime_errors(
    redis_server: RedisServer,
) -> None:
    client = Bugged.from_url(redis_server.url)
    cache = RedisResponseCache(client)
    try:
        with pytest.raises(RuntimeError, match="await wasn't used"):
            await cache.get("k")
        assert not cache.degraded
    finally:
        await client.aclose()


async def test_the_conversation_store_raises_an_error_reply_not_unavailable(
    redis: Redis,
) -> None:
    await redis.set("llmgw:conv:resp_1", "a string, where the store keeps a hash")
    store = RedisConversationStore(redis)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await store.get("resp_1", "ten_acme")
    await store.put(ConversationRecord(id="resp_2", owner="ten_acme", document=b"{}",
                                       created_at=1.0, expires_at=4e9))
    assert await store.get("resp_2", "ten_acme") is not None
