"""The ConversationStore contract, run against every store: memory, Redis on a real
redis-server, PostgreSQL on a real server, and an SQLite file. Then what only the shared
stores have: durability, migrations, outages and recovery without leaking a DSN. Then the
response caches, and the factory that picks among them all."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from redis.asyncio import Redis

from gateway.config import CacheConfig, ConversationsConfig, Duration
from gateway.errors import UnavailableError
from gateway.state.base import ConversationRecord, ConversationStore, ResponseCache
from gateway.state.cache import MemoryResponseCache, RedisResponseCache
from gateway.state.factory import build_conversation_store, build_response_cache, redis_client
from gateway.state.memory_store import MemoryConversationStore
from gateway.state.redis_store import RedisConversationStore
from gateway.state.sql_store import MIGRATIONS, SqlConversationStore
from gateway.tenancy.postgres_store import PostgresTenantStore
from tests.servers import PostgresServer, RedisServer

DOC = b'{"output": [{"type": "message", "content": "hi \\u00e9"}], "input": []}\x00\xff'
UNAVAILABLE = "^conversation store unavailable$"


def record(record_id: str = "resp_1", owner: str = "ten_acme", *, document: bytes = DOC,
           ttl: float = 60.0) -> ConversationRecord:
    now = time.time()
    return ConversationRecord(id=record_id, owner=owner, document=document, created_at=now,
                              expires_at=now + ttl)


def same(a: ConversationRecord | None, b: ConversationRecord) -> None:
    """Equal, timestamps to the microsecond (what PostgreSQL keeps)."""
    assert a is not None
    assert (a.id, a.owner, a.document) == (b.id, b.owner, b.document)
    assert a.created_at == pytest.approx(b.created_at, abs=1e-5)
    assert a.expires_at == pytest.approx(b.expires_at, abs=1e-3)  # Redis keeps milliseconds


def no_shared_client() -> Redis:
    raise AssertionError("the store must not ask for the shared client")


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


async def redis_keys(url: str, pattern: str) -> list[bytes]:
    client = Redis.from_url(url)
    try:
        return [key async for key in client.scan_iter(match=pattern)]
    finally:
        await client.aclose()


async def pg_fetchval(dsn: str, query: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def sqlite_fetchval(path: Path, query: str) -> object:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(query).fetchone()[0]


@dataclass
class Backend:
    """One kind of store; :meth:`open` makes a new, started store object on the same data."""

    kind: str
    config: ConversationsConfig
    target: str = ""  # the Redis URL, the PostgreSQL DSN or the SQLite path
    opened: list[ConversationStore] = field(default_factory=list)

    async def open(self, ttl: float = 60.0) -> ConversationStore:
        config = dataclasses.replace(self.config, ttl=Duration(ttl))
        store = build_conversation_store(config, "", no_shared_client)
        await store.start()
        self.opened.append(store)
        return store

    async def rows(self) -> int:
        """Records physically held, expired ones not yet removed included."""
        if self.kind == "redis":
            return len(await redis_keys(self.target, "llmgw:conv:*"))
        if self.kind == "postgres":
            return int(str(await pg_fetchval(self.target, "SELECT count(*) FROM conversations")))
        if self.kind == "sqlite":
            return int(str(sqlite_fetchval(Path(self.target),
                                           "SELECT count(*) FROM conversations")))
        return sum(len(s) for s in self.opened if isinstance(s, MemoryConversationStore))


def make_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if kind == "redis":
        url = request.getfixturevalue("redis_server").url
        return Backend(kind, ConversationsConfig(store="redis", dsn=url), url)
    if kind == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
        return Backend(kind, ConversationsConfig(store="sql", driver="pgx", dsn=dsn), dsn)
    if kind == "sqlite":
        path = str(tmp_path / "conversations.db")
        return Backend(kind, ConversationsConfig(store="sql", driver="sqlite3", dsn=path), path)
    return Backend(kind, ConversationsConfig(store="memory"))


@pytest.fixture(params=["memory", "redis", "postgres", "sqlite"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    impl = make_backend(request.param, request, tmp_path)
    yield impl
    for store in impl.opened:
        await store.aclose()


@pytest.fixture(params=["redis", "postgres", "sqlite"])
async def durable(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    impl = make_backend(request.param, request, tmp_path)
    yield impl
    for store in impl.opened:
        await store.aclose()


# --- the contract, every store ------------------------------------------------------------


async def test_put_get_delete(backend: Backend) -> None:
    store = await backend.open()
    assert await store.get("resp_1", "ten_acme") is None
    first, second = record("resp_1"), record("resp_2", document=b"{}")
    await store.put(first)
    await store.put(second)
    same(await store.get("resp_1", "ten_acme"), first)
    same(await store.get("resp_2", "ten_acme"), second)
    assert await store.delete("resp_1", "ten_acme") is True
    assert await store.get("resp_1", "ten_acme") is None
    assert await store.delete("resp_1", "ten_acme") is False
    assert await store.delete("resp_missing", "ten_acme") is False
    same(await store.get("resp_2", "ten_acme"), second)


async def test_another_owner_can_neither_read_nor_delete(backend: Backend) -> None:
    store = await backend.open()
    mine = record("resp_1", "ten_acme")
    await store.put(mine)
    assert await store.get("resp_1", "ten_globex") is None
    assert await store.get("resp_1", "") is None
    assert await store.delete("resp_1", "ten_globex") is False
    same(await store.get("resp_1", "ten_acme"), mine)  # still there
    assert await store.delete("resp_1", "ten_acme") is True


async def test_put_replaces_the_record(backend: Backend) -> None:
    store = await backend.open()
    await store.put(record("resp_1", document=b'{"v": 1}'))
    newer = record("resp_1", "ten_other", document=b'{"v": 2}', ttl=120)
    await store.put(newer)
    same(await store.get("resp_1", "ten_other"), newer)
    assert await store.get("resp_1", "ten_acme") is None
    assert await backend.rows() == 1


async def test_large_documents_round_trip(backend: Backend) -> None:
    store = await backend.open()
    big = record(document=bytes(range(256)) * 8192)  # 2 MiB, every byte value
    await store.put(big)
    same(await store.get(big.id, big.owner), big)


async def test_records_expire(backend: Backend) -> None:
    store = await backend.open()
    short, long = record("resp_short", ttl=0.3), record("resp_long")
    await store.put(short)
    await store.put(long)
    same(await store.get("resp_short", "ten_acme"), short)
    await asyncio.sleep(0.45)
    assert await store.get("resp_short", "ten_acme") is None
    assert await store.delete("resp_short", "ten_acme") is False  # gone, even if not swept
    same(await store.get("resp_long", "ten_acme"), long)

    await store.put(record("resp_past", ttl=-1))  # already expired: never readable
    assert await store.get("resp_past", "ten_acme") is None


async def test_extend_keeps_a_conversations_earlier_turns(backend: Backend) -> None:
    """A conversation's earlier turns live as long as its last: extend lengthens only the
    owner's live records, never shortens one, never creates one."""
    store = await backend.open()
    await store.put(record("resp_1", ttl=0.4))
    await store.put(record("resp_2", ttl=0.4))
    await store.put(record("resp_other", "ten_globex", ttl=0.4))
    await store.put(record("resp_long", ttl=60))
    later = time.time() + 30
    await store.extend(["resp_1", "resp_2", "resp_other", "resp_long", "resp_missing"],
                       "ten_acme", later)
    await asyncio.sleep(0.6)
    kept = await store.get("resp_1", "ten_acme")
    assert kept is not None and abs(kept.expires_at - later) < 0.01
    assert await store.get("resp_2", "ten_acme") is not None
    assert await store.get("resp_other", "ten_globex") is None  # not the owner's: expired
    long = await store.get("resp_long", "ten_acme")
    assert long is not None and long.expires_at > later + 20  # never shortened
    assert await store.get("resp_missing", "ten_acme") is None  # never created
    await store.extend([], "ten_acme", later)


