"""How a model alias orders its targets: ``strategy`` in its config.

- ``weighted`` (default): weighted random order (``weight`` per target).
- ``ordered``: the targets in the order the config lists them.
- ``least_latency``: fastest first by a moving average of each target's latency (time to
  the first chunk for streams) that weighs a sample by how long its target went unmeasured
  (a stale figure is mostly replaced); targets never measured go first, and every
  :data:`EXPLORE_EVERY`-th request tries the least recently measured target first, so one
  that has recovered is noticed.
- ``least_busy``: power of two choices: of two targets drawn by weight, the one with fewer
  requests in flight first; the rest by weight.
- ``cost``: cheapest first by the price table (input plus output price per million
  tokens); targets without a price last, by weight.

Breakers, retries and fallbacks apply to whatever order this gives. The figures are this
replica's own (:class:`TargetStats`): exact for it, never shared through Redis.

Example::

    stats = TargetStats()
    targets = order("least_latency", route.targets, rng, stats, price=lambda t: None)
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from typing import get_args

from gateway.config import RoutingStrategy as Strategy
from gateway.routing.registry import Target, weighted_order

__all__ = ["EXPLORE_EVERY", "STRATEGIES", "Strategy", "TargetStats", "order"]

STRATEGIES: tuple[str, ...] = get_args(Strategy)
EXPLORE_EVERY = 20  # least_latency: one request in this many measures the stalest target
SMOOTHING = 0.2  # the least weight of a new latency sample in the moving average
MEMORY = 2.0  # seconds: a sample after this long unmeasured weighs 1 - 1/e


class TargetStats:
    """Latency (moving average, seconds, and when last measured) and requests in flight
    per target label."""

    __slots__ = ("_busy", "_clock", "_latency", "_picks")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._picks = 0
        self._latency: dict[str, tuple[float, float]] = {}
        self._busy: dict[str, int] = {}

    def started(self, label: str) -> None:
        self._busy[label] = self._busy.get(label, 0) + 1

    def finished(self, label: str) -> None:
        left = self._busy.get(label, 0) - 1
        if left > 0:
            self._busy[label] = left
        else:
            self._busy.pop(label, None)

    def observed(self, label: str, seconds: float) -> None:
        """A successful call's latency (a stream's time to its first chunk)."""
        now = self._clock()
        before = self._latency.get(label)
        if before is None:
            self._latency[label] = (seconds, now)
            return
        average, when = before
        weight = max(SMOOTHING, 1.0 - math.exp(-(now - when) / MEMORY))
        self._latency[label] = (average + weight * (seconds - average), now)

    def latency(self, label: str) -> float | None:
        found = self._latency.get(label)
        return None if found is None else found[0]

    def measured_at(self, label: str) -> float:
        """When ``label`` was last measured (-inf: never)."""
        found = self._latency.get(label)
        return -math.inf if found is None else found[1]

    def busy(self, label: str) -> int:
        return self._busy.get(label, 0)

    def explore(self) -> bool:
        """True for one call in :data:`EXPLORE_EVERY`."""
        self._picks += 1
        return self._picks % EXPLORE_EVERY == 0


def order(strategy: str, targets: Sequence[Target], rng: random.Random, stats: TargetStats,
          price: Callable[[Target], float | None]) -> list[Target]:
    """``targets`` in the order ``strategy`` tries them."""
    if len(targets) == 1:
        return [targets[0]]
    if strategy == "ordered":
        return list(targets)
    weighted = weighted_order(targets, rng)
    if strategy == "least_latency":
        if stats.explore():
            return sorted(weighted, key=lambda t: stats.measured_at(t.label))
        # Never measured first (-1), then fastest; ties keep the weighted order.
        return sorted(weighted, key=lambda t: _or(stats.latency(t.label), -1.0))
    if strategy == "least_busy":
        first, second = weighted[0], weighted[1]
        if stats.busy(second.label) < stats.busy(first.label):
            weighted[0], weighted[1] = second, first
        return weighted
    if strategy == "cost":
        return sorted(weighted, key=lambda t: _or(price(t), float("inf")))
    return weighted


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
