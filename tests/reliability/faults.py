"""Fault injectors for tests under load: an upstream whose misbehaviour can be switched
while traffic flows, outages of the real Redis and PostgreSQL servers, and a readiness
watcher that keeps what ``/ready`` said and when.

Example::

    with FaultyOpenAI() as upstream:
        upstream.set("storm")          # every chat and embeddings request gets a 5xx
        upstream.set("cut", share=0.3)  # 30% of streams are cut after their first byte
        upstream.set("ok")
    async with outage(redis_server):   # stopped on entry, started on the same port on exit
        ...
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import orjson
from aiohttp import web

from tests.fakes.openai import FakeOpenAI, completion, openai_error, stream_events
from tests.fakes.server import Recorded, Reply

__all__ = ["MODES", "FaultyOpenAI", "ReadinessWatch", "Restartable", "outage"]

MODES = ("ok", "storm", "slow", "reset", "garbage", "cut")
GARBAGE = b"\x00\xff<html>502 Bad Gateway</html> not json {"


class FaultyOpenAI(FakeOpenAI):
    """The fake OpenAI with a fault mode applied to a share of chat and embeddings requests.

    ``storm``: 500/503 in OpenAI's error shape. ``slow``: the answer waits ``slow_delay``
    seconds. ``reset``: the connection is dropped before any answer. ``garbage``: 200 with
    a body (or SSE events) that is not JSON. ``cut``: a stream ends after its first two
    events without a terminator, a unary body is cut short of its Content-Length.

    Requests are counted by ``(mode, path)`` in :attr:`answered` and, unless ``keep`` is
    true, not kept in :attr:`requests` (a soak sends too many).
    """

    def __init__(self, *, slow_delay: float = 5.0, keep: bool = False, seed: int = 0):
        super().__init__()
        self.slow_delay = slow_delay
        self.keep = keep
        self.mode = "ok"
        self.share = 1.0
        self.answered: Counter[tuple[str, str]] = Counter()
        self._rng = random.Random(seed)

    def __enter__(self) -> FaultyOpenAI:
        self.start()
        return self

    def set(self, mode: str, share: float = 1.0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}")
        self.mode, self.share = mode, share

    def faulted(self) -> int:
        return sum(n for (mode, _), n in self.answered.items() if mode != "ok")

    async def record(self, request: web.Request) -> Recorded:
        recorded = Recorded(request.method, request.path, dict(request.query),
                            dict(request.headers), await request.read())
        if self.keep:
            self.requests.append(recorded)
        return recorded

    def _pick(self) -> str:
        mode = self.mode
        if mode != "ok" and self.share < 1.0 and self._rng.random() >= self.share:
            return "ok"
        return mode

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._faulty(request, super().chat)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._faulty(request, super().embeddings)

    async def _faulty(self, request: web.Request, normal: Any) -> web.StreamResponse:
        mode = self._pick()
        self.answered[(mode, request.path)] += 1
        if mode == "ok":
            return await normal(request)  # type: ignore[no-any-return]
        if mode == "slow":
            await asyncio.sleep(self.slow_delay)
            return await normal(request)  # type: ignore[no-any-return]
        body = (await self.record(request)).json
        stream = bool(body.get("stream"))
        model = str(body.get("model", "m"))
        if mode == "storm":
            status = self._rng.choice((500, 503))
            return await self.play(request, openai_error(status, "overloaded, try again",
                                                         "server_error"))
        if mode == "reset":
            return await self.play(request, Reply(reset=True))
        if mode == "garbage":
            if stream:
                return await self.play(request, Reply(events=["{not json", "[DONE]"]))
            return await self.play(request, Reply(body=GARBAGE))
        # cut
        if stream:
            events = stream_events(model, ["Hello", " from", " fake-openai"], False)
            return await self.play(request, Reply(events=events, cut_after=2))
        return await self._cut_body(request, orjson.dumps(completion(model)))

    async def _cut_body(self, request: web.Request, whole: bytes) -> web.StreamResponse:
        """Announce the whole body, send half of it, close the connection."""
        response = web.StreamResponse(status=200, headers={
            "Content-Type": "application/json", "Content-Length": str(len(whole))})
        await response.prepare(request)
        await response.write(whole[:len(whole) // 2])
        await self.cut(request)
        return response


class Restartable(Protocol):
    def stop(self) -> None: ...
    def start(self) -> Any: ...


@asynccontextmanager
async def outage(server: Restartable) -> AsyncIterator[float]:
    """Stop ``server`` on entry, start it again on exit (same port, same data); yields,
    once it is down, when it began to stop. The blocking stop and start run in threads:
    the load keeps flowing."""
    began = time.monotonic()
    await asyncio.to_thread(server.stop)
    try:
        yield began
    finally:
        await asyncio.to_thread(server.start)


@dataclass
class ReadinessWatch:
    """Polls ``/ready`` every ``interval`` seconds while running; keeps every answer."""

    base_url: str
    interval: float = 0.2
    seen: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not stop.is_set():
                at = time.monotonic()
                try:
                    async with session.get(self.base_url + "/ready") as r:
                        body = await r.json(content_type=None)
                        self.seen.append((at, r.status, body if isinstance(body, dict) else {}))
                except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                    self.seen.append((at, 0, {"error": type(exc).__name__}))
                try:
                    await asyncio.wait_for(stop.wait(), self.interval)
                except TimeoutError:
                    pass

    def between(self, t0: float, t1: float) -> list[tuple[float, int, dict[str, Any]]]:
        return [s for s in self.seen if t0 <= s[0] < t1]

    def first(self, status: int, after: float) -> float | None:
        """When ``/ready`` first answered ``status`` at or after ``after``."""
        return next((at for at, code, _ in self.seen if at >= after and code == status), None)
