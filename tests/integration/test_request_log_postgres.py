"""The request log on a real PostgreSQL (issue 22, item 4): rows written in batches off the
request path, listed and filtered past the memory ring and after a restart, per-minute
aggregates that survive one and count what is not written yet exactly once, retention,
an absent database that never fails or slows recording, and the queue's bound."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from prometheus_client import REGISTRY

from gateway.backends.postgres import PostgresPool
from gateway.state.request_log import Group, MemoryRequestLog, RequestFilter, RequestRecord
from gateway.state.request_log_postgres import (
    _UPSERT,
    COMPONENT,
    MIGRATIONS,
    PostgresRequestLog,
    _minute_row,
)
from gateway.state.sql_store import SqlConversationStore
from gateway.tenancy.postgres_store import PostgresTenantStore
from tests.inprocess import start_in_process
from tests.integration.test_tenancy import ADMIN, chat, keyed, new_tenant
from tests.servers import PostgresServer

T0 = time.time() // 3600 * 3600 - 86400  # an hour's start, a day ago: inside retention
TENANTS, MODELS, PROVIDERS = ("ten_a", "ten_b", "ten_c"), ("gpt", "claude"), ("openai", "azure")
STATUSES = ("OK", "OK", "OK", "UNAVAILABLE", "NOT_FOUND")


def rec(i: int, *, at: float | None = None) -> RequestRecord:
    """The i-th of a varied stream: three records per second, tenants, models, providers
    and statuses in different cycles, so every filter picks a mix."""
    return RequestRecord(
        at=T0 + i // 3 if at is None else at, request_id=f"req_{i:06d}",
        method="CreateChatCompletion", tenant=TENANTS[i % 3], model=MODELS[i % 2],
        provider=PROVIDERS[i % 4 // 2], status=STATUSES[i % 5], latency_ms=float(5 + i % 700),
        prompt_tokens=10 + i % 7, completion_tokens=i % 11, cost_usd=0.001 * (i % 3),
        stream=i % 2 == 0)


@pytest.fixture
async def request_log(postgres_dsn: str) -> AsyncIterator[PostgresRequestLog]:
    log = PostgresRequestLog(postgres_dsn, memory_records=100, interval=3600)
    await log.start()
    yield log
    await log.aclose()


async def rows_in(dsn: str, sql: str = "SELECT count(*) FROM request_log") -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def until_rows(dsn: str, expected: int, timeout: float = 10.0) -> None:
    """Wait until ``request_log`` holds ``expected`` rows."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = await rows_in(dsn)
        except asyncpg.UndefinedTableError:  # not migrated yet
            found = 0
        if found == expected:
            return
        assert time.monotonic() < deadline, f"{found} rows, not {expected}, after {timeout}s"
        await asyncio.sleep(0.05)


def ids(records: list[RequestRecord]) -> list[str]:
    return [r.request_id for r in records]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_full_batch_is_written_at_once_and_the_rest_every_interval(
    postgres_dsn: str,
) -> None:
    log = PostgresRequestLog(postgres_dsn, interval=3600)
    await log.start()
    try:
        for i in range(499):
            log.record(rec(i))
        await asyncio.sleep(0.3)
        assert await rows_in(postgres_dsn) == 0  # not a full batch, and no interval yet
        log.record(rec(499))  # the 500th wakes the writer
        await until_rows(postgres_dsn, 500)
    finally:
        await log.aclose()
    log = PostgresRequestLog(postgres_dsn, interval=0.2)
    await log.start()
    try:
        log.record(rec(500))
        await until_rows(postgres_dsn, 501)
        assert log.pending == 0
    finally:
        await log.aclose()


