"""The conversation store shared by every replica through Redis.

One hash per record, ``llmgw:conv:<id>``, with the fields ``owner``, ``doc``, ``created``
and ``expires``; the key carries the record's expiry (``PEXPIREAT``), so expiring is
Redis's job and nothing here sweeps. A put replaces the whole hash in one ``MULTI``; a
delete is one Lua script that deletes only when the owner matches, so another identity
can neither read nor remove a record.

Every failure to reach Redis is :class:`~gateway.errors.UnavailableError` with a fixed
message (the URL may hold a password). Unlike the breakers and limiters, the store does
not fail open: a conversation that cannot be stored or read is a clear 503. An error
Redis answers, or a bug, is not an outage (:mod:`gateway.backends.redis_failures`): raised.

Example::

    store = RedisConversationStore(app.redis())
    await store.start()
    record = await store.get("resp_1", owner="ten_acme")
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Self

from redis.asyncio import Redis

from gateway.backends.redis_failures import unreachable
from gateway.errors import UnavailableError
from gateway.state.base import ConversationRecord

__all__ = ["KEY_PREFIX", "RedisConversationStore"]

log = logging.getLogger("gateway.state")

KEY_PREFIX = "llmgw:conv:"
PING_TIMEOUT = 2.0
_UNAVAILABLE = "conversation store unavailable"

# KEYS[1] the record, ARGV[1] the owner; 1 when deleted.
_DELETE_OWNED = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


# KEYS[1] the record, ARGV: the owner, the new expiry (unix seconds, its text; ms); extends
# an owned record only (never creates one), never shortens it.
_EXTEND_OWNED = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  local expires = tonumber(redis.call('HGET', KEYS[1], 'expires')) or 0
  if expires < tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[1], 'expires', ARGV[2])
    redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  end
end
return 0
"""


class RedisConversationStore:
    """:class:`~gateway.state.base.ConversationStore` on Redis; see the module docstring.

    ``owns_client``: :meth:`aclose` closes ``redis`` (a client made for this store alone,
    not the process's shared one).
    """

    def __init__(self, redis: Redis, *, owns_client: bool = False):
        self._redis = redis
        self._owns_client = owns_client
        self._delete = redis.register_script(_DELETE_OWNED)
        self._extend = redis.register_script(_EXTEND_OWNED)

    def __repr__(self) -> str:
        return "RedisConversationStore(url=<hidden>)"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        # Nothing to create, and the client connects on first use: a Redis that is down
        # while the gateway starts makes conversations answer 503 (and readiness fail),
        # not the process exit.
        return None

    async def aclose(self) -> None:
        if self._owns_client:
            try:
                await self._redis.aclose()
            except Exception as exc:  # closing a client Redis has gone from is no error
                if not unreachable(exc):
                    raise

    async def ping(self) -> None:
        async with self._guard(), asyncio.timeout(PING_TIMEOUT):
            await self._redis.ping()

    async def put(self, record: ConversationRecord) -> None:
        key = KEY_PREFIX + record.id
        async with self._guard(), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={"owner": record.owner, "doc": record.document,
                                    "created": repr(record.created_at),
                                    "expires": repr(record.expires_at)})
            # An expiry already past deletes the key: an expired record is never readable.
            pipe.pexpireat(key, max(1, int(record.expires_at * 1000)))
            await pipe.execute()

    async def get(self, record_id: str, owner: str) -> ConversationRecord | None:
        async with self._guard():
            raw: list[Any] = await self._redis.hmget(
                KEY_PREFIX + record_id, ["owner", "doc", "created", "expires"])
        stored_owner, document, created, expires = raw
        if stored_owner is None or document is None or _text(stored_owner) != owner:
            return None
        return ConversationRecord(id=record_id, owner=owner, document=_bytes(document),
                                  created_at=float(created or 0), expires_at=float(expires or 0))

    async def extend(self, record_ids: Sequence[str], owner: str, expires_at: float) -> None:
        if not record_ids:
            return
        args = [owner, repr(expires_at), str(max(1, int(expires_at * 1000)))]
        async with self._guard(), self._redis.pipeline(transaction=False) as pipe:
            for record_id in record_ids:  # one script per key: each may sit in its own slot
                await self._extend(keys=[KEY_PREFIX + record_id], args=args, client=pipe)
            await pipe.execute()

    async def delete(self, record_id: str, owner: str) -> bool:
        async with self._guard():
            deleted = await self._delete(keys=[KEY_PREFIX + record_id], args=[owner])
        return bool(deleted)

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            yield
        except Exception as exc:
            if not unreachable(exc):
                raise
            # The class is enough to diagnose; a message may name the host.
            log.warning(_UNAVAILABLE, extra={"fields": {"error": type(exc).__name__}})
            raise UnavailableError(_UNAVAILABLE) from None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
