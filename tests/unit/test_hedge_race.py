"""The hedge race's rule (gateway/routing/router.py): the first attempt to succeed wins,
the earlier one on a tie; when all fail, the first failure is raised."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import UpstreamError
from gateway.routing.router import _first_answer


async def answer(value: str, after: float) -> str:
    await asyncio.sleep(after)
    return value


async def fail(message: str, after: float) -> str:
    await asyncio.sleep(after)
    raise UpstreamError(message, provider="p")


async def test_the_first_success_wins_even_after_a_failure() -> None:
    runs = [asyncio.ensure_future(fail("first failed", 0.01)),
            asyncio.ensure_future(answer("second", 0.05))]
    assert (await _first_answer(runs)).result() == "second"


async def test_a_tie_goes_to_the_earlier_run() -> None:
    runs = [asyncio.ensure_future(answer("first", 0)), asyncio.ensure_future(answer("second", 0))]
    await asyncio.sleep(0.01)  # both done before the race looks
    assert (await _first_answer(runs)).result() == "first"


async def test_all_failing_raises_the_first_failure() -> None:
    runs = [asyncio.ensure_future(fail("one", 0.02)), asyncio.ensure_future(fail("two", 0.01))]
    with pytest.raises(UpstreamError, match="two"):
        await _first_answer(runs)
