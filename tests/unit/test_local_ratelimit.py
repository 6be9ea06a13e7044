"""The in-process rate limiter on fake clocks: each limit, all-or-nothing, retry_after,
the header fields, leases, the daily reset and the memory bound."""

from __future__ import annotations

import pytest

from gateway.tenancy.limits.local import (
    CONCURRENCY_RETRY,
    DAY,
    MARGIN,
    LocalRateLimiter,
)
from gateway.tenancy.models import Limits

START = 6_000_000.0  # monotonic seconds, on a minute boundary
MIDNIGHT = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def wall() -> Clock:
    return Clock(MIDNIGHT + 3600)


@pytest.fixture
def limiter(clock: Clock, wall: Clock) -> LocalRateLimiter:
    return LocalRateLimiter(clock=clock, wall=wall)


def advance(clock: Clock, wall: Clock, seconds: float) -> None:
    clock.now += seconds
    wall.now += seconds


def test_no_limits_allow_everything_and_keep_no_state(limiter: LocalRateLimiter) -> None:
    for _ in range(100):
        decision = limiter.acquire_now("ip:1.2.3.4", Limits())
        assert decision.allowed and decision.lease == ""
        assert (decision.limit, decision.remaining, decision.reset_after) == (0, 0, 0.0)
    limiter.charge_now("ip:1.2.3.4", Limits(), 1000)
    limiter.charge_now("ip:1.2.3.4", Limits(requests_per_minute=5), 1000)
    assert len(limiter) == 0


def test_bucket_refills_continuously(limiter: LocalRateLimiter, clock: Clock,
                                     wall: Clock) -> None:
    limits = Limits(requests_per_second=2, burst=3)
    seen = [limiter.acquire_now("s", limits) for _ in range(3)]
    assert all(d.allowed for d in seen)
    assert [(d.limit, d.remaining) for d in seen] == [(3, 2), (3, 1), (3, 0)]
    assert seen[-1].reset_after == pytest.approx(1.5)  # 3 tokens at 2/s
    refused = limiter.acquire_now("s", limits)
    assert (refused.allowed, refused.scope) == (False, "rps")
    assert refused.retry_after == pytest.approx(0.5 + MARGIN)
    advance(clock, wall, 0.25)
    assert limiter.acquire_now("s", limits).retry_after == pytest.approx(0.25 + MARGIN)
    advance(clock, wall, 0.25 + MARGIN)
    assert limiter.acquire_now("s", limits).allowed
    assert not limiter.acquire_now("s", limits).allowed
    advance(clock, wall, 100)  # full again, and never above the burst
    assert [limiter.acquire_now("s", limits).allowed for _ in range(4)] == [True] * 3 + [False]


def test_burst_defaults_to_the_rate_rounded_up(limiter: LocalRateLimiter) -> None:
    assert sum(limiter.acquire_now("a", Limits(requests_per_second=2.5)).allowed
               for _ in range(10)) == 3
    assert sum(limiter.acquire_now("b", Limits(requests_per_second=0.2)).allowed
               for _ in range(10)) == 1


def test_requests_per_minute_slide(limiter: LocalRateLimiter, clock: Clock, wall: Clock) -> None:
    limits = Limits(requests_per_minute=10)
    seen = [limiter.acquire_now("s", limits) for _ in range(10)]
    assert all(d.allowed for d in seen)
    assert [d.remaining for d in seen] == list(range(9, -1, -1))
    assert all(d.limit == 10 and d.reset_after == pytest.approx(120) for d in seen)
    advance(clock, wall, 30)
    refused = limiter.acquire_now("s", limits)
    assert (refused.allowed, refused.scope, refused.remaining) == (False, "rpm", 0)
    assert refused.retry_after == pytest.approx(30 + MARGIN)  # this minute alone is full
    assert refused.reset_after == pytest.approx(90)
    advance(clock, wall, refused.retry_after)
    # Next minute: the last one's 10 weigh (60 - elapsed) / 60, so one more fits...
    assert limiter.acquire_now("s", limits).allowed
    refused = limiter.acquire_now("s", limits)
    assert refused.scope == "rpm"
    # ...and then one every 6 seconds as the previous minute fades.
    assert refused.retry_after == pytest.approx(6.0, abs=2 * MARGIN)
    advance(clock, wall, refused.retry_after)
    assert limiter.acquire_now("s", limits).allowed
    advance(clock, wall, 120)  # two minutes idle: all forgotten
    assert sum(limiter.acquire_now("s", limits).allowed for _ in range(12)) == 10


