"""Two phases on the request log (issue 22's performance section), run only when named
(``--only logcost,pages``): each takes minutes and needs PostgreSQL.

- ``logcost``: REST c=64 on gateways up at once that differ only in the request log: off
  (``request_log.enabled: false``), in memory (the default), in memory and PostgreSQL
  (``database.url``). :data:`ROUNDS` alternating rounds, the order reversed every other
  round so that each side meets the same drift; each row keeps its median round, and the
  cost is the median of the rounds' ratios against "off" (req/s and CPU per request).
- ``pages``: PostgreSQL filled with :data:`PAGE_ROWS` requests over the last day (bulk
  COPY: 12 tenants, 4 models, 2 providers, 3% errors, and the aggregates of each minute,
  each ten-minute block and each minute's totals), then, on a fresh gateway (its memory
  holds nothing, so every read goes to PostgreSQL), each UI page and admin REST route
  timed :data:`PAGE_RUNS` times signed in as admin, p50/p95 against
  :data:`PAGE_TARGET_MS`; and EXPLAIN ANALYZE of each filter's listing statement, to see
  that it uses an index.

PostgreSQL is started as the tests start it (tests/servers.py: fsync off) and moved to the
load core, like Redis.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
from _loads import Result, chat_body, measure, wrk
from _phases import CHAT, GATEWAY_MODEL, Bench, _ready_for_load, _server_facts, say
from _procs import LOAD_CORE, ROOT, children, process_cpu_s
from _servers import Server, gateway

LOG_OFF = "gateway REST, request log off"
LOG_MEMORY = "gateway REST, request log in memory (default)"
LOG_POSTGRES = "gateway REST, request log in memory + PostgreSQL"
ROUNDS = 6
COST_MAX = 0.05  # the issue: recording costs at most 5% of REST c=64 throughput

PAGE_ROWS = 100_000
PAGE_RUNS = 30
PAGE_TARGET_MS = 200.0
ADMIN_KEY = "adm-bench-0123456789abcdef"
TENANTS = [f"ten_{i:02d}" for i in range(12)]
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "gemini-2.0-flash")
PROVIDERS = ("openai", "azure")
ERRORS = ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "INVALID_ARGUMENT")
DAY = 86400


@contextmanager
def postgres() -> Iterator[Any]:
    """A throwaway PostgreSQL cluster (tests/servers.py) on the load core."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.servers import PostgresServer

    server = PostgresServer().start()
    try:
        if server.proc is not None:
            subprocess.run(["taskset", "-apc", LOAD_CORE, str(server.proc.pid)],
                           check=True, capture_output=True)
        yield server
    finally:
        server.close()


def _database(url: str) -> str:
    return f'database: {{url: "{url}"}}\n'


# --- logcost -------------------------------------------------------------------------


