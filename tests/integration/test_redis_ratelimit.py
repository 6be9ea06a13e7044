"""Rate limiters against a real redis-server.

First the contract both implementations keep (on real time, the local one on the
wall clock so both see the same minutes); then what only Redis gives: separate OS
processes, each with its own client, enforce ONE limit; and a Redis outage fails
open, counted and logged once, until Redis is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from gateway.tenancy.limits.base import RateLimiter
from gateway.tenancy.limits.local import CONCURRENCY_RETRY, LocalRateLimiter
from gateway.tenancy.limits.redis import RedisRateLimiter
from gateway.tenancy.models import Limits
from tests.servers import RedisServer

ROOT = Path(__file__).resolve().parent.parent.parent


def client(server: RedisServer) -> Redis:
    return Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)


async def away_from_a_minute_boundary(margin: float = 2.0) -> None:
    """Minute windows roll on the minute: keep a short test inside one minute."""
    into = time.time() % 60
    if into > 60 - margin:
        await asyncio.sleep(60 - into + 0.05)


def seconds_to_utc_midnight() -> float:
    return 86400 - time.time() % 86400


@dataclass
class Kind:
    make: Callable[..., RateLimiter]
    stored: Callable[[], Awaitable[int]]  # how much state is held


@pytest.fixture(params=["local", "redis"])
async def kind(request: pytest.FixtureRequest) -> AsyncIterator[Kind]:
    if request.param == "local":
        made: list[LocalRateLimiter] = []

        def make_local(**kwargs: Any) -> RateLimiter:
            made.append(LocalRateLimiter(clock=time.time, **kwargs))
            return made[-1]

        async def held_local() -> int:
            return sum(len(m) for m in made)

        yield Kind(make_local, held_local)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    redis = client(server)

    async def held_redis() -> int:
        return int(await redis.dbsize())

    made_redis: list[RedisRateLimiter] = []

    def make_redis(**kwargs: Any) -> RateLimiter:
        made_redis.append(RedisRateLimiter(redis, **kwargs))
        return made_redis[-1]

    yield Kind(make_redis, held_redis)
    for limiter in made_redis:
        await limiter.aclose()  # its own pipelined connection
    await redis.aclose()


async def test_no_limits_allow_everything_and_store_nothing(kind: Kind) -> None:
    limiter = kind.make()
    for _ in range(20):
        decision = await limiter.acquire("ip:10.0.0.1", Limits())
        assert decision.allowed and decision.lease == "" and decision.limit == 0
    await limiter.charge("ip:10.0.0.1", Limits(), 100)
    await limiter.charge("ip:10.0.0.1", Limits(requests_per_minute=1, concurrent_requests=1), 100)
    await limiter.release("ip:10.0.0.1", "")
    assert await kind.stored() == 0


async def test_token_bucket(kind: Kind) -> None:
    limiter = kind.make()
    limits = Limits(requests_per_second=1, burst=3)
    seen = [await limiter.acquire("s", limits) for _ in range(3)]
    assert all(d.allowed for d in seen)
    assert [(d.limit, d.remaining) for d in seen] == [(3, 2), (3, 1), (3, 0)]
    assert 2.5 < seen[-1].reset_after <= 3.0
    refused = await limiter.acquire("s", limits)
    assert (refused.allowed, refused.scope, refused.lease) == (False, "rps", "")
    assert 0.5 < refused.retry_after <= 1.01

    fast = Limits(requests_per_second=20, burst=1)
    assert (await limiter.acquire("f", fast)).allowed
    refused = await limiter.acquire("f", fast)
    assert refused.scope == "rps" and 0 < refused.retry_after <= 0.051
    await asyncio.sleep(refused.retry_after + 0.01)
    assert (await limiter.acquire("f", fast)).allowed


async def test_requests_per_minute(kind: Kind) -> None:
    await away_from_a_minute_boundary()
    limiter = kind.make()
    limits = Limits(requests_per_minute=3)
    seen = [await limiter.acquire("s", limits) for _ in range(3)]
    assert all(d.allowed for d in seen)
    assert [(d.limit, d.remaining) for d in seen] == [(3, 2), (3, 1), (3, 0)]
    assert all(60 < d.reset_after <= 120 for d in seen)
    refused = await limiter.acquire("s", limits)
    assert (refused.allowed, refused.scope, refused.remaining) == (False, "rpm", 0)
    assert 0 < refused.retry_after <= 60.01  # this minute's end: it alone is full
    assert (await limiter.acquire("other", limits)).allowed  # per subject


async def test_tokens_per_minute_charged_refuse(kind: Kind) -> None:
    await away_from_a_minute_boundary()
    limiter = kind.make()
    limits = Limits(tokens_per_minute=100, requests_per_minute=50)
    assert (await limiter.acquire("s", limits)).allowed
    await limiter.charge("s", limits, 99)
    ok = await limiter.acquire("s", limits)  # checked, not taken
    assert ok.allowed and (ok.limit, ok.remaining) == (50, 48)
    await limiter.charge("s", limits, 1)
    refused = await limiter.acquire("s", limits)
    assert (refused.allowed, refused.scope) == (False, "tpm")
    assert 0 < refused.retry_after <= 60.01
    assert refused.remaining == 48  # the refusal took no request


async def test_daily_quota_refuses_until_utc_midnight(kind: Kind) -> None:
    limiter = kind.make()
    limits = Limits(daily_token_quota=1000)
    await limiter.charge("s", limits, 999)
    assert (await limiter.acquire("s", limits)).allowed
    await limiter.charge("s", limits, 1)
    refused = await limiter.acquire("s", limits)
    assert (refused.allowed, refused.scope) == (False, "daily_tokens")
    assert refused.retry_after == pytest.approx(seconds_to_utc_midnight(), abs=2)


async def test_concurrency_leases(kind: Kind) -> None:
    limiter = kind.make()
    limits = Limits(concurrent_requests=2)
    one, two = await limiter.acquire("s", limits), await limiter.acquire("s", limits)
    assert one.allowed and two.allowed and "" != one.lease != two.lease != ""
    refused = await limiter.acquire("s", limits)
    assert (refused.allowed, refused.scope, refused.lease) == (False, "concurrency", "")
    assert refused.retry_after == CONCURRENCY_RETRY
    await limiter.release("s", "not-a-lease")
    await limiter.release("t", one.lease)
    assert not (await limiter.acquire("s", limits)).allowed
    await limiter.release("s", one.lease)
    await limiter.release("s", one.lease)
    assert (await limiter.acquire("s", limits)).allowed
    assert not (await limiter.acquire("s", limits)).allowed


async def test_leases_expire(kind: Kind) -> None:
    limiter = kind.make(lease_ttl=0.3)
    limits = Limits(concurrent_requests=1)
    assert (await limiter.acquire("s", limits)).allowed  # never released: a crashed replica
    assert not (await limiter.acquire("s", limits)).allowed
    await asyncio.sleep(0.35)
    assert (await limiter.acquire("s", limits)).allowed


async def test_all_or_nothing(kind: Kind) -> None:
    await away_from_a_minute_boundary()
    limiter = kind.make()
    limits = Limits(requests_per_second=0.01, burst=5, requests_per_minute=3,
                    concurrent_requests=1)
    held = await limiter.acquire("s", limits)
    assert held.allowed and held.remaining == 2
    for _ in range(5):
        refused = await limiter.acquire("s", limits)
        assert refused.scope == "concurrency" and refused.remaining == 2
    await limiter.release("s", held.lease)
    second = await limiter.acquire("s", limits)
    assert second.allowed and second.remaining == 1
    await limiter.release("s", second.lease)
    bucket_only = await limiter.acquire("s", Limits(requests_per_second=0.01, burst=5))
    assert bucket_only.remaining == 2  # 5 - 3 taken: the refusals took no token


async def test_longest_wait_names_the_refusal(kind: Kind) -> None:
    limiter = kind.make()
    limits = Limits(daily_token_quota=10, concurrent_requests=1)
    assert (await limiter.acquire("s", limits)).allowed
    assert (await limiter.acquire("s", limits)).scope == "concurrency"
    await limiter.charge("s", limits, 10)
    assert (await limiter.acquire("s", limits)).scope == "daily_tokens"


async def test_subjects_are_opaque(kind: Kind) -> None:
    limiter = kind.make()
    limits = Limits(requests_per_second=0.01, burst=1)
    subjects = ["tenant:ten_x", "ip:1.2.3.4", "ip:2001:db8::1", "a{b}c", "}{", "日本", ""]
    for subject in subjects:
        assert (await limiter.acquire(subject, limits)).allowed
    for subject in subjects:
        assert not (await limiter.acquire(subject, limits)).allowed


# ---- Redis only ----------------------------------------------------------------------

async def test_one_script_per_acquire_and_every_key_expires(redis_server: RedisServer) -> None:
    redis = client(redis_server)
    limiter = RedisRateLimiter(redis, lease_ttl=600)
    limits = Limits(requests_per_second=5, requests_per_minute=60, tokens_per_minute=1000,
                    concurrent_requests=3, daily_token_quota=10_000)
    try:
        await limiter.acquire("s", limits)  # loads the script
        await redis.config_resetstat()
        for _ in range(5):
            await limiter.acquire("s", limits)
        stats = await redis.info("commandstats")
        assert stats["cmdstat_evalsha"]["calls"] == 5
        assert "cmdstat_eval" not in stats and "cmdstat_script|load" not in stats
        await limiter.charge("s", limits, 100)

        keys = sorted(await redis.keys("*"))
        assert keys == [b"llmgw:rl:{s}", b"llmgw:rl:{s}:c", b"llmgw:rl:{s}:d"]
        assert 0 < await redis.pttl("llmgw:rl:{s}") <= 121_000
        assert 599_000 < await redis.pttl("llmgw:rl:{s}:c") <= 600_000
        seconds, _ = await redis.time()
        midnight_ms = (seconds // 86400 + 1) * 86400 * 1000
        assert await redis.pexpiretime("llmgw:rl:{s}:d") == midnight_ms
        await limiter.aclose()
        assert await redis.ping()  # the shared client stays open
    finally:
        await redis.aclose()


CHILD = """
import asyncio, json, sys
from redis.asyncio import Redis
from gateway.tenancy.limits.redis import RedisRateLimiter
from gateway.tenancy.models import Limits

