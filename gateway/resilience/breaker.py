"""Circuit breakers, one per provider deployment.

::

                 consecutive failures >= N, or
                 failures/requests >= ratio with requests >= min (within `interval`)
      CLOSED ──────────────────────────────────────────────────────────────► OPEN
        ▲                                                                   │  ▲
        │ `half_open_requests` probes succeed                 open_timeout  │  │ a probe fails
        │                                                       elapsed     ▼  │
        └──────────────────────────────────────────────────────────── HALF_OPEN

A call asks :meth:`Breaker.allow` for a permit (None when the breaker refuses)
and reports its :class:`Outcome` with that permit. Permits carry the breaker's
generation, so an outcome from before a transition cannot move the new state.
Caller errors (the provider said 400) are :attr:`Outcome.IGNORED`: they prove
nothing about the deployment, and they free a half-open probe slot.

:class:`LocalBreaker` keeps state in process; ``redis_breaker.RedisBreaker``
shares it between replicas behind the same :class:`Breaker` protocol.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from gateway.config import CircuitBreakerConfig
from gateway.observability import metrics

__all__ = ["Breaker", "BreakerBoard", "BreakerSnapshot", "BreakerState", "LocalBreaker",
           "Outcome", "Permit"]

log = logging.getLogger("gateway.resilience")


class BreakerState(enum.IntEnum):
    """Values are the ``gateway_circuit_breaker_state`` gauge's."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class Outcome(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"


@dataclass(slots=True, frozen=True)
class Permit:
    generation: int
    half_open: bool
    shared: bool = False  # issued by the Redis breaker rather than its local stand-in


@dataclass(slots=True, frozen=True)
class BreakerSnapshot:
    name: str
    state: BreakerState
    requests: int
    failures: int
    consecutive_failures: int
    opened_at: float  # unix seconds, 0 when never opened
    distributed: bool


TransitionHook = Callable[[str, BreakerState, BreakerState], None]


class Breaker(Protocol):
    name: str

    async def allow(self) -> Permit | None: ...

    async def record(self, permit: Permit, outcome: Outcome) -> None: ...

    async def snapshot(self) -> BreakerSnapshot: ...

    async def reset(self) -> None: ...


class LocalBreaker:
    """The in-process breaker; its methods never block (async only for the protocol)."""

    def __init__(self, name: str, config: CircuitBreakerConfig, *,
                 clock: Callable[[], float] = time.monotonic,
                 on_transition: TransitionHook | None = None):
        self.name = name
        self._cfg = config
        self._clock = clock
        self._on_transition = on_transition
        self.state = BreakerState.CLOSED
        self._generation = 0
        self._window_start = clock()
        self._requests = 0
        self._failures = 0
        self._consecutive = 0
        self._opened_at = 0.0
        self._opened_wall = 0.0
        self._probes_in_flight = 0
        self._probe_successes = 0

    def _transition(self, to: BreakerState) -> None:
        before = self.state
        self.state = to
        self._generation += 1
        self._window_start = self._clock()
        self._requests = self._failures = self._consecutive = 0
        self._probes_in_flight = self._probe_successes = 0
        if to is BreakerState.OPEN:
            self._opened_at = self._clock()
            self._opened_wall = time.time()
        if self._on_transition is not None:
            self._on_transition(self.name, before, to)

    def allow_now(self) -> Permit | None:
        now = self._clock()
        if self.state is BreakerState.OPEN:
            if now - self._opened_at < self._cfg.open_timeout:
                return None
            self._transition(BreakerState.HALF_OPEN)
        if self.state is BreakerState.HALF_OPEN:
            if self._probes_in_flight >= max(1, self._cfg.half_open_requests):
                return None
            self._probes_in_flight += 1
            return Permit(self._generation, half_open=True)
        if now - self._window_start >= self._cfg.interval:
            self._window_start = now
            self._requests = self._failures = 0
        return Permit(self._generation, half_open=False)

    def record_now(self, permit: Permit, outcome: Outcome) -> None:
        if permit.generation != self._generation:
            return  # from before a transition: stale
        cfg = self._cfg
        if self.state is BreakerState.HALF_OPEN:
            self._probes_in_flight = max(0, self._probes_in_flight - 1)
            if outcome is Outcome.FAILURE:
                self._transition(BreakerState.OPEN)
            elif outcome is Outcome.SUCCESS:
                self._probe_successes += 1
                if self._probe_successes >= max(1, cfg.half_open_requests):
                    self._transition(BreakerState.CLOSED)
            return
        if self.state is not BreakerState.CLOSED or outcome is Outcome.IGNORED:
            return
        self._requests += 1
        if outcome is Outcome.SUCCESS:
            self._consecutive = 0
            return
        self._failures += 1
        self._consecutive += 1
        ratio_tripped = (self._requests >= cfg.min_requests
                         and self._failures / self._requests >= cfg.failure_ratio)
        if self._consecutive >= cfg.consecutive_failures or ratio_tripped:
            self._transition(BreakerState.OPEN)

    async def allow(self) -> Permit | None:
        return self.allow_now()

    async def record(self, permit: Permit, outcome: Outcome) -> None:
        self.record_now(permit, outcome)

    def snapshot_now(self) -> BreakerSnapshot:
        # An open breaker whose timeout passed reports half-open, as the next call would.
        state = self.state
        if state is BreakerState.OPEN and self._clock() - self._opened_at >= self._cfg.open_timeout:
            state = BreakerState.HALF_OPEN
        return BreakerSnapshot(self.name, state, self._requests, self._failures,
                               self._consecutive, self._opened_wall, distributed=False)

    async def snapshot(self) -> BreakerSnapshot:
        return self.snapshot_now()

    async def reset(self) -> None:
        if self.state is not BreakerState.CLOSED:
            self._transition(BreakerState.CLOSED)
        else:
            self._requests = self._failures = self._consecutive = 0


def report_transition(name: str, before: BreakerState, after: BreakerState) -> None:
    """The transition hook of the running gateway: a log line and the metrics."""
    metrics.breaker_transition(name, before.name.lower(), after.name.lower(), int(after))
    level = logging.WARNING if after is BreakerState.OPEN else logging.INFO
    log.log(level, "circuit breaker transition", extra={"fields": {
        "provider": name, "from": before.name.lower(), "to": after.name.lower()}})


class BreakerBoard:
    """The breakers of every deployment, made on first use by ``factory``."""

    def __init__(self, factory: Callable[[str], Breaker]):
        self._factory = factory
        self._breakers: dict[str, Breaker] = {}

    def get(self, name: str) -> Breaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = self._breakers[name] = self._factory(name)
        return breaker

    def names(self) -> list[str]:
        return sorted(self._breakers)

    async def export_states(self, names: Iterable[str]) -> None:
        """Sets the state gauge of each named breaker, so ``/metrics`` lists every
        configured deployment from start-up rather than from its first transition.

        A Redis breaker reports the shared state (one HMGET); with Redis unreachable, its
        local stand-in's (closed).
        """
        for name in names:
            snapshot = await self.get(name).snapshot()
            metrics.breaker_state(name, int(snapshot.state))
