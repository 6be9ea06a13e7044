"""Rate limits and quotas shared by every replica through Redis: :class:`RedisRateLimiter`.

N replicas enforce one limit, never N times it: each check is one Lua script on Redis's
clock, running :mod:`~gateway.tenancy.limits.local`'s algorithms, over the one pipelined
connection a replica's requests share (:mod:`gateway.backends.redis_pipe`). A Redis that
cannot be reached must not turn into a gateway outage, so the limiter then fails open; an
error Redis answers, or a bug, is raised like any other.

Example::

    limiter = RedisRateLimiter(redis)  # the app's shared redis.asyncio.Redis
    decision = await limiter.acquire("tenant:ten_x", tenant.limits)
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from string import Template

from redis.asyncio import Redis

from gateway.backends.redis_failures import RETRY_REDIS_AFTER, Outage, unreachable
from gateway.backends.redis_pipe import RedisPipe, pack
from gateway.observability import metrics
from gateway.tenancy.limits.base import LimitDecision
from gateway.tenancy.limits.local import (
    ALLOWED,
    CONCURRENCY_RETRY,
    DAY,
    LEASE_TTL,
    MARGIN,
    WINDOW,
    burst_of,
    unlimited,
)
from gateway.tenancy.models import Limits

__all__ = ["RedisRateLimiter"]

log = logging.getLogger("gateway.tenancy")

KEY_PREFIX = "llmgw:rl:"


_CONSTANTS = {"W": repr(WINDOW), "DAY": repr(DAY), "MARGIN": repr(MARGIN),
              "CONCURRENCY_RETRY": repr(CONCURRENCY_RETRY)}

# Shared by both scripts: the clock and the minute windows, rolled from the hash.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local W = $W
local index = math.floor(now / W)
local elapsed = now - index * W
local h = redis.call('HMGET', KEYS[1], 'w', 'rc', 'rp', 'tc', 'tp', 'tk', 'ts')
local rc, rp, tc, tp = 0, 0, 0, 0
local w = tonumber(h[1])
if w == index then
  rc, rp = tonumber(h[2]) or 0, tonumber(h[3]) or 0
  tc, tp = tonumber(h[4]) or 0, tonumber(h[5]) or 0
elseif w == index - 1 then
  rp, tp = tonumber(h[2]) or 0, tonumber(h[4]) or 0
end
local function window_ttl()
  if rc + tc > 0 then return 2 * W - elapsed end
  if rp + tp > 0 then return W - elapsed end
  return 0
end
"""

# KEYS: hash, day counter, lease zset. ARGV[1]: one comma-separated string of rps, burst,
# rpm, tpm, daily quota, concurrency ('' when not enforced), lease id, lease ttl (ms),
# tokens to reserve.
# Returns one string: "allowed(1/0) scope limit remaining reset_after retry_after".
# (One argument and one string instead of eight and an array of six: each element is
# packed and parsed in Python.)
_ACQUIRE = Template(_PRELUDE + """
local DAY, MARGIN = $DAY, $MARGIN
local a = {}
for v in string.gmatch(ARGV[1] .. ',', '([^,]*),') do a[#a + 1] = v end
local rps, burst, rpm = tonumber(a[1]), tonumber(a[2]), tonumber(a[3])
local tpm, quota, slots = tonumber(a[4]), tonumber(a[5]), tonumber(a[6])
local scope, wait = '', -1
local function refuse(name, seconds)
  if seconds > wait then scope, wait = name, seconds end
end
local function window_wait(prev, cur, limit)
  if limit <= 0 then return W end
  if cur < limit then return math.max(0, W * (1 - (limit - cur) / prev) - elapsed) + MARGIN end
  return W - elapsed + W * (1 - limit / cur) + MARGIN
end

local tokens = 0
if rps then
  local ts = tonumber(h[7])
  if ts then
    tokens = math.min(burst, (tonumber(h[6]) or 0) + math.max(0, now - ts) * rps)
  else
    tokens = burst
  end
  if tokens < 1 then refuse('rps', rps > 0 and (1 - tokens) / rps + MARGIN or W) end
end
local weight = (W - elapsed) / W
local estimate = 0
if rpm then
  estimate = rp * weight + rc
  if estimate >= rpm then refuse('rpm', window_wait(rp, rc, rpm)) end
end
if tpm and tp * weight + tc >= tpm then refuse('tpm', window_wait(tp, tc, tpm)) end
if quota and (tonumber(redis.call('GET', KEYS[2])) or 0) >= quota then
  refuse('daily_tokens', (math.floor(now / DAY) + 1) * DAY - now + MARGIN)
end
if slots then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now * 1000)
  if redis.call('ZCARD', KEYS[3]) >= slots then refuse('concurrency', $CONCURRENCY_RETRY) end
end

local allowed = scope == ''
if allowed then
  if rps then tokens = tokens - 1 end
  if rpm then
    rc = rc + 1
    estimate = estimate + 1
  end
  if slots then
    local ttl = tonumber(a[8])
    redis.call('ZADD', KEYS[3], now * 1000 + ttl, a[7])
    redis.call('PEXPIRE', KEYS[3], string.format('%d', ttl))
  end
  local reserve = tonumber(a[9]) or 0
  if reserve > 0 then
    if tpm then tc = tc + reserve end
    if quota then
      redis.call('INCRBY', KEYS[2], reserve)
      local midnight = (math.floor(now / DAY) + 1) * DAY * 1000
      redis.call('PEXPIREAT', KEYS[2], string.format('%d', midnight))
    end
  end
end
if rps or rpm or tpm then
  local keep = window_ttl()
  if rps then
    redis.call('HSET', KEYS[1], 'tk', tokens, 'ts', now)
    keep = math.max(keep, rps > 0 and (burst - tokens) / rps or DAY)
  end
  redis.call('HSET', KEYS[1], 'w', index, 'rc', rc, 'rp', rp, 'tc', tc, 'tp', tp)
  redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil((keep + 1) * 1000)))
end

local limit, remaining, reset = 0, 0, 0
if rpm then
  limit, remaining = rpm, math.max(0, math.ceil(rpm - estimate - 1e-9))
  if rc > 0 then reset = 2 * W - elapsed elseif rp > 0 then reset = W - elapsed end
elseif rps then
  limit, remaining = burst, math.max(0, math.floor(tokens))
  if rps > 0 then reset = (burst - tokens) / rps end
end
return table.concat({allowed and 1 or 0, scope == '' and '-' or scope, limit, remaining,
                     tostring(reset), tostring(math.max(0, wait))}, ' ')
""").substitute(_CONSTANTS)

