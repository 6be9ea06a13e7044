"""A threaded aiohttp server base for fake upstreams: start on a free port, record
every request, replay scripted replies.

Example::

    with FakeOpenAI() as fake:
        fake.enqueue(Reply(status=429, json={...}, headers={"Retry-After": "1"}))
        ...
        fake.requests[-1].json["model"]
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Reply:
    """A scripted answer. ``events`` are SSE ``data`` payloads (dicts or raw strings);
    ``lines`` are NDJSON lines; ``cut_after`` drops the connection after that many
    events; ``delay`` waits before answering; ``gap`` waits between stream events;
    ``reset`` drops the connection without answering at all; ``hold``: the stream stops
    before event ``hold_at`` until the test sets it (what a client shows mid-stream)."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[Any] | None = None
    lines: list[Any] | None = None
    cut_after: int | None = None
    delay: float = 0.0
    gap: float = 0.0
    reset: bool = False
    hold: threading.Event | None = None
    hold_at: int = 1


class FakeServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.replies: deque[Reply] = deque()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def enqueue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def reset(self) -> None:
        self.requests.clear()
        self.replies.clear()

    async def record(self, request: web.Request) -> Recorded:
        recorded = Recorded(request.method, request.path, dict(request.query),
                            dict(request.headers), await request.read())
        self.requests.append(recorded)
        return recorded

    async def play(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.reset:
            assert request.transport is not None
            request.transport.abort()
            return web.Response()  # never sent: the connection is gone
        if reply.events is None and reply.lines is None:
            body = reply.body if reply.body is not None else orjson.dumps(reply.json)
            return web.Response(status=reply.status, body=body, headers={
                "Content-Type": "application/json", **reply.headers})
        sse = reply.events is not None
        response = web.StreamResponse(status=reply.status, headers={
            "Content-Type": "text/event-stream" if sse else "application/x-ndjson",
            **reply.headers})
        await response.prepare(request)
        items = reply.events if sse else reply.lines
        for i, item in enumerate(items or ()):
            if reply.cut_after is not None and i >= reply.cut_after:
                await self.cut(request)
                return response
            if i and reply.gap:
                await asyncio.sleep(reply.gap)
            if reply.hold is not None and i == reply.hold_at:
                await asyncio.to_thread(reply.hold.wait, 60)
            data = item if isinstance(item, str) else orjson.dumps(item).decode()
            await response.write((f"data: {data}\n\n" if sse else f"{data}\n").encode())
        await response.write_eof()
        return response

    async def cut(self, request: web.Request) -> None:
        """End a stream mid-way: no terminator, the connection closed.

        The pause lets what was sent arrive on its own, as when a real upstream dies
        mid-stream (bytes arriving in the same read as the cut may be discarded by the
        client's HTTP parser, which would make tests flaky).
        """
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.close()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        # An event, not loop.stop(): a stop() right after start() must not be lost.
        self._stopping = asyncio.Event()
        self._ready.set()
        await self._stopping.wait()
        await self._runner.cleanup()

    def start(self) -> FakeServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake upstream did not start")
        return self

    def stop(self) -> None:
        """Take the server down (its port then refuses connections); idempotent."""
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
