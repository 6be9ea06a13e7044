"""One way to use PostgreSQL: an asyncpg pool with migrations, timeouts and outages
as :class:`~gateway.errors.UnavailableError`.

Every store on PostgreSQL (tenants, conversations) holds a :class:`PostgresPool`.
Outages never leak the DSN: the log gets the error class and SQLSTATE, the caller a
fixed message naming the store.

Migrations are numbered per *component* in one shared ``schema_migrations`` table,
applied in one transaction under an advisory lock, so replicas starting together
wait for each other and the later ones find nothing left to do.

Example::

    db = PostgresPool(dsn, name="tenant store", component="tenancy", migrations=MIGRATIONS)
    await db.start()
    async with db.connection() as conn:
        await conn.fetch("SELECT ...")
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from gateway.errors import UnavailableError

__all__ = ["MAX_TEXT", "Migration", "PostgresPool", "apply_migrations", "check_dsn", "pg_text"]

log = logging.getLogger("gateway.postgres")

Migration = tuple[int, str, str]  # (version, description, SQL); append only

_LOCK_KEY = 0x6C6C6D67_77000001  # pg_advisory_xact_lock key of schema migrations ("llmgw")
MIGRATION_TIMEOUT = 120.0  # a replica may wait this long for another's migrations
PING_TIMEOUT = 2.0  # the whole readiness check, connecting included
CLOSE_TIMEOUT = 5.0
# InternalClientError: asyncpg's protocol state machine confused by a server going away
# mid-operation ("cannot switch to state 12; another operation is in progress"), seen
# when PostgreSQL shuts down under load; an outage like the others, not a 500.
UNREACHABLE = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
               OSError, TimeoutError)
# Constraint violations are the caller's to name (a duplicate name is a 409, not a 503).
_CALLERS = (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError)


MAX_TEXT = 256  # characters of a name kept: a btree index entry holds ~2,700 bytes


def pg_text(value: str) -> str:
    """What PostgreSQL's text and its indexes take of a name a client chose (a model): no
    NUL, no lone surrogate, at most :data:`MAX_TEXT` characters. Else the row's whole batch
    would fail, and fail again at every retry."""
    if len(value) > MAX_TEXT or not value.isascii() or "\x00" in value:
        value = value[:MAX_TEXT].replace("\x00", "\ufffd")
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def check_dsn(dsn: str) -> str:
    if not dsn.startswith(("postgres://", "postgresql://")):
        # Not quoted: whatever was passed may hold a password.
        raise ValueError("the PostgreSQL DSN must start with postgres:// or postgresql://")
    return dsn


async def apply_migrations(conn: Any, component: str,
                           migrations: Sequence[Migration]) -> list[int]:
    """Apply the ``migrations`` of ``component`` not yet recorded; return their versions."""
    timeout = MIGRATION_TIMEOUT
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY, timeout=timeout)
        await conn.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                component   text NOT NULL,
                version     integer NOT NULL,
                description text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, version)
            )""", timeout=timeout)
        done = {r["version"] for r in await conn.fetch(
            "SELECT version FROM schema_migrations WHERE component = $1", component)}
        applied = []
        for version, description, sql in sorted(migrations):
            if version in done:
                continue
            await conn.execute(sql, timeout=timeout)
            await conn.execute(
                "INSERT INTO schema_migrations (component, version, description) "
                "VALUES ($1, $2, $3)", component, version, description)
            applied.append(version)
        return applied


class PostgresPool:
    def __init__(self, dsn: str, *, name: str, component: str,
                 migrations: Sequence[Migration], min_size: int = 1, max_size: int = 10,
                 connect_timeout: float = 3.0, command_timeout: float = 5.0):
        self._dsn = check_dsn(dsn)
        self.name = name
        self._component = component
        self._migrations = migrations
        self._min_size, self._max_size = min_size, max_size
        self._connect_timeout, self._command_timeout = connect_timeout, command_timeout
        self._pool: Any = None

    def __repr__(self) -> str:
        return f"PostgresPool({self.name!r}, dsn=<hidden>)"

    def unavailable(self, exc: BaseException) -> UnavailableError:
        # The class and SQLSTATE are enough to diagnose; the message of a connection error
        # can carry connection parameters, so it stays out of the log too.
        log.warning(f"{self.name} unavailable", extra={"fields": {
            "error": type(exc).__name__, "sqlstate": getattr(exc, "sqlstate", None) or ""}})
        return UnavailableError(f"{self.name} unavailable")

    async def start(self) -> None:
        """Connect and apply the migrations (idempotent)."""
        if self._pool is None:
            try:
                self._pool = await asyncpg.create_pool(
                    self._dsn, min_size=self._min_size, max_size=self._max_size,
                    timeout=self._connect_timeout, command_timeout=self._command_timeout,
                    server_settings={"application_name": "llm-gateway"})
            except UNREACHABLE as exc:
                raise self.unavailable(exc) from None
        async with self.connection() as conn:
            applied = await apply_migrations(conn, self._component, self._migrations)
        if applied:
            log.info(f"{self.name} migrated", extra={"fields": {"versions": applied}})

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
            except UNREACHABLE:  # TimeoutError included: a connection still in use
                pool.terminate()

    async def ping(self) -> None:
        try:
            async with asyncio.timeout(PING_TIMEOUT), self.connection() as conn:
                await conn.fetchval("SELECT 1")
        except TimeoutError as exc:
            raise self.unavailable(exc) from None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A pooled connection; an unreachable server becomes UnavailableError."""
        if self._pool is None:
            raise UnavailableError(f"{self.name} unavailable (not started)")
        try:
            async with self._pool.acquire(timeout=self._connect_timeout) as conn:
                yield conn
        except _CALLERS:
            raise
        except UNREACHABLE as exc:
            raise self.unavailable(exc) from None
