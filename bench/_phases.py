"""The bench's phases, each filling rows of the table (and facts beside it):

- ``direct``: the fake upstream called directly, the physical limit here.
- ``ceiling``: ``GET /health`` on the gateway, a fixed body from a lean ASGI route on the same
  Hypercorn server: what our HTTP stack costs before any gateway work.
- ``rest``, ``grpc``: the gateway in its base configuration (metrics on, nothing else);
  ``rest`` also measures Anthropic's ``/v1/messages`` (passed through to an ``anthropic``
  provider at the fake upstream) next to the chat route, on the same gateway.
- ``minimal``: the stack's minimal paths (``minimal_paths.py``): a raw ASGI app on the same
  Hypercorn forwarding to the upstream with aiohttp, and a grpc.aio servicer doing the same.
  What the fixed parts cost with no gateway work: the floor under the REST and gRPC rows.
- ``curve``: the concurrency sweep (1, 4, 16, 64, 128) of whichever of the four above run.
- ``litellm``: the LiteLLM proxy, one worker, when bench/install_litellm.sh installed it.
- ``observed``: tracing sampled at 0.1 to an OTLP sink, and a local rate limit that never
  refuses; ``redis``: the same with Redis-backed limits (measured next to ``observed``).
- ``workers``: ``gateway serve --workers 2``.
- ``memory``: RSS after a first and a last count of mixed requests (REST and gRPC, one in
  eight streamed) on a fresh gateway with tracing and limits on.
"""

from __future__ import annotations

import glob
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _loads import (
    LOAD_ERRORS,
    MESSAGES_HEADERS,
    Result,
    chat_body,
    check_chat,
    grpc_load,
    measure,
    messages_body,
    streams,
    warm_up,
    wrk,
    wrk_get,
)
from _procs import BENCH, foreign_connections, rss_mb
from _servers import (
    GATEWAY_MODEL,
    MESSAGES_MODEL,
    UPSTREAM_MODEL,
    Server,
    gateway,
    gateway_config,
    litellm,
    litellm_installed,
    minimal,
    otlp_sink,
    redis_server,
)

PHASES = ("direct", "ceiling", "rest", "grpc", "minimal", "curve", "litellm", "observed",
          "redis", "workers", "memory")
CURVE = (1, 4, 16, 64, 128)
PACED_STREAMS = 400.0  # streams/s: the performance issue's target rate, at c=16
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"

DIRECT = "direct"
CEILING = "ceiling (fixed response, same server)"
REST = "gateway REST"
REST_MESSAGES = "gateway REST /v1/messages (anthropic passthrough)"
GRPC = "gateway gRPC"
MINIMAL_REST = "minimal REST path (raw ASGI + aiohttp, same server)"
MINIMAL_GRPC = "minimal gRPC path (grpc.aio + aiohttp)"
LITELLM = "LiteLLM"
REST_LOCAL = "gateway REST, tracing 0.1 + local limits"
GRPC_LOCAL = "gateway gRPC, tracing 0.1 + local limits"
REST_REDIS = "gateway REST, tracing 0.1 + Redis limits"
GRPC_REDIS = "gateway gRPC, tracing 0.1 + Redis limits"
REST_W2 = "gateway REST, --workers 2"
GRPC_W2 = "gateway gRPC, --workers 2"
CURVE_PATHS = (DIRECT, CEILING, REST, GRPC)

Rows = dict[str, dict[str, Any]]


@dataclass
class Bench:
    """What a run measures and what it found so far."""

    work: Path
    phases: set[str]
    duration: float
    warmup: float
    curve_s: float
    memory_requests: tuple[int, int]  # RSS read after the first count and after the total
    transport: str = "local"  # server.core_transport of every gateway
    rows: Rows = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def row(self, name: str) -> dict[str, Any]:
        return self.rows.setdefault(name, {})

    def points(self, path: str) -> list[int]:
        """The concurrencies measured for ``path``: 1 and 64, and the sweep with ``curve``."""
        return list(CURVE) if "curve" in self.phases and path in CURVE_PATHS else [1, 64]

    def note(self, text: str) -> None:
        self.notes.append(text)
        say("note: " + text.splitlines()[0])

    def config(self, up_port: int, sink_port: int = 0, redis_url: str = "") -> str:
        return gateway_config(up_port, sink_port=sink_port, redis_url=redis_url,
                              transport=self.transport)


