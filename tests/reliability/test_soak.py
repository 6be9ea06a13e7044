"""Soak: mixed stream and non-stream traffic for a bounded time, with faults injected
in cycles (an upstream 5xx storm, cut streams, Redis stopped and restarted), while the
gateway process's resident memory and open file descriptors are sampled.

The baseline is taken after a warm-up (caches, pools, interned strings and the
allocator's arenas have reached their working size) and the last sample after the same
traffic has stopped: both at rest, with the load's connections closed.

Bounds, and why:

- RSS may drift by at most :data:`RSS_BOUND_MIB`. A working gateway at rest after a few
  thousand requests sits within a few MiB of its post-warm-up size (the allocator keeps
  some arenas); a leak of a few kilobytes per request would pass the bound within the
  fast run's ~4,000 requests, and one of a few hundred bytes in the long run's ~20,000.
- Open file descriptors may drift by at most :data:`FD_BOUND`. At rest a gateway holds
  its listeners, its log, the facade-to-core sockets, and keep-alive pools to each
  upstream and to Redis bounded by the concurrency it saw; the warm-up runs the same
  traffic and a short fault cycle, so every pool is at its working size before the
  baseline. What is left is a pool meeting a new peak, or a pooled Redis connection the
  restart closed and nobody has used since. One descriptor kept per failed request or
  per closed client connection would pass the bound at once: hundreds fail during the
  faults, and the load opens a new connection for every stream it stops reading at
  ``[DONE]`` (the bound caught exactly that: gateway/hypercorn_patch.py).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import GatewayProcess
from tests.reliability.faults import FaultyOpenAI, outage
from tests.reliability.load import Load, LoadResult
from tests.reliability.scorecard import LONG, record, scaled
from tests.reliability.test_faults import (
    ADMIN,
    Checks,
    assert_contract,
    check_stored,
    merged,
    never,
    served_by_contract,
    two_upstreams,
)
from tests.servers import RedisServer

Factory = Callable[..., GatewayProcess]

RSS_BOUND_MIB = 16.0
FD_BOUND = 8
WARMUP_PHASE = scaled(2, 4)  # a fault cycle of 7.5 phases before the baseline
PHASE = 4  # then fault cycles of 7.5 * 4 = 30 s each
CYCLES = scaled(1, 6)
CONCURRENCY = scaled(8, 12)
REST = 1.5  # seconds at rest before a sample (closed connections noticed)

pytestmark = [pytest.mark.soak, pytest.mark.serial, pytest.mark.timeout(scaled(180, 900))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, durable=True).start()
    yield server
    server.stop()


def soak_config(a: FaultyOpenAI, b: FaultyOpenAI) -> str:
    return two_upstreams(a, b) + """
circuit_breaker: {distributed: true, consecutive_failures: 3, failure_ratio: 0.5,
                  min_requests: 10, interval: 10s, open_timeout: 1s, half_open_requests: 2}
rate_limit: {enabled: true, requests_per_second: 100000, burst: 100000}
cache: {enabled: true, store: redis, ttl: 5m}
conversations: {store: redis, ttl: 1h}
"""


def load(gw: GatewayProcess, seed: int) -> Load:
    return Load(gw.http_url, model="primary", concurrency=CONCURRENCY, cacheable=True,
                seed=seed, mix={"chat": 4, "stream": 4, "embed": 1, "response": 1,
                                "response_stream": 1})


async def cycle(a: FaultyOpenAI, redis: RedisServer, phase: float) -> None:
    """One fault cycle of ``7.5 * phase`` seconds: calm, a storm on half of a's requests,
    calm, half of a's streams cut, calm, Redis down, calm."""
    await asyncio.sleep(phase)
    a.set("storm", share=0.5)
    await asyncio.sleep(phase)
    a.set("ok")
    await asyncio.sleep(phase)
    a.set("cut", share=0.5)
    await asyncio.sleep(phase)
    a.set("ok")
    await asyncio.sleep(phase)
    async with outage(redis):
        await asyncio.sleep(phase)
    await asyncio.sleep(1.5 * phase)


async def warm_up(gw: GatewayProcess, a: FaultyOpenAI, redis: RedisServer) -> LoadResult:
    """The same traffic and a short fault cycle: every pool (both upstreams, Redis) and
    cache reaches its working size before the baseline."""
    warm = load(gw, seed=10)
    running = asyncio.create_task(warm.run(3600))
    try:
        await cycle(a, redis, WARMUP_PHASE)
    finally:
        warm.stop()
    return await running


async def test_soak_memory_and_descriptors_stay_bounded(process_factory: Factory,
                                                        durable_redis: RedisServer) -> None:
    with FaultyOpenAI() as a, FaultyOpenAI() as b:
        gw = process_factory(soak_config(a, b), env={"REDIS_URL": durable_redis.url,
                                                     "GATEWAY_ADMIN_KEY": ADMIN})
        pid = gw.proc.pid
        warm = await warm_up(gw, a, durable_redis)
        await asyncio.sleep(REST)
        rss0, fds0 = rss_mib(pid), open_fds(pid)

        main = load(gw, seed=11)
        running = asyncio.create_task(main.run(3600))
        samples: list[tuple[float, float, int]] = []
        started = time.monotonic()

        async def sample() -> None:
            while not running.done():
                samples.append((time.monotonic() - started, rss_mib(pid), open_fds(pid)))
                await asyncio.sleep(2)

        sampler = asyncio.create_task(sample())
        try:
            for _ in range(CYCLES):
                await cycle(a, durable_redis, PHASE)
        finally:
            main.stop()
            result = await running
            await sampler
        await asyncio.sleep(REST)
        rss1, fds1 = rss_mib(pid), open_fds(pid)
        async with aiohttp.ClientSession() as session, \
                session.get(gw.http_url + "/ready") as r:
            ready = r.status
        lost = await check_stored(gw, result)

    rss_drift, fd_drift = round(rss1 - rss0, 1), fds1 - fds0
    both = merged(warm, result)
    peak = max(s[1] for s in samples)
    # During the faults: fallbacks serve chat; a stream cut after its first byte ends with
    # an error event; storing responses needs Redis (503 while it is down).
    checks: Checks = {
        "never": never(both),
        "chat and embeddings": both.where(
            lambda o: o.kind in ("chat", "embed")).unexpected({"2xx"}),
        "documented": both.unexpected({"2xx", "503", "stream_error"}),
    }
    record("soak", f"mixed traffic with faults, {'long' if LONG else 'fast'} run",
           inputs=len(both.outcomes), served=served_by_contract(both, checks),
           errors=both.errors(), lost=lost,
           rss_drift_mib=rss_drift, fd_drift=fd_drift,
           note=f"{7.5 * WARMUP_PHASE:.0f}s warm-up, {CYCLES} fault cycle(s) of 30s (storm, "
                f"cut streams, redis restart); RSS {rss0:.0f}->{rss1:.0f} MiB (peak "
                f"{peak:.0f}), fds {fds0}->{fds1}; bounds {RSS_BOUND_MIB:.0f} MiB, {FD_BOUND} fds")

    assert a.faulted() > 0
    assert_contract(checks)
    assert ready == 200
    assert lost == 0
    assert rss_drift <= RSS_BOUND_MIB, (rss0, rss1, samples)
    assert fd_drift <= FD_BOUND, (fds0, fds1, samples)
