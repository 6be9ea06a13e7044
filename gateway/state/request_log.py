"""The request log: every request's outcome (never its text), and per-minute aggregates.

The core's interceptor hands :meth:`RequestLog.record` one :class:`RequestRecord` as each
RPC ends (REST arrives through the facade, so both are seen). Recording is synchronous,
O(1) and cannot fail a request: :class:`MemoryRequestLog` keeps the last ``capacity``
records in a ring and folds each into the aggregate of its minute (requests, errors,
a latency histogram, tokens, cost) per tenant, model and provider; a store behind it
(:class:`~gateway.state.request_log_postgres.PostgresRequestLog`) is written in batches
off the request path.

Example::

    log = MemoryRequestLog(capacity=10_000)
    log.record(RequestRecord(at=time.time(), request_id="req_1", method="CreateChatCompletion",
                             tenant="ten_1", model="gpt-4o-mini", provider="openai",
                             status="OK", latency_ms=812.0, prompt_tokens=12,
                             completion_tokens=40, cost_usd=0.00003))
    page = await log.query(RequestFilter(tenant="ten_1"), limit=50)
    points = await log.series(since=time.time() - 3600, until=time.time(), step=60)
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "LATENCY_BOUNDS_MS",
    "MemoryRequestLog",
    "MinuteAggregate",
    "NoRequestLog",
    "RequestFilter",
    "RequestLog",
    "RequestRecord",
    "SeriesPoint",
    "percentile",
]

# Upper bounds (ms) of the latency histogram's buckets; the last bucket is everything above.
LATENCY_BOUNDS_MS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
                     10000.0, 30000.0, 60000.0)
MINUTE = 60
KEEP_MINUTES = 2 * 24 * 60  # aggregates kept in memory: two days, for the day's charts
MAX_AGGREGATES = 200_000  # minute x tenant x model x provider rows, at most

Group = Literal["", "tenant", "model", "provider"]


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request's outcome: who, which model and deployment, how it ended, what it cost.
    Never the prompt or the answer."""

    at: float  # unix seconds, when it ended
    request_id: str
    method: str  # the RPC: CreateChatCompletion, StreamMessage, ...
    tenant: str
    model: str  # the name the client asked for
    provider: str  # the deployment that answered (empty: none did)
    status: str  # the gRPC status name: OK, RESOURCE_EXHAUSTED, ...
    latency_ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    stream: bool = False


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """Records matching every field set (empty: any); ``since``/``until`` in unix seconds
    (0: unbounded)."""

    tenant: str = ""
    model: str = ""
    provider: str = ""
    status: str = ""
    request_id: str = ""
    since: float = 0.0
    until: float = 0.0

    def matches(self, record: RequestRecord) -> bool:
        return ((not self.tenant or record.tenant == self.tenant)
                and (not self.model or record.model == self.model)
                and (not self.provider or record.provider == self.provider)
                and (not self.status or record.status == self.status)
                and (not self.request_id or record.request_id == self.request_id)
                and (not self.since or record.at >= self.since)
                and (not self.until or record.at < self.until))


@dataclass(slots=True)
class MinuteAggregate:
    """One minute of one (tenant, model, provider): counts, a latency histogram (one count
    per bucket of :data:`LATENCY_BOUNDS_MS`, and one above), tokens and cost."""

    minute: int  # unix seconds // 60
    tenant: str
    model: str
    provider: str
    requests: int = 0
    errors: int = 0
    latency_ms_sum: float = 0.0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, record: RequestRecord) -> None:
        self.requests += 1
        if record.status != "OK":
            self.errors += 1
        self.latency_ms_sum += record.latency_ms
        self.latency_buckets[bisect.bisect_left(LATENCY_BOUNDS_MS, record.latency_ms)] += 1
        self.prompt_tokens += record.prompt_tokens
        self.completion_tokens += record.completion_tokens
        self.cost_usd += record.cost_usd

    def merge(self, other: MinuteAggregate) -> None:
        """Add ``other`` (the same minute and key) to this one."""
        self.requests += other.requests
        self.errors += other.errors
        self.latency_ms_sum += other.latency_ms_sum
        for i, n in enumerate(other.latency_buckets):
            self.latency_buckets[i] += n
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd


@dataclass(slots=True)
class SeriesPoint:
    """The aggregates of one step (``at``: its start, unix seconds) for one group value
    (``key``: the tenant, model or provider; empty when not grouped)."""

    at: float
    key: str
    requests: int = 0
    errors: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def merge(self, row: MinuteAggregate) -> None:
        self.requests += row.requests
        self.errors += row.errors
        for i, n in enumerate(row.latency_buckets):
            self.latency_buckets[i] += n
        self.prompt_tokens += row.prompt_tokens
        self.completion_tokens += row.completion_tokens
        self.cost_usd += row.cost_usd

    def latency_ms(self, quantile: float) -> float:
        return percentile(self.latency_buckets, quantile)


