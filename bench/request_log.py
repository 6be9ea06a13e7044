"""The request log on PostgreSQL: how long a filtered first page and a day's series take
with 100,000 rows (docs/performance.md, change 20). A measurement, not a test.

A throwaway PostgreSQL cluster (tests/servers.py: fsync off) is filled through
:class:`PostgresRequestLog` itself with a day of requests (12 tenants, 4 models, 2
providers, 2% errors; ~34,500 minute rows), then each read is timed ``--runs`` times from
a fresh log object, so memory answers nothing and everything is read from the tables.

It first measures what recording costs this process: CPU per record (user + system, from
``getrusage``) of :meth:`MemoryRequestLog.record`, and of :meth:`PostgresRequestLog.record`
and its batched writes (``flush``), next to building the record itself. bench/run.py's
``logcost`` phase measures the same on a serving gateway (docs/performance.md, change 22).

    .venv/bin/python bench/request_log.py [--rows 100000] [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # type: ignore[import-untyped]  # noqa: E402

from gateway.state.request_log import (  # noqa: E402
    MemoryRequestLog,
    RequestFilter,
    RequestRecord,
)
from gateway.state.request_log_postgres import PostgresRequestLog  # noqa: E402
from tests.servers import PostgresServer  # noqa: E402

DAY = 86400


def record(i: int, rows: int, now: float) -> RequestRecord:
    return RequestRecord(
        at=now - DAY + i * DAY / rows, request_id=f"req_{i:08d}", method="CreateChatCompletion",
        tenant=f"ten_{i % 12:02d}", model=("gpt-4o-mini", "gpt-4o", "claude", "gemini")[i % 4],
        provider=("openai", "azure")[i % 7 % 2], status="UNAVAILABLE" if i % 50 == 1 else "OK",
        latency_ms=50 + i % 2000, prompt_tokens=100 + i % 500, completion_tokens=i % 300,
        cost_usd=0.0001 * (i % 9))


async def timed(runs: int, read: Callable[[], Awaitable[object]]) -> str:
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        await read()
        took.append((time.perf_counter() - started) * 1000)
    return (f"median {statistics.median(took):.1f} ms, min {min(took):.1f}, "
            f"max {max(took):.1f}")


def cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


async def recording(dsn: str, count: int = 50_000) -> None:
    """CPU µs per record: building it, keeping it in memory, queueing it for PostgreSQL and
    writing it there (this process's side: rows, COPY, aggregate upserts). The records
    come 1,000 a second, as at the bench's REST c=64: most share their minute's aggregate."""
    now = time.time()
    started = cpu_s()
    records = [record(i, 1000 * DAY, now) for i in range(count)]  # at: i / 1000 s
    built = cpu_s()
    memory = MemoryRequestLog()
    for r in records:
        memory.record(r)
    kept = cpu_s()
    log = PostgresRequestLog(dsn, interval=3600, max_pending=count)
    await log.start()
    queued = cpu_s()
    for r in records:
        log.record(r)
    written = cpu_s()
    await log.flush()
    done = cpu_s()
    await log.aclose()
    per = 1e6 / count
    print(f"recording, CPU per record: building it {(built - started) * per:.2f} µs; in memory "
          f"{(kept - built) * per:.2f} µs; in memory + queued for PostgreSQL "
          f"{(written - queued) * per:.2f} µs, then written {(done - written) * per:.2f} µs "
          f"(batches of 500, {count:,} records at 1,000 a second)")


async def main(rows: int, runs: int) -> None:
    server = PostgresServer().start()
    try:
        await recording(server.create_database("recording"))
        dsn = server.create_database("bench")
        now = time.time()
        writer = PostgresRequestLog(dsn, interval=3600, max_pending=rows)
        await writer.start()
        started = time.perf_counter()
        for i in range(rows):
            writer.record(record(i, rows, now))
        await writer.flush()
        print(f"{rows:,} rows written in {time.perf_counter() - started:.1f} s "
              f"(record + flush, batches of 500)")
        await writer.aclose()
        conn = await asyncpg.connect(dsn)
        await conn.execute("ANALYZE")
        print("minute rows:", await conn.fetchval("SELECT count(*) FROM request_minutes"))
        await conn.close()

        log = PostgresRequestLog(dsn, memory_records=10, interval=3600)
        await log.start()
        page = 100
        reads: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("first page, no filter", lambda: log.query(RequestFilter(), page)),
            ("first page, tenant", lambda: log.query(RequestFilter(tenant="ten_05"), page)),
            ("first page, tenant + status UNAVAILABLE (333 rows, 1 in 25 of the tenant's)",
             lambda: log.query(RequestFilter(tenant="ten_05", status="UNAVAILABLE"), page)),
            ("first page, model + provider, last 6 hours",
             lambda: log.query(RequestFilter(model="claude", provider="azure",
                                             since=now - 6 * 3600), page)),
            ("a page from the middle of the day (cursor), tenant", lambda: log.query(
                RequestFilter(tenant="ten_05"), page, (now - DAY / 2, "req_"))),
            ("series 24h, step 60 s, all", lambda: log.series(now - DAY, now, 60)),
            ("series 24h, step 15 min, by model",
             lambda: log.series(now - DAY, now, 900, group="model")),
            ("series 24h, step 60 s, one tenant, by model",
             lambda: log.series(now - DAY, now, 60, group="model", tenant="ten_05")),
        ]
        for name, read in reads:
            await read()  # the pool's connection and the statement, prepared
            print(f"{name}: {await timed(runs, read)}")
        await log.aclose()
    finally:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.runs))