async def test_filters_and_pages_reach_past_the_memory_ring_and_a_restart(
    postgres_dsn: str, request_log: PostgresRequestLog,
) -> None:
    reference = MemoryRequestLog(capacity=100_000)  # what the answers must be
    for i in range(3000):
        record = rec(i)
        request_log.record(record)
        reference.record(record)
    await request_log.flush()
    for i in range(3000, 3030):  # not written yet: the pages must show them too
        record = rec(i)
        request_log.record(record)
        reference.record(record)
    assert request_log.pending == 30

    filters = [RequestFilter(), RequestFilter(tenant="ten_b"), RequestFilter(model="claude"),
               RequestFilter(provider="azure", status="UNAVAILABLE"),
               RequestFilter(tenant="ten_a", model="gpt", since=T0 + 100, until=T0 + 700),
               RequestFilter(request_id="req_000042"), RequestFilter(tenant="nobody")]
    for where in filters:
        expected = ids(await reference.query(where, 100_000))
        assert ids(await request_log.query(where, 10_000)) == expected, where
        pages: list[str] = []  # the cursor walks the same records, page by page
        before = None
        while page := await request_log.query(where, 250, before):
            pages += ids(page)
            before = (page[-1].at, page[-1].request_id)
        assert pages == expected, where
    # Pages read while batches commit list each record once.
    for i in range(3030, 4030):
        record = rec(i)
        request_log.record(record)
        reference.record(record)
        if i % 100 == 0:
            expected = ids(await reference.query(RequestFilter(), 1000))
            for during in await asyncio.gather(
                    request_log.query(RequestFilter(), 1000), request_log.flush(),
                    request_log.query(RequestFilter(), 1000)):
                if isinstance(during, list):
                    assert ids(during) == expected

    await request_log.aclose()
    again = PostgresRequestLog(postgres_dsn, memory_records=10, interval=3600)
    await again.start()
    try:
        found = await again.query(RequestFilter(tenant="ten_c"), 5000)
        assert ids(found) == ids(await reference.query(RequestFilter(tenant="ten_c"), 5000))
        want = (await reference.query(RequestFilter(tenant="ten_c"), 1))[0]  # all of it
        assert dataclasses.replace(found[0], at=want.at) == want
        assert found[0].at == pytest.approx(want.at, abs=1e-6)
    finally:
        await again.aclose()


async def test_series_survive_a_restart_and_count_unwritten_deltas_once(
    postgres_dsn: str, request_log: PostgresRequestLog,
) -> None:
    reference = MemoryRequestLog()
    for i in range(600):  # 200 seconds: four minutes
        record = rec(i)
        request_log.record(record)
        reference.record(record)
    await request_log.flush()
    for i in range(600, 900):
        record = rec(i)
        request_log.record(record)
        reference.record(record)

    async def totals(log: PostgresRequestLog | MemoryRequestLog) -> list[tuple[object, ...]]:
        points = [*await log.series(T0, T0 + 3600, 120, group="model"),
                  # Steps that start inside a minute: the same steps as memory's.
                  *await log.series(T0 + 30.25, T0 + 3000, 180, group="tenant"),
                  *await log.series(T0 + 59.5, T0 + 3000, 60, model="claude")]
        return [(p.at, p.key, p.requests, p.errors, p.latency_buckets, p.prompt_tokens,
                 p.completion_tokens, round(p.cost_usd, 9)) for p in points]

    expected = await totals(reference)
    assert sum(p.requests for p in await request_log.series(T0, T0 + 3600, 3600)) == 900
    assert await totals(request_log) == expected  # the table's rows plus the deltas
    # Reads racing writes, with more arriving: each delta is counted once, never twice.
    for i in range(900, 1200):
        record = rec(i)
        request_log.record(record)
        reference.record(record)
        if i % 50 == 0:
            _, seen = await asyncio.gather(request_log.flush(), totals(request_log))
            assert seen == await totals(reference)
    assert await totals(request_log) == await totals(reference)

    await request_log.aclose()
    again = PostgresRequestLog(postgres_dsn, interval=3600)  # a restart: memory is empty
    await again.start()
    try:
        assert await totals(again) == await totals(reference)
        for i in range(1200, 1260):  # another replica adding to the same minutes
            record = rec(i, at=T0 + 1)
            again.record(record)
            reference.record(record)
        await again.flush()
        assert await totals(again) == await totals(reference)
        only = await again.series(T0, T0 + 3600, 3600, tenant="ten_a", model="gpt")
        assert [p.requests for p in only] == [
            p.requests for p in await reference.series(T0, T0 + 3600, 3600, tenant="ten_a",
                                                       model="gpt")]
    finally:
        await again.aclose()


