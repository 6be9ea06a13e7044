"""The local circuit breaker's state machine, on a fake clock."""

from __future__ import annotations

import pytest

from gateway.config import CircuitBreakerConfig
from gateway.resilience import BreakerState, LocalBreaker, Outcome


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **overrides: float) -> tuple[LocalBreaker, list[tuple[str, str]]]:
    cfg = CircuitBreakerConfig(**{"consecutive_failures": 3, "failure_ratio": 0.5,  # type: ignore[arg-type]
                                  "min_requests": 4, "interval": 30, "open_timeout": 10,
                                  "half_open_requests": 2, **overrides})
    seen: list[tuple[str, str]] = []
    breaker = LocalBreaker("p", cfg, clock=clock,
                           on_transition=lambda n, a, b: seen.append((a.name, b.name)))
    return breaker, seen


def fail(breaker: LocalBreaker, n: int = 1) -> None:
    for _ in range(n):
        permit = breaker.allow_now()
        assert permit is not None
        breaker.record_now(permit, Outcome.FAILURE)


def succeed(breaker: LocalBreaker, n: int = 1) -> None:
    for _ in range(n):
        permit = breaker.allow_now()
        assert permit is not None
        breaker.record_now(permit, Outcome.SUCCESS)


def test_consecutive_failures_open_it() -> None:
    breaker, seen = make(Clock(), min_requests=100)
    fail(breaker, 2)
    succeed(breaker)  # resets the run
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker)
    assert breaker.state is BreakerState.OPEN
    assert seen == [("CLOSED", "OPEN")]
    assert breaker.allow_now() is None


def test_failure_ratio_needs_the_minimum_requests() -> None:
    breaker, _ = make(Clock(), consecutive_failures=100)
    fail(breaker)
    succeed(breaker)
    fail(breaker)  # 2 of 3: ratio met, but only 3 requests
    assert breaker.state is BreakerState.CLOSED
    succeed(breaker)  # 2 of 4 = 0.5 with 4 requests... recorded as success: no trip
    assert breaker.state is BreakerState.CLOSED
    fail(breaker)  # 3 of 5 >= 0.5
    assert breaker.state is BreakerState.OPEN


def test_counts_reset_after_the_interval() -> None:
    clock = Clock()
    breaker, _ = make(clock, consecutive_failures=100)
    fail(breaker, 2)
    succeed(breaker)  # 2 of 3: below min_requests
    clock.now += 31  # a new window: the old counts are gone
    fail(breaker)  # 1 of 1 here; 3 of 4 had the window not reset
    assert breaker.state is BreakerState.CLOSED
    assert (breaker.snapshot_now().requests, breaker.snapshot_now().failures) == (1, 1)


def test_open_then_half_open_probes_then_closed() -> None:
    clock = Clock()
    breaker, seen = make(clock)
    fail(breaker, 3)
    clock.now += 9.9
    assert breaker.allow_now() is None
    clock.now += 0.2
    first, second = breaker.allow_now(), breaker.allow_now()
    assert first is not None and second is not None and first.half_open
    assert breaker.allow_now() is None  # only two probes at once
    breaker.record_now(first, Outcome.SUCCESS)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record_now(second, Outcome.SUCCESS)
    assert breaker.state is BreakerState.CLOSED
    assert seen == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


def test_a_failed_probe_opens_it_again() -> None:
    clock = Clock()
    breaker, seen = make(clock)
    fail(breaker, 3)
    clock.now += 11
    probe = breaker.allow_now()
    assert probe is not None
    breaker.record_now(probe, Outcome.FAILURE)
    assert breaker.state is BreakerState.OPEN
    assert breaker.allow_now() is None  # a fresh open timeout
    assert seen[-1] == ("HALF_OPEN", "OPEN")


def test_ignored_outcomes_free_probe_slots_and_count_for_nothing() -> None:
    clock = Clock()
    breaker, _ = make(clock, half_open_requests=1)
    fail(breaker, 3)
    clock.now += 11
    probe = breaker.allow_now()
    assert probe is not None and breaker.allow_now() is None
    breaker.record_now(probe, Outcome.IGNORED)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow_now() is not None  # the slot is free again


def test_stale_permits_cannot_move_the_new_state() -> None:
    clock = Clock()
    breaker, _ = make(clock)
    old = breaker.allow_now()
    assert old is not None
    fail(breaker, 3)
    clock.now += 11
    probe = breaker.allow_now()
    assert probe is not None
    breaker.record_now(old, Outcome.FAILURE)  # from before the transitions: ignored
    assert breaker.state is BreakerState.HALF_OPEN


@pytest.mark.asyncio
async def test_reset_closes_and_snapshot_reports() -> None:
    clock = Clock()
    breaker, seen = make(clock)
    fail(breaker, 3)
    snap = await breaker.snapshot()
    assert snap.state is BreakerState.OPEN and snap.opened_at > 0
    await breaker.reset()
    assert (await breaker.snapshot()).state is BreakerState.CLOSED
    assert seen[-1] == ("OPEN", "CLOSED")