# KEYS: hash, day counter. ARGV: tokens (negative: a refund of a reservation, from this
# minute then the one before; counts stop at zero), per-minute enforced (1/0), daily
# enforced (1/0).
_CHARGE = Template(_PRELUDE + """
local n = tonumber(ARGV[1])
if ARGV[2] == '1' then
  if n >= 0 then
    tc = tc + n
  else  -- a refund: this minute first, then the one before, where it may have been reserved
    local taken = math.min(-n, tc)
    tc = tc - taken
    tp = math.max(0, tp - (-n - taken))
  end
  redis.call('HSET', KEYS[1], 'w', index, 'rc', rc, 'rp', rp, 'tc', tc, 'tp', tp)
  -- Only ever lengthen: the bucket in the same hash may need longer.
  local keep = math.ceil((window_ttl() + 1) * 1000)
  if redis.call('PTTL', KEYS[1]) < keep then
    redis.call('PEXPIRE', KEYS[1], string.format('%d', keep))
  end
end
if ARGV[3] == '1' then
  if redis.call('INCRBY', KEYS[2], n) < 0 then redis.call('SET', KEYS[2], 0) end
  redis.call('PEXPIREAT', KEYS[2], string.format('%d', (math.floor(now / $DAY) + 1) * $DAY * 1000))
end
return 1
""").substitute(_CONSTANTS)


def _arg(value: float | None) -> str:
    return "" if value is None else str(value)


