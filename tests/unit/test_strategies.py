"""How each routing strategy orders a route's targets (gateway/routing/strategies.py)."""

from __future__ import annotations

import random
from collections import Counter

from gateway.config import ProviderConfig
from gateway.providers.mock import MockProvider
from gateway.routing.registry import Target
from gateway.routing.strategies import EXPLORE_EVERY, TargetStats, order

A, B, C = (Target(MockProvider(n, ProviderConfig(type="mock")), "m") for n in "abc")
TARGETS = (A, B, C)


def no_price(target: Target) -> float | None:
    return None


def firsts(strategy: str, stats: TargetStats, n: int = 2000,
           price: object = no_price) -> Counter[str]:
    rng = random.Random(7)
    return Counter(order(strategy, TARGETS, rng, stats, price)[0].provider.name  # type: ignore[arg-type]
                   for _ in range(n))


def test_ordered_keeps_the_configs_order() -> None:
    assert order("ordered", TARGETS, random.Random(1), TargetStats(), no_price) == [A, B, C]


def test_least_latency_tries_the_unmeasured_then_the_fastest_and_explores() -> None:
    stats = TargetStats()
    stats.observed(A.label, 0.5)
    stats.observed(B.label, 0.1)
    assert firsts("least_latency", stats)["c"] > 1800  # never measured: tried first
    stats.observed(C.label, 0.3)
    counts = firsts("least_latency", stats)
    assert counts["b"] > 1850  # the fastest
    assert counts["a"] + counts["c"] == 2000 // EXPLORE_EVERY  # one in 20 explores
    for _ in range(20):  # b slows down: its average follows
        stats.observed(B.label, 2.0)
    assert firsts("least_latency", stats)["c"] > 1800


def test_least_busy_prefers_fewer_in_flight_of_two() -> None:
    stats = TargetStats()
    for _ in range(5):
        stats.started(A.label)
    counts = firsts("least_busy", stats)
    assert counts["a"] == 0  # whichever other target it is drawn with has fewer in flight
    stats.finished(A.label)
    assert stats.busy(A.label) == 4
    for _ in range(10):
        stats.finished(A.label)
    assert stats.busy(A.label) == 0  # never negative


def test_cost_puts_the_cheapest_first_and_the_unpriced_last() -> None:
    prices = {A.label: 10.0, B.label: 0.5}
    ordered = order("cost", TARGETS, random.Random(3), TargetStats(),
                    lambda t: prices.get(t.label))
    assert ordered == [B, A, C]


def test_weighted_is_the_default_spread() -> None:
    counts = firsts("weighted", TargetStats(), 3000)
    assert all(800 < counts[name] < 1200 for name in "abc")


def test_a_stale_average_is_mostly_replaced() -> None:
    now = [0.0]
    stats = TargetStats(clock=lambda: now[0])
    stats.observed(A.label, 1.0)
    now[0] += 0.01
    stats.observed(A.label, 0.0)  # right after: the sample weighs the least share
    assert stats.latency(A.label) == 0.8
    now[0] += 60  # a minute unmeasured: the next sample is nearly all that counts
    stats.observed(A.label, 0.1)
    assert abs(stats.latency(A.label) - 0.1) < 0.001  # type: ignore[operator]


def test_exploring_measures_the_stalest_target_first() -> None:
    now = [0.0]
    stats = TargetStats(clock=lambda: now[0])
    for target in (B, C, A):
        stats.observed(target.label, 0.1)
        now[0] += 1

    picks = [order("least_latency", TARGETS, random.Random(1), stats, no_price)
             for _ in range(EXPLORE_EVERY)]
    assert picks[-1] == [B, C, A]  # the 20th measures the stalest first
    assert all(p[0] in (A, B, C) for p in picks)
