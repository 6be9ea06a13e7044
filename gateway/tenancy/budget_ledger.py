"""Budgets shared by every replica through Redis: :class:`RedisBudgetLedger`.

A tenant's month is seeded from the tenant store's total by the first replica that needs
it; from then on every replica reserves against it and settles into it with one Lua script
each, so N replicas cannot each admit a request past a spent budget. Each reservation is
held under its own id with an expiry, so one whose settlement never comes (a replica that
died, Redis unreachable at the end) stops counting after ``hold_ttl`` instead of holding
the budget for the rest of the month. Keys (the ``{tenant}`` hash tag keeps them in one
Redis Cluster slot; all expire 40 days after the month began; a lost month is seeded again
from the store)::

    llmgw:budget:{<tenant>}:<month start>     string  USD settled this month
    llmgw:budget:{<tenant>}:<month start>:h   hash    hold id -> USD reserved
    llmgw:budget:{<tenant>}:<month start>:e   zset    hold id -> expiry (ms, Redis's clock)

Example::

    ledger = RedisBudgetLedger(redis)
    if await ledger.reserve("ten_x", period, "h1", budget=50.0, cost=0.4, seed=12.5):
        ...  # serve, then:
        await ledger.settle("ten_x", period, "h1", cost=0.07)
"""

from __future__ import annotations

from redis.asyncio import Redis

from gateway.backends.redis_pipe import RedisPipe

__all__ = ["HOLD_TTL", "RedisBudgetLedger"]

KEY_PREFIX = "llmgw:budget:"
KEEP_MS = 40 * 86400 * 1000  # a month's keys outlive the month
HOLD_TTL = 600.0  # seconds a reservation counts unless settled (as a concurrency lease)

# KEYS: spend, holds, expiries. ARGV: budget, cost to hold, spend to seed with, hold id,
# hold ttl (ms), keep (ms). Returns 1 when admitted (and the cost held), else 0.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[6])
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
if #expired > 0 then
  redis.call('HDEL', KEYS[2], unpack(expired))
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
end
local held = 0
for _, amount in ipairs(redis.call('HVALS', KEYS[2])) do held = held + tonumber(amount) end
local spent = tonumber(redis.call('GET', KEYS[1]))
local budget, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
if spent + held >= budget or spent + held + cost > budget then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[2])
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
return 1
"""

# KEYS: spend, holds, expiries. ARGV: hold id, the cost to add. A month that is gone is
# left alone: the next reservation seeds it from the store, which has the row.
_SETTLE = """
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(ARGV[2]) ~= 0 then
  redis.call('INCRBYFLOAT', KEYS[1], ARGV[2])
end
return 1
"""


def _usd(amount: float) -> bytes:
    return b"%.12f" % amount  # plain decimals: INCRBYFLOAT and Lua read them alike


def _keys(tenant_id: str, period: float) -> tuple[bytes, bytes, bytes]:
    key = f"{KEY_PREFIX}{{{tenant_id}}}:{int(period)}".encode()
    return key, key + b":h", key + b":e"


class RedisBudgetLedger:
    """Reservations and spend of each tenant's month, on the one pipelined connection of
    :mod:`~gateway.backends.redis_pipe`. Errors, unreachable Redis included, are raised:
    :class:`~gateway.tenancy.usage.Budgets` decides what an outage means."""

    def __init__(self, redis: Redis, *, hold_ttl: float = HOLD_TTL):
        self._pipe = RedisPipe(redis)
        self._reserve = self._pipe.script(_RESERVE)
        self._settle = self._pipe.script(_SETTLE)
        self._hold_ttl_ms = b"%d" % max(1, round(hold_ttl * 1000))

    async def reserve(self, tenant_id: str, period: float, hold: str, *, budget: float,
                      cost: float, seed: float) -> bool:
        """Admitted when the month's spend, the live holds and ``cost`` fit ``budget``
        (:func:`~gateway.tenancy.usage.fits`); then ``cost`` is held as ``hold``.
        ``seed`` is the store's total, for a month not yet in Redis."""
        reply = await self._reserve(keys=_keys(tenant_id, period), args=(
            _usd(budget), _usd(max(0.0, cost)), _usd(seed), hold.encode(), self._hold_ttl_ms,
            b"%d" % KEEP_MS))
        return int(reply) == 1

    async def settle(self, tenant_id: str, period: float, hold: str, *, cost: float) -> None:
        """Drop ``hold`` and add the request's real ``cost`` to the month."""
        await self._settle(keys=_keys(tenant_id, period), args=(hold.encode(), _usd(cost)))

    async def aclose(self) -> None:
        await self._pipe.aclose()
