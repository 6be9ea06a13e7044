"""The key pool's choices and state machine, on an injected clock."""

from __future__ import annotations

from collections import Counter

import pytest

from gateway.config import KeyConfig
from gateway.errors import UpstreamRateLimitedError
from gateway.providers.keypool import DEFAULT_REST, KeyPool, KeyState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool(*keys: KeyConfig, **kwargs: object) -> tuple[KeyPool, Clock, list[tuple[str, int]],
                                                      list[str]]:
    clock = Clock()
    states: list[tuple[str, int]] = []
    rests: list[str] = []
    p = KeyPool("up", keys, clock=clock, on_state=lambda _, k, s: states.append((k, s)),
                on_rest=lambda _, k: rests.append(k), **kwargs)  # type: ignore[arg-type]
    return p, clock, states, rests


def serve(p: KeyPool, n: int, status: int = 200) -> list[str]:
    used = []
    for _ in range(n):
        lease = p.acquire()
        used.append(lease.key.label)
        p.release(lease, status=status)
    return used


def test_requests_spread_by_weight_exactly() -> None:
    p, *_ = pool(KeyConfig("sk-aaaaaaaa", weight=3, name="big"), KeyConfig("sk-bbbbbbbb"))
    used = serve(p, 40)
    assert Counter(used) == {"big": 30, "#1": 10}
    assert used[:4].count("#1") == 1  # interleaved, not 30 then 10


def test_a_429_rests_the_key_for_retry_after_then_it_serves_again() -> None:
    p, clock, states, rests = pool(KeyConfig("sk-aaaaaaaa"), KeyConfig("sk-bbbbbbbb"))
    lease = p.acquire()
    assert lease.key.label == "#0"
    assert p.release(lease, status=429, retry_after=5.0) is True  # the key's fault
    assert rests == ["#0"] and states == [("#0", KeyState.RESTING)]
    assert serve(p, 3) == ["#1", "#1", "#1"]
    assert p.snapshot()[0].state is KeyState.RESTING
    assert p.snapshot()[0].seconds_left == 5.0
    clock.now += 5.0
    assert set(serve(p, 2)) == {"#0", "#1"}
    assert states[-1] == ("#0", KeyState.READY)


def test_a_429_without_retry_after_rests_the_default() -> None:
    p, clock, *_ = pool(KeyConfig("sk-aaaaaaaa"), KeyConfig("sk-bbbbbbbb"))
    p.release(p.acquire(), status=429)
    assert p.snapshot()[0].seconds_left == DEFAULT_REST
    clock.now += DEFAULT_REST - 0.01
    assert serve(p, 2) == ["#1", "#1"]
    clock.now += 0.01
    assert "#0" in serve(p, 2)


def test_all_keys_resting_is_a_retryable_429_with_the_soonest_wait() -> None:
    p, clock, *_ = pool(KeyConfig("sk-aaaaaaaa"), KeyConfig("sk-bbbbbbbb"))
    p.release(p.acquire(), status=429, retry_after=4)
    p.release(p.acquire(), status=429, retry_after=2)
    assert not p.can_serve()
    with pytest.raises(UpstreamRateLimitedError) as info:
        p.acquire()
    assert info.value.retryable and info.value.retry_after == 2
    assert "sk-" not in info.value.message
    clock.now += 2
    assert p.acquire().key.label == "#1"


def test_rpm_skips_a_key_at_its_limit_while_another_serves() -> None:
    p, clock, *_ = pool(KeyConfig("sk-aaaaaaaa", rpm=2, weight=100), KeyConfig("sk-bbbbbbbb"))
    assert serve(p, 4) == ["#0", "#0", "#1", "#1"]
    clock.now += 60
    assert serve(p, 1) == ["#0"]


def test_rpm_on_every_key_exhausts_the_pool_until_the_window_moves() -> None:
    p, clock, *_ = pool(KeyConfig("sk-aaaaaaaa", rpm=1))
    serve(p, 1)
    clock.now += 20
    with pytest.raises(UpstreamRateLimitedError) as info:
        p.acquire()
    assert info.value.retry_after == pytest.approx(40)
    clock.now += 40
    assert serve(p, 1) == ["#0"]


