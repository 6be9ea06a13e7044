"""The garbage collector stays out of the request path (gateway/gc_tuning.py): serving
REST chat completions, plain and streamed, leaves no reference cycles behind, and the
collector barely runs. Read from the gateway's own ``python_gc_*`` metrics.

Before the tuning a loaded worker ran a young-generation pass every few requests and a
full pass every few hundred; before the hot route's disconnect watcher ended quietly,
every request left a cancelled task, its exception, traceback and frame in a cycle
(~26 objects). Either regression fails here."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import GatewayProcess
from tests.fakes.openai import FakeOpenAI

Factory = Callable[..., GatewayProcess]
REQUESTS = 800  # had each left ~26 objects in cycles: well past the young threshold
STREAMS = 100
CONCURRENCY = 64  # objects of requests in flight are what the default collector re-scans


def gc_counters(metrics: str) -> dict[str, float]:
    counters: dict[str, float] = {}
    for name in ("python_gc_objects_collected_total", "python_gc_collections_total"):
        counters[name] = sum(float(value) for value in
                             re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", metrics, re.M))
    return counters


async def load(base_url: str, chat: dict[str, object]) -> str:
    """REQUESTS completions and STREAMS streams, CONCURRENCY at a time; then the metrics,
    read before these connections close (a closed connection leaves a few objects in
    cycles in Hypercorn, which are not the requests')."""
    calls = [False] * REQUESTS + [True] * STREAMS
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:

        async def worker() -> None:
            while calls:
                stream = calls.pop()
                r = await client.post("/v1/chat/completions", json={**chat, "stream": stream})
                assert r.status_code == 200, r.text
                assert not stream or b"[DONE]" in r.content

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return (await client.get("/metrics")).text


@pytest.mark.serial
@pytest.mark.slow
def test_requests_leave_no_cycles_and_the_collector_rests(
    process_factory: Factory, fake_openai: FakeOpenAI,
) -> None:
    gw = process_factory(f"""
providers:
{fake_openai.provider()}
""")
    chat = {"model": "up/m", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=gw.http_url, timeout=10) as client:
        for _ in range(20):  # warm: first-use imports and caches are not per request
            assert client.post("/v1/chat/completions", json=chat).status_code == 200
        before = gc_counters(client.get("/metrics").text)
    after = gc_counters(asyncio.run(load(gw.http_url, chat)))
    collected = after["python_gc_objects_collected_total"] - before[
        "python_gc_objects_collected_total"]
    passes = after["python_gc_collections_total"] - before["python_gc_collections_total"]
    served = REQUESTS + STREAMS
    assert collected < served / 4, f"{collected:.0f} objects in cycles for {served} requests"
    assert passes <= 5, f"{passes:.0f} collector passes for {served} requests"
