"""The overview page: requests per second, error rate, latency p50 and p95, tokens and
spend over the last hour (a point a minute) or day (every 30 minutes), as SVG charts
(:mod:`.charts`) from two ``GetUsageSeries`` calls: the steps, and the window's totals.

Example::

    blueprint.add_url_rule("/", "overview", guarded(overview))
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from llmgateway.v1 import admin_service_pb2 as pb
from quart import Response

from gateway.facade.ui import fmt
from gateway.facade.ui.charts import Chart, line_chart
from gateway.facade.ui.visit import Visit

__all__ = ["overview"]

_WINDOWS = {"hour": (3600, 60, "the last hour"), "day": (86400, 1800, "the last day")}


def _ts(seconds: float) -> Timestamp:
    return Timestamp(seconds=int(seconds))


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


async def overview(visit: Visit) -> Response:
    window_name = visit.args.get("window", "hour")
    if window_name not in _WINDOWS:
        window_name = "hour"
    window, step, words = _WINDOWS[window_name]
    now = time.time()
    since = (now // step + 1) * step - window
    call, stub = visit.api.call, visit.api.stub
    series, totals = await asyncio.gather(
        call(stub.GetUsageSeries, pb.GetUsageSeriesRequest(
            since=_ts(since), until=_ts(now + 1), step_seconds=step)),
        call(stub.GetUsageSeries, pb.GetUsageSeriesRequest(
            since=_ts(since), until=_ts(now + 1), step_seconds=window)))
    steps = window // step
    times = [since + i * step for i in range(steps)]
    by_step: list[pb.UsagePoint | None] = [None] * steps
    for point in series.points:
        index = int((_seconds(point.time) - since) // step)
        if 0 <= index < steps:
            by_step[index] = point
    total = totals.points[0] if totals.points else pb.UsagePoint()
    return await visit.render(
        "overview.html", title="Overview", window=window_name, words=words,
        windows=[(name, label) for name, (_, _, label) in _WINDOWS.items()],
        charts=_charts(times, by_step, step), step=step,
        rows=[(t, p) for t, p in zip(times, by_step, strict=True) if p is not None],
        total=total, per_second=total.requests / max(1.0, now - since),
        error_rate=total.errors / total.requests if total.requests else 0.0)


def _charts(times: Sequence[float], points: Sequence[pb.UsagePoint | None],
            step: int) -> list[Chart]:
    def each(read: Any, empty: float | None = 0.0) -> list[float | None]:
        return [read(p) if p is not None and p.requests else empty for p in points]

    return [
        line_chart("Requests per second", times,
                   [("requests/s", each(lambda p: p.requests / step))], fmt.rate),
        line_chart("Error rate", times,
                   [("errors", each(lambda p: p.errors / p.requests, None))], fmt.percent),
        line_chart("Latency", times,
                   [("p50", each(lambda p: p.latency_p50_ms, None)),
                    ("p95", each(lambda p: p.latency_p95_ms, None))], fmt.ms),
        line_chart("Tokens", times,
                   [("prompt", each(lambda p: float(p.prompt_tokens))),
                    ("completion", each(lambda p: float(p.completion_tokens)))], fmt.count,
                   whole=True),
        line_chart("Spend", times, [("spend", each(lambda p: p.cost_usd))], fmt.money),
    ]
