"""Budgets hold the worst-case cost of requests in flight (issues 19 item 3, 23 item 4):
this replica's own holds, without Redis. A request is admitted when its worst case fits."""

from __future__ import annotations

import asyncio

from gateway.tenancy.memory_store import MemoryTenantStore
from gateway.tenancy.usage import Budgets, fits


def test_fits() -> None:
    assert fits(0.0, 0.0, 1.0, 1.0)
    assert not fits(0.0, 0.0, 1.01, 1.0)  # a request larger than the budget never fits
    assert fits(0.5, 0.2, 0.0, 1.0)  # no known cost: fits while anything is left
    assert not fits(0.5, 0.5, 0.0, 1.0)


async def test_spend_holds_and_the_request_must_fit() -> None:
    budgets = Budgets(MemoryTenantStore())
    holds = [await budgets.reserve("t", 1.0, 0.3) for _ in range(4)]
    assert [h is not None for h in holds] == [True, True, True, False]  # 4 x 0.3 > 1.0
    first = holds[0]
    assert first is not None and not first.id  # held here
    await budgets.settle(first, 0.1)
    await budgets.add("t", 1.0, 0.1)  # what the first really cost
    assert await budgets.reserve("t", 1.0, 0.3) is not None  # 0.1 + 0.6 + 0.3 fits
    assert await budgets.reserve("t", 1.0, 0.01) is None  # 0.1 + 0.9 + 0.01 does not
    await budgets.settle(first, 0.0)  # settled twice: nothing goes negative


async def test_concurrent_reservations_see_each_other() -> None:
    budgets = Budgets(MemoryTenantStore())
    holds = await asyncio.gather(*(budgets.reserve("t", 1.0, 0.3) for _ in range(30)))
    assert sum(h is not None for h in holds) == 3
