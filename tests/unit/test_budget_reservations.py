"""Budgets hold the worst-case cost of requests in flight (issues 19 item 3, 23 items 4-5):
this replica's own holds, without Redis. A request is admitted when its worst case fits
every budget that applies (the tenant's, its key's, the tenant's for the model), all or
nothing; a daily budget starts again at 00:00 UTC."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.observability import metrics
from gateway.tenancy.memory_store import MemoryTenantStore
from gateway.tenancy.models import UsageRow
from gateway.tenancy.usage import Budget, Budgets, Hold, fits, period_start

T = Budget("t", 1.0)
DAY = 86400.0


def test_fits() -> None:
    assert fits(0.0, 0.0, 1.0, 1.0)
    assert not fits(0.0, 0.0, 1.01, 1.0)  # a request larger than the budget never fits
    assert fits(0.5, 0.2, 0.0, 1.0)  # no known cost: fits while anything is left
    assert not fits(0.5, 0.5, 0.0, 1.0)


def test_periods_start_at_utc_midnight() -> None:
    now = 1_767_312_000.0 + 5 * DAY + 3600 * 13  # 2026-01-07 13:00 UTC
    assert period_start(now, "daily") == 1_767_312_000.0 + 5 * DAY
    assert period_start(now, "monthly") == 1_767_225_600.0  # 2026-01-01


async def test_spend_holds_and_the_request_must_fit() -> None:
    budgets = Budgets(MemoryTenantStore())
    holds = [await budgets.reserve([T], 0.3) for _ in range(4)]
    assert [isinstance(h, Hold) for h in holds] == [True, True, True, False]  # 4 x 0.3 > 1
    assert holds[3] == T  # the budget it did not fit
    first = holds[0]
    assert isinstance(first, Hold) and not first.id  # held here
    await budgets.settle(first, 0.1)
    await budgets.add([T], 0.1)  # what the first really cost
    assert isinstance(await budgets.reserve([T], 0.3), Hold)  # 0.1 + 0.6 + 0.3 fits
    assert await budgets.reserve([T], 0.01) == T  # 0.1 + 0.9 + 0.01 does not
    await budgets.settle(first, 0.0)  # settled twice: nothing goes negative


async def test_concurrent_reservations_see_each_other() -> None:
    budgets = Budgets(MemoryTenantStore())
    holds = await asyncio.gather(*(budgets.reserve([T], 0.3) for _ in range(30)))
    assert sum(isinstance(h, Hold) for h in holds) == 3


async def test_every_budget_must_fit_and_a_refusal_holds_nothing() -> None:
    budgets = Budgets(MemoryTenantStore())
    tenant = Budget("t", 10.0)
    key = Budget("t", 1.0, api_key_id="key_a")
    other_key = Budget("t", 1.0, api_key_id="key_b")
    model = Budget("t", 0.5, model="gpt-4o")
    holds = await asyncio.gather(*(budgets.reserve([tenant, key], 0.3) for _ in range(10)))
    assert sum(isinstance(h, Hold) for h in holds) == 3  # the key's budget: 3 x 0.3
    assert all(h == key for h in holds if not isinstance(h, Hold))
    # The 7 refused held nothing against the tenant: 0.9 held of 10.
    assert isinstance(await budgets.reserve([tenant, other_key], 0.9), Hold)
    assert await budgets.reserve([tenant, model], 0.6) == model
    assert isinstance(await budgets.reserve([tenant, model], 0.5), Hold)
    assert await budgets.reserve([tenant, model], 0.0) == model  # nothing left of it


async def test_a_daily_budget_starts_again_at_midnight() -> None:
    store = MemoryTenantStore()
    wall = [1_767_312_000.0 + 3600 * 23]  # 23:00 UTC
    budgets = Budgets(store, wall=lambda: wall[0])
    daily = Budget("t", 1.0, "daily", api_key_id="key_a")
    monthly = Budget("t", 1.5)
    hold = await budgets.reserve([monthly, daily], 0.8)
    assert isinstance(hold, Hold)
    await budgets.settle(hold, 0.8)
    row = UsageRow("t", "m", "p", 1, 1, 0.8, 1.0, "OK", created_at=wall[0],
                   api_key_id="key_a")
    await store.record_usage([row])
    await budgets.add([monthly, daily], 0.8)
    assert await budgets.reserve([monthly, daily], 0.5) == daily
    wall[0] += 3600  # 00:00 UTC the next day: the key's day is new, the month is not
    assert await budgets.reserve([monthly, daily], 0.8) == monthly
    hold = await budgets.reserve([monthly, daily], 0.7)
    assert isinstance(hold, Hold) and hold.starts[1] == 1_767_312_000.0 + DAY
    assert (await budgets.totals(daily))[1].cost_usd == 0.0
    assert (await budgets.totals(monthly))[1].cost_usd == 0.8


async def test_alerts_once_per_crossing_for_each_budget(
        caplog: pytest.LogCaptureFixture) -> None:
    budgets = Budgets(MemoryTenantStore())
    key = Budget("ten_alerts", 1.0, api_key_id="key_a")
    model = Budget("ten_alerts", 10.0, "daily", model="gpt-4o")

    def count(scope: str, threshold: str) -> float:
        value = metrics.REGISTRY.get_sample_value(
            "gateway_budget_alerts_total",
            {"tenant": "ten_alerts", "scope": scope, "threshold": threshold})
        return value or 0.0

    with caplog.at_level(logging.WARNING, logger="gateway.tenancy"):
        for cost in (0.5, 0.31, 0.01, 0.14, 0.01):  # 0.81 crosses 80%, 0.96 crosses 95%
            await budgets.add([key, model], cost)
    lines = [r for r in caplog.records if r.getMessage() == "api key budget alert"]
    assert [r.fields["threshold"] for r in lines] == [0.8, 0.95]  # type: ignore[attr-defined]
    assert lines[0].fields["api_key_id"] == "key_a"  # type: ignore[attr-defined]
    assert count("api_key", "0.8") == 1 and count("api_key", "0.95") == 1
    assert count("model", "0.8") == 0  # 0.97 of 10
    await budgets.add([model], 7.5)
    assert count("model", "0.8") == 1
    assert [r.getMessage() for r in caplog.records].count("model budget alert") == 1
