"""The in-memory request log: the ring, filters and pages, minute aggregates, series by
group and latency percentiles from the histogram."""

from __future__ import annotations

from gateway.state.request_log import (
    LATENCY_BOUNDS_MS,
    MemoryRequestLog,
    RequestFilter,
    RequestRecord,
    percentile,
)

T0 = 1_767_225_600.0  # a minute boundary


def rec(i: int, *, at: float | None = None, tenant: str = "ten_a", model: str = "gpt",
        provider: str = "openai", status: str = "OK", latency: float = 100.0) -> RequestRecord:
    return RequestRecord(at=T0 + i if at is None else at, request_id=f"req_{i:04d}",
                         method="CreateChatCompletion", tenant=tenant, model=model,
                         provider=provider, status=status, latency_ms=latency,
                         prompt_tokens=10, completion_tokens=5, cost_usd=0.001)


async def test_newest_first_filtered_and_paged() -> None:
    log = MemoryRequestLog(capacity=100)
    for i in range(30):
        log.record(rec(i, tenant="ten_a" if i % 2 else "ten_b",
                       status="OK" if i % 3 else "UNAVAILABLE"))
    first = await log.query(RequestFilter(tenant="ten_a"), 5)
    assert [r.request_id for r in first] == ["req_0029", "req_0027", "req_0025", "req_0023",
                                              "req_0021"]
    second = await log.query(RequestFilter(tenant="ten_a"), 5,
                             before=(first[-1].at, first[-1].request_id))
    assert second[0].request_id == "req_0019"
    failed = await log.query(RequestFilter(status="UNAVAILABLE", since=T0 + 10,
                                           until=T0 + 20), 100)
    assert [r.request_id for r in failed] == ["req_0018", "req_0015", "req_0012"]
    assert [r.request_id for r in await log.query(RequestFilter(request_id="req_0007"), 9)] \
        == ["req_0007"]


async def test_the_ring_keeps_the_last_records_and_the_aggregates_all() -> None:
    log = MemoryRequestLog(capacity=10)
    for i in range(25):
        log.record(rec(i))
    assert len(await log.query(RequestFilter(), 100)) == 10
    points = await log.series(T0, T0 + 60, 60)
    assert len(points) == 1 and points[0].requests == 25  # the charts see every request
    assert (points[0].prompt_tokens, points[0].completion_tokens) == (250, 125)


async def test_series_steps_groups_and_filters() -> None:
    log = MemoryRequestLog()
    for minute in range(5):
        for model in ("gpt", "claude"):
            log.record(rec(minute, at=T0 + minute * 60 + 1, model=model,
                           status="OK" if model == "gpt" else "INTERNAL"))
    by_model = await log.series(T0, T0 + 300, 120, group="model")
    assert [(p.at - T0, p.key, p.requests, p.errors) for p in by_model] == [
        (0, "claude", 2, 2), (0, "gpt", 2, 0), (120, "claude", 2, 2), (120, "gpt", 2, 0),
        (240, "claude", 1, 1), (240, "gpt", 1, 0)]
    only_gpt = await log.series(T0 + 60, T0 + 180, 60, model="gpt")
    assert [(p.at - T0, p.requests) for p in only_gpt] == [(60, 1), (120, 1)]


def test_percentiles_from_the_histogram() -> None:
    buckets = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    assert percentile(buckets, 0.5) == 0.0
    buckets[4] = 100  # every request between 50 and 100 ms
    assert percentile(buckets, 0.5) == 75.0
    assert percentile(buckets, 0.95) == 97.5
    buckets[-1] = 100  # and as many above the last bound
    assert percentile(buckets, 0.95) == LATENCY_BOUNDS_MS[-1]


async def test_latency_percentiles_in_the_series() -> None:
    log = MemoryRequestLog()
    for i in range(100):
        log.record(rec(i % 60, latency=60.0 if i < 90 else 4000.0))
    (point,) = await log.series(T0, T0 + 60, 60)
    assert 50 <= point.latency_ms(0.5) <= 100 and 2500 <= point.latency_ms(0.95) <= 5000


async def test_old_minutes_are_dropped() -> None:
    log = MemoryRequestLog()
    log.record(rec(0))
    log.record(rec(0, at=T0 + 3 * 86400))  # three days on: the first minute is gone
    assert [p.at for p in await log.series(T0, T0 + 4 * 86400, 86400)] == [T0 + 3 * 86400]


def test_a_series_plan_covers_each_minute_once_and_no_block_across_a_step() -> None:
    """Where a PostgreSQL series reads (request_log_postgres._plan): the blocks and the
    minutes listed are every minute of the range exactly once, and no block read whole
    straddles a step boundary; steps that are not whole blocks read every minute."""
    from gateway.state.request_log_postgres import BLOCK, _plan

    day = 1_800_000_000 // 86400 * 86400
    assert _plan(day, day + 3600, 60) is None
    assert _plan(day, day + 3600, 900) is None
    blocks, minutes = _plan(day, day + 3600 + 125, 1800) or ([], [])
    assert blocks == list(range(day, day + 3600, BLOCK))
    assert minutes == [day + 3600, day + 3660, day + 3720]  # the ragged end
    for since, until, step in ((day + 130.5, day + 7000, 1800), (day + 59.5, day + 3600, 1200),
                               (day - 7200, day + 700, 3600), (day + 60, day + 3600, 600)):
        blocks, minutes = _plan(since, until, step) or ([], [])
        covered = sorted([m for b in blocks for m in range(b, b + BLOCK, 60)] + minutes)
        first = int(since // 60 * 60)
        assert covered == list(range(first, int(until - 1) // 60 * 60 + 60, 60)), since
        anchor = -(-since // 1)
        assert all((b - anchor) // step == (b + BLOCK - 60 - anchor) // step for b in blocks)