def test_tpm_counts_tokens_reported_back() -> None:
    p, clock, *_ = pool(KeyConfig("sk-aaaaaaaa", tpm=100, weight=100), KeyConfig("sk-bbbbbbbb"))
    lease = p.acquire()
    p.release(lease, status=200)
    p.charge(lease, 60)
    assert serve(p, 1) == ["#0"]  # 60 < 100: still serves
    lease = p.acquire()
    p.release(lease, status=200)
    p.charge(lease, 50)  # 110 >= 100
    assert serve(p, 2) == ["#1", "#1"]
    clock.now += 60.001
    assert serve(p, 1) == ["#0"]


def test_401_opens_the_keys_breaker_then_half_open_then_closed() -> None:
    p, clock, states, _ = pool(KeyConfig("sk-aaaaaaaa", name="old"), KeyConfig("sk-bbbbbbbb"),
                               open_timeout=30.0)
    lease = p.acquire()
    assert p.release(lease, status=401) is True
    assert states == [("old", KeyState.OPEN)]
    assert serve(p, 3) == ["#1"] * 3
    assert p.snapshot()[0].seconds_left == 30.0
    clock.now += 30
    # Half-open: one trial at a time.
    trial = p.acquire()
    assert trial.key.label == "old" and trial.probe
    assert serve(p, 2) == ["#1", "#1"]
    p.release(trial, status=200)
    assert states[-1] == ("old", KeyState.READY)
    assert "old" in serve(p, 2)


def test_a_failed_trial_reopens_and_5xx_is_not_the_keys() -> None:
    p, clock, _, _ = pool(KeyConfig("sk-aaaaaaaa"), KeyConfig("sk-bbbbbbbb"), open_timeout=10.0)
    p.release(p.acquire(), status=403)
    clock.now += 10
    trial = p.acquire()
    assert trial.probe
    p.release(trial, status=401)
    assert p.snapshot()[0].state is KeyState.OPEN and p.snapshot()[0].seconds_left == 10
    # 5xx and no answer at all say nothing about #1.
    for status in (500, 503, None):
        lease = p.acquire()
        assert lease.key.label == "#1"
        assert p.release(lease, status=status) is False
    assert p.snapshot()[1].state is KeyState.READY
    assert p.snapshot()[1].consecutive_failures == 0


def test_an_abandoned_trial_lets_the_next_request_try() -> None:
    p, clock, *_ = pool(KeyConfig("sk-aaaaaaaa", weight=100), KeyConfig("sk-bbbbbbbb"),
                        open_timeout=10.0)
    p.release(p.acquire(), status=401)
    clock.now += 10
    trial = p.acquire()
    p.release(trial, status=None)  # cancelled, or the connection failed
    assert p.acquire().probe


def test_open_after_counts_consecutive_key_failures() -> None:
    p, *_ = pool(KeyConfig("sk-aaaaaaaa"), open_after=2)
    p.release(p.acquire(), status=401)
    assert p.snapshot()[0].state is KeyState.READY
    p.release(p.acquire(), status=400)  # accepted: the count starts again
    p.release(p.acquire(), status=401)
    assert p.snapshot()[0].state is KeyState.READY
    p.release(p.acquire(), status=401)
    assert p.snapshot()[0].state is KeyState.OPEN


def test_names_not_values() -> None:
    p, *_ = pool(KeyConfig("sk-secret-aaaa", name="primary"), KeyConfig("sk-secret-bbbb"))
    assert [s.name for s in p.snapshot()] == ["primary", "#1"]
    assert "sk-secret" not in repr(p.keys) + repr(p.snapshot())
    assert "sk-secret" not in repr(KeyConfig("sk-secret-cccc"))
    assert p.secrets() == ("sk-secret-aaaa", "sk-secret-bbbb")
