"""The conversation store on SQL: PostgreSQL (driver ``pgx``) or an SQLite file (``sqlite3``).

One table, ``conversations``, created by :meth:`SqlConversationStore.start`; on PostgreSQL
as migrations through the shared ``schema_migrations`` table, so replicas starting together
neither race nor apply one twice. Reads skip expired rows, compared with this process's
clock (the clock that set ``expires_at``), and a background task deletes them. SQLite has no
async driver: the stdlib module runs in a worker thread on one connection, in WAL mode so
readers never wait for the writer; a failed call drops the connection, so a fixed file
recovers.

Every backend failure is :class:`~gateway.errors.UnavailableError` with a fixed message: the
DSN may hold a password and never appears in an error or a log line.

Example::

    store = SqlConversationStore("postgres://gw:pw@db:5432/gateway", driver="pgx", ttl=3600)
    await store.start()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal, Protocol, Self, TypeVar

from gateway.backends.postgres import PostgresPool
from gateway.errors import UnavailableError
from gateway.state.base import ConversationRecord

__all__ = ["COMPONENT", "MIGRATIONS", "SqlConversationStore"]

log = logging.getLogger("gateway.state")

COMPONENT = "conversations"
_UNAVAILABLE = "conversation store unavailable"
MAX_SWEEP_INTERVAL = 60.0
MIN_SWEEP_INTERVAL = 0.05
SWEEP_BATCH = 5000  # rows per DELETE, so a large backlog never holds one long lock
PING_TIMEOUT = 2.0
CLOSE_TIMEOUT = 5.0

# (version, description, SQL). Append only: a released migration never changes.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "conversations", """
CREATE TABLE conversations (
    id          text PRIMARY KEY,
    owner       text NOT NULL,
    document    bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX conversations_expires_at_idx ON conversations (expires_at);
"""),
)

_SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS conversations (
        id          TEXT PRIMARY KEY,
        owner       TEXT NOT NULL,
        document    BLOB NOT NULL,
        created_at  REAL NOT NULL,
        expires_at  REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS conversations_expires_at_idx ON conversations (expires_at)",
)
_UPSERT = """INSERT INTO conversations (id, owner, document, created_at, expires_at)
    VALUES ({0}, {1}, {2}, {3}, {4})
    ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, document = excluded.document,
        created_at = excluded.created_at, expires_at = excluded.expires_at"""
_GET = """SELECT owner, document, created_at, expires_at FROM conversations
    WHERE id = {0} AND expires_at > {1}"""
_DELETE = "DELETE FROM conversations WHERE id = {0} AND owner = {1} AND expires_at > {2}"
_EXTEND = """UPDATE conversations SET expires_at = {2}
    WHERE id = {0} AND owner = {1} AND expires_at > {3} AND expires_at < {2}"""
_SWEEP = ("DELETE FROM conversations WHERE id IN (SELECT id FROM conversations"
          f" WHERE expires_at <= {{0}} LIMIT {SWEEP_BATCH})")
# The same statements in each driver's parameter style.
_PG = {name: sql.format("$1", "$2", "$3", "$4", "$5") for name, sql in (
    ("upsert", _UPSERT), ("get", _GET), ("delete", _DELETE), ("sweep", _SWEEP),
    ("extend", _EXTEND))}
_LITE = {name: sql.format(*"?????") for name, sql in (
    ("upsert", _UPSERT), ("get", _GET), ("delete", _DELETE), ("sweep", _SWEEP),
    ("extend", _EXTEND))}

T = TypeVar("T")


class _Backend(Protocol):
    async def start(self) -> None: ...
    async def aclose(self) -> None: ...
    async def ping(self) -> None: ...
    async def put(self, record: ConversationRecord) -> None: ...
    async def get(self, record_id: str, now: float) -> ConversationRecord | None: ...
    async def delete(self, record_id: str, owner: str, now: float) -> bool: ...
    async def extend(self, record_ids: Sequence[str], owner: str, expires_at: float,
                     now: float) -> None: ...
    async def sweep(self, now: float) -> int: ...


class SqlConversationStore:
    """:class:`~gateway.state.base.ConversationStore` on SQL; see the module docstring.

    ``dsn``: ``postgres://`` / ``postgresql://user:password@host:port/db`` for ``pgx``,
    a file path for ``sqlite3``. ``timeout`` bounds connecting and each statement
    (on SQLite: how long a call waits for another writer's lock).
    """

    def __init__(self, dsn: str, *, driver: Literal["pgx", "sqlite3"], ttl: float = 3600.0,
                 timeout: float = 5.0, clock: Callable[[], float] = time.time):
        self._backend: _Backend
        if driver == "pgx":
            if not dsn.startswith(("postgres://", "postgresql://")):
                # Not quoted: whatever was passed may hold a password.
                raise ValueError("driver pgx needs a DSN starting with postgres:// or "
                                 "postgresql://")
            self._backend = _Postgres(dsn, timeout)
        elif driver == "sqlite3":
            if not dsn or "://" in dsn:
                raise ValueError("driver sqlite3 needs a file path as its DSN")
            self._backend = _Sqlite(dsn, timeout)
        else:
            raise ValueError("the SQL driver must be pgx or sqlite3")
        self.driver = driver
        self.sweep_interval = max(MIN_SWEEP_INTERVAL, min(float(ttl), MAX_SWEEP_INTERVAL))
        self._clock = clock
        self._sweeper: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"SqlConversationStore(driver={self.driver!r}, dsn=<hidden>)"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        await self._backend.start()
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(),
                                                name="conversations-sweeper")

    async def aclose(self) -> None:
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._backend.aclose()

    async def ping(self) -> None:
        await self._backend.ping()

    async def put(self, record: ConversationRecord) -> None:
        await self._backend.put(record)

    async def get(self, record_id: str, owner: str) -> ConversationRecord | None:
        record = await self._backend.get(record_id, self._clock())
        return record if record is not None and record.owner == owner else None

    async def delete(self, record_id: str, owner: str) -> bool:
        return await self._backend.delete(record_id, owner, self._clock())

    async def extend(self, record_ids: Sequence[str], owner: str, expires_at: float) -> None:
        if record_ids:
            await self._backend.extend(record_ids, owner, expires_at, self._clock())

    async def sweep(self) -> int:
        """Delete the expired rows now; return how many."""
        return await self._backend.sweep(self._clock())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                if deleted := await self.sweep():
                    log.debug("expired conversations deleted",
                              extra={"fields": {"count": deleted}})
            except UnavailableError:
                pass  # logged where it was raised; the next round tries again


class _Postgres:
    def __init__(self, dsn: str, timeout: float):
        self._db = PostgresPool(dsn, name=_UNAVAILABLE.removesuffix(" unavailable"),
                                component=COMPONENT, migrations=MIGRATIONS,
                                connect_timeout=timeout, command_timeout=timeout)

    async def start(self) -> None:
        await self._db.start()

    async def aclose(self) -> None:
        await self._db.aclose()

    async def ping(self) -> None:
        await self._db.ping()

    async def put(self, r: ConversationRecord) -> None:
        async with self._db.connection() as conn:
            await conn.execute(_PG["upsert"], r.id, r.owner, r.document, _ts(r.created_at),
                               _ts(r.expires_at))

    async def get(self, record_id: str, now: float) -> ConversationRecord | None:
        async with self._db.connection() as conn:
            row = await conn.fetchrow(_PG["get"], record_id, _ts(now))
        if row is None:
            return None
        return ConversationRecord(record_id, row["owner"], bytes(row["document"]),
                                  row["created_at"].timestamp(), row["expires_at"].timestamp())

    async def delete(self, record_id: str, owner: str, now: float) -> bool:
        async with self._db.connection() as conn:
            status = await conn.execute(_PG["delete"], record_id, owner, _ts(now))
        return bool(status == "DELETE 1")

    async def extend(self, record_ids: Sequence[str], owner: str, expires_at: float,
                     now: float) -> None:
        async with self._db.connection() as conn:
            await conn.executemany(_PG["extend"], [(i, owner, _ts(expires_at), _ts(now))
                                                   for i in record_ids])

    async def sweep(self, now: float) -> int:
        total = 0
        async with self._db.connection() as conn:
            while True:
                status = await conn.execute(_PG["sweep"], _ts(now))
                deleted = int(status.split()[-1])
                total += deleted
                if deleted < SWEEP_BATCH:
                    return total



class _Sqlite:
    def __init__(self, path: str, timeout: float):
        self._path = path
        self._timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._started = False
        # The asyncio lock queues callers without holding worker threads; the thread lock
        # keeps a call whose awaiting task was cancelled from overlapping the next one.
        self._queue = asyncio.Lock()
        self._lock = threading.Lock()

    async def start(self) -> None:
        self._started = True
        await self._run(lambda conn: None)  # opens the file and creates the table

    async def aclose(self) -> None:
        self._started = False
        async with self._queue:
            await asyncio.to_thread(self._close)

    async def ping(self) -> None:
        await self._run(lambda c: c.execute("SELECT 1 FROM conversations LIMIT 1").fetchall())

    async def put(self, r: ConversationRecord) -> None:
        args = (r.id, r.owner, r.document, r.created_at, r.expires_at)
        await self._run(lambda c: c.execute(_LITE["upsert"], args))

    async def get(self, record_id: str, now: float) -> ConversationRecord | None:
        row = await self._run(lambda c: c.execute(
            _LITE["get"], (record_id, now)).fetchone())
        if row is None:
            return None
        owner, document, created_at, expires_at = row
        return ConversationRecord(record_id, owner, bytes(document), created_at, expires_at)

    async def delete(self, record_id: str, owner: str, now: float) -> bool:
        count = await self._run(lambda c: c.execute(
            _LITE["delete"], (record_id, owner, now)).rowcount)
        return count == 1

    async def extend(self, record_ids: Sequence[str], owner: str, expires_at: float,
                     now: float) -> None:
        # "?" parameters go in the statement's order: expires_at, id, owner, now, expires_at
        rows = [(expires_at, i, owner, now, expires_at) for i in record_ids]
        await self._run(lambda c: c.executemany(_LITE["extend"], rows))

    async def sweep(self, now: float) -> int:
        def sweep(conn: sqlite3.Connection) -> int:
            total = 0
            while True:
                deleted = conn.execute(_LITE["sweep"], (now,)).rowcount
                total += deleted
                if deleted < SWEEP_BATCH:
                    return total

        return await self._run(sweep)

    async def _run(self, call: Callable[[sqlite3.Connection], T]) -> T:
        if not self._started:
            raise UnavailableError(_UNAVAILABLE + " (not started)")
        try:
            async with self._queue:
                return await asyncio.to_thread(self._call, call)
        except (sqlite3.Error, OSError) as exc:
            raise _unavailable(exc) from None

    def _call(self, call: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._conn is None:
                self._conn = self._open()
            try:
                return call(self._conn)
            except BaseException:
                # Whatever broke (a lock held too long, a moved or damaged file), a fresh
                # connection is the way back; opening one is cheap.
                self._close_locked()
                raise

    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: autocommit, each statement its own transaction.
        conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives a crash of the process, only a power cut may
            # lose the last ones; one fsync per checkpoint instead of per commit.
            conn.execute("PRAGMA synchronous=NORMAL")
            for statement in _SQLITE_SCHEMA:
                conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        return conn

    def _close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


def _unavailable(exc: BaseException) -> UnavailableError:
    # The class and SQLSTATE are enough to diagnose; the message of a connection error
    # can carry connection parameters, so it stays out of the log too.
    log.warning(_UNAVAILABLE, extra={"fields": {
        "error": type(exc).__name__, "sqlstate": getattr(exc, "sqlstate", None) or "",
        "sqlite_error": getattr(exc, "sqlite_errorname", None) or ""}})
    return UnavailableError(_UNAVAILABLE)


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)
