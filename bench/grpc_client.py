"""gRPC load client for the gateway core: unary CreateChatCompletion, or StreamChatCompletion.

``--concurrency`` coroutines share one grpc.aio channel (``--channels``: that many, each its
own connection) and call back to back for ``--duration`` seconds (after ``--warmup`` seconds
not counted). Prints one line ``GRPC_RESULT {json}``: req/s and latency percentiles, or with
``--stream`` streams/s and the time to the first streamed message (TTFB); its ``calls``
counts every call answered, warm-up included (what the server's CPU time is divided by).
With ``--requests N`` the callers stop after N calls in all (``--duration`` is then only a
bound); with ``--stream-every K`` every K-th call is a stream read to its end (the bench's
memory phase: a mixed load of a known size).

Example::

    python bench/grpc_client.py --target 127.0.0.1:50051 --concurrency 64 --duration 10
    python bench/grpc_client.py --target 127.0.0.1:50051 --concurrency 16 --stream
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import time
from typing import Any

import grpc
from llmgateway.v1 import chat_pb2, gateway_service_pb2, gateway_service_pb2_grpc

METADATA = (("authorization", "Bearer sk-bench"),)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _ms(values: list[float], q: float) -> float:
    return round(percentile(values, q) * 1000, 3)


async def run(
    target: str, model: str, concurrency: int, duration: float, warmup: float, stream: bool,
    requests: int = 0, stream_every: int = 0, channels: int = 1,
) -> dict[str, float | int | str]:
    chat = chat_pb2.ChatRequest(
        model=model,
        messages=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, content="hello bench")],
    )
    unary_request = gateway_service_pb2.CreateChatCompletionRequest(request=chat)
    stream_request = gateway_service_pb2.StreamChatCompletionRequest(request=chat)
    latencies: list[float] = []
    ttfbs: list[float] = []
    errors: dict[str, int] = {}
    calls = 0  # every call answered, warm-up included (the server served them)
    start = time.perf_counter() + warmup
    end = start + duration
    tickets = itertools.count(1)

    async def one_stream(stub: Any, sent: float) -> float:
        """Reads a whole stream; returns its time to the first message."""
        ttfb = 0.0
        async for _ in stub.StreamChatCompletion(stream_request, timeout=10, metadata=METADATA):
            ttfb = ttfb or time.perf_counter() - sent
        return ttfb

    # Channels of their own (no shared subchannel), so each is its own TCP connection: with
    # ``gateway serve --workers N`` the kernel spreads connections, not calls, over workers.
    options = [("grpc.use_local_subchannel_pool", 1)] if channels > 1 else []
    opened = [grpc.aio.insecure_channel(target, options=options) for _ in range(channels)]
    stubs = [gateway_service_pb2_grpc.GatewayServiceStub(c)  # type: ignore[no-untyped-call]
             for c in opened]
    try:

        async def worker(stub: Any) -> None:
            nonlocal calls
            while (sent := time.perf_counter()) < end:
                ticket = next(tickets)
                if requests and ticket > requests:
                    return
                ttfb = 0.0
                try:
                    if stream or (stream_every and ticket % stream_every == 0):
                        ttfb = await one_stream(stub, sent)
                    else:
                        await stub.CreateChatCompletion(
                            unary_request, timeout=10, metadata=METADATA
                        )
                except grpc.aio.AioRpcError as e:
                    key = f"{e.code().name}: {e.details()}"[:200]
                    errors[key] = errors.get(key, 0) + 1
                    await asyncio.sleep(0.01)
                    continue
                calls += 1
                if sent >= start:
                    latencies.append(time.perf_counter() - sent)
                    if stream:
                        ttfbs.append(ttfb)

        for channel in opened:
            await asyncio.wait_for(channel.channel_ready(), timeout=10)
        began = time.perf_counter()
        await asyncio.gather(*(worker(stubs[i % channels]) for i in range(concurrency)))
        if requests:  # the run took what it took
            duration = max(1e-9, time.perf_counter() - max(began, start))
    finally:
        for channel in opened:
            await channel.close()

    done = len(latencies)
    common: dict[str, float | int | str] = {
        "calls": calls,
        "errors": sum(errors.values()),
        "error_kinds": json.dumps(errors),
    }
    if stream:
        return {
            "streams": done,
            "streams_per_s": round(done / duration, 1),
            "ttfb_p50_ms": _ms(ttfbs, 50),
            "ttfb_p99_ms": _ms(ttfbs, 99),
            "total_p50_ms": _ms(latencies, 50),
            "total_p99_ms": _ms(latencies, 99),
            **common,
        }
    return {
        "requests": done,
        "rps": round(done / duration, 1),
        "p50_ms": _ms(latencies, 50),
        "p90_ms": _ms(latencies, 90),
        "p99_ms": _ms(latencies, 99),
        **common,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", required=True, help="host:port of the gateway's gRPC server")
    ap.add_argument("--model", default="bench-model")
    ap.add_argument("--concurrency", "-c", type=int, default=1)
    ap.add_argument("--duration", "-d", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=0.0, help="seconds run but not counted first")
    ap.add_argument("--stream", action="store_true", help="call StreamChatCompletion instead")
    ap.add_argument("--requests", type=int, default=0, help="stop after this many calls in all")
    ap.add_argument("--stream-every", type=int, default=0, help="every K-th call is a stream")
    ap.add_argument("--channels", type=int, default=1, help="connections the callers share")
    args = ap.parse_args()
    coro = run(args.target, args.model, args.concurrency, args.duration, args.warmup, args.stream,
               args.requests, args.stream_every, args.channels)
    print("GRPC_RESULT " + json.dumps(asyncio.run(coro)), flush=True)


if __name__ == "__main__":
    main()