def say(text: str) -> None:
    """Progress, on stderr: stdout is the report."""
    print(text, file=sys.stderr, flush=True)


def _sweep(b: Bench, row: str, points: Iterable[int], run: Callable[[int, float], Result],
           pids: Callable[[], list[int]] | None, min_s: float = 0.0) -> None:
    for c in points:
        seconds = max(min_s, b.duration if c in (1, 64) else b.curve_s)
        b.row(row)[f"c{c}"] = measure(f"{row} c={c}", run, c, seconds, server_pids=pids)


def _rest(b: Bench, row: str, server: Server, points: Iterable[int], stream: bool = True,
          min_s: float = 0.0) -> None:
    """wrk at each concurrency in ``points``, then streams at 16; ``min_s`` for a server slow
    enough that a quick run's second would hold no request."""
    url, body = server.url + CHAT, chat_body(GATEWAY_MODEL)
    _sweep(b, row, points, lambda c, s: wrk(url, body, c, s), server.pids, min_s)
    if stream:
        _streams(b, row, server, max(min_s, b.duration))


def _streams(b: Bench, row: str, server: Server, seconds: float, api: str = "chat") -> None:
    """Streams at c=16, back to back: chat completions, or ``api`` "messages"."""
    path, model = (MESSAGES, MESSAGES_MODEL) if api == "messages" else (CHAT, GATEWAY_MODEL)
    b.row(row)["stream"] = measure(f"{row} streams c=16", streams, server.url + path, model, 16,
                                   seconds, b.warmup, 0.0, api, server_pids=server.pids)


def _rest_and_messages(b: Bench, server: Server) -> None:
    """The chat route's rows and Anthropic's ``/v1/messages`` beside them on the same
    gateway, each Messages run right after the chat run it is compared with: non-stream at
    c=64 (after the chat route's c=1 and c=64), then streams at 16."""
    url, body = server.url + MESSAGES, messages_body(MESSAGES_MODEL)
    if problem := check_chat(url, body, messages=True):
        b.note(f"{server.name} {MESSAGES}: sanity request failed: {problem}")
    warm_up(url, body, b.warmup, MESSAGES_HEADERS)
    b.row(REST)  # the table lists the Messages row under the chat route's
    b.row(REST_MESSAGES)
    _rest(b, REST, server, b.points(REST), stream=False)
    b.row(REST_MESSAGES)["c64"] = measure(
        f"{REST_MESSAGES} c=64", lambda: wrk(url, body, 64, b.duration, headers=MESSAGES_HEADERS),
        server_pids=server.pids)
    _streams(b, REST, server, b.duration)
    _streams(b, REST_MESSAGES, server, b.duration, api="messages")


def _paced_streams(b: Bench, row: str, url: str, model: str,
                   pids: Callable[[], list[int]] | None) -> None:
    """Streams at c=16 paced to PACED_STREAMS/s: time to first byte at the target's load,
    where the back-to-back run measures it at saturation (queueing behind the others)."""
    b.row(row)["stream_paced"] = measure(
        f"{row} streams c=16 at {PACED_STREAMS:.0f}/s", streams, url, model, 16, b.duration,
        b.warmup, PACED_STREAMS, server_pids=pids)


