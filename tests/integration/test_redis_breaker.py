"""The Redis-shared breaker against a real redis-server: two "replicas" (two groups,
two clients) share one state; a Redis outage falls back to local breakers."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from gateway.config import CircuitBreakerConfig
from gateway.resilience import BreakerBoard, BreakerState, Outcome
from gateway.resilience.redis_breaker import RedisBreakerGroup
from tests.servers import RedisServer

CONFIG = CircuitBreakerConfig(consecutive_failures=3, failure_ratio=0.5, min_requests=100,
                              interval=30, open_timeout=0.5, half_open_requests=2)  # type: ignore[arg-type]


def client(server: RedisServer) -> Redis:
    return Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)


async def fail(group: RedisBreakerGroup, name: str, n: int) -> None:
    breaker = group.breaker(name)
    for _ in range(n):
        permit = await breaker.allow()
        assert permit is not None and permit.shared
        await breaker.record(permit, Outcome.FAILURE)


@pytest.mark.asyncio
async def test_failures_seen_by_one_replica_open_the_breaker_for_all(
    redis_server: RedisServer,
) -> None:
    transitions: list[tuple[str, str]] = []
    one = RedisBreakerGroup(client(redis_server), CONFIG)
    two = RedisBreakerGroup(client(redis_server), CONFIG,
                            on_transition=lambda n, a, b: transitions.append((a.name, b.name)))
    try:
        await fail(one, "openai", 2)
        await fail(two, "openai", 1)  # the third consecutive failure, counted in Redis
        assert transitions == [("CLOSED", "OPEN")]
        assert await one.breaker("openai").allow() is None
        assert await two.breaker("openai").allow() is None
        assert (await one.breaker("openai").snapshot()).state is BreakerState.OPEN
        assert (await one.breaker("other").allow()) is not None  # per deployment

        await asyncio.sleep(0.55)  # open_timeout, on Redis's clock
        probes = [await one.breaker("openai").allow(), await two.breaker("openai").allow()]
        assert all(p is not None and p.half_open for p in probes)
        assert await two.breaker("openai").allow() is None  # two probes, across replicas
        for probe in probes:
            assert probe is not None
            await one.breaker("openai").record(probe, Outcome.SUCCESS)
        assert (await two.breaker("openai").snapshot()).state is BreakerState.CLOSED
    finally:
        for group in (one, two):
            await group.aclose()
            await group.redis.aclose()


@pytest.mark.asyncio
async def test_reset_is_shared(redis_server: RedisServer) -> None:
    one = RedisBreakerGroup(client(redis_server), CONFIG)
    two = RedisBreakerGroup(client(redis_server), CONFIG)
    try:
        await fail(one, "p", 3)
        assert await two.breaker("p").allow() is None
        await two.breaker("p").reset()
        assert await one.breaker("p").allow() is not None
    finally:
        for group in (one, two):
            await group.aclose()
            await group.redis.aclose()


@pytest.mark.asyncio
async def test_a_starting_replica_exports_the_shared_state(redis_server: RedisServer) -> None:
    """A replica that starts while another has opened a breaker shows it open in /metrics."""
    one = RedisBreakerGroup(client(redis_server), CONFIG)
    two = RedisBreakerGroup(client(redis_server), CONFIG)
    try:
        await fail(one, "export-open", 3)
        await BreakerBoard(two.breaker).export_states(["export-open", "export-closed"])
        gauge = "gateway_circuit_breaker_state"
        assert REGISTRY.get_sample_value(gauge, {"provider": "export-open"}) == 1
        assert REGISTRY.get_sample_value(gauge, {"provider": "export-closed"}) == 0
    finally:
        for group in (one, two):
            await group.aclose()
            await group.redis.aclose()


@pytest.mark.asyncio
async def test_redis_outage_falls_back_to_local_and_recovers(
    redis_server: RedisServer
) -> None:
    group = RedisBreakerGroup(client(redis_server), CONFIG, retry_after=0.2)
    breaker = group.breaker("p")
    try:
        assert (await breaker.allow()) is not None and not group.degraded
        redis_server.stop()
        permit = await breaker.allow()  # Redis is gone: a local permit, no error
        assert permit is not None and not permit.shared and group.degraded
        for _ in range(3):
            local = await breaker.allow()
            assert local is not None
            await breaker.record(local, Outcome.FAILURE)
        assert await breaker.allow() is None  # the local breaker opened on its own
        assert not (await breaker.snapshot()).distributed

        redis_server.start()
        await asyncio.sleep(0.25)
        shared = await breaker.allow()  # Redis is back: shared again (state there: closed)
        assert shared is not None and shared.shared and not group.degraded
    finally:
        await group.aclose()
        await group.redis.aclose()