def logcost(b: Bench, up_port: int) -> None:
    with postgres() as pg, ExitStack() as stack:
        base = b.config(up_port)
        configs = ((LOG_OFF, base + "request_log: {enabled: false}\n"),
                   (LOG_MEMORY, base),
                   (LOG_POSTGRES, base + _database(pg.create_database("logcost"))))
        gws: list[tuple[str, Server]] = []
        for row, config in configs:
            name = "gateway-log-" + row.rsplit(" ", 1)[-1].strip("()")
            gws.append((row, stack.enter_context(gateway(b.work, name, config))))
        idle = {row: gw.rss_mb() for row, gw in gws}
        for row, gw in gws:
            b.row(row)
            _ready_for_load(b, gw, gw.name)
        body = chat_body(GATEWAY_MODEL)
        rounds: dict[str, list[Result]] = {row: [] for row, _ in gws}
        for i in range(ROUNDS):
            for row, gw in (gws if i % 2 == 0 else gws[::-1]):
                url = gw.url + CHAT
                database = _cpu_s(pg)
                result = measure(f"{row} c=64 (round {i + 1})",
                                 lambda u=url: wrk(u, body, 64, b.duration), server_pids=gw.pids)
                if row == LOG_POSTGRES and result.get("requests"):  # PostgreSQL's own share
                    result["postgres_cpu_ms_per_req"] = round(
                        1000 * (_cpu_s(pg) - database) / float(result["requests"]), 3)
                rounds[row].append(result)
        for row, results in rounds.items():
            done = sorted((r for r in results if r.get("rps")), key=lambda r: float(r["rps"]))
            chosen = dict(done[len(done) // 2]) if done else results[-1]
            chosen["rps_rounds"] = [r.get("rps") for r in results]
            chosen["cpu_ms_rounds"] = [r.get("cpu_ms_per_req") for r in results]
            b.row(row)["c64"] = chosen
        b.facts["request_log_cost"] = {
            row: _cost(rounds[LOG_OFF], rounds[row]) for row in (LOG_MEMORY, LOG_POSTGRES)}
        for row, gw in gws:
            _server_facts(b, (row,), gw, idle[row])


def _cpu_s(pg: Any) -> float:
    """CPU seconds PostgreSQL's processes (the postmaster and its backends) used so far."""
    if pg.proc is None:
        return 0.0
    return sum(process_cpu_s(pid) for pid in (pg.proc.pid, *children(pg.proc.pid)))


def _cost(off: list[Result], on: list[Result]) -> dict[str, Any]:
    """The median over rounds of on/off req/s and of on/off CPU per request."""
    def ratios(key: str) -> list[float]:
        return [float(a[key]) / float(o[key]) for o, a in zip(off, on, strict=True)
                if a.get(key) and o.get(key)]

    rps, cpu = ratios("rps"), ratios("cpu_ms_per_req")
    database = [float(r["postgres_cpu_ms_per_req"]) for r in on
                if r.get("postgres_cpu_ms_per_req") is not None]
    return {"rps_ratio": round(statistics.median(rps), 3) if rps else None,
            "postgres_cpu_ms_per_req": round(statistics.median(database), 3)
            if database else None,
            "rps_ratios": [round(r, 3) for r in rps],
            "cpu_ratio": round(statistics.median(cpu), 3) if cpu else None,
            "cpu_ratios": [round(r, 3) for r in cpu]}


def cost_targets(facts: dict[str, Any]) -> list[str]:
    lines = []
    for row, cost in facts.get("request_log_cost", {}).items():
        ratio = cost.get("rps_ratio")
        verdict = "not measured" if ratio is None else (
            "met" if ratio >= 1 - COST_MAX else "NOT met")
        lines.append(f"{row} costs <= {COST_MAX:.0%} of REST c=64 req/s against the log off: "
                     f"median of {len(cost['rps_ratios'])} alternating rounds {ratio}x "
                     f"(rounds {cost['rps_ratios']}), the gateway's CPU per request "
                     f"{cost['cpu_ratio']}x (rounds {cost['cpu_ratios']})"
                     + (f", PostgreSQL's own {cost['postgres_cpu_ms_per_req']} ms per request"
                        if cost.get("postgres_cpu_ms_per_req") is not None else "")
                     + f" -> {verdict}")
    return lines


# --- pages ---------------------------------------------------------------------------


def _records(rows: int, now: float) -> list[tuple[Any, ...]]:
    """``rows`` requests spread at random over the day before ``now``, newest last."""
    rng = random.Random(22)
    out = []
    for i, at in enumerate(sorted(now - rng.random() * DAY for _ in range(rows))):
        failed = rng.random() < 0.03
        prompt, completion = rng.randint(20, 2000), 0 if failed else rng.randint(1, 800)
        out.append((at, f"req_bench{i:08d}", "CreateChatCompletion", rng.choice(TENANTS),
                    rng.choice(MODELS), rng.choice(PROVIDERS),
                    rng.choice(ERRORS) if failed else "OK",
                    rng.lognormvariate(6, 0.8), prompt, completion,
                    (prompt * 0.15 + completion * 0.6) / 1e6, rng.random() < 0.25))
    return out


async def _fill(dsn: str, rows: int) -> dict[str, Any]:
    """Migrate, COPY ``rows`` requests and their minute aggregates, ANALYZE."""
    import asyncpg  # type: ignore[import-untyped]

    from gateway.state.request_log import MINUTE, MinuteAggregate, RequestRecord
    from gateway.state.request_log_postgres import (
        PostgresRequestLog,
        _blocks,
        _minute_row,
        _rolled,
        _row,
    )

    migrator = PostgresRequestLog(dsn)
    await migrator.start()
    await migrator.aclose()
    started = time.perf_counter()
    records = [RequestRecord(*r) for r in _records(rows, time.time())]
    minutes: dict[tuple[int, str, str, str], MinuteAggregate] = {}
    for r in records:
        key = (int(r.at // MINUTE), r.tenant, r.model, r.provider)
        if (m := minutes.get(key)) is None:
            m = minutes[key] = MinuteAggregate(*key)
        m.add(r)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "request_log", records=[_row(r) for r in records],
            columns=("at", "request_id", "method", "tenant", "model", "provider", "status",
                     "latency_ms", "prompt_tokens", "completion_tokens", "cost_usd", "stream"))
        for table, aggregates in (("request_minutes", list(minutes.values())),
                                  ("request_blocks", _blocks(minutes)),
                                  ("request_totals", _rolled(minutes, 1, by_names=False))):
            await conn.copy_records_to_table(
                table, records=[_minute_row(m) for m in aggregates],
                columns=("minute", "tenant", "model", "provider", "requests", "errors",
                         "latency_ms_sum", "latency_buckets", "prompt_tokens",
                         "completion_tokens", "cost_usd"))
        for table in ("request_log", "request_minutes", "request_blocks", "request_totals"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()
    return {"rows": rows, "minute_rows": len(minutes), "block_rows": len(_blocks(minutes)),
            "fill_s": round(time.perf_counter() - started, 1)}


FILTERS: tuple[tuple[str, dict[str, str]], ...] = (
    ("no filter", {}),
    ("tenant", {"tenant_id": "ten_05"}),
    ("model", {"model": "claude-3-5-haiku"}),
    ("provider", {"provider": "azure"}),
    ("status (an error: ~1% of rows)", {"status": "UNAVAILABLE"}),
    ("tenant + status", {"tenant_id": "ten_05", "status": "UNAVAILABLE"}),
    ("tenant + model + provider", {"tenant_id": "ten_05", "model": "gpt-4o",
                                   "provider": "openai"}),
)


async def _explain(dsn: str) -> dict[str, str]:
    """The plan of each filter's first page (and a cursor page): its scan nodes."""
    import asyncpg

    from gateway.state.request_log import RequestFilter
    from gateway.state.request_log_postgres import select_sql

    names = {"tenant_id": "tenant", "model": "model", "provider": "provider",
             "status": "status"}
    plans: dict[str, str] = {}
    conn = await asyncpg.connect(dsn)
    try:
        cases = [(name, RequestFilter(**{names[k]: v for k, v in f.items()}), None)
                 for name, f in FILTERS]
        cases.append(("no filter, a cursor page at mid-day", RequestFilter(),
                      (time.time() - DAY / 2, "req_")))
        cases.append(("tenant, a cursor page at mid-day", RequestFilter(tenant="ten_05"),
                      (time.time() - DAY / 2, "req_")))
        for name, where, before in cases:
            sql, args = select_sql(where, 51, before)
            plan = json.loads(await conn.fetchval(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *args))[0]
            nodes: list[str] = []

            def walk(node: dict[str, Any], into: list[str]) -> None:
                if "Scan" in node["Node Type"]:
                    into.append(f"{node['Node Type']}"
                                + (f" on {node['Index Name']}" if "Index Name" in node else ""))
                for child in node.get("Plans", []):
                    walk(child, into)

            walk(plan["Plan"], nodes)
            plans[name] = f"{', '.join(nodes)} ({plan['Execution Time']:.1f} ms)"
    finally:
        await conn.close()
    return plans


def _sign_in(client: httpx.Client) -> None:
    form = client.get("/ui/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if token is None:
        raise RuntimeError("the sign-in page has no csrf_token field")
    done = client.post("/ui/sign-in", data={"admin_key": ADMIN_KEY,
                                            "csrf_token": token.group(1), "next": "/ui/"})
    if done.status_code != 303 or "gw_ui_session" not in client.cookies:
        raise RuntimeError(f"sign-in failed: {done.status_code}")


def _targets(now: float) -> list[tuple[str, str, dict[str, str]]]:
    """(label, path, query) of every read timed: UI pages and admin REST routes."""
    day_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - DAY))
    out: list[tuple[str, str, dict[str, str]]] = [
        ("UI overview, last hour", "/ui/", {}),
        ("UI overview, last day", "/ui/", {"window": "day"}),
    ]
    out += [(f"UI request log, {name}", "/ui/requests", f) for name, f in FILTERS]
    out += [(f"GET /admin/requests, {name}", "/admin/requests", f) for name, f in FILTERS]
    out += [
        ("GET /admin/usage/series, last hour", "/admin/usage/series", {}),
        ("GET /admin/usage/series, day by minute", "/admin/usage/series",
         {"since": day_ago, "step_seconds": "60"}),
        ("GET /admin/usage/series, day by 30 min per model", "/admin/usage/series",
         {"since": day_ago, "step_seconds": "1800", "group_by": "model"}),
        ("GET /admin/usage/series, day by 30 min per tenant", "/admin/usage/series",
         {"since": day_ago, "step_seconds": "1800", "group_by": "tenant"}),
        ("GET /admin/usage/series, day, one tenant per model", "/admin/usage/series",
         {"since": day_ago, "step_seconds": "1800", "group_by": "model",
          "tenant_id": "ten_05"}),
    ]
    return out


def _older_link(html: str) -> str:
    """The request log page's link to the older page, if any."""
    found = re.search(r'href="(/ui/requests\?[^"]*page=[^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else ""


def _time(client: httpx.Client, path: str, params: dict[str, str],
          headers: dict[str, str]) -> dict[str, Any]:
    took, status = [], 0
    for i in range(PAGE_RUNS + 1):
        started = time.perf_counter()
        answer = client.get(path, params=params, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        status = answer.status_code
        if status != 200:
            return {"failed": f"{status}: {answer.text[:300]}"}
        if i:  # the first: connections and statements, prepared
            took.append(elapsed)
    took.sort()
    return {"p50_ms": round(statistics.median(took), 1),
            "p95_ms": round(took[int(0.95 * (len(took) - 1))], 1),
            "max_ms": round(took[-1], 1), "runs": len(took), "bytes": len(answer.content)}


def pages(b: Bench, up_port: int) -> None:
    with postgres() as pg:
        dsn = pg.create_database("pages")
        say(f"pages: filling PostgreSQL with {PAGE_ROWS:,} requests over the last day")
        filled = asyncio.run(_fill(dsn, PAGE_ROWS))
        say(f"  {filled}")
        b.facts["pages"] = {"filled": filled, "explain": asyncio.run(_explain(dsn))}
        config = (b.config(up_port) + _database(dsn)
                  + f'auth: {{admin_keys: ["{ADMIN_KEY}"]}}\n')
        with gateway(b.work, "gateway-pages", config) as gw, \
                httpx.Client(base_url=gw.url, timeout=30) as client:
            _sign_in(client)
            timed: dict[str, Any] = {}
            now = time.time()
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            for label, path, params in _targets(now):
                headers = admin if path.startswith("/admin/") else {}
                timed[label] = _time(client, path, params, headers)
                say(f"  {label}: {timed[label]}")
                if path == "/ui/requests":
                    older = _older_link(client.get(path, params=params).text)
                    if older:
                        label += ", the older page"
                        timed[label] = _time(client, older, {}, {})
                        say(f"  {label}: {timed[label]}")
            b.facts["pages"]["timed"] = timed
            _server_facts(b, (), gw, None, problems_only=True)


def pages_table(facts: dict[str, Any]) -> str:
    timed = facts.get("pages", {}).get("timed")
    if not timed:
        return ""
    lines = [f"| read ({facts['pages']['filled']['rows']:,} requests in PostgreSQL) "
             "| p50 ms | p95 ms | max ms | |", "|---|---:|---:|---:|---|"]
    for label, r in timed.items():
        if r.get("failed"):
            lines.append(f"| {label} | | | | failed: {r['failed'][:80]} |")
            continue
        verdict = "ok" if r["p95_ms"] <= PAGE_TARGET_MS else f"over {PAGE_TARGET_MS:.0f} ms"
        lines.append(f"| {label} | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} "
                     f"| {verdict} |")
    return "\n".join(lines)


def page_targets(facts: dict[str, Any]) -> list[str]:
    timed: dict[str, Any] = facts.get("pages", {}).get("timed") or {}
    if not timed:
        return []
    worst = max(((r["p95_ms"], label) for label, r in timed.items() if "p95_ms" in r),
                default=None)
    failed = [label for label, r in timed.items() if r.get("failed")]
    ok = worst is not None and worst[0] <= PAGE_TARGET_MS and not failed
    return [f"pages and admin reads answer within {PAGE_TARGET_MS:.0f} ms (p95) with "
            f"{facts['pages']['filled']['rows']:,} requests in PostgreSQL: slowest "
            f"{worst[1] if worst else '-'} p95 {worst[0] if worst else '-'} ms"
            + (f", failed: {failed}" if failed else "") + f" -> {'met' if ok else 'NOT met'}"]


PHASE_STEPS: tuple[tuple[str, Callable[[Bench, int], None]], ...] = (
    ("logcost", logcost), ("pages", pages))
