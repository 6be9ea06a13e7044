"""Budgets shared by every replica through Redis: :class:`RedisBudgetLedger`.

Each budget's period (a tenant's month, a key's day, a tenant's month on one model...) is
seeded from the tenant store's total by the first replica that needs it; from then on every
replica reserves against it and settles into it with one Lua script each, so N replicas
cannot each admit a request past a spent budget. One script reserves a request against
every budget that applies to it, all or nothing: a request the key's budget refuses holds
nothing against its tenant's. Each reservation is held under its own id with an expiry, so
one whose settlement never comes (a replica that died, Redis unreachable at the end) stops
counting after ``hold_ttl`` instead of holding the budget for the rest of the period. Keys
(the ``{tenant}`` hash tag keeps all of a tenant's in one Redis Cluster slot, which a
script over several needs; a period's keys outlive it by a few days, and a lost period is
seeded again from the store)::

    llmgw:budget:{<tenant>}:<period start>               string  USD settled
    llmgw:budget:{<tenant>}:<period start>:h             hash    hold id -> USD reserved
    llmgw:budget:{<tenant>}:<period start>:e             zset    hold id -> expiry (ms)
    llmgw:budget:{<tenant>}:key:<key id>:<period start>  (and :h, :e) one API key's
    llmgw:budget:{<tenant>}:model:<model>:<period start> (and :h, :e) one model's

Example::

    ledger = RedisBudgetLedger(redis)
    tenant = Account("ten_x", "", period, budget=50.0, seed=12.5)
    key = Account("ten_x", "key:key_y", day, budget=2.0, seed=0.5)
    if await ledger.reserve("h1", 0.4, (tenant, key)) == 0:
        ...  # serve, then:
        await ledger.settle("h1", 0.07, (tenant, key))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.backends.redis_pipe import RedisPipe

__all__ = ["HOLD_TTL", "Account", "RedisBudgetLedger"]

KEY_PREFIX = "llmgw:budget:"
HOLD_TTL = 600.0  # seconds a reservation counts unless settled (as a concurrency lease)
_DAY_MS = 86400 * 1000

# KEYS: spend, holds, expiries of each budget. ARGV: cost to hold, hold id, hold ttl (ms),
# then budget, spend to seed with and keep (ms) of each. Returns 0 when the request fits
# every budget (and the cost is held in each), else the 1-based number of the first it
# does not fit (nothing held).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local n = #KEYS / 3
for i = 1, n do
  local spend, holds, expiries = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local a = 3 + 3 * (i - 1)
  if redis.call('EXISTS', spend) == 0 then
    redis.call('SET', spend, ARGV[a + 2], 'PX', ARGV[a + 3])
  end
  local expired = redis.call('ZRANGEBYSCORE', expiries, '-inf', now)
  if #expired > 0 then
    redis.call('HDEL', holds, unpack(expired))
    redis.call('ZREMRANGEBYSCORE', expiries, '-inf', now)
  end
  local held = 0
  for _, amount in ipairs(redis.call('HVALS', holds)) do held = held + tonumber(amount) end
  local spent = tonumber(redis.call('GET', spend))
  local budget = tonumber(ARGV[a + 1])
  if spent + held >= budget or spent + held + cost > budget then return i end
end
if cost > 0 then
  for i = 1, n do
    local keep = ARGV[3 + 3 * (i - 1) + 3]
    redis.call('HSET', KEYS[3 * i - 1], ARGV[2], ARGV[1])
    redis.call('ZADD', KEYS[3 * i], now + tonumber(ARGV[3]), ARGV[2])
    redis.call('PEXPIRE', KEYS[3 * i - 1], keep)
    redis.call('PEXPIRE', KEYS[3 * i], keep)
  end
end
return 0
"""

# KEYS: spend, holds, expiries of each budget. ARGV: hold id, the cost to add. A period
# that is gone is left alone: the next reservation seeds it from the store, which has the row.
_SETTLE = """
for i = 1, #KEYS / 3 do
  redis.call('HDEL', KEYS[3 * i - 1], ARGV[1])
  redis.call('ZREM', KEYS[3 * i], ARGV[1])
  if redis.call('EXISTS', KEYS[3 * i - 2]) == 1 and tonumber(ARGV[2]) ~= 0 then
    redis.call('INCRBYFLOAT', KEYS[3 * i - 2], ARGV[2])
  end
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Account:
    """One budget's period in the ledger: the tenant's own (``scope`` empty), or
    ``key:<id>`` or ``model:<name>`` within it. ``budget`` and ``seed`` (the store's total,
    for a period not yet in Redis) matter when reserving, ``days`` (how long the period
    lasts at most) for how long its keys are kept."""

    tenant_id: str
    scope: str
    period: float
    budget: float = 0.0
    seed: float = 0.0
    days: int = 31

    def keys(self) -> tuple[bytes, bytes, bytes]:
        scope = f"{self.scope}:" if self.scope else ""
        key = f"{KEY_PREFIX}{{{self.tenant_id}}}:{scope}{int(self.period)}".encode()
        return key, key + b":h", key + b":e"


def _usd(amount: float) -> bytes:
    return b"%.12f" % amount  # plain decimals: INCRBYFLOAT and Lua read them alike


class RedisBudgetLedger:
    """Reservations and spend of each budget's period, on the one pipelined connection of
    :mod:`~gateway.backends.redis_pipe`. Errors, unreachable Redis included, are raised:
    :class:`~gateway.tenancy.usage.Budgets` decides what an outage means."""

    def __init__(self, redis: Redis, *, hold_ttl: float = HOLD_TTL):
        self._pipe = RedisPipe(redis)
        self._reserve = self._pipe.script(_RESERVE)
        self._settle = self._pipe.script(_SETTLE)
        self._hold_ttl_ms = b"%d" % max(1, round(hold_ttl * 1000))

    async def reserve(self, hold: str, cost: float, accounts: Sequence[Account]) -> int:
        """0 when the period's spend, the live holds and ``cost`` fit the budget of every
        one of ``accounts`` (:func:`~gateway.tenancy.usage.fits`); then ``cost`` is held as
        ``hold`` in each. Else the 1-based number of the first account it does not fit,
        and nothing is held. The accounts are one tenant's (one Redis Cluster slot)."""
        keys: list[bytes] = []
        args: list[bytes] = [_usd(max(0.0, cost)), hold.encode(), self._hold_ttl_ms]
        for account in accounts:
            keys.extend(account.keys())
            args += (_usd(account.budget), _usd(account.seed),
                     b"%d" % ((account.days + 9) * _DAY_MS))  # kept 9 days past its end
        return int(await self._reserve(keys=keys, args=args))

    async def settle(self, hold: str, cost: float, accounts: Sequence[Account]) -> None:
        """Drop ``hold`` from each account and add the request's real ``cost`` to it."""
        keys: list[bytes] = []
        for account in accounts:
            keys.extend(account.keys())
        await self._settle(keys=keys, args=(hold.encode(), _usd(cost)))

    async def aclose(self) -> None:
        await self._pipe.aclose()
