"""The budget ledger on a real redis-server: replicas share holds and spend, a hold never
settled expires, a month is seeded once from the store, and an unreachable Redis falls
back to this replica's own holds (issue 19, item 3)."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from gateway.errors import UnavailableError
from gateway.tenancy.budget_ledger import RedisBudgetLedger
from gateway.tenancy.memory_store import MemoryTenantStore
from gateway.tenancy.usage import Budgets, month_start
from tests.servers import RedisServer


def client(server: RedisServer) -> Redis:
    return Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)


async def test_replicas_share_one_budget(redis_server: RedisServer) -> None:
    redis = client(redis_server)
    ledgers = [RedisBudgetLedger(redis) for _ in range(3)]
    replicas = [Budgets(MemoryTenantStore(), ledger=ledger) for ledger in ledgers]
    try:
        holds = await asyncio.gather(*(replicas[i % 3].reserve("t", 1.0, 0.3)
                                       for i in range(30)))
        admitted = [h for h in holds if h is not None]
        assert len(admitted) == 3 and all(h.id for h in admitted)  # in Redis, for all three
        await replicas[0].settle(admitted[0], 0.04)  # it cost less than its estimate
        assert await replicas[1].reserve("t", 1.0, 0.3) is not None  # 0.04 + 0.6 + 0.3
        assert await replicas[2].reserve("t", 1.0, 0.3) is None  # 0.04 + 0.9 + 0.3
        spent = await redis.get(f"llmgw:budget:{{t}}:{int(month_start(time.time()))}")
        assert float(spent) == 0.04
    finally:
        for ledger in ledgers:
            await ledger.aclose()
        await redis.aclose()


async def test_the_month_is_seeded_from_the_store_once(redis_server: RedisServer) -> None:
    redis = client(redis_server)
    ledger = RedisBudgetLedger(redis)
    period = month_start(time.time())
    try:
        assert not await ledger.reserve("t", period, "a", budget=10, cost=0, seed=10)
        # The month exists now: a replica whose store view lags does not reseed it.
        assert not await ledger.reserve("t", period, "b", budget=10, cost=0, seed=0)
        assert await ledger.reserve("u", period, "c", budget=10, cost=1, seed=0)
        keys = [k async for k in redis.scan_iter("llmgw:budget:*")]
        ttls = [await redis.pttl(k) for k in keys]
        assert keys and all(ttl > 30 * 86400 * 1000 for ttl in ttls), ttls
    finally:
        await ledger.aclose()
        await redis.aclose()


async def test_a_hold_never_settled_stops_counting(redis_server: RedisServer) -> None:
    redis = client(redis_server)
    ledger = RedisBudgetLedger(redis, hold_ttl=0.3)
    period = month_start(time.time())
    try:
        assert await ledger.reserve("t", period, "lost", budget=1, cost=0.8, seed=0)
        assert not await ledger.reserve("t", period, "next", budget=1, cost=0.8, seed=0)
        await asyncio.sleep(0.4)  # the replica that held it died: the hold expires
        assert await ledger.reserve("t", period, "next", budget=1, cost=0.8, seed=0)
    finally:
        await ledger.aclose()
        await redis.aclose()


async def test_an_unreachable_ledger_refuses_by_default(redis_server: RedisServer) -> None:
    redis = client(redis_server)
    ledger = RedisBudgetLedger(redis)
    budgets = Budgets(MemoryTenantStore(), ledger=ledger)
    try:
        redis_server.stop()
        with pytest.raises(UnavailableError):
            await budgets.reserve("t", 1.0, 0.3)
        assert budgets.degraded
    finally:
        await ledger.aclose()
        await redis.aclose()


async def test_an_unreachable_ledger_may_fall_back_to_local_holds(
        redis_server: RedisServer) -> None:
    redis = client(redis_server)
    ledger = RedisBudgetLedger(redis)
    budgets = Budgets(MemoryTenantStore(), ledger=ledger, on_outage="local")
    try:
        redis_server.stop()
        first = await budgets.reserve("t", 1.0, 0.6)
        assert first is not None and not first.id and budgets.degraded
        assert await budgets.reserve("t", 1.0, 0.6) is None  # still checked, per replica
        await budgets.settle(first, 0.0)
    finally:
        await ledger.aclose()
        await redis.aclose()
