"""The budget ledger on a real redis-server: replicas share holds and spend, a hold never
settled expires, a month is seeded once from the store, one script reserves every budget
of a request or none, and an unreachable Redis falls back to this replica's own holds
(issue 19 item 3, issue 23 item 5)."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from gateway.errors import UnavailableError
from gateway.tenancy.budget_ledger import Account, RedisBudgetLedger
from gateway.tenancy.memory_store import MemoryTenantStore
from gateway.tenancy.usage import Budget, Budgets, Hold, month_start, period_start
from tests.servers import RedisServer

T = Budget("t", 1.0)


def account(tenant: str, period: float, *, budget: float, seed: float,
            scope: str = "") -> Account:
    return Account(tenant, scope, period, budget=budget, seed=seed)


def client(server: RedisServer) -> Redis:
    return Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)


async def test_replicas_share_one_budget(redis_server: RedisServer) -> None:
    redis = client(redis_server)
    ledgers = [RedisBudgetLedger(redis) for _ in range(3)]
    replicas = [Budgets(MemoryTenantStore(), ledger=ledger) for ledger in ledgers]
    try:
        holds = await asyncio.gather(*(replicas[i % 3].reserve([T], 0.3)
                                       for i in range(30)))
        admitted = [h for h in holds if isinstance(h, Hold)]
        assert len(admitted) == 3 and all(h.id for h in admitted)  # in Redis, for all three
        await replicas[0].settle(admitted[0], 0.04)  # it cost less than its estimate
        assert isinstance(await replicas[1].reserve([T], 0.3), Hold)  # 0.04 + 0.6 + 0.3
        assert await replicas[2].reserve([T], 0.3) == T  # 0.04 + 0.9 + 0.3
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
        assert await ledger.reserve("a", 0, [account("t", period, budget=10, seed=10)]) == 1
        # The month exists now: a replica whose store view lags does not reseed it.
        assert await ledger.reserve("b", 0, [account("t", period, budget=10, seed=0)]) == 1
        assert await ledger.reserve("c", 1, [account("u", period, budget=10, seed=0)]) == 0
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
        month = [account("t", period, budget=1, seed=0)]
        assert await ledger.reserve("lost", 0.8, month) == 0
        assert await ledger.reserve("next", 0.8, month) == 1
        await asyncio.sleep(0.4)  # the replica that held it died: the hold expires
        assert await ledger.reserve("next", 0.8, month) == 0
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
            await budgets.reserve([T], 0.3)
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
        first = await budgets.reserve([T], 0.6)
        assert isinstance(first, Hold) and not first.id and budgets.degraded
        assert await budgets.reserve([T], 0.6) == T  # still checked, per replica
        await budgets.settle(first, 0.0)
    finally:
        await ledger.aclose()
        await redis.aclose()


async def test_one_script_reserves_every_budget_or_none(redis_server: RedisServer) -> None:
    """Tenant, key and model budgets of one request across three replicas: the key's
    budget (0.9) admits 3 of 0.3; the refused hold nothing against the tenant's."""
    redis = client(redis_server)
    ledgers = [RedisBudgetLedger(redis) for _ in range(3)]
    replicas = [Budgets(MemoryTenantStore(), ledger=ledger) for ledger in ledgers]
    tenant = Budget("t2", 5.0)
    key = Budget("t2", 0.9, "daily", api_key_id="key_a")
    model = Budget("t2", 1.2, model="gpt-4o")
    try:
        holds = await asyncio.gather(*(replicas[i % 3].reserve([tenant, key, model], 0.3)
                                       for i in range(30)))
        admitted = [h for h in holds if isinstance(h, Hold)]
        assert len(admitted) == 3 and {h for h in holds if not isinstance(h, Hold)} == {key}
        # The tenant holds 0.9: another key of it still has 4.1 left.
        other = Budget("t2", 5.0, api_key_id="key_b")
        assert isinstance(await replicas[0].reserve([tenant, other], 4.1), Hold)
        assert await replicas[1].reserve([tenant, other], 0.01) == tenant
        # The model's 1.2 holds 0.9 from the key: one more of 0.3 fits it, not two.
        assert isinstance(await replicas[2].reserve([model], 0.3), Hold)
        assert await replicas[0].reserve([model], 0.01) == model
        await replicas[1].settle(admitted[0], 0.1)
        day = int(period_start(time.time(), "daily"))
        spent = await redis.get(f"llmgw:budget:{{t2}}:key:key_a:{day}")
        assert float(spent) == 0.1
        ttl = await redis.pttl(f"llmgw:budget:{{t2}}:key:key_a:{day}")
        assert 86400 * 1000 < ttl <= 10 * 86400 * 1000  # a day's keys are not kept a month
        month = int(month_start(time.time()))
        assert float(await redis.get(f"llmgw:budget:{{t2}}:model:gpt-4o:{month}")) == 0.1
        assert float(await redis.get(f"llmgw:budget:{{t2}}:{month}")) == 0.1
    finally:
        for ledger in ledgers:
            await ledger.aclose()
        await redis.aclose()
