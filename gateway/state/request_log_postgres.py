"""The request log kept in PostgreSQL as well: records reach past the memory ring, and the
per-minute aggregates the charts read outlive the process.

:class:`PostgresRequestLog` is a :class:`~gateway.state.request_log.RequestLog`. Recording
stays synchronous and O(1): a record goes into a :class:`MemoryRequestLog` (the recent
records, live aggregates), onto a bounded queue and into the delta of its minute. A task
writes the queue in batches to ``request_log`` and adds the deltas to ``request_minutes``,
both in one transaction, so a failed write is retried whole and nothing counts twice.
While the database is away, rows wait (up to ``max_pending``; past it they are dropped,
counted and logged once) and reads answer from memory. Reads add what is still waiting,
so a page or a chart is current. Rows older than ``retention`` and aggregates older than
``aggregate_retention`` are deleted in batches every few minutes.

Example::

    log = PostgresRequestLog(settings.database.url, memory_records=10_000)
    await log.start()
    log.record(record)                                      # never waits, never raises
    page = await log.query(RequestFilter(tenant="ten_1"), limit=50)
    await log.aclose()                                      # writes what is left
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.backends.postgres import Migration, PostgresPool, pg_text
from gateway.errors import UnavailableError
from gateway.observability import metrics
from gateway.state.request_log import (
    LATENCY_BOUNDS_MS,
    MINUTE,
    Group,
    MemoryRequestLog,
    MinuteAggregate,
    RequestFilter,
    RequestRecord,
    SeriesPoint,
    fold,
    in_series,
    newest,
)

__all__ = ["COMPONENT", "MIGRATIONS", "PostgresRequestLog", "select_sql"]

log = logging.getLogger("gateway.state")

COMPONENT = "request_log"
DAY = 86400.0
FLUSH_INTERVAL = 1.0
BATCH = 500  # rows per write; a full batch wakes the writer before its second is up
MAX_PENDING = 100_000  # rows waiting for the database, at most
MAX_DELTAS = 200_000  # minute x tenant x model x provider deltas waiting, at most
SWEEP_INTERVAL = 300.0
SWEEP_BATCH = 5000  # rows per DELETE, so a large backlog never holds one long lock

# (version, description, SQL). Append only: a released migration never changes.
MIGRATIONS: tuple[Migration, ...] = (
    (1, "request log, minute aggregates", """
CREATE TABLE request_log (
    at                 timestamptz NOT NULL,
    request_id         text COLLATE "C" NOT NULL,
    method             text NOT NULL,
    tenant             text NOT NULL,
    model              text NOT NULL,
    provider           text NOT NULL,
    status             text NOT NULL,
    latency_ms         double precision NOT NULL,
    prompt_tokens      bigint NOT NULL,
    completion_tokens  bigint NOT NULL,
    cost_usd           double precision NOT NULL,
    stream             boolean NOT NULL
);
CREATE INDEX request_log_at_idx ON request_log (at, request_id);
CREATE INDEX request_log_tenant_idx ON request_log (tenant, at, request_id);
CREATE INDEX request_log_model_idx ON request_log (model, at, request_id);
CREATE INDEX request_log_provider_idx ON request_log (provider, at, request_id);
CREATE INDEX request_log_status_idx ON request_log (status, at, request_id);
CREATE INDEX request_log_request_id_idx ON request_log (request_id);
CREATE TABLE request_minutes (
    minute             timestamptz NOT NULL,
    tenant             text NOT NULL,
    model              text NOT NULL,
    provider           text NOT NULL,
    requests           bigint NOT NULL,
    errors             bigint NOT NULL,
    latency_ms_sum     double precision NOT NULL,
    latency_buckets    bigint[] NOT NULL,
    prompt_tokens      bigint NOT NULL,
    completion_tokens  bigint NOT NULL,
    cost_usd           double precision NOT NULL,
    PRIMARY KEY (minute, tenant, model, provider)
);
"""),
    (2, "ten-minute aggregates and each minute's totals, from the minute aggregates", """
CREATE TABLE request_blocks (LIKE request_minutes INCLUDING ALL);
INSERT INTO request_blocks
SELECT to_timestamp(floor(date_part('epoch', minute) / 600) * 600), tenant, model, provider,
       sum(requests), sum(errors), sum(latency_ms_sum), ARRAY[""" + ", ".join(
        f"coalesce(sum(latency_buckets[{i}]), 0)::bigint" for i in range(1, 15)) + """],
       sum(prompt_tokens), sum(completion_tokens), sum(cost_usd)