def test_tokens_per_minute_are_charged_then_checked(limiter: LocalRateLimiter, clock: Clock,
                                                   wall: Clock) -> None:
    limits = Limits(tokens_per_minute=100)
    assert limiter.acquire_now("s", limits).allowed
    limiter.charge_now("s", limits, 99)
    assert limiter.acquire_now("s", limits).allowed  # 99 < 100; acquire takes none
    assert limiter.acquire_now("s", limits).allowed
    advance(clock, wall, 15)
    limiter.charge_now("s", limits, 1)
    refused = limiter.acquire_now("s", limits)
    assert (refused.allowed, refused.scope) == (False, "tpm")
    assert refused.retry_after == pytest.approx(45 + MARGIN)
    # No request limit: the headers are empty.
    assert (refused.limit, refused.remaining) == (0, 0)
    advance(clock, wall, 45 + MARGIN)
    assert limiter.acquire_now("s", limits).allowed


def test_a_large_charge_waits_into_the_next_minute(limiter: LocalRateLimiter) -> None:
    limits = Limits(tokens_per_minute=1000)
    limiter.charge_now("s", limits, 4000)
    refused = limiter.acquire_now("s", limits)
    # 4000 * (60 - t) / 60 < 1000 from 45 s into the next minute.
    assert refused.retry_after == pytest.approx(60 + 45 + MARGIN)


def test_daily_quota_resets_at_utc_midnight(limiter: LocalRateLimiter, clock: Clock,
                                            wall: Clock) -> None:
    limits = Limits(daily_token_quota=1000)
    wall.now = MIDNIGHT + DAY - 100  # 23:58:20
    limiter.charge_now("s", limits, 600)
    assert limiter.acquire_now("s", limits).allowed
    limiter.charge_now("s", limits, 400)
    refused = limiter.acquire_now("s", limits)
    assert (refused.allowed, refused.scope) == (False, "daily_tokens")
    assert refused.retry_after == pytest.approx(100 + MARGIN)
    advance(clock, wall, 99)
    assert not limiter.acquire_now("s", limits).allowed
    advance(clock, wall, 1 + MARGIN)
    assert limiter.acquire_now("s", limits).allowed
    limiter.charge_now("s", limits, 999)
    assert limiter.acquire_now("s", limits).allowed


def test_concurrency_leases(limiter: LocalRateLimiter) -> None:
    limits = Limits(concurrent_requests=2)
    one, two = limiter.acquire_now("s", limits), limiter.acquire_now("s", limits)
    assert one.allowed and two.allowed and one.lease and two.lease and one.lease != two.lease
    refused = limiter.acquire_now("s", limits)
    assert (refused.allowed, refused.scope, refused.lease) == (False, "concurrency", "")
    assert refused.retry_after == CONCURRENCY_RETRY
    limiter.release_now("s", "")  # no-ops
    limiter.release_now("s", "nope")
    limiter.release_now("other", one.lease)
    assert not limiter.acquire_now("s", limits).allowed
    limiter.release_now("s", one.lease)
    limiter.release_now("s", one.lease)  # twice frees one slot only
    three = limiter.acquire_now("s", limits)
    assert three.allowed and three.lease
    assert not limiter.acquire_now("s", limits).allowed


def test_leases_expire(clock: Clock, wall: Clock) -> None:
    limiter = LocalRateLimiter(lease_ttl=600, clock=clock, wall=wall)
    limits = Limits(concurrent_requests=2)
    assert limiter.acquire_now("s", limits).allowed
    advance(clock, wall, 300)
    assert limiter.acquire_now("s", limits).allowed
    advance(clock, wall, 299)
    assert not limiter.acquire_now("s", limits).allowed
    advance(clock, wall, 1)  # the first lease ran out: a crashed request frees its slot
    assert limiter.acquire_now("s", limits).allowed
    assert not limiter.acquire_now("s", limits).allowed


def test_acquire_is_all_or_nothing(limiter: LocalRateLimiter) -> None:
    limits = Limits(requests_per_second=1, burst=5, requests_per_minute=3, concurrent_requests=1)
    held = limiter.acquire_now("s", limits)
    assert held.allowed and held.remaining == 2
    for _ in range(10):
        refused = limiter.acquire_now("s", limits)
        assert refused.scope == "concurrency"
        assert refused.remaining == 2  # the refusals took no request...
    limiter.release_now("s", held.lease)
    second = limiter.acquire_now("s", limits)
    assert second.allowed and second.remaining == 1
    limiter.release_now("s", second.lease)
    # ...nor tokens: 5 - held - second - this one.
    assert limiter.acquire_now("s", Limits(requests_per_second=1, burst=5)).remaining == 2