async def test_series_read_totals_and_blocks_built_from_older_minutes_too(
    postgres_dsn: str,
) -> None:
    """A series of everything sums request_totals (a row a minute); else steps of whole
    blocks of ten minutes sum request_blocks (a fifth of the rows of a day's
    request_minutes, or less) for the blocks inside a step, request_minutes for the rest.
    The minutes a database held before these tables existed are summed into them by the
    migration that adds them."""
    reference = MemoryRequestLog()
    older = [rec(i) for i in range(900)]  # T0 to T0 + 300 s
    for record in older:
        reference.record(record)
    first = PostgresPool(postgres_dsn, name="request log", component=COMPONENT,
                         migrations=MIGRATIONS[:1])
    await first.start()  # the database as the log's first version left it
    async with first.connection() as conn:
        await conn.executemany(_UPSERT.format(table="request_minutes"),
                               [_minute_row(m) for m in reference._minutes.values()])
    await first.aclose()

    log = PostgresRequestLog(postgres_dsn, interval=3600)
    await log.start()
    try:
        for i in range(900, 3000):  # on to T0 + 1000 s
            log.record(rec(i))
            reference.record(rec(i))
        await log.flush()

        async def points(source: PostgresRequestLog | MemoryRequestLog, since: float,
                         until: float, step: int, group: Group) -> list[tuple[object, ...]]:
            found = await source.series(since, until, step, group=group)
            return [(p.at, p.key, p.requests, p.errors, p.latency_buckets, p.prompt_tokens,
                     p.completion_tokens, round(p.cost_usd, 9)) for p in found]

        # Blocks, then the minutes after the last whole block (from T0 + 600 s on).
        cases: tuple[tuple[float, float, int, Group], ...] = (
            (T0, T0 + 930.5, 600, "tenant"), (T0, T0 + 3600, 1800, "model"),
            (T0, T0 + 3600, 3600, ""),
            # Steps off the blocks: the blocks a step boundary cuts are read by the minute.
            (T0 + 130.5, T0 + 2900, 1800, "tenant"), (T0 + 59.5, T0 + 3600, 1200, "model"),
            (T0 - 7200, T0 + 700, 3600, "provider"))
        for since, until, step, group in cases:
            assert await points(log, since, until, step, group) == await points(
                reference, since, until, step, group)
        # With the minutes gone, the aligned series still answer: they read the blocks.
        conn = await asyncpg.connect(postgres_dsn)
        try:
            await conn.execute("DELETE FROM request_minutes")
            assert await points(log, T0, T0 + 3600, 1800, "model") == await points(
                reference, T0, T0 + 3600, 1800, "model")
            assert sum(p.requests for p in await log.series(T0, T0 + 3600, 600,
                                                            group="tenant")) == 3000
            # Every block cut by a step boundary: all from the minutes, gone.
            assert await log.series(T0 + 60, T0 + 3600, 600, group="tenant") == []
            whole = [r for r in reference._minutes.values()
                     if T0 + 600 <= r.minute * 60 < T0 + 1800]
            assert sum(p.requests for p in await log.series(
                T0 + 60, T0 + 3600, 1800, model="gpt")) == sum(
                r.requests for r in whole if r.model == "gpt")  # the first step's blocks
            # Nothing grouped or filtered: each minute's totals, whatever the steps.
            await conn.execute("DELETE FROM request_blocks")
            assert await points(log, T0 + 59.5, T0 + 3600, 60, "") == await points(
                reference, T0 + 59.5, T0 + 3600, 60, "")
            assert await log.series(T0, T0 + 3600, 1800, group="model") == []
        finally:
            await conn.close()
    finally:
        await log.aclose()