FROM request_minutes GROUP BY 1, 2, 3, 4;
CREATE TABLE request_totals (LIKE request_minutes INCLUDING ALL);
INSERT INTO request_totals
SELECT minute, '', '', '',
       sum(requests), sum(errors), sum(latency_ms_sum), ARRAY[""" + ", ".join(
        f"coalesce(sum(latency_buckets[{i}]), 0)::bigint" for i in range(1, 15)) + """],
       sum(prompt_tokens), sum(completion_tokens), sum(cost_usd)
FROM request_minutes GROUP BY 1;
"""),
)

_COLUMNS = ("at", "request_id", "method", "tenant", "model", "provider", "status",
            "latency_ms", "prompt_tokens", "completion_tokens", "cost_usd", "stream")
_FILTERS = ("tenant", "model", "provider", "status", "request_id")
_MINUTE_COLUMNS = ("minute", "tenant", "model", "provider", "requests", "errors",
                   "latency_ms_sum", "latency_buckets", "prompt_tokens", "completion_tokens",
                   "cost_usd")
# Adds the deltas to the minute's (block's) row: the buckets element by element.
_UPSERT = """INSERT INTO {table} AS m (""" + ", ".join(_MINUTE_COLUMNS) + """)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT (minute, tenant, model, provider) DO UPDATE SET
        requests = m.requests + excluded.requests,
        errors = m.errors + excluded.errors,
        latency_ms_sum = m.latency_ms_sum + excluded.latency_ms_sum,
        latency_buckets = ARRAY(
            SELECT coalesce(a, 0) + coalesce(b, 0)
            FROM unnest(m.latency_buckets, excluded.latency_buckets) WITH ORDINALITY
                AS t(a, b, i) ORDER BY i),
        prompt_tokens = m.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = m.completion_tokens + excluded.completion_tokens,
        cost_usd = m.cost_usd + excluded.cost_usd"""
# A series of every request (no group, no filter) reads request_totals: one row a minute.
# Else one whose steps are whole blocks of ten minutes reads request_blocks (a day of every
# tenant, model and provider: ~14,000 rows, not ~70,000) for the blocks inside its steps,
# and request_minutes for the rest (_plan).
BLOCK = 600
MAX_LISTED = 20_000  # blocks and minutes named in one series' reads, at most
# ctid = ANY(ARRAY(...)): a TID scan of the batch, where IN (SELECT ...) may scan the table.
_GROUPS = ("tenant", "model", "provider")  # what a series may be grouped by
# (table, column, seconds kept past its retention): a block goes once all its minutes have.
_SWEEPS = (("request_log", "at", 0), ("request_minutes", "minute", 0),
           ("request_blocks", "minute", BLOCK - MINUTE), ("request_totals", "minute", 0))

Key = tuple[int, str, str, str]  # minute, tenant, model, provider


class PostgresRequestLog:
    """:class:`~gateway.state.request_log.RequestLog` in memory and PostgreSQL; see the
    module docstring. ``retention`` and ``aggregate_retention`` are seconds."""

    def __init__(self, dsn: str, *, memory_records: int = 10_000,
                 retention: float = 7 * DAY, aggregate_retention: float = 90 * DAY,
                 interval: float = FLUSH_INTERVAL, max_pending: int = MAX_PENDING,
                 connect_timeout: float = 3.0, command_timeout: float = 5.0,
                 clock: Callable[[], float] = time.time):
        self._db = PostgresPool(dsn, name="request log", component=COMPONENT,
                                migrations=MIGRATIONS, min_size=1, max_size=4,
                                connect_timeout=connect_timeout,
                                command_timeout=command_timeout)
        self.memory = MemoryRequestLog(memory_records)
        self.retention, self.aggregate_retention = retention, aggregate_retention
        self.dropped = 0  # rows never written: the queue was full
        self._interval = interval
        self._max_pending = max_pending
        self._clock = clock
        self._pending: deque[RequestRecord] = deque()
        self._deltas: dict[Key, MinuteAggregate] = {}
        # One write or one read at a time: a read sees a batch either still waiting or
        # committed, never both (or neither), so nothing is listed or counted twice.
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._migrating = asyncio.Lock()
        self._migrated = False
        self._dropping = False  # dropping rows since the last write: logged once
        self._closing = False
        self._writer: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return "PostgresRequestLog(dsn=<hidden>)"

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return len(self._pending)

    def record(self, record: RequestRecord) -> None:
        self.memory.record(record)
        key = (int(record.at // MINUTE), record.tenant, record.model, record.provider)
        delta = self._deltas.get(key)
        if delta is None and len(self._deltas) < MAX_DELTAS:  # else a long outage
            delta = self._deltas[key] = MinuteAggregate(*key)
        if delta is not None:
            delta.add(record)
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            metrics.request_log_dropped()
            if not self._dropping:
                self._dropping = True
                log.warning("request log rows dropped: the database is unavailable and "
                            "the queue is full", extra={"fields": {"queue": len(self._pending)}})
            return
        self._pending.append(record)
        if len(self._pending) >= BATCH:
            self._wake.set()

    async def start(self) -> None:
        """Migrate and start writing; an unavailable database is retried by the writer."""
        with contextlib.suppress(UnavailableError):
            await self._migrate()
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_forever(), name="request-log")
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="request-log-sweep")

    async def aclose(self) -> None:
        """Stop the tasks (a write in progress finishes), then write what is left."""
        self._closing = True
        self._wake.set()
        writer, sweeper, self._writer, self._sweeper = self._writer, self._sweeper, None, None
        if sweeper is not None:
            sweeper.cancel()  # a DELETE cut short is only done again
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        if writer is not None:
            await writer  # not cancelled: a commit cut short could count a batch twice
        if not await self.flush():
            log.error("request log rows lost at shutdown: the database is unavailable",
                      extra={"fields": {"rows": len(self._pending)}})
        await self._db.aclose()

    async def flush(self) -> bool:
        """Write what is waiting; False (kept for the next try) when the database is
        unavailable."""
        try:
            await self._migrate()
            while True:
                async with self._lock:
                    batch = list(itertools.islice(self._pending, BATCH))
                    deltas, self._deltas = self._deltas, {}
                    if not batch and not deltas:
                        break
                    try:
                        await self._write(batch, deltas)
                    except BaseException:
                        self._restore(deltas)
                        raise
                    for _ in batch:
                        self._pending.popleft()
        except UnavailableError:
            return False
        if self._dropping:
            self._dropping = False
            log.info("request log rows written again", extra={"fields": {
                "dropped": self.dropped}})
        return True

    async def query(self, where: RequestFilter, limit: int,
                    before: tuple[float, str] | None = None) -> list[RequestRecord]:
        try:
            async with self._lock:
                stored = await self._select(where, limit, before)
                waiting = newest(reversed(self._pending), where, limit, before)
        except UnavailableError:
            return await self.memory.query(where, limit, before)
        found = sorted([*stored, *waiting], key=lambda r: (r.at, r.request_id), reverse=True)
        return found[:limit]

    async def series(self, since: float, until: float, step: int, *, group: Group = "",
                     tenant: str = "", model: str = "") -> list[SeriesPoint]:
        try:
            async with self._lock:
                rows = await self._minutes(since, until, step, tenant, model, group)
                rows.extend(in_series(self._deltas.values(), since, until, tenant, model))
        except UnavailableError:
            return await self.memory.series(since, until, step, group=group, tenant=tenant,
                                            model=model)
        return fold(rows, since, step, group)

    async def sweep(self) -> tuple[int, int]:
        """Delete the rows past ``retention`` and the aggregates past
        ``aggregate_retention`` now; return how many of each (minute rows)."""
        now = self._clock()
        counts = []
        kept = (self.retention, *[self.aggregate_retention] * 3)
        async with self._db.connection() as conn:
            for (table, column, grace), keep in zip(_SWEEPS, kept, strict=True):
                sql = (f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table}"
                       f" WHERE {column} < $1 LIMIT {SWEEP_BATCH}))")
                total = 0
                while True:
                    deleted = int((await conn.execute(sql, _ts(now - keep - grace))
                                   ).split()[-1])
                    total += deleted
                    if deleted < SWEEP_BATCH:
                        break
                counts.append(total)
        return counts[0], counts[1]

    # --- the database ------------------------------------------------------------------

    async def _migrate(self) -> None:
        async with self._migrating:  # the writer and the sweeper may both be first
            if not self._migrated:
                await self._db.start()
                self._migrated = True

    async def _write(self, batch: Sequence[RequestRecord],
                     deltas: dict[Key, MinuteAggregate]) -> None:
        async with self._db.connection() as conn, conn.transaction():
            if batch:
                await conn.copy_records_to_table("request_log", columns=_COLUMNS,
                                                 records=[_row(r) for r in batch])
            if deltas:
                # In key order: replicas adding to the same minutes lock rows in one order
                # and never deadlock.
                await conn.executemany(_UPSERT.format(table="request_minutes"),
                                       sorted(_minute_row(d) for d in deltas.values()))
                for table, rolled in (("request_blocks", _blocks(deltas)),
                                      ("request_totals", _rolled(deltas, 1, by_names=False))):
                    await conn.executemany(_UPSERT.format(table=table),
                                           sorted(_minute_row(d) for d in rolled))

    def _restore(self, deltas: dict[Key, MinuteAggregate]) -> None:
        """Put deltas that were not written back in front of the ones added since."""
        for key, delta in deltas.items():
            since = self._deltas.get(key)
            if since is not None:
                delta.merge(since)
            self._deltas[key] = delta

    async def _select(self, where: RequestFilter, limit: int,
                      before: tuple[float, str] | None) -> list[RequestRecord]:
        if not self._migrated:
            raise UnavailableError("request log unavailable (not started)")
        sql, args = select_sql(where, limit, before)
        async with self._db.connection() as conn:
            rows = await conn.fetch(sql, *args)
        return [RequestRecord(**{**row, "at": row["at"].timestamp()}) for row in rows]

    async def _minutes(self, since: float, until: float, step: int, tenant: str, model: str,
                       group: Group) -> list[MinuteAggregate]:
        """The minutes of a series summed in the database, one row per step and group value
        (a day of every tenant, model and provider is a few thousand rows, not ~100,000),
        from each minute's totals when nothing is grouped or filtered, else from the
        ten-minute blocks where whole ones fall inside the steps (:func:`_plan`).

        Each row carries the first minute of its step, which :func:`fold` puts back in the
        same step: minute ``m`` is in step ``floor((60 m - since) / step)``, which is
        ``floor((60 m - ceil(since)) / step)``, exact in integers. ``date_part`` (a double,
        exact for whole seconds), not ``extract`` (numeric): half the time of the query."""
        if not self._migrated:
            raise UnavailableError("request log unavailable (not started)")
        rows = []
        async with self._db.connection() as conn:
            if not (group or tenant or model):  # one row a minute: 1,440 a day
                rows += await conn.fetch(*_sum_sql("request_totals", since, step, "", "", "",
                                                   span=(since // MINUTE * MINUTE, until)))
            elif (plan := _plan(since, until, step)) is None:  # every minute of the range
                rows += await conn.fetch(*_sum_sql("request_minutes", since, step, tenant, model,
                                                   group, span=(since // MINUTE * MINUTE, until)))
            else:
                for table, listed in zip(("request_blocks", "request_minutes"), plan,
                                         strict=True):
                    if listed:
                        rows += await conn.fetch(*_sum_sql(table, since, step, tenant, model,
                                                           group, listed=listed))
        return [MinuteAggregate(int(r[0].timestamp()) // MINUTE, r[1], r[2], r[3], r[4], r[5],
                                r[6], list(r[7]), r[8], r[9], r[10]) for r in rows]

    # --- the tasks ---------------------------------------------------------------------

    async def _write_forever(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            if self._closing:
                return
            try:
                await self.flush()
            except Exception:  # a bug: logged, and the rows are tried again
                log.exception("request log write failed")

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self._migrate()
                counts = await self.sweep()
                if any(counts):
                    log.debug("old request log rows deleted", extra={"fields": {
                        "rows": counts[0], "minutes": counts[1]}})
            except UnavailableError:
                pass  # logged where it was raised; the next round tries again
            await asyncio.sleep(SWEEP_INTERVAL)


def select_sql(where: RequestFilter, limit: int,
               before: tuple[float, str] | None) -> tuple[str, list[Any]]:
    """The statement and arguments that list a page of ``request_log`` (bench/ EXPLAINs
    them)."""
    conditions: list[str] = []
    args: list[Any] = []
    for column in _FILTERS:
        if value := getattr(where, column):
            args.append(pg_text(value))
            conditions.append(f"{column} = ${len(args)}")
    for bound, op in ((where.since, ">="), (where.until, "<")):
        if bound:
            args.append(_ts(bound))
            conditions.append(f"at {op} ${len(args)}")
    if before is not None:
        args += [_ts(before[0]), before[1]]
        conditions.append(f"(at, request_id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    return (f"SELECT {', '.join(_COLUMNS)} FROM request_log"
            f"{' WHERE ' + ' AND '.join(conditions) if conditions else ''}"
            f" ORDER BY at DESC, request_id DESC LIMIT ${len(args)}"), args


def _plan(since: float, until: float, step: int) -> tuple[list[int], list[int]] | None:
    """Where a series of steps of whole blocks reads: the blocks (unix seconds) wholly inside
    it and inside one step each, from request_blocks, and the other minutes of it (the
    ragged ends, the blocks a step boundary cuts), from request_minutes. None: read every
    minute (steps not whole blocks, or lists too long to send)."""
    if step % BLOCK:
        return None
    anchor, first = math.ceil(since), int(since // MINUTE * MINUTE)  # as _minutes groups
    last_minute = BLOCK - MINUTE
    blocks: list[int] = []
    minutes: list[int] = []
    for block in range(first // BLOCK * BLOCK, math.ceil(until), BLOCK):
        if (block >= first and block + last_minute < until
                and (block - anchor) // step == (block + last_minute - anchor) // step):
            blocks.append(block)
        else:
            minutes += (m for m in range(block, block + BLOCK, MINUTE) if first <= m < until)
        if len(blocks) + len(minutes) > MAX_LISTED:
            return None
    return blocks, minutes


def _sum_sql(table: str, since: float, step: int, tenant: str, model: str, group: Group, *,
             span: tuple[float, float] = (0.0, 0.0), listed: Sequence[int] = ()
             ) -> tuple[Any, ...]:
    """The statement and arguments that sum ``table``'s rows into one row per step and
    group value: the rows of the minutes (blocks) ``listed`` (unix seconds), else those
    from ``span[0]`` to ``span[1]``."""
    args: list[Any] = [math.ceil(since), step]
    if listed:
        args.append([_ts(at) for at in listed])
        conditions = ["minute = ANY($3::timestamptz[])"]
    else:
        args += [_ts(span[0]), _ts(span[1])]
        conditions = ["minute >= $3", "minute < $4"]
    for column, value in (("tenant", tenant), ("model", model)):
        if value:
            args.append(pg_text(value))
            conditions.append(f"{column} = ${len(args)}")
    keys = [column if column == group else "''" for column in _GROUPS]
    grouped = "".join(f", {column}" for column in _GROUPS if column == group)
    # sum() of bigint is numeric: cast back, or the counts come back as Decimal.
    buckets = ", ".join(f"coalesce(sum(latency_buckets[{i + 1}]), 0)::bigint"
                        for i in range(len(LATENCY_BOUNDS_MS) + 1))
    return (f"SELECT min(minute), {', '.join(keys)}, sum(requests)::bigint,"
            f" sum(errors)::bigint, sum(latency_ms_sum), ARRAY[{buckets}],"
            f" sum(prompt_tokens)::bigint, sum(completion_tokens)::bigint, sum(cost_usd)"
            f" FROM {table} WHERE {' AND '.join(conditions)}"
            f" GROUP BY floor((date_part('epoch', minute) - $1) / $2){grouped}", *args)


def _blocks(deltas: dict[Key, MinuteAggregate]) -> list[MinuteAggregate]:
    """The minute deltas summed per block of ten minutes (``minute``: the block's first)."""
    return _rolled(deltas, BLOCK // MINUTE, by_names=True)


def _rolled(deltas: dict[Key, MinuteAggregate], minutes: int, *,
            by_names: bool) -> list[MinuteAggregate]:
    """The minute deltas summed per ``minutes`` minutes, per tenant, model and provider
    (``by_names``) or all in one (names empty: request_totals)."""
    out: dict[Key, MinuteAggregate] = {}
    for (minute, tenant, model, provider), delta in deltas.items():
        key = ((minute // minutes * minutes, tenant, model, provider) if by_names
               else (minute // minutes * minutes, "", "", ""))
        rolled = out.get(key)
        if rolled is None:
            rolled = out[key] = MinuteAggregate(*key)
        rolled.merge(delta)
    return list(out.values())


def _row(r: RequestRecord) -> tuple[Any, ...]:
    return (_ts(r.at), r.request_id, r.method, pg_text(r.tenant), pg_text(r.model),
            pg_text(r.provider), r.status, r.latency_ms, r.prompt_tokens, r.completion_tokens,
            r.cost_usd, r.stream)


def _minute_row(d: MinuteAggregate) -> tuple[Any, ...]:
    return (_ts(d.minute * MINUTE), pg_text(d.tenant), pg_text(d.model), pg_text(d.provider),
            d.requests, d.errors, d.latency_ms_sum, d.latency_buckets, d.prompt_tokens,
            d.completion_tokens, d.cost_usd)


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)