def test_the_longest_wait_names_the_refusal(limiter: LocalRateLimiter) -> None:
    limits = Limits(requests_per_second=2, burst=1, daily_token_quota=10, concurrent_requests=1)
    assert limiter.acquire_now("s", limits).allowed
    refused = limiter.acquire_now("s", limits)
    assert refused.scope == "concurrency" and refused.retry_after == CONCURRENCY_RETRY
    limiter.charge_now("s", limits, 10)
    refused = limiter.acquire_now("s", limits)
    assert refused.scope == "daily_tokens" and refused.retry_after > 3600


def test_headers_follow_requests_per_minute_over_the_bucket(limiter: LocalRateLimiter) -> None:
    decision = limiter.acquire_now("s", Limits(requests_per_second=5, burst=10,
                                               requests_per_minute=100))
    assert (decision.limit, decision.remaining) == (100, 99)
    decision = limiter.acquire_now("t", Limits(concurrent_requests=3))
    assert (decision.limit, decision.remaining, decision.reset_after) == (0, 0, 0.0)


def test_subjects_are_independent(limiter: LocalRateLimiter) -> None:
    limits = Limits(requests_per_minute=1)
    assert limiter.acquire_now("tenant:a", limits).allowed
    assert not limiter.acquire_now("tenant:a", limits).allowed
    assert limiter.acquire_now("tenant:b", limits).allowed


def test_idle_subjects_are_forgotten(limiter: LocalRateLimiter, clock: Clock,
                                     wall: Clock) -> None:
    busy = Limits(requests_per_second=1, burst=2, requests_per_minute=10)
    for i in range(3000):
        limiter.acquire_now(f"ip:{i}", busy)
    limiter.charge_now("tenant:daily", Limits(daily_token_quota=100), 5)
    held = limiter.acquire_now("tenant:held", Limits(concurrent_requests=1))
    assert len(limiter) == 3002
    advance(clock, wall, 121)
    for _ in range(3002):  # a sweep runs within max(1024, subjects) calls
        limiter.acquire_now("ip:new", busy)
    # Left: the one in use, today's charge and the held lease.
    assert len(limiter) == 3
    limiter.release_now("tenant:held", held.lease)
    wall.now = MIDNIGHT + DAY
    limiter.sweep()
    assert len(limiter) == 1
    charged = limiter.acquire_now("tenant:daily", Limits(daily_token_quota=5))
    assert charged.allowed  # a new day: forgetting lost nothing


@pytest.mark.asyncio
async def test_the_protocol_methods(limiter: LocalRateLimiter) -> None:
    limits = Limits(concurrent_requests=1, tokens_per_minute=10)
    decision = await limiter.acquire("s", limits)
    assert decision.allowed
    await limiter.charge("s", limits, 10)
    await limiter.release("s", decision.lease)
    assert (await limiter.acquire("s", limits)).scope == "tpm"
    await limiter.aclose()
    assert len(limiter) == 0


def test_a_reservation_is_taken_with_the_request_and_settled_after(
        limiter: LocalRateLimiter) -> None:
    limits = Limits(tokens_per_minute=1000, daily_token_quota=5000)
    assert limiter.acquire_now("s", limits, reserve=600).allowed
    assert limiter.acquire_now("s", limits, reserve=600).allowed  # 600 < 1000: admitted
    third = limiter.acquire_now("s", limits, reserve=600)  # 1200 reserved: refused
    assert not third.allowed and third.scope == "tpm"
    limiter.charge_now("s", limits, 10 - 600)  # the first used 10: the rest given back
    assert limiter.acquire_now("s", limits, reserve=600).allowed  # 610 < 1000
    limiter.charge_now("s", limits, -100_000)  # a refund never goes below zero
    assert limiter.acquire_now("s", Limits(daily_token_quota=1), reserve=1).allowed


def test_a_refused_request_reserves_nothing(limiter: LocalRateLimiter) -> None:
    limits = Limits(tokens_per_minute=1000, requests_per_minute=1)
    assert limiter.acquire_now("s", limits, reserve=10).allowed
    assert not limiter.acquire_now("s", limits, reserve=900).allowed  # rpm refuses
    assert limiter.acquire_now("s", Limits(tokens_per_minute=1000), reserve=1).allowed  # 10 held


def test_a_refund_reaches_the_minute_the_reservation_was_made_in(
        limiter: LocalRateLimiter, clock: Clock) -> None:
    limits = Limits(tokens_per_minute=1000)
    assert limiter.acquire_now("s", limits, reserve=900).allowed
    clock.now += 59.9  # the minute turns while the request runs: 900 weigh on the next
    clock.now += 0.2
    limiter.charge_now("s", limits, 10 - 900)  # settled: 890 back, out of the minute before
    assert limiter.acquire_now("s", limits, reserve=900).allowed
    assert limiter.acquire_now("s", limits, reserve=1).allowed  # ~10 weigh + 900 < 1000