async def test_retention_deletes_old_rows_and_aggregates_in_batches(postgres_dsn: str) -> None:
    now = time.time()
    log = PostgresRequestLog(postgres_dsn, retention=3600, aggregate_retention=7200,
                             interval=3600)
    await log.start()
    try:
        for i in range(6000):  # past one DELETE's batch
            log.record(rec(i, at=now - 3 * 3600 + i / 10))
        for i in range(6000, 6100):
            log.record(rec(i, at=now - 1.5 * 3600))
        for i in range(6100, 6110):
            log.record(rec(i, at=now - 10))
        await log.flush()
        old_minutes = await rows_in(postgres_dsn, "SELECT count(*) FROM request_minutes"
                                    f" WHERE minute < to_timestamp({now - 7200})")
        assert old_minutes > 0
        rows, aggregates = await log.sweep()
        assert rows == 6100 and aggregates == old_minutes
        assert await rows_in(postgres_dsn) == 10
        assert await log.sweep() == (0, 0)
        kept = await log.series(now - 4 * 3600, now, 3600)
        assert sum(p.requests for p in kept) == 110  # the 1.5 hours old and the new
    finally:
        await log.aclose()


async def test_an_absent_database_never_fails_or_slows_recording() -> None:
    server = PostgresServer().start()
    dsn = server.create_database("gateway")
    server.stop()
    log = PostgresRequestLog(dsn, interval=0.1, max_pending=600, connect_timeout=1,
                             command_timeout=2)
    try:
        started = time.monotonic()
        await log.start()  # the database is down: the writer keeps trying
        assert time.monotonic() - started < 3
        for i in range(100):
            log.record(rec(i))
        assert ids(await log.query(RequestFilter(), 3)) == ["req_000099", "req_000098",
                                                            "req_000097"]  # from memory
        server.start()
        await until_rows(dsn, 100)

        server.stop()
        slowest = 0.0
        for i in range(100, 1100):
            began = time.perf_counter()
            log.record(rec(i))
            slowest = max(slowest, time.perf_counter() - began)
            if i % 100 == 0:
                await asyncio.sleep(0.05)  # the writer tries, and fails, meanwhile
        assert slowest < 0.05  # no I/O: a request never waits for the database
        assert (log.pending, log.dropped) == (600, 400)
        assert len(await log.query(RequestFilter(), 1000)) == 1000  # memory's ring
        points = await log.series(T0, T0 + 3600, 3600)
        assert sum(p.requests for p in points) == 1100

        server.start()
        await until_rows(dsn, 700)
        # The rows past the bound are gone, not their minutes: the charts count them all.
        assert await rows_in(dsn, "SELECT sum(requests) FROM request_minutes") == 1100
        assert log.pending == 0
    finally:
        await log.aclose()
        server.close()


async def test_a_full_queue_drops_counts_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dsn = f"postgresql://gw:secret-pw@127.0.0.1:{closed_port()}/gateway"
    log = PostgresRequestLog(dsn, interval=0.05, max_pending=50, connect_timeout=0.5)
    await log.start()
    before = REGISTRY.get_sample_value("gateway_request_log_dropped_total") or 0.0
    with caplog.at_level(logging.WARNING, logger="gateway.state"):
        for i in range(80):
            log.record(rec(i))
        await asyncio.sleep(0.2)
        for i in range(80, 90):
            log.record(rec(i))
    assert (log.pending, log.dropped) == (50, 40)
    assert REGISTRY.get_sample_value("gateway_request_log_dropped_total") == before + 40
    said = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(said) == 1
    assert sum(p.requests for p in await log.series(T0, T0 + 3600, 60)) == 90
    with caplog.at_level(logging.ERROR, logger="gateway.state"):
        started = time.monotonic()
        await log.aclose()
        assert time.monotonic() - started < 3
    assert any("lost at shutdown" in r.getMessage() for r in caplog.records)
    assert "secret-pw" not in caplog.text