def percentile(buckets: list[int], quantile: float) -> float:
    """The ``quantile`` (0-1) of a latency histogram, interpolated within its bucket (the
    open last bucket answers its lower bound); 0 when empty."""
    total = sum(buckets)
    if not total:
        return 0.0
    rank = quantile * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            low = LATENCY_BOUNDS_MS[i - 1] if i else 0.0
            if i == len(LATENCY_BOUNDS_MS):
                return low
            return low + (LATENCY_BOUNDS_MS[i] - low) * max(0.0, rank - seen) / n
        seen += n
    return LATENCY_BOUNDS_MS[-1]


def group_key(row: MinuteAggregate, group: Group) -> str:
    return "" if not group else str(getattr(row, group))


def newest(records: Iterable[RequestRecord], where: RequestFilter, limit: int,
           before: tuple[float, str] | None) -> list[RequestRecord]:
    """Up to ``limit`` of ``records`` (walked newest first) matching ``where``, older than
    ``before``."""
    found: list[RequestRecord] = []
    for record in records:
        if before is not None and (record.at, record.request_id) >= before:
            continue
        if where.matches(record):
            found.append(record)
            if len(found) >= limit:
                break
    return found


def in_series(rows: Iterable[MinuteAggregate], since: float, until: float, tenant: str,
              model: str) -> Iterator[MinuteAggregate]:
    """The minute rows a series from ``since`` to ``until`` reads."""
    first, last = int(since // MINUTE), math.ceil(until / MINUTE)
    return (row for row in rows
            if first <= row.minute < last and (not tenant or row.tenant == tenant)
            and (not model or row.model == model))


def fold(rows: Iterable[MinuteAggregate], since: float, step: int,
         group: Group) -> list[SeriesPoint]:
    """Minute rows into points of ``step`` seconds from ``since``, oldest first."""
    points: dict[tuple[float, str], SeriesPoint] = {}
    for row in rows:
        at = since + (row.minute * MINUTE - since) // step * step
        key = (at, group_key(row, group))
        point = points.get(key)
        if point is None:
            point = points[key] = SeriesPoint(at=at, key=key[1])
        point.merge(row)
    return [points[k] for k in sorted(points)]


class RequestLog(Protocol):
    def record(self, record: RequestRecord) -> None:
        """Keep ``record``: synchronous, O(1), never raises (the request is over)."""
        ...

    async def query(self, where: RequestFilter, limit: int,
                    before: tuple[float, str] | None = None) -> list[RequestRecord]:
        """Up to ``limit`` matching records, newest first, older than ``before`` (the
        ``(at, request_id)`` of the last one of the previous page)."""
        ...

    async def series(self, since: float, until: float, step: int, *, group: Group = "",
                     tenant: str = "", model: str = "") -> list[SeriesPoint]:
        """Aggregates from ``since`` to ``until`` in steps of ``step`` seconds (a multiple
        of 60), per group value, oldest first; only steps with requests."""
        ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class MemoryRequestLog:
    """The last ``capacity`` records and two days of minute aggregates, in this process."""

    def __init__(self, capacity: int = 10_000):
        self.capacity = capacity
        self._records: deque[RequestRecord] = deque(maxlen=capacity)
        self._minutes: dict[tuple[int, str, str, str], MinuteAggregate] = {}
        self._oldest = math.inf  # the oldest minute held

    def record(self, record: RequestRecord) -> None:
        self._records.append(record)
        minute = int(record.at // MINUTE)
        key = (minute, record.tenant, record.model, record.provider)
        row = self._minutes.get(key)
        if row is None:
            if len(self._minutes) >= MAX_AGGREGATES or minute - self._oldest > KEEP_MINUTES:
                self._trim(minute)
            row = self._minutes[key] = MinuteAggregate(minute, record.tenant, record.model,
                                                       record.provider)
            self._oldest = min(self._oldest, minute)
        row.add(record)

    def _trim(self, now: int) -> None:
        """Drop minutes older than two days, then the oldest while over the bound."""
        keep = now - KEEP_MINUTES
        for key in [k for k in self._minutes if k[0] < keep]:
            del self._minutes[key]
        if len(self._minutes) >= MAX_AGGREGATES:
            for key in sorted(self._minutes)[:len(self._minutes) - MAX_AGGREGATES + 1]:
                del self._minutes[key]
        self._oldest = min((k[0] for k in self._minutes), default=math.inf)

    async def query(self, where: RequestFilter, limit: int,
                    before: tuple[float, str] | None = None) -> list[RequestRecord]:
        return newest(reversed(self._records), where, limit, before)

    async def series(self, since: float, until: float, step: int, *, group: Group = "",
                     tenant: str = "", model: str = "") -> list[SeriesPoint]:
        return fold(in_series(self._minutes.values(), since, until, tenant, model), since,
                    step, group)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class NoRequestLog:
    """``request_log.enabled: false``: nothing is kept; listings and series answer empty."""

    def record(self, record: RequestRecord) -> None:
        return None

    async def query(self, where: RequestFilter, limit: int,
                    before: tuple[float, str] | None = None) -> list[RequestRecord]:
        return []

    async def series(self, since: float, until: float, step: int, *, group: Group = "",
                     tenant: str = "", model: str = "") -> list[SeriesPoint]:
        return []

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
