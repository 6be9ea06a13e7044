"""Build the conversation store and the response cache the configuration asks for.

``conversations.store``:

- ``memory`` (default): this process only.
- ``redis``: without ``dsn``, the process's shared client (``redis.url``); with a
  ``redis://`` DSN, a client of its own, closed with the store.
- ``sql``: ``driver: pgx`` with a ``postgres://`` DSN, ``driver: sqlite3`` with a file
  path; without a driver, a ``postgres://`` DSN means pgx and anything else a file.

A contradiction (a pgx driver with a file path, redis without any URL) is a
``ValueError`` at startup that never quotes the DSN, which may hold a password.

Example::

    store = build_conversation_store(settings.conversations, settings.redis.url, app.redis)
    await store.start()
"""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from gateway.config import CacheConfig, ConversationsConfig
from gateway.state.base import ConversationStore, ResponseCache
from gateway.state.cache import MemoryResponseCache, RedisResponseCache
from gateway.state.memory_store import MemoryConversationStore
from gateway.state.redis_store import RedisConversationStore

__all__ = ["build_conversation_store", "build_response_cache", "redis_client"]

_POSTGRES = ("postgres://", "postgresql://")
_REDIS = ("redis://", "rediss://", "unix://")


def build_conversation_store(config: ConversationsConfig, redis_url: str,
                             redis: Callable[[], Redis]) -> ConversationStore:
    """The store of ``config``; ``redis`` returns the process's shared client."""
    ttl = float(config.ttl)
    dsn = config.dsn
    if config.store == "memory":
        return MemoryConversationStore(ttl=ttl, max_owner_bytes=config.max_owner_bytes,
                                       max_total_bytes=config.max_total_bytes)
    if config.store == "redis":
        if dsn:
            if not dsn.startswith(_REDIS):
                raise ValueError("conversations.dsn of store redis must start with redis://, "
                                 "rediss:// or unix://")
            return RedisConversationStore(redis_client(dsn), owns_client=True)
        if not redis_url:
            raise ValueError("conversations.store redis needs conversations.dsn or redis.url "
                             "(or REDIS_URL)")
        return RedisConversationStore(redis())
    if config.store == "sql":
        if not dsn:
            raise ValueError("conversations.store sql needs conversations.dsn")
        driver = config.driver or ("pgx" if dsn.startswith(_POSTGRES) else "sqlite3")
        if driver == "pgx" and not dsn.startswith(_POSTGRES):
            raise ValueError("conversations.driver pgx needs a conversations.dsn starting "
                             "with postgres:// or postgresql://")
        if driver == "sqlite3" and "://" in dsn:
            raise ValueError("conversations.driver sqlite3 needs a file path as "
                             "conversations.dsn, not a URL")
        from gateway.state.sql_store import SqlConversationStore  # asyncpg only when used

        return SqlConversationStore(dsn, driver=driver, ttl=ttl)
    raise ValueError("conversations.store must be memory, redis or sql")


def build_response_cache(config: CacheConfig,
                         redis: Callable[[], Redis]) -> ResponseCache | None:
    """None when the cache is disabled; ``redis`` returns the process's shared client."""
    if not config.enabled:
        return None
    if config.store == "redis":
        return RedisResponseCache(redis())
    return MemoryResponseCache()


def redis_client(url: str, *, timeout: float = 2.0) -> Redis:
    """A client of its own for the store: bounded timeouts, one quick retry.

    Longer than the shared client's half second: the store does not fail open, and a
    document with a long history is larger than a breaker's counters.
    """
    return Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                          health_check_interval=30,
                          retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1))
