"""keepalive(): items in order, a ping per silent interval (never first), errors after the
items before them, the source pulled at most MAX_AHEAD ahead, and closing stops the pull."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.service.keepalive import MAX_AHEAD, keepalive

PING = -1


async def _timed(*steps: tuple[float, int]) -> AsyncIterator[int]:
    for delay, item in steps:
        await asyncio.sleep(delay)
        yield item


async def _collect(items: AsyncIterator[int]) -> list[int]:
    return [item async for item in items]


async def test_pings_fill_silences_but_never_come_first() -> None:
    got = await _collect(keepalive(_timed((0.12, 1), (0.0, 2), (0.13, 3)), 0.05, PING))
    assert got[:2] == [1, 2]  # 0.12 s of silence before the first item: no ping
    assert got[-1] == 3
    assert got[2:-1] and set(got[2:-1]) == {PING}


async def test_a_busy_source_gets_no_pings() -> None:
    assert await _collect(keepalive(_timed(*[(0.0, i) for i in range(500)]), 0.05,
                                    PING)) == list(range(500))


async def test_an_error_comes_after_the_items_before_it() -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise ValueError("upstream broke")

    got: list[int] = []
    with pytest.raises(ValueError, match="upstream broke"):
        async for item in keepalive(failing(), 10, PING):
            got.append(item)
    assert got == [1, 2]


async def test_the_source_is_pulled_a_bounded_way_ahead() -> None:
    pulled = 0

    async def endless() -> AsyncIterator[int]:
        nonlocal pulled
        while True:
            pulled += 1
            yield pulled
            await asyncio.sleep(0)

    items = keepalive(endless(), 10, PING)
    assert await anext(items) == 1
    await asyncio.sleep(0.1)  # a caller that reads nothing more
    assert pulled <= MAX_AHEAD + 2
    await items.aclose()  # type: ignore[attr-defined]


async def test_closing_stops_the_pull() -> None:
    closed = asyncio.Event()

    async def slow() -> AsyncIterator[int]:
        try:
            yield 1
            await asyncio.sleep(60)
            yield 2
        finally:
            closed.set()

    items = keepalive(slow(), 10, PING)
    assert await anext(items) == 1
    await items.aclose()  # type: ignore[attr-defined]
    assert closed.is_set()