async def test_expired_records_are_removed_not_only_hidden(backend: Backend) -> None:
    store = await backend.open(ttl=0.3)  # the sweeper runs every 0.3 s
    await store.put(record("resp_short", ttl=0.3))
    await store.put(record("resp_long"))
    assert await backend.rows() == 2

    async def one_left() -> bool:
        return await backend.rows() == 1

    await eventually(one_left, timeout=3)  # without any read of the expired record
    assert await store.get("resp_long", "ten_acme") is not None


async def test_ping(backend: Backend) -> None:
    store = await backend.open()
    await store.ping()


async def test_concurrent_calls(backend: Backend) -> None:
    store = await backend.open()
    records = [record(f"resp_{i}", f"ten_{i % 3}") for i in range(40)]
    await asyncio.gather(*(store.put(r) for r in records))
    fetched = await asyncio.gather(*(store.get(r.id, r.owner) for r in records))
    for got, want in zip(fetched, records, strict=True):
        same(got, want)
    deleted = await asyncio.gather(*(store.delete(r.id, r.owner) for r in records[:10]))
    assert deleted == [True] * 10
    assert await backend.rows() == 30


# --- the shared stores: durability -----------------------------------------------------------


async def test_a_new_store_object_returns_the_records(durable: Backend) -> None:
    first = await durable.open()
    kept = record("resp_1")
    await first.put(kept)
    await first.put(record("resp_2"))
    assert await first.delete("resp_2", "ten_acme")
    await first.aclose()

    again = await durable.open()  # a restarted replica, or another one
    same(await again.get("resp_1", "ten_acme"), kept)
    assert await again.get("resp_2", "ten_acme") is None
    other = await durable.open()  # two at once see each other's writes
    await other.put(record("resp_3"))
    assert await again.get("resp_3", "ten_acme") is not None


