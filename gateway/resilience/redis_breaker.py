"""The circuit breaker shared by every replica through Redis.

Failures seen by one replica open the breaker for all: state lives in one hash per deployment
(``llmgw:cb:<name>``), each allow and each record is one Lua script, so transitions are
atomic across replicas and timed by Redis's clock (``TIME``), not by each replica's. The
semantics are :class:`~gateway.resilience.breaker.LocalBreaker`'s.

When Redis cannot be reached (:func:`~gateway.backends.redis_failures.unreachable`) the
breaker fails open to a local breaker for that deployment (logged once per outage, reported
by :attr:`RedisBreakerGroup.degraded`) and tries Redis again after a short pause, so a Redis
outage never fails a request; an error Redis answers, or a bug, is raised.

Example::

    group = RedisBreakerGroup(redis, settings.circuit_breaker)
    permit = await group.breaker("openai").allow()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis

from gateway.backends.redis_failures import RETRY_REDIS_AFTER, Outage, unreachable
from gateway.backends.redis_pipe import RedisPipe
from gateway.config import CircuitBreakerConfig
from gateway.observability import metrics
from gateway.resilience.breaker import (
    BreakerSnapshot,
    BreakerState,
    LocalBreaker,
    Outcome,
    Permit,
    TransitionHook,
)

__all__ = ["RedisBreaker", "RedisBreakerGroup"]

log = logging.getLogger("gateway.resilience")

KEY_PREFIX = "llmgw:cb:"

# Returns {allowed (1/0), generation, half_open (1/0), transitioned_from (-1 none)}.
_ALLOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval, open_timeout, probes_max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'state', 'gen', 'ws', 'opened', 'probes')
local state = tonumber(h[1]) or 0
local gen = tonumber(h[2]) or 0
local from = -1
if state == 1 then
  if now - (tonumber(h[4]) or 0) < open_timeout then return {0, gen, 0, -1} end
  gen = gen + 1
  redis.call('HSET', KEYS[1], 'state', 2, 'gen', gen, 'probes', 0, 'psucc', 0,
             'req', 0, 'fail', 0, 'cons', 0, 'ws', now)
  state, from = 2, 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if state == 2 then
  local probes = tonumber(redis.call('HGET', KEYS[1], 'probes')) or 0
  if probes >= probes_max then return {0, gen, 1, from} end
  redis.call('HINCRBY', KEYS[1], 'probes', 1)
  return {1, gen, 1, from}
end
if now - (tonumber(h[3]) or 0) >= interval then
  redis.call('HSET', KEYS[1], 'ws', now, 'req', 0, 'fail', 0, 'gen', gen)
end
return {1, gen, 0, -1}
"""

# ARGV: generation, outcome (1 success, 0 failure, 2 ignored), probes_max, consecutive_max,
# min_requests, failure_ratio, ttl_ms. Returns {state, transitioned_from (-1 none)}.
_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'gen', 'req', 'fail', 'cons', 'probes', 'psucc')
local state = tonumber(h[1]) or 0
local gen = tonumber(h[2]) or 0
if tonumber(ARGV[1]) ~= gen then return {state, -1} end
local outcome = tonumber(ARGV[2])
local function go(to)
  redis.call('HSET', KEYS[1], 'state', to, 'gen', gen + 1, 'req', 0, 'fail', 0, 'cons', 0,
             'probes', 0, 'psucc', 0, 'ws', now)
  if to == 1 then redis.call('HSET', KEYS[1], 'opened', now) end
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  return {to, state}
end
if state == 2 then
  local probes = math.max(0, (tonumber(h[6]) or 0) - 1)
  if outcome == 0 then return go(1) end
  if outcome == 1 then
    local psucc = (tonumber(h[7]) or 0) + 1
    if psucc >= tonumber(ARGV[3]) then return go(0) end
    redis.call('HSET', KEYS[1], 'probes', probes, 'psucc', psucc)
  else
    redis.call('HSET', KEYS[1], 'probes', probes)
  end
  return {2, -1}
end
if state ~= 0 or outcome == 2 then return {state, -1} end
local req = (tonumber(h[3]) or 0) + 1
if outcome == 1 then
  redis.call('HSET', KEYS[1], 'req', req, 'cons', 0)
  return {0, -1}
end
local fail = (tonumber(h[4]) or 0) + 1
local cons = (tonumber(h[5]) or 0) + 1
if cons >= tonumber(ARGV[4]) or (req >= tonumber(ARGV[5]) and fail / req >= tonumber(ARGV[6])) then
  return go(1)