class RedisRateLimiter:
    """The :class:`~gateway.tenancy.limits.base.RateLimiter` shared through Redis.

    :meth:`acquire` is ONE script (EVALSHA) that checks every limit and, only when all
    admit, takes a token, a request, a lease and the reserved tokens; :meth:`charge` is
    one script adding tokens (or giving a reservation back) to the minute window and the
    day's count; :meth:`release` is one ``ZREM``.
    A request cancelled while its acquire is on the wire releases the slot the script may
    have leased it (the ``ZREM`` follows the script on the same connection, so it finds
    the lease if there is one).

    Key layout per subject (the ``{subject}`` hash tag keeps a subject's keys in one
    Redis Cluster slot; every key expires, so idle subjects vanish)::

        llmgw:rl:{<subject>}     hash  tk, ts       bucket tokens and when they were counted
                                       w            index of the current minute (unix // 60)
                                       rc, rp       requests this minute / the minute before
                                       tc, tp       tokens this minute / the minute before
                                 expires when both minutes are over and the bucket is full
        llmgw:rl:{<subject>}:d   string             tokens reserved and charged this UTC day;
                                 expires at the next UTC midnight (the daily reset)
        llmgw:rl:{<subject>}:c   zset   lease id -> expiry (ms): the concurrency slots held;
                                 expired members are dropped by the next acquire, the key
                                 expires with its youngest lease

    When Redis cannot be reached (:func:`~gateway.backends.redis_failures.unreachable`,
    timeouts included) the limiter fails OPEN: the request is admitted with no state at
    all, counted in ``gateway_rate_limit_fail_open_total``, the outage is logged once and
    shown by :attr:`degraded`, and Redis is left alone for ``retry_after`` seconds so an
    outage does not cost every request a timeout. Any other error (an error reply, a bug)
    is raised.

    ``redis`` is the app's client: :meth:`aclose` leaves it open. ``lease_ttl`` is
    how long a concurrency slot stays held when nobody releases it.
    """

    def __init__(self, redis: Redis, *, lease_ttl: float = LEASE_TTL,
                 retry_after: float = RETRY_REDIS_AFTER,
                 clock: Callable[[], float] = time.monotonic):
        self.redis = redis
        self.lease_ttl = lease_ttl
        self._lease_ttl_ms = str(max(1, round(lease_ttl * 1000)))
        self._pipe = RedisPipe(redis)
        self._acquire = self._pipe.script(_ACQUIRE)
        self._charge = self._pipe.script(_CHARGE)
        self._forgetting: set[asyncio.Task[None]] = set()
        self._outage = Outage(
            log, down="redis unreachable: rate limits are not enforced until it is back",
            back="redis reachable again: rate limits are enforced",
            retry_after=retry_after, clock=clock)

    @property
    def degraded(self) -> bool:
        """True from a Redis failure until Redis answers again."""
        return self._outage.degraded

    @staticmethod
    def _key(subject: str) -> bytes:
        return f"{KEY_PREFIX}{{{subject}}}".encode()

    async def acquire(self, subject: str, limits: Limits, reserve: int = 0) -> LimitDecision:
        if unlimited(limits):
            return ALLOWED
        if not self._outage.usable():
            return self._fail_open()
        rps, slots = limits.requests_per_second, limits.concurrent_requests
        lease = secrets.token_hex(8) if slots is not None else ""
        key = self._key(subject)
        args = ",".join((_arg(rps), _arg(burst_of(limits, rps) if rps is not None else None),
                         _arg(limits.requests_per_minute), _arg(limits.tokens_per_minute),
                         _arg(limits.daily_token_quota), _arg(slots), lease,
                         self._lease_ttl_ms, str(max(0, reserve))))
        try:
            reply = await self._acquire(keys=(key, key + b":d", key + b":c"),
                                        args=(args.encode(),))
        except Exception as exc:
            if not unreachable(exc):
                raise
            self._outage.failed(exc)
            return self._fail_open()
        except asyncio.CancelledError:
            if lease:  # the script may have leased the slot: give it back
                self._forget(subject, lease)
            raise
        self._outage.recovered()
        allowed, scope, limit, remaining, reset_after, retry_after = (
            reply.decode() if isinstance(reply, bytes) else reply).split(" ")
        admitted = allowed == "1"
        return LimitDecision(
            allowed=admitted, scope="" if scope == "-" else scope, limit=int(float(limit)),
            remaining=int(float(remaining)), reset_after=float(reset_after),
            retry_after=float(retry_after), lease=lease if admitted else "")

    async def release(self, subject: str, lease: str) -> None:
        # During an outage the slot stays held in Redis until its lease expires.
        if not lease or not self._outage.usable():
            return
        try:
            await self._pipe.call(pack(b"ZREM", self._key(subject) + b":c", lease.encode()))
        except Exception as exc:
            if not unreachable(exc):
                raise
            self._outage.failed(exc)
        else:
            self._outage.recovered()

    async def charge(self, subject: str, limits: Limits, tokens: int) -> None:
        tpm, quota = limits.tokens_per_minute, limits.daily_token_quota
        if tokens == 0 or (tpm is None and quota is None):
            return
        if not self._outage.usable():
            return  # lost: part of failing open
        key = self._key(subject)
        try:
            await self._charge(keys=(key, key + b":d"),
                               args=(b"%d" % tokens, b"1" if tpm is not None else b"0",
                                     b"1" if quota is not None else b"0"))
        except Exception as exc:
            if not unreachable(exc):
                raise
            self._outage.failed(exc)
        else:
            self._outage.recovered()

    def _forget(self, subject: str, lease: str) -> None:
        task = asyncio.ensure_future(self.release(subject, lease))
        self._forgetting.add(task)
        task.add_done_callback(self._forgetting.discard)

    async def aclose(self) -> None:
        """Closes the limiter's own connection; the Redis client belongs to the app."""
        if self._forgetting:
            await asyncio.gather(*self._forgetting, return_exceptions=True)
        await self._pipe.aclose()

    def _fail_open(self) -> LimitDecision:
        metrics.rate_limit_fail_open()
        return ALLOWED