async def test_redis_keys_carry_the_records_expiry(redis_server: RedisServer) -> None:
    async with RedisConversationStore(redis_client(redis_server.url), owns_client=True) as store:
        await store.put(record("resp_1", ttl=30))
        client = Redis.from_url(redis_server.url)
        try:
            assert await client.hget("llmgw:conv:resp_1", "owner") == b"ten_acme"
            assert 29_000 < await client.pttl("llmgw:conv:resp_1") <= 30_000
        finally:
            await client.aclose()


async def test_redis_store_on_the_shared_client_leaves_it_open(redis_server: RedisServer) -> None:
    shared = redis_client(redis_server.url)
    try:
        store = build_conversation_store(ConversationsConfig(store="redis"), redis_server.url,
                                         lambda: shared)
        await store.start()
        await store.put(record())
        await store.aclose()
        assert await shared.exists("llmgw:conv:resp_1") == 1
        assert shared.connection_pool.connection_kwargs["port"] == redis_server.port
    finally:
        await shared.aclose()


# --- PostgreSQL: migrations ----------------------------------------------------------------


async def test_migrations_are_idempotent_and_live_beside_the_tenant_stores(
    postgres_dsn: str,
) -> None:
    stores = [SqlConversationStore(postgres_dsn, driver="pgx") for _ in range(3)]
    tenants = PostgresTenantStore(postgres_dsn)
    try:
        await asyncio.gather(*(s.start() for s in stores), tenants.start())
        await stores[0].start()  # again, on a started store
        await stores[1].put(record())
        assert await stores[2].get("resp_1", "ten_acme") is not None
    finally:
        for s in stores:
            await s.aclose()
        await tenants.aclose()
    conn = await asyncpg.connect(postgres_dsn)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations"
                                " WHERE component = 'conversations' ORDER BY version")
        assert [r["version"] for r in rows] == [v for v, _, _ in MIGRATIONS]
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations"
                                   " WHERE component = 'tenancy'") >= 1
        indexes = await conn.fetchval(
            "SELECT string_agg(indexdef, ';') FROM pg_indexes WHERE tablename = 'conversations'")
        assert "(expires_at)" in indexes
    finally:
        await conn.close()


