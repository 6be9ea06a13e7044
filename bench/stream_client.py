"""Streaming load client: N keep-alive connections, each opening SSE streams back to back.

``--api chat`` (the default) streams chat completions, each complete at ``data: [DONE]``;
``--api messages`` streams Anthropic's Messages API (``anthropic-version`` sent), named
events (``event: <type>``), each stream complete at ``event: message_stop`` and failed by an
``event: error``. Measures streams/s and time to first byte (TTFB: request sent -> first
``data:`` event) over a fixed duration, on raw asyncio streams (uvloop when installed) so the
client costs little.
Back to back, the server is saturated and a stream's TTFB includes its wait behind the others;
with ``--rate``, each connection starts a stream every ``concurrency / rate`` seconds (the
connections staggered), so TTFB is measured at that load, below saturation.
Prints one line ``STREAM_RESULT {json}``; its ``calls`` counts every stream the server
served, warm-up included (what its CPU time is divided by).

Example::

    python bench/stream_client.py --url http://127.0.0.1:8080/v1/chat/completions \\
        --model bench-model --concurrency 16 --duration 10
    python bench/stream_client.py --api messages --url http://127.0.0.1:8080/v1/messages \\
        --model bench-messages
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


ANTHROPIC_VERSION = "2023-06-01"


def complete(api: str, data: bytes) -> bool:
    """Whether ``data``, a whole SSE body, is a stream that ended as it should: chat's
    ``data: [DONE]``; the Messages API's ``message_stop`` as its last event, no ``error``."""
    if api == "chat":
        return b"data: [DONE]" in data
    last = data.replace(b"\r\n", b"\n").rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
    # A newline in an event's JSON is escaped: "event: error\n" can only be a field line.
    return last.startswith(b"event: message_stop\n") and b"event: error\n" not in data


@dataclass
class Stats:
    ttfb: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    calls: int = 0  # every stream read to its end, warm-up included (the server served them)
    errors: int = 0
    last_error: str = ""


async def _read_body(reader: asyncio.StreamReader, head: bytes, sent: float) -> tuple[bytes, float]:
    """Reads one response body after its ``head``; returns it and the TTFB of its first event."""
    ttfb = 0.0
    parts: list[bytes] = []
    if b"\r\ntransfer-encoding: chunked" in head:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers are expected
                break
            parts.append((await reader.readexactly(size + 2))[:-2])
            if not ttfb and b"data:" in b"".join(parts):
                ttfb = time.perf_counter() - sent
    else:
        pos = head.find(b"\r\ncontent-length:")
        if pos >= 0:
            end = head.find(b"\r\n", pos + 2)
            parts.append(await reader.readexactly(int(head[pos + 17 : end if end > 0 else None])))
        else:
            parts.append(await reader.read())  # close-delimited
        ttfb = time.perf_counter() - sent
    return b"".join(parts), ttfb


async def _worker(url: str, body: bytes, start: float, end: float, stats: Stats,
                  interval: float = 0.0, first: float = 0.0, api: str = "chat") -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    version = f"anthropic-version: {ANTHROPIC_VERSION}\r\n" if api == "messages" else ""
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
        f"{version}Authorization: Bearer sk-bench\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    slot = first - interval
    while time.perf_counter() < end:
        if interval:  # paced: one stream per interval on this connection, never a burst
            slot = max(slot + interval, time.perf_counter())
            await asyncio.sleep(slot - time.perf_counter())
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection(host, port)
            sent = time.perf_counter()
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            data, ttfb = await _read_body(reader, head, sent)
            done = time.perf_counter()
            if not head.startswith(b"http/1.1 200") or not complete(api, data):
                raise ValueError(f"bad stream: {head[:40]!r} {data[:200]!r}")
            stats.calls += 1
            if sent >= start:  # ignore warm-up
                stats.ttfb.append(ttfb)
                stats.total.append(done - sent)
            if b"\r\nconnection: close" in head:
                writer.close()
                reader = writer = None
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            stats.errors += 1
            stats.last_error = repr(e)[:300]
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def run(
    url: str, model: str, concurrency: int, duration: float, warmup: float, include_usage: bool,
    rate: float = 0.0, api: str = "chat",
) -> dict[str, float | int | str]:
    payload: dict[str, object] = {
        "model": model,
        "stream": True,
        "messages": [{"role": "user", "content": "hello bench"}],
    }
    if api == "messages":
        payload["max_tokens"] = 256
    elif include_usage:
        payload["stream_options"] = {"include_usage": True}
    body = json.dumps(payload).encode()
    stats = Stats()
    start = time.perf_counter() + warmup
    end = start + duration
    interval = concurrency / rate if rate else 0.0
    now = time.perf_counter()
    await asyncio.gather(*(_worker(url, body, start, end, stats, interval,
                                   now + i * interval / concurrency, api)
                           for i in range(concurrency)))
    ms = 1000.0
    return {
        "streams": len(stats.total),
        "calls": stats.calls,
        "streams_per_s": round(len(stats.total) / duration, 1),
        "ttfb_p50_ms": round(percentile(stats.ttfb, 50) * ms, 3),
        "ttfb_p99_ms": round(percentile(stats.ttfb, 99) * ms, 3),
        "total_p50_ms": round(percentile(stats.total, 50) * ms, 3),
        "total_p99_ms": round(percentile(stats.total, 99) * ms, 3),
        "errors": stats.errors,
        "last_error": stats.last_error,
    }


def uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when it is installed, else None (the default loop)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--concurrency", "-c", type=int, default=16)
    ap.add_argument("--duration", "-d", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=0.0, help="seconds run but not counted first")
    ap.add_argument("--api", choices=("chat", "messages"), default="chat",
                    help="chat completions, or Anthropic's Messages API (--url /v1/messages)")
    ap.add_argument("--include-usage", action="store_true", help="chat only")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="streams per second in all, spread over the connections (default: "
                         "each connection back to back, as fast as the server answers)")
    args = ap.parse_args()
    coro = run(
        args.url, args.model, args.concurrency, args.duration, args.warmup, args.include_usage,
        args.rate, args.api,
    )
    with asyncio.Runner(loop_factory=uvloop_factory()) as runner:
        result = runner.run(coro)
    print("STREAM_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