end
redis.call('HSET', KEYS[1], 'req', req, 'fail', fail, 'cons', cons)
return {0, -1}
"""


def _encoded(*values: float) -> tuple[bytes, ...]:
    return tuple(repr(v).encode() for v in values)


class RedisBreakerGroup:
    """What the breakers of one process share: the client, the scripts, the outage state."""

    def __init__(self, redis: Redis, config: CircuitBreakerConfig, *,
                 on_transition: TransitionHook | None = None,
                 retry_after: float = RETRY_REDIS_AFTER,
                 clock: Callable[[], float] = time.monotonic):
        self.redis = redis
        self.config = config
        self.on_transition = on_transition
        # allow and record run on every request: one pipelined connection, not a round
        # of the client's pool each.
        self.pipe = RedisPipe(redis)
        self._allow = self.pipe.script(_ALLOW)
        self._record = self.pipe.script(_RECORD)
        self.outage = Outage(
            log, down="redis unreachable: circuit breakers fall back to local state",
            back="redis reachable again: circuit breakers are shared",
            retry_after=retry_after, clock=clock)

    @property
    def degraded(self) -> bool:
        return self.outage.degraded

    async def aclose(self) -> None:
        """Closes the group's own connection; the Redis client belongs to the app."""
        await self.pipe.aclose()

    def breaker(self, name: str) -> RedisBreaker:
        return RedisBreaker(name, self)


class RedisBreaker:
    def __init__(self, name: str, group: RedisBreakerGroup):
        self.name = name
        self._group = group
        self._key = KEY_PREFIX + name
        self._keys = (self._key.encode(),)
        cfg = group.config
        self._local = LocalBreaker(name, cfg, on_transition=group.on_transition)
        self._ttl_ms = int(max(cfg.interval, cfg.open_timeout) * 10_000) + 60_000
        self._allow_args = _encoded(int(cfg.interval * 1000), int(cfg.open_timeout * 1000),
                                    max(1, cfg.half_open_requests), self._ttl_ms)
        self._record_args = _encoded(max(1, cfg.half_open_requests), cfg.consecutive_failures,
                                     cfg.min_requests, cfg.failure_ratio, self._ttl_ms)

    def _hook(self, before: int, after: int) -> None:
        if before >= 0 and before != after and self._group.on_transition is not None:
            self._group.on_transition(self.name, BreakerState(before), BreakerState(after))

    async def allow(self) -> Permit | None:
        group = self._group
        if group.outage.usable():
            try:
                allowed, generation, half_open, before = await group._allow(
                    keys=self._keys, args=self._allow_args)
            except Exception as exc:
                if not unreachable(exc):
                    raise
                group.outage.failed(exc)
            else:
                group.outage.recovered()
                if int(before) >= 0:
                    self._hook(int(before), BreakerState.HALF_OPEN)
                # Other replicas move the shared state too: keep this one's gauge current.
                state = (BreakerState.HALF_OPEN if half_open
                         else BreakerState.CLOSED if allowed else BreakerState.OPEN)
                metrics.breaker_state(self.name, int(state))
                if not allowed:
                    return None
                return Permit(int(generation), bool(half_open), shared=True)
        return self._local.allow_now()

    async def record(self, permit: Permit, outcome: Outcome) -> None:
        if not permit.shared:
            self._local.record_now(permit, outcome)
            return
        code = {Outcome.SUCCESS: 1, Outcome.FAILURE: 0, Outcome.IGNORED: 2}[outcome]
        try:
            after, before = await self._group._record(
                keys=self._keys, args=(b"%d" % permit.generation, b"%d" % code,
                                       *self._record_args))
        except Exception as exc:
            if not unreachable(exc):
                raise
            # The outcome is lost with the connection; the local breaker decides from
            # the next call on.
            self._group.outage.failed(exc)
            return
        self._hook(int(before), int(after))

    async def snapshot(self) -> BreakerSnapshot:
        group = self._group
        if group.outage.usable():
            try:
                raw = await group.redis.hmget(self._key, "state", "req", "fail", "cons", "opened")
            except Exception as exc:
                if not unreachable(exc):
                    raise
                group.outage.failed(exc)
            else:
                state, req, fail, cons, opened = (int(v) if v is not None else 0 for v in raw)
                return BreakerSnapshot(self.name, BreakerState(state), req, fail, cons,
                                       opened / 1000.0, distributed=True)
        local = self._local.snapshot_now()
        return BreakerSnapshot(local.name, local.state, local.requests, local.failures,
                               local.consecutive_failures, local.opened_at, distributed=False)

    async def reset(self) -> None:
        await self._local.reset()
        try:
            before = await self._group.redis.hget(self._key, "state")
            await self._group.redis.delete(self._key)
        except Exception as exc:
            if not unreachable(exc):
                raise
            self._group.outage.failed(exc)
            return
        if before is not None:
            self._hook(int(before), BreakerState.CLOSED)