async def test_sqlite_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    for _ in range(2):  # creating the table is idempotent
        async with SqlConversationStore(str(path), driver="sqlite3") as store:
            await store.put(record())
    assert sqlite_fetchval(path, "PRAGMA journal_mode") == "wal"
    sql = sqlite_fetchval(path, "SELECT group_concat(sql, ';') FROM sqlite_master"
                                " WHERE tbl_name = 'conversations'")
    assert "(expires_at)" in str(sql)
    assert sqlite_fetchval(path, "SELECT count(*) FROM conversations") == 1


# --- outages ---------------------------------------------------------------------------------


def assert_unavailable(exc: pytest.ExceptionInfo[UnavailableError], *secrets: str) -> None:
    assert exc.value.message == "conversation store unavailable"
    seen: BaseException | None = exc.value
    while seen is not None:  # nothing in the chain a traceback would print
        for secret in secrets:
            assert secret not in str(seen) and secret not in repr(seen)
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


def calls_of(store: ConversationStore) -> list[Callable[[], Awaitable[object]]]:
    return [store.ping, lambda: store.put(record("resp_new")),
            lambda: store.get("resp_1", "ten_acme"), lambda: store.delete("resp_1", "ten_acme"),
            lambda: store.extend(["resp_1"], "ten_acme", 1e10)]


async def test_redis_outage_is_unavailable_then_recovers(redis_server: RedisServer) -> None:
    async with RedisConversationStore(redis_client(redis_server.url, timeout=0.5),
                                      owns_client=True) as store:
        await store.put(record("resp_1"))
        redis_server.stop()
        for call in calls_of(store):
            with pytest.raises(UnavailableError) as caught:
                await call()
            assert_unavailable(caught, redis_server.url)

        redis_server.start()  # an empty Redis: no persistence in the tests
        await store.ping()
        await store.put(record("resp_1"))
        assert await store.get("resp_1", "ten_acme") is not None
        assert await store.delete("resp_1", "ten_acme") is True


async def test_redis_password_never_leaks() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"redis://:hunter2-secret@127.0.0.1:{port}/0"
    store = build_conversation_store(ConversationsConfig(store="redis", dsn=url), "",
                                     no_shared_client)
    assert "hunter2" not in repr(store)
    await store.start()
    try:
        for call in calls_of(store):
            with pytest.raises(UnavailableError) as caught:
                await call()
            assert_unavailable(caught, "hunter2-secret", url)
    finally:
        await store.aclose()


async def test_postgres_outage_is_unavailable_then_recovers() -> None:
    server = PostgresServer().start()
    dsn = server.create_database("gateway")
    store = SqlConversationStore(dsn, driver="pgx", ttl=0.3, timeout=1)
    try:
        await store.start()
        await store.put(record("resp_1"))
        server.stop()
        for call in [*calls_of(store), store.sweep, store.start]:
            with pytest.raises(UnavailableError) as caught:
                await call()
            assert_unavailable(caught, dsn, server.password)
        with pytest.raises(UnavailableError) as caught:  # a replica starting now
            await SqlConversationStore(dsn, driver="pgx", timeout=1).start()
        assert_unavailable(caught, dsn, server.password)
        await asyncio.sleep(0.7)  # the sweeper fails a round or two and carries on

        server.start()
        await store.ping()
        assert await store.get("resp_1", "ten_acme") is not None
        await store.put(record("resp_short", ttl=0.2))

        async def swept() -> bool:
            return await pg_fetchval(dsn, "SELECT count(*) FROM conversations") == 1

        await eventually(swept)
    finally:
        await store.aclose()
        server.close()


