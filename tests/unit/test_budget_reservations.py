"""Budgets hold the estimated cost of requests in flight (issue 19, item 3)."""

from __future__ import annotations

import asyncio

from gateway.tenancy.memory_store import MemoryTenantStore
from gateway.tenancy.usage import Budgets


def test_spent_and_held_below_the_budget_admit() -> None:
    async def run() -> None:
        budgets = Budgets(MemoryTenantStore())
        assert await budgets.reserve("t", 1.0, 0.6)
        assert await budgets.reserve("t", 1.0, 0.6)  # 0.6 held < 1.0
        assert not await budgets.reserve("t", 1.0, 0.6)  # 1.2 held
        budgets.release("t", 0.6)
        await budgets.add("t", 1.0, 0.1)  # what the first really cost
        assert await budgets.reserve("t", 1.0, 0.2)  # 0.1 spent + 0.6 held
        budgets.release("t", 0.6)
        budgets.release("t", 0.2)
        budgets.release("t", 5.0)  # more than held: nothing goes negative
        assert await budgets.reserve("t", 0.11, 0.0)  # 0.1 spent, nothing held

    asyncio.run(run())


def test_concurrent_reservations_see_each_other() -> None:
    async def run() -> list[bool]:
        budgets = Budgets(MemoryTenantStore())
        return await asyncio.gather(*(budgets.reserve("t", 0.05, 0.3) for _ in range(30)))

    assert sorted(asyncio.run(run())) == [False] * 29 + [True]