def _grpc(b: Bench, row: str, server: Server, points: Iterable[int], stream: bool = True,
          channels: int = 1) -> None:
    target = f"127.0.0.1:{server.grpc_port}"

    def unary(c: int, seconds: float) -> Result:
        # One connection carries at most 100 calls (server.max_concurrent_streams); a client
        # past it gets REFUSED_STREAM, so c=128 takes two connections.
        conns = max(channels, -(-c // 64))
        return grpc_load(target, c, seconds, b.warmup, False, channels=conns)

    _sweep(b, row, points, unary, server.pids)
    if stream:
        b.row(row)["stream"] = measure(
            f"{row} streams c=16", grpc_load, target, 16, b.duration, b.warmup, True,
            server_pids=server.pids)


def _ready_for_load(b: Bench, server: Server, label: str) -> None:
    """A sanity request (its problem goes to the notes), then untimed load."""
    url = server.url + CHAT
    if problem := check_chat(url, chat_body(GATEWAY_MODEL)):
        b.note(f"{label}: sanity request failed: {problem}")
    warm_up(url, chat_body(GATEWAY_MODEL), b.warmup)


def _server_facts(b: Bench, rows: Iterable[str], server: Server, idle: float | None,
                  problems_only: bool = False) -> None:
    """RSS idle and after the load on the rows; a server that died or logged goes to the
    notes (the gateway logs at warning, so any line is news; LiteLLM's banner is not)."""
    after = server.rss_mb()
    for row in rows:
        if row in b.rows:
            b.rows[row]["server"] = {"idle_rss_mb": idle, "rss_after_mb": after}
    if server.proc.poll() is not None:
        b.note(f"{server.name} exited during the run with {server.proc.returncode}")
    tail = server.log_tail()
    if problems_only:
        tail = [line for line in tail if any(w in line for w in ("ERROR", "Traceback", "rror:"))]
    if tail:
        b.note(f"{server.name} log tail:\n" + "\n".join(tail))


def direct(b: Bench, up_port: int) -> None:
    url, body = f"http://127.0.0.1:{up_port}{CHAT}", chat_body(UPSTREAM_MODEL)
    warm_up(url, body, 1)
    _sweep(b, DIRECT, b.points(DIRECT), lambda c, s: wrk(url, body, c, s), None)
    b.row(DIRECT)["stream"] = measure(f"{DIRECT} streams c=16", streams, url, UPSTREAM_MODEL,
                                      16, b.duration, b.warmup)
    _paced_streams(b, DIRECT, url, UPSTREAM_MODEL, None)


def base_gateway(b: Bench, up_port: int) -> None:
    """The ceiling, REST and gRPC rows: one gateway, base configuration."""
    with gateway(b.work, "gateway", b.config(up_port)) as gw:
        idle = gw.rss_mb()
        say(f"gateway on :{gw.http_port}, gRPC :{gw.grpc_port}, idle RSS {idle} MB")
        _ready_for_load(b, gw, "gateway")
        if "ceiling" in b.phases:
            health = gw.url + "/health"
            _sweep(b, CEILING, b.points(CEILING), lambda c, s: wrk_get(health, c, s), gw.pids)
        if "rest" in b.phases:
            _rest_and_messages(b, gw)
            _paced_streams(b, REST, gw.url + CHAT, GATEWAY_MODEL, gw.pids)
        if "grpc" in b.phases:
            _grpc(b, GRPC, gw, b.points(GRPC))
        _server_facts(b, (CEILING, REST, REST_MESSAGES, GRPC), gw, idle)
        stopping = time.monotonic()
        gw.proc.terminate()
        gw.proc.wait(30)
        b.facts["gateway_stop_s"] = round(time.monotonic() - stopping, 2)


def minimal_paths(b: Bench, up_port: int) -> None:
    """The minimal REST path at c=1 and c=64 and its streams at 16, then the minimal gRPC
    path at c=1 and c=64."""
    with minimal(b.work, "rest", up_port) as rest:
        url, body = rest.url + CHAT, chat_body(UPSTREAM_MODEL)
        if problem := check_chat(url, body):
            b.note(f"{rest.name}: sanity request failed: {problem}")
        warm_up(url, body, b.warmup)
        _sweep(b, MINIMAL_REST, [1, 64], lambda c, s: wrk(url, body, c, s), rest.pids)
        b.row(MINIMAL_REST)["stream"] = measure(
            f"{MINIMAL_REST} streams c=16", streams, url, UPSTREAM_MODEL, 16, b.duration,
            b.warmup, server_pids=rest.pids)
        _paced_streams(b, MINIMAL_REST, url, UPSTREAM_MODEL, rest.pids)
        _server_facts(b, (MINIMAL_REST,), rest, None, problems_only=True)
    with minimal(b.work, "grpc", up_port) as rpc:
        _grpc(b, MINIMAL_GRPC, rpc, [1, 64], stream=False)
        _server_facts(b, (MINIMAL_GRPC,), rpc, None, problems_only=True)


def litellm_version() -> str:
    found = glob.glob(str(BENCH / ".litellm-venv/lib/python*/site-packages/litellm-*.dist-info"))
    return Path(found[0]).name.removeprefix("litellm-").removesuffix(".dist-info") if found else ""


def litellm_phase(b: Bench, up_port: int) -> None:
    if not litellm_installed():
        b.row(LITELLM)["note"] = "not installed (bash bench/install_litellm.sh)"
        return
    row = f"LiteLLM {litellm_version()}"
    started = time.monotonic()
    try:
        with litellm(b.work, up_port) as ll:
            b.facts["litellm_start_s"] = round(time.monotonic() - started, 1)
            idle = ll.rss_mb()
            say(f"LiteLLM on :{ll.http_port}, idle RSS {idle} MB, "
                f"started in {b.facts['litellm_start_s']} s")
            foreign = foreign_connections(ll.pids())
            _ready_for_load(b, ll, row)
            _rest(b, row, ll, [1, 64], min_s=3.0)
            foreign += foreign_connections(ll.pids())
            b.facts["litellm_foreign_connections"] = foreign
            if foreign:
                b.note(f"LiteLLM held connections to non-loopback addresses: {foreign}")
            _server_facts(b, (row,), ll, idle, problems_only=True)
    except RuntimeError as e:
        b.row(row)["note"] = "did not start (see notes)"
        b.note(f"LiteLLM did not start: {e}")


def limits(b: Bench, up_port: int) -> None:
    """Tracing + local limits, and tracing + Redis limits, both up at once so that the c=1
    runs that compare them alternate (what Redis adds to p50 is a fraction of a millisecond;
    the drift of a busy machine over a minute is more)."""
    sink: dict[str, int] = {}
    with otlp_sink(b.work, sink) as sink_port, ExitStack() as stack:
        gws: list[tuple[str, str, Server]] = []
        if "observed" in b.phases:
            config = b.config(up_port, sink_port)
            gws.append((REST_LOCAL, GRPC_LOCAL, stack.enter_context(
                gateway(b.work, "gateway-local-limits", config))))
        if "redis" in b.phases:
            redis_url = stack.enter_context(redis_server(b.work))
            config = b.config(up_port, sink_port, redis_url)
            gws.append((REST_REDIS, GRPC_REDIS, stack.enter_context(
                gateway(b.work, "gateway-redis-limits", config))))
        idle = {gw.name: gw.rss_mb() for _, _, gw in gws}
        for rest, rpc, gw in gws:
            b.row(rest)  # the table lists each gateway's two rows together
            b.row(rpc)
            _ready_for_load(b, gw, gw.name)
        body = chat_body(GATEWAY_MODEL)

        def rest_run(gw: Server) -> Callable[[int, float], Result]:
            return lambda c, s: wrk(gw.url + CHAT, body, c, s)

        def grpc_run(gw: Server) -> Callable[[int, float], Result]:
            target = f"127.0.0.1:{gw.grpc_port}"
            return lambda c, s: grpc_load(target, c, s, 0.5, False)

        _c1_rounds(b, [(rest, rest_run(gw), gw.pids) for rest, _, gw in gws])
        _c1_rounds(b, [(rpc, grpc_run(gw), gw.pids) for _, rpc, gw in gws])
        for rest, rpc, gw in gws:
            _rest(b, rest, gw, [64])
            _grpc(b, rpc, gw, [64], stream=False)
        for rest, rpc, gw in gws:
            _server_facts(b, (rest, rpc), gw, idle[gw.name])
    b.facts["otlp_sink"] = sink


C1_ROUNDS = 3


def _c1_rounds(b: Bench, entries: list[tuple[str, Callable[[int, float], Result],
                                             Callable[[], list[int]]]]) -> None:
    """c=1 on each entry in turn, C1_ROUNDS times, each round a third of the duration, so
    that the sides of a comparison meet the same disturbances. Each row keeps its round with
    the median p50, and every round's p50 beside it."""
    seconds = max(1.0, b.duration / C1_ROUNDS)
    results: dict[str, list[Result]] = {row: [] for row, _, _ in entries}
    for i in range(C1_ROUNDS):
        for row, run, pids in entries:
            results[row].append(measure(f"{row} c=1 (round {i + 1})", run, 1, seconds,
                                        server_pids=pids))
    for row, rounds in results.items():
        done = sorted((r for r in rounds if r.get("p50_ms") is not None),
                      key=lambda r: float(r["p50_ms"]))
        chosen = dict(done[len(done) // 2]) if done else rounds[-1]
        chosen["p50_rounds_ms"] = [r.get("p50_ms") for r in rounds]
        b.row(row)["c1"] = chosen


def workers(b: Bench, up_port: int) -> None:
    """Two workers on both cores: the load generator and the upstream share core 1 with one
    of them (there are only two cores), so the figure is a floor."""
    with gateway(b.work, "gateway-workers", b.config(up_port), workers=2) as gw:
        pids = gw.workers()
        idle = [r for pid in pids if (r := rss_mb(pid)) is not None]
        _ready_for_load(b, gw, gw.name)
        _rest(b, REST_W2, gw, [64])
        _grpc(b, GRPC_W2, gw, [64], stream=False, channels=8)
        b.facts["workers"] = {"count": len(pids), "idle_rss_mb": idle}
        _server_facts(b, (REST_W2, GRPC_W2), gw, max(idle) if idle else None)


def _mix(b: Bench, gw: Server, count: int) -> dict[str, Any]:
    """``count`` mixed requests: 4 in 5 REST (wrk, c=32), 1 in 5 gRPC (c=16); one in eight
    of each streamed. Both at once; each stops at its count (bounded by a generous time)."""
    rest_n, grpc_n = count * 4 // 5, count - count * 4 // 5
    bound = max(30.0, count / 100)
    url = gw.url + CHAT
    target = f"127.0.0.1:{gw.grpc_port}"
    with ThreadPoolExecutor(2) as pool:
        rest = pool.submit(wrk, url, chat_body(GATEWAY_MODEL), 32, bound,
                           stream_body=chat_body(GATEWAY_MODEL, stream=True), stream_every=8,
                           limit=rest_n)
        rpc = pool.submit(grpc_load, target, 16, bound, 0.0, False, requests=grpc_n,
                          stream_every=8)
        out: dict[str, Any] = {"requests": 0, "errors": 0}
        for name, future in (("rest", rest), ("grpc", rpc)):
            try:
                result = future.result()
            except LOAD_ERRORS as e:
                b.note(f"memory phase: {name} load failed: {e}")
                continue
            out["requests"] += int(result.get("requests", 0))
            out["errors"] += int(result.get("errors", 0))
    return out


def memory(b: Bench, up_port: int) -> None:
    first, total = b.memory_requests
    sink: dict[str, int] = {}
    with otlp_sink(b.work, sink) as sink_port, \
            gateway(b.work, "gateway-memory", b.config(up_port, sink_port)) as gw:
        idle = gw.rss_mb()
        say(f"memory: idle RSS {idle} MB; {first:,} mixed requests, then {total - first:,}")
        started = time.monotonic()
        one = _mix(b, gw, first)
        time.sleep(1)  # let the last responses' objects go
        after_first = gw.rss_mb()
        say(f"  after {one['requests']:,} requests: RSS {after_first} MB")
        two = _mix(b, gw, total - first)
        time.sleep(1)
        after_total = gw.rss_mb()
        served = one["requests"] + two["requests"]
        say(f"  after {served:,} requests: RSS {after_total} MB")
        b.facts["memory"] = {
            "idle_rss_mb": idle,
            "first_requests": one["requests"],
            "rss_after_first_mb": after_first,
            "total_requests": served,
            "rss_after_total_mb": after_total,
            "ratio": round(after_total / after_first, 3) if after_first and after_total else None,
            "errors": one["errors"] + two["errors"],
            "seconds": round(time.monotonic() - started, 1),
        }
        if gw.proc.poll() is not None:
            b.note(f"memory gateway exited with {gw.proc.returncode}")
        if tail := gw.log_tail():
            b.note("memory gateway log tail:\n" + "\n".join(tail))