async def test_a_wrong_postgres_password_never_leaks(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.url.replace(postgres_server.password, "not-the-password-42")
    store = SqlConversationStore(dsn, driver="pgx", timeout=2)
    assert "not-the-password" not in repr(store)
    with pytest.raises(UnavailableError) as caught:
        await store.start()
    assert_unavailable(caught, dsn, "not-the-password-42", postgres_server.password)
    with pytest.raises(UnavailableError, match=UNAVAILABLE[:-1]):  # "... (not started)"
        await store.get("resp_1", "ten_acme")
    await store.aclose()


async def test_sqlite_locked_by_another_writer_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    async with SqlConversationStore(str(path), driver="sqlite3", ttl=0.2,
                                    timeout=0.2) as store:
        await store.put(record("resp_1"))
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")  # holds the write lock, like a stuck process
            for write in (lambda: store.put(record("resp_2")),
                          lambda: store.delete("resp_1", "ten_acme"), store.sweep):
                with pytest.raises(UnavailableError, match=UNAVAILABLE):
                    await write()
            # WAL: readers never wait for the writer.
            assert await store.get("resp_1", "ten_acme") is not None
            await store.ping()
            other.execute("ROLLBACK")
        await store.put(record("resp_2"))
        assert await store.delete("resp_1", "ten_acme") is True


async def test_sqlite_file_that_cannot_be_opened_then_can(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "c.db"
    store = SqlConversationStore(str(path), driver="sqlite3", timeout=0.2)
    try:
        with pytest.raises(UnavailableError, match=UNAVAILABLE):
            await store.start()
        for call in calls_of(store):
            with pytest.raises(UnavailableError, match=UNAVAILABLE):
                await call()
        path.parent.mkdir()  # the volume is back
        await store.ping()
        await store.put(record("resp_1"))
        assert await store.get("resp_1", "ten_acme") is not None
    finally:
        await store.aclose()
    with pytest.raises(UnavailableError, match="not started"):
        await store.get("resp_1", "ten_acme")

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UnavailableError, match=UNAVAILABLE):
        await SqlConversationStore(str(garbage), driver="sqlite3").start()


# --- the response caches ---------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[ResponseCache]:
    if request.param == "memory":
        yield MemoryResponseCache()
        return
    client = redis_client(request.getfixturevalue("redis_server").url, timeout=0.5)
    yield RedisResponseCache(client)
    await client.aclose()


async def test_cache_hit_miss_and_expiry(cache: ResponseCache) -> None:
    assert await cache.get("k1") is None
    await cache.put("k1", b"answer \x00\xff", ttl=60)
    await cache.put("k2", b"short", ttl=0.3)
    assert await cache.get("k1") == b"answer \x00\xff"
    assert await cache.get("k2") == b"short"
    await cache.put("k1", b"newer", ttl=60)
    assert await cache.get("k1") == b"newer"
    await asyncio.sleep(0.45)
    assert await cache.get("k2") is None
    assert await cache.get("k1") == b"newer"
    await cache.put("k3", b"never", ttl=0)
    assert await cache.get("k3") is None
    await cache.aclose()


async def test_memory_cache_is_a_bounded_lru() -> None:
    now = [0.0]
    cache = MemoryResponseCache(max_entries=3, max_bytes=100, clock=lambda: now[0])
    for key in "abc":
        await cache.put(key, key.encode(), ttl=10)
    assert await cache.get("a") == b"a"  # a is now the most recent
    await cache.put("d", b"d", ttl=10)
    assert len(cache) == 3
    assert await cache.get("b") is None  # the least recently used went
    assert [await cache.get(k) for k in "acd"] == [b"a", b"c", b"d"]

    await cache.put("big", b"x" * 100, ttl=10)  # the byte bound evicts too
    assert len(cache) == 1 and await cache.get("big") is not None
    await cache.put("huge", b"x" * 101, ttl=10)  # larger than the whole cache: not kept
    assert await cache.get("huge") is None

    await cache.put("e", b"e", ttl=5)
    await cache.put("f", b"f", ttl=10)
    now[0] = 5.0
    assert await cache.get("e") is None  # expired at its own time
    assert await cache.get("f") == b"f"
    assert len(cache) == 1


async def test_redis_cache_keys_and_ttl(redis_server: RedisServer) -> None:
    client = redis_client(redis_server.url)
    try:
        await RedisResponseCache(client).put("abc123", b"v", ttl=30)
        assert await client.get("llmgw:cache:abc123") == b"v"
        assert 29_000 < await client.pttl("llmgw:cache:abc123") <= 30_000
    finally:
        await client.aclose()


async def test_redis_cache_outage_is_a_miss_logged_once(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture,
) -> None:
    client = redis_client(redis_server.url, timeout=0.5)
    cache = RedisResponseCache(client, retry_after=0.2)
    try:
        await cache.put("k", b"v", ttl=60)
        redis_server.stop()
        with caplog.at_level(logging.INFO, logger="gateway.state"):
            for _ in range(3):
                assert await cache.get("k") is None
                await cache.put("k2", b"v2", ttl=60)  # skipped, no exception
                await asyncio.sleep(0.25)  # past the pause: Redis is asked again
            assert cache.degraded
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1, warnings

            redis_server.start()
            await asyncio.sleep(0.25)
            await cache.put("k", b"back", ttl=60)
            assert await cache.get("k") == b"back"
            assert not cache.degraded
            assert any("reachable again" in r.getMessage() for r in caplog.records)
    finally:
        await client.aclose()


# --- the factory -----------------------------------------------------------------------------


def test_factory_picks_the_store(tmp_path: Path) -> None:
    asked: list[str] = []
    shared = Redis.from_url("redis://127.0.0.1:1/0")

    def shared_client() -> Redis:
        asked.append("shared")
        return shared

    def build(**fields: object) -> ConversationStore:
        config = ConversationsConfig(**fields)  # type: ignore[arg-type]
        return build_conversation_store(config, "redis://127.0.0.1:1/0", shared_client)

    assert isinstance(build(), MemoryConversationStore)
    assert isinstance(build(store="redis"), RedisConversationStore) and asked == ["shared"]
    assert isinstance(build(store="redis", dsn="redis://:pw@127.0.0.1:2/1"),
                      RedisConversationStore) and asked == ["shared"]
    pgx = build(store="sql", driver="pgx", dsn="postgres://u:pw@db/x")
    assert isinstance(pgx, SqlConversationStore) and pgx.driver == "pgx"
    guessed = build(store="sql", dsn="postgresql://u:pw@db/x")
    assert isinstance(guessed, SqlConversationStore) and guessed.driver == "pgx"
    lite = build(store="sql", driver="sqlite3", dsn=str(tmp_path / "c.db"))
    assert isinstance(lite, SqlConversationStore) and lite.driver == "sqlite3"
    lite = build(store="sql", dsn=str(tmp_path / "c.db"))
    assert isinstance(lite, SqlConversationStore) and lite.driver == "sqlite3"
    memory = build(ttl=Duration(0.5))
    assert isinstance(memory, MemoryConversationStore) and memory.sweep_interval == 0.5
    assert isinstance(build(ttl=Duration(3600)), MemoryConversationStore)


@pytest.mark.parametrize(("fields", "complaint"), [
    ({"store": "redis"}, "redis.url"),
    ({"store": "redis", "dsn": "postgres://u:hunter2@db/x"}, "redis://"),
    ({"store": "sql"}, "conversations.dsn"),
    ({"store": "sql", "driver": "pgx", "dsn": "/var/lib/gw/hunter2.db"}, "postgres://"),
    ({"store": "sql", "driver": "pgx", "dsn": "mysql://u:hunter2@db/x"}, "postgres://"),
    ({"store": "sql", "driver": "sqlite3", "dsn": "postgres://u:hunter2@db/x"}, "file path"),
])
def test_factory_refuses_contradictions_without_echoing_the_dsn(
    fields: dict[str, str], complaint: str,
) -> None:
    config = ConversationsConfig(**fields)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=complaint) as caught:
        build_conversation_store(config, "", no_shared_client)
    assert "hunter2" not in str(caught.value)


def test_factory_picks_the_cache() -> None:
    asked: list[str] = []
    shared = Redis.from_url("redis://127.0.0.1:1/0")

    def shared_client() -> Redis:
        asked.append("shared")
        return shared

    assert build_response_cache(CacheConfig(), shared_client) is None
    assert build_response_cache(CacheConfig(enabled=False, store="redis"), shared_client) is None
    assert isinstance(build_response_cache(CacheConfig(enabled=True), shared_client),
                      MemoryResponseCache)
    assert asked == []
    assert isinstance(build_response_cache(CacheConfig(enabled=True, store="redis"),
                                           shared_client), RedisResponseCache)
    assert asked == ["shared"]
