"""Budgets hold the estimated cost of requests in flight (issue 19, item 3): this replica's
own holds, without Redis."""

from __future__ import annotations

import asyncio

from gateway.tenancy.memory_store import MemoryTenantStore
from gateway.tenancy.usage import Budgets


async def test_spent_and_held_below_the_budget_admit() -> None:
    budgets = Budgets(MemoryTenantStore())
    first = await budgets.reserve("t", 1.0, 0.6)
    second = await budgets.reserve("t", 1.0, 0.6)  # 0.6 held < 1.0
    assert first is not None and second is not None and not first.id  # held here
    assert await budgets.reserve("t", 1.0, 0.6) is None  # 1.2 held
    await budgets.settle(first, 0.1)
    await budgets.add("t", 1.0, 0.1)  # what the first really cost
    third = await budgets.reserve("t", 1.0, 0.2)  # 0.1 spent + 0.6 held
    assert third is not None
    await budgets.settle(second, 0.0)
    await budgets.settle(third, 0.0)
    await budgets.settle(third, 0.0)  # settled twice: nothing goes negative
    assert await budgets.reserve("t", 0.11, 0.0) is not None  # 0.1 spent, nothing held
    assert await budgets.reserve("t", 0.1, 0.0) is None


async def test_concurrent_reservations_see_each_other() -> None:
    budgets = Budgets(MemoryTenantStore())
    holds = await asyncio.gather(*(budgets.reserve("t", 0.05, 0.3) for _ in range(30)))
    assert sum(h is not None for h in holds) == 1
