"""The resilience pipeline with fake operations: retries, backoff, fallbacks, deadlines."""

from __future__ import annotations

import random

import pytest

from gateway.config import CircuitBreakerConfig
from gateway.errors import (
    DeadlineExceededError,
    UnavailableError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
)
from gateway.resilience import BreakerBoard, LocalBreaker, Outcome, Pipeline, RetryPolicy
from gateway.resilience.breaker import Breaker
from gateway.resilience.pipeline import Candidate


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Script:
    """Answers per deployment: a list of exceptions or values, consumed in order."""

    def __init__(self, clock: Clock, answers: dict[str, list[object]], cost: float = 0.0):
        self.clock = clock
        self.answers = answers
        self.calls: list[tuple[str, float]] = []
        self.cost = cost

    async def __call__(self, name: str, timeout: float) -> str:
        self.calls.append((name, timeout))
        self.clock.now += self.cost
        answer = self.answers[name].pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return str(answer)


def pipeline(clock: Clock, attempts: int = 3, **cb: float) -> tuple[Pipeline, list[float]]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds

    cfg = CircuitBreakerConfig(**{"consecutive_failures": 100, "min_requests": 100, **cb})  # type: ignore[arg-type]

    def factory(name: str) -> Breaker:
        return LocalBreaker(name, cfg, clock=clock)

    retry = RetryPolicy(attempts=attempts, backoff=0.1, max_backoff=2.0, rng=random.Random(1))
    return Pipeline(BreakerBoard(factory), retry, sleep=sleep, clock=clock), sleeps


def cands(*names: str, timeout: float = 30) -> list[Candidate[str]]:
    return [Candidate(n, n, timeout) for n in names]


def err(provider: str = "a", **kw: object) -> UpstreamError:
    return UpstreamError("boom", provider=provider, **kw)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_retries_then_succeeds_with_jittered_backoff() -> None:
    clock = Clock()
    pipe, sleeps = pipeline(clock)
    op = Script(clock, {"a": [err(), err(), "ok"]})
    result, chosen, _ = await pipe.run(cands("a"), op)
    assert (result, chosen.item) == ("ok", "a")
    assert [c[0] for c in op.calls] == ["a", "a", "a"]
    assert 0 <= sleeps[0] <= 0.1 and 0 <= sleeps[1] <= 0.2


@pytest.mark.asyncio
async def test_full_jitter_stays_within_its_bounds() -> None:
    policy = RetryPolicy(attempts=10, backoff=0.1, max_backoff=1.0, rng=random.Random(7))
    for attempt in range(1, 8):
        ceiling = min(1.0, 0.1 * 2 ** (attempt - 1))
        delays = [policy.delay(attempt, None) for _ in range(500)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # and it uses the range
    assert policy.delay(3, retry_after=1.5) == 1.5


@pytest.mark.asyncio
async def test_retry_after_is_honoured() -> None:
    clock = Clock()
    pipe, sleeps = pipeline(clock)
    op = Script(clock, {"a": [UpstreamRateLimitedError("slow down", provider="a",
                                                       retry_after=1.25), "ok"]})
    await pipe.run(cands("a"), op)
    assert sleeps == [1.25]


@pytest.mark.asyncio
async def test_a_long_retry_after_moves_to_the_next_deployment() -> None:
    clock = Clock()
    pipe, sleeps = pipeline(clock)
    op = Script(clock, {"a": [UpstreamRateLimitedError("x", provider="a", retry_after=30)],
                        "b": ["from b"]})
    result, chosen, _ = await pipe.run(cands("a", "b"), op)
    assert (result, sleeps) == ("from b", [])


@pytest.mark.asyncio
async def test_non_retryable_failures_move_on_at_once() -> None:
    clock = Clock()
    pipe, sleeps = pipeline(clock)
    op = Script(clock, {"a": [err(retryable=False)], "b": ["ok"]})
    result, _, _ = await pipe.run(cands("a", "b"), op)
    assert result == "ok" and sleeps == [] and len(op.calls) == 2


@pytest.mark.asyncio
async def test_caller_errors_stop_the_chain() -> None:
    clock = Clock()
    pipe, _ = pipeline(clock)
    op = Script(clock, {"a": [UpstreamRejectedError("bad", provider="a", status=400)],
                        "b": ["never"]})
    with pytest.raises(UpstreamRejectedError):
        await pipe.run(cands("a", "b"), op)
    assert len(op.calls) == 1
    snapshot = await pipe.board.get("a").snapshot()
    assert (snapshot.requests, snapshot.failures) == (0, 0)  # not counted


@pytest.mark.asyncio
async def test_all_failing_raises_the_last_upstream_error() -> None:
    clock = Clock()
    pipe, _ = pipeline(clock, attempts=2)
    op = Script(clock, {"a": [err("a"), err("a")], "b": [err("b"), err("b")]})
    with pytest.raises(UpstreamError) as info:
        await pipe.run(cands("a", "b"), op)
    assert info.value.provider == "b"
    assert [c[0] for c in op.calls] == ["a", "a", "b", "b"]


@pytest.mark.asyncio
async def test_open_breakers_are_skipped_and_all_open_is_unavailable() -> None:
    clock = Clock()
    pipe, _ = pipeline(clock, attempts=1, consecutive_failures=1)
    op = Script(clock, {"a": [err("a")], "b": ["b1", "b2"]})
    await pipe.run(cands("a", "b"), op)  # a fails and opens; b answers
    result, _, _ = await pipe.run(cands("a", "b"), op)
    assert result == "b2" and [c[0] for c in op.calls] == ["a", "b", "b"]
    with pytest.raises(UnavailableError) as info:
        await pipe.run(cands("a"), op)
    assert "circuit open: a" in info.value.message


@pytest.mark.asyncio
async def test_the_deadline_bounds_attempts_and_backoff() -> None:
    clock = Clock()
    pipe, sleeps = pipeline(clock, attempts=5)
    op = Script(clock, {"a": [err()] * 5}, cost=0.4)
    with pytest.raises(UpstreamError):
        await pipe.run(cands("a"), op, deadline_at=1.0)
    # Each attempt got only the time left, and no backoff crossed the deadline.
    assert all(timeout <= 1.0 for _, timeout in op.calls)
    assert clock.now - sum(sleeps) == pytest.approx(0.4 * len(op.calls))
    assert clock.now <= 1.0 + 0.4
    clock.now = 5.0
    with pytest.raises(DeadlineExceededError):
        await pipe.run(cands("a"), op, deadline_at=1.0)


@pytest.mark.asyncio
async def test_hold_defers_the_success_report() -> None:
    clock = Clock()
    pipe, _ = pipeline(clock, half_open_requests=1)
    op = Script(clock, {"a": ["ok"]})
    _, _, ticket = await pipe.run(cands("a"), op, hold=True)
    assert (await pipe.board.get("a").snapshot()).requests == 0
    await ticket.report(Outcome.FAILURE)
    await ticket.report(Outcome.SUCCESS)  # only the first report counts
    snap = await pipe.board.get("a").snapshot()
    assert (snap.requests, snap.failures) == (1, 1)
