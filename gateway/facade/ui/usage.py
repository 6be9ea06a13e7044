"""The usage page: requests, tokens and spend per tenant and per model over the last hour,
day or week, as SVG charts (:mod:`.charts`) and totals tables, filtered by tenant and
model, from ``GetUsageSeries`` grouped by tenant and by model; and the same series as a
CSV file.

Names in the CSV are the tenants' own (a tenant's name, the model a client asked for): a
cell that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``, a tab or a
carriage return first) is written with a leading ``'`` (OWASP's CSV injection advice).

Example::

    csv_cell("=HYPERLINK(...)") == "'=HYPERLINK(...)"
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from google.protobuf.timestamp_pb2 import Timestamp
from llmgateway.v1 import admin_service_pb2 as pb
from quart import Response

from gateway.facade.ui import fmt
from gateway.facade.ui.charts import Chart, line_chart
from gateway.facade.ui.visit import Visit

__all__ = ["PERIODS", "csv_cell", "number", "usage", "usage_csv"]

# name: (window, step, words), seconds
PERIODS = {"hour": (3600, 60, "the last hour"), "day": (86400, 1800, "the last day"),
           "week": (7 * 86400, 3 * 3600, "the last week")}
_LINES = 5  # series drawn per chart: the busiest, the rest summed as "others"
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_ADMIN = "admin"  # the account the admin key's own requests are charged to


@dataclass(frozen=True, slots=True)
class _Query:
    period: str
    tenant_id: str
    model: str
    since: float
    until: float
    step: int
    steps: int

    @classmethod
    def read(cls, args: Mapping[str, str], now: float) -> _Query:
        period = args.get("period", "hour")
        if period not in PERIODS:
            period = "hour"
        window, step, _ = PERIODS[period]
        since = (now // step + 1) * step - window
        return cls(period, args.get("tenant_id", "").strip(), args.get("model", "").strip(),
                   since, now + 1, step, window // step)

    def request(self, group: pb.UsageSeriesGroup, step: int) -> pb.GetUsageSeriesRequest:
        return pb.GetUsageSeriesRequest(
            since=Timestamp(seconds=int(self.since)), until=Timestamp(seconds=int(self.until)),
            step_seconds=step, group_by=group, tenant_id=self.tenant_id, model=self.model)


async def _grouped(visit: Visit, query: _Query, step: int
                   ) -> tuple[list[pb.UsagePoint], list[pb.UsagePoint]]:
    """The points by tenant and by model, ``step`` seconds a point."""
    call, stub = visit.api.call, visit.api.stub
    by_tenant, by_model = await asyncio.gather(
        call(stub.GetUsageSeries, query.request(pb.USAGE_SERIES_GROUP_TENANT, step)),
        call(stub.GetUsageSeries, query.request(pb.USAGE_SERIES_GROUP_MODEL, step)))
    return list(by_tenant.points), list(by_model.points)


async def _tenant_names(visit: Visit) -> dict[str, str]:
    answer = await visit.api.call(visit.api.stub.ListTenants, pb.ListTenantsRequest())
    names = {t.id: t.name for t in answer.tenants}
    names.setdefault(_ADMIN, "admin (the admin key)")
    return names


async def usage(visit: Visit) -> Response:
    query = _Query.read(visit.args, time.time())
    call, stub = visit.api.call, visit.api.stub
    (tenant_steps, model_steps), (tenant_totals, model_totals), names, routes = (
        await asyncio.gather(
            _grouped(visit, query, query.step),
            _grouped(visit, query, query.steps * query.step),  # one point each: the totals
            _tenant_names(visit),
            call(stub.ListModelRoutes, pb.ListModelRoutesRequest())))
    times = [query.since + i * query.step for i in range(query.steps)]

    def tenant(key: str) -> str:
        return names.get(key, key) or "(none)"

    def model_name(key: str) -> str:
        return key or "(none)"

    charts = [*_charts("tenant", times, tenant_steps, tenant_totals, tenant, query.step),
              *_charts("model", times, model_steps, model_totals, model_name, query.step)]
    models = sorted({r.name for r in routes.routes} | {p.key for p in model_totals if p.key}
                    | ({query.model} if query.model else set()))
    filters = {k: v for k, v in (("tenant_id", query.tenant_id), ("model", query.model)) if v}
    return await visit.render(
        "usage.html", title="Usage", query=query, words=PERIODS[query.period][2],
        periods=[(name, words, "/ui/usage?" + urlencode({"period": name, **filters}))
                 for name, (_, _, words) in PERIODS.items()],
        charts=charts, tenant=tenant, model_name=model_name, models=models, filtered=bool(filters),
        tenants=sorted(names.items(), key=lambda item: item[1].lower()),
        tenant_totals=_by_spend(tenant_totals), model_totals=_by_spend(model_totals),
        total=_sum(tenant_totals),
        csv_url="/ui/usage.csv?" + urlencode({"period": query.period, **filters}),
        tenant_rows=tenant_steps, model_rows=model_steps)


async def usage_csv(visit: Visit) -> Response:
    """The page's series as CSV: a row per step and tenant, then per step and model."""
    query = _Query.read(visit.args, time.time())
    (by_tenant, by_model), names = await asyncio.gather(
        _grouped(visit, query, query.step), _tenant_names(visit))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("step_start_utc", "group", "id", "name", "requests", "errors",
                     "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd",
                     "latency_p50_ms", "latency_p95_ms"))

    def tenant_names(key: str) -> str:
        return names.get(key, key)

    for group, points, name in (("tenant", by_tenant, tenant_names),
                                ("model", by_model, str)):
        for p in points:
            writer.writerow((
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(p.time.seconds)), group,
                csv_cell(p.key), csv_cell(name(p.key)), p.requests, p.errors,
                p.prompt_tokens, p.completion_tokens, p.prompt_tokens + p.completion_tokens,
                number(p.cost_usd), number(p.latency_p50_ms), number(p.latency_p95_ms)))
    stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(query.until))
    return Response(out.getvalue(), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="usage-{query.period}-{stamp}.csv"'})


def csv_cell(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet runs as a formula."""
    return "'" + text if text.startswith(_FORMULA) else text


def number(value: float) -> str:
    """A plain decimal: no exponent, no thousands separator, no trailing zeros."""
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _sum(points: Iterable[pb.UsagePoint]) -> pb.UsagePoint:
    total = pb.UsagePoint()
    for p in points:
        total.requests += p.requests
        total.errors += p.errors
        total.prompt_tokens += p.prompt_tokens
        total.completion_tokens += p.completion_tokens
        total.cost_usd += p.cost_usd
    return total


def _by_spend(points: Iterable[pb.UsagePoint]) -> list[pb.UsagePoint]:
    return sorted(points, key=lambda p: (-p.cost_usd, -p.requests, p.key))


def _charts(group: str, times: Sequence[float], points: Sequence[pb.UsagePoint],
            totals: Sequence[pb.UsagePoint], label: Callable[[str], str],
            step: int) -> list[Chart]:
    """Requests and spend over time, a line per tenant (or model): the busiest few, the
    rest summed as "others"."""
    ranked = [p.key for p in _by_spend(totals)]
    shown = ranked[:_LINES] if len(ranked) <= _LINES else ranked[:_LINES - 1]
    lines = {key: i for i, key in enumerate(shown)}
    others = len(ranked) > len(shown)
    width = len(shown) + (1 if others else 0)
    requests: list[list[float | None]] = [[0.0] * len(times) for _ in range(width)]
    spend: list[list[float | None]] = [[0.0] * len(times) for _ in range(width)]
    start = times[0] if times else 0.0
    for p in points:
        index = int((p.time.seconds - start) // step)
        line = lines.get(p.key, len(shown))
        if 0 <= index < len(times) and line < width:
            requests[line][index] = (requests[line][index] or 0.0) + p.requests
            spend[line][index] = (spend[line][index] or 0.0) + p.cost_usd
    labels = [label(key) for key in shown] + (["others"] if others else [])
    if not labels:  # nothing yet: an empty line, so the chart still has its axes
        labels, requests, spend = ["none yet"], [[0.0] * len(times)], [[0.0] * len(times)]
    return [
        line_chart(f"Requests by {group}", times, list(zip(labels, requests, strict=True)),
                   fmt.count, whole=True),
        line_chart(f"Spend by {group}", times, list(zip(labels, spend, strict=True)),
                   fmt.money),
    ]