async def test_a_name_postgresql_cannot_hold_never_blocks_the_queue(
    request_log: PostgresRequestLog,
) -> None:
    """A client names the model: a NUL, a lone surrogate or 5,000 characters would fail the
    batch on every retry (text and index limits) and hold every row behind it."""
    for i, model in enumerate(("a\x00b", "\ud800", "m" * 5000, "gpt")):
        request_log.record(dataclasses.replace(rec(i), model=model))
    assert await request_log.flush() and request_log.pending == 0
    listed = await request_log.query(RequestFilter(), 10)
    assert [r.model for r in listed] == ["gpt", "m" * 256, "?", "a\ufffdb"]
    assert [p.requests for p in await request_log.series(T0, T0 + 60, 60)] == [4]


async def test_migrations_are_idempotent_and_live_beside_the_other_tables(
    postgres_dsn: str,
) -> None:
    logs = [PostgresRequestLog(postgres_dsn) for _ in range(3)]
    others = [PostgresTenantStore(postgres_dsn), SqlConversationStore(postgres_dsn, driver="pgx")]
    try:
        await asyncio.gather(*(s.start() for s in [*logs, *others]))
        await logs[0].start()  # again, on a started log
        logs[1].record(rec(1))
        await logs[1].flush()
        assert ids(await logs[2].query(RequestFilter(), 10)) == ["req_000001"]
    finally:
        for s in [*logs, *others]:
            await s.aclose()
    conn = await asyncpg.connect(postgres_dsn)
    try:
        rows = await conn.fetch("SELECT component, version FROM schema_migrations"
                                " ORDER BY component, version")
        components = [(r["component"], r["version"]) for r in rows]
        assert [c for c in components if c[0] == "request_log"] == [
            ("request_log", v) for v, _, _ in MIGRATIONS]
        assert {c[0] for c in components} == {"conversations", "request_log", "tenancy"}
        indexes = await conn.fetchval("SELECT string_agg(indexdef, ';') FROM pg_indexes"
                                      " WHERE tablename = 'request_log'")
        assert "(tenant, at, request_id)" in indexes
    finally:
        await conn.close()


def test_a_gateway_on_postgres_lists_past_its_ring_and_a_restart(postgres_dsn: str) -> None:
    config = keyed("request_log: {memory_records: 2}")
    env = {"GATEWAY_ADMIN_KEY": ADMIN, "DATABASE_URL": postgres_dsn}
    gw = start_in_process(config, env=env)
    try:
        tenant_id, key = new_tenant(gw)
        for _ in range(5):
            assert chat(gw, key).status_code == 200
    finally:
        assert gw.stop() == 0  # the last rows are written at shutdown
    gw = start_in_process(config, env=env)
    try:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        page = httpx.get(gw.http_url + "/admin/requests", headers=headers,
                         params={"tenant_id": tenant_id}, timeout=10).json()["requests"]
        assert [(r["model"], r["status"]) for r in page] == [("mock-1", "OK")] * 5
        series = httpx.get(gw.http_url + "/admin/usage/series", headers=headers,
                           params={"group_by": "tenant"}, timeout=10).json()["points"]
        assert sum(int(p["requests"]) for p in series if p["key"] == tenant_id) == 5
    finally:
        assert gw.stop() == 0


@pytest.mark.slow
def test_a_gateway_serves_without_its_database_and_writes_the_rows_later() -> None:
    server = PostgresServer().start()
    dsn = server.create_database("gateway")
    gw = start_in_process(None, env={"DATABASE_URL": dsn, "GATEWAY_ADMIN_KEY": ADMIN})
    headers = {"Authorization": f"Bearer {ADMIN}"}
    try:
        assert chat(gw, None).status_code == 200
        server.stop()
        slowest = 0.0
        for _ in range(20):
            started = time.monotonic()
            assert chat(gw, None).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
        assert slowest < 1.0  # the database's timeouts are 3 and 5 s
        listed = httpx.get(gw.http_url + "/admin/requests", headers=headers, timeout=10)
        assert len(listed.json()["requests"]) == 21  # from memory meanwhile
        server.start()
        asyncio.run(until_rows(dsn, 21))
        server.stop()  # and the gateway stops without it, nothing waiting
        assert gw.stop() == 0
    finally:
        gw.stop()
        server.close()