async def main(url, subject, limits, op, n):
    redis = Redis.from_url(url)
    limiter = RedisRateLimiter(redis)
    await redis.ping()
    print("ready", flush=True)
    sys.stdin.readline()
    limits = Limits(**limits)
    decisions = []
    if op == "charge":
        await limiter.charge(subject, limits, n)
    else:
        decisions = await asyncio.gather(*(limiter.acquire(subject, limits) for _ in range(n)))
    print(json.dumps({"allowed": sum(d.allowed for d in decisions),
                      "leases": [d.lease for d in decisions if d.lease],
                      "degraded": limiter.degraded}), flush=True)
    await limiter.aclose()
    await redis.aclose()

asyncio.run(main(*json.loads(sys.argv[1])))
"""


def run_processes(server: RedisServer, jobs: list[tuple[str, dict[str, int], str, int]],
                  ) -> list[dict[str, Any]]:
    """Start one process per job, let each connect, then release them all at once."""
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, json.dumps([server.url, *job])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for job in jobs]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line == "ready\n", proc.communicate(timeout=10)[1]
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            results.append(json.loads(out))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def test_three_processes_share_one_requests_per_minute_limit(
    redis_server: RedisServer,
) -> None:
    await away_from_a_minute_boundary(5)
    jobs = [("tenant:shared", {"requests_per_minute": 30}, "acquire", 60)] * 3
    results = await asyncio.to_thread(run_processes, redis_server, jobs)
    accepted = [r["allowed"] for r in results]
    assert 27 <= sum(accepted) <= 33, accepted  # one limit, not three times it
    assert not any(r["degraded"] for r in results)


async def test_concurrency_is_shared_across_processes(redis_server: RedisServer) -> None:
    jobs = [("tenant:c", {"concurrent_requests": 2}, "acquire", 3)] * 3
    results = await asyncio.to_thread(run_processes, redis_server, jobs)
    leases = [lease for r in results for lease in r["leases"]]
    assert sum(r["allowed"] for r in results) == 2 and len(set(leases)) == 2
    redis = client(redis_server)
    limiter = RedisRateLimiter(redis)
    try:
        assert not (await limiter.acquire("tenant:c", Limits(concurrent_requests=2))).allowed
        await limiter.release("tenant:c", leases[0])  # another replica gives a slot back
        assert (await limiter.acquire("tenant:c", Limits(concurrent_requests=2))).allowed
    finally:
        await limiter.aclose()
        await redis.aclose()


async def test_tokens_charged_by_one_process_refuse_another(redis_server: RedisServer) -> None:
    await away_from_a_minute_boundary()
    limits = Limits(tokens_per_minute=500)
    redis = client(redis_server)
    limiter = RedisRateLimiter(redis)
    try:
        assert (await limiter.acquire("tenant:t", limits)).allowed
        await asyncio.to_thread(run_processes, redis_server,
                                [("tenant:t", {"tokens_per_minute": 500}, "charge", 600)])
        refused = await limiter.acquire("tenant:t", limits)
        assert (refused.allowed, refused.scope) == (False, "tpm")
    finally:
        await limiter.aclose()
        await redis.aclose()


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def fail_opens() -> float:
    return REGISTRY.get_sample_value("gateway_rate_limit_fail_open_total") or 0.0


async def test_redis_outage_fails_open_and_recovers(
    redis_server: RedisServer
) -> None:
    await away_from_a_minute_boundary(8)
    records = Records()
    logger = logging.getLogger("gateway.tenancy")
    logger.addHandler(records)
    redis = client(redis_server)
    limiter = RedisRateLimiter(redis, retry_after=0.2)
    limits = Limits(requests_per_minute=2, concurrent_requests=5)
    try:
        assert [(await limiter.acquire("s", limits)).allowed for _ in range(3)] == [
            True, True, False]
        assert not limiter.degraded

        redis_server.stop()
        before = fail_opens()
        opened = [await limiter.acquire("s", limits) for _ in range(3)]
        assert all(d.allowed and d.scope == "" and d.lease == "" for d in opened)
        assert limiter.degraded
        assert fail_opens() == before + 3
        await limiter.charge("s", Limits(tokens_per_minute=1), 10)  # lost, no error
        await limiter.release("s", "some-lease")
        await asyncio.sleep(0.25)
        assert (await limiter.acquire("s", limits)).allowed  # tried Redis again: still down
        assert fail_opens() == before + 4
        warnings = [r for r in records.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "redis" in warnings[0].getMessage()

        redis_server.start()  # empty: no persistence
        await asyncio.sleep(0.25)
        assert [(await limiter.acquire("s", limits)).allowed for _ in range(3)] == [
            True, True, False]  # enforced again
        assert not limiter.degraded
        assert fail_opens() == before + 4
    finally:
        logger.removeHandler(records)
        await limiter.aclose()
        await redis.aclose()
