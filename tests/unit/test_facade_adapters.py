"""The two adapters that serve the facade's handlers (gateway/facade/hot.py, the lean ASGI
path, and gateway/facade/app.py ``quart_app``) give the same answers for the same
routes: path parameters (one segment, or a path), bodies and their limit, query strings,
joined ``X-Forwarded-For`` lines, errors in the route family's shape, a bug's bare 500,
wrong methods, and streams with their tail, closed at the end. Plain ASGI calls, no server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import orjson
import pytest

from gateway.asgi import ASGIApp, Message
from gateway.facade.app import quart_app
from gateway.facade.errors import ApiError
from gateway.facade.exchange import Answer, Request, Route, StreamAnswer
from gateway.facade.hot import HotRoutes

MAX_BODY = 1024


async def echo(request: Request) -> Answer:
    return Answer(200, orjson.dumps({
        "method": request.method, "params": dict(request.params), "body": request.body.decode(),
        "forwarded": request.headers.get("x-forwarded-for"), "client": request.client,
        "remove": request.args("remove")}), {"X-Request-ID": request.request_id})


async def fixed(request: Request) -> Answer:
    return Answer(200, b'{"status":"ok"}')


async def refuse(request: Request) -> Answer:
    raise ApiError(429, "slow down", type="rate_limit_error", retry_after="2")


async def broken(request: Request) -> Answer:
    raise RuntimeError("a bug")


class Events:
    def __init__(self) -> None:
        self.left = [b"data: 1\n\n", b"data: 2\n\n"]
        self.tail: bytes | None = None
        self.closed = False

    def __aiter__(self) -> Events:
        return self

    async def __anext__(self) -> bytes:
        if self.left:
            return self.left.pop(0)
        self.tail = b"data: [DONE]\n\n"
        raise StopAsyncIteration

    def close(self) -> None:
        self.closed = True


STREAMS: list[Events] = []


async def stream(request: Request) -> StreamAnswer:
    STREAMS.append(Events())
    return StreamAnswer({"X-Request-ID": request.request_id}, STREAMS[-1])


def shout(error: ApiError, request_id: str) -> Answer:
    """Another API's error shape (as Anthropic's will be)."""
    return Answer(error.status, orjson.dumps({"type": "error", "error": {
        "message": error.message}}), {"request-id": request_id})


ROUTES = (
    Route("POST", "/things/<thing>", echo),
    Route("PUT", "/things/<thing>", echo),
    Route("GET", "/files/<path:name>", echo),
    Route("GET", "/fixed", fixed),
    Route("GET", "/refuse", refuse),
    Route("GET", "/broken", broken),
    Route("POST", "/stream", stream),
    Route("GET", "/other", refuse, errors=shout),
)


def adapters() -> dict[str, ASGIApp]:
    quart: Any = quart_app(ROUTES, max_body=MAX_BODY, body_timeout=5)
    lean = HotRoutes(quart_app((), max_body=MAX_BODY, body_timeout=5),  # type: ignore[arg-type]
                     [replace(route, lean=True) for route in ROUTES], max_body=MAX_BODY,
                     body_timeout=5)
    return {"quart": quart, "lean": lean}


async def call(app: ASGIApp, method: str, path: str, *, body: bytes = b"",
               headers: Iterable[tuple[str, str]] = (), query: bytes = b""
               ) -> tuple[int, dict[str, str], bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": query, "root_path": "", "client": ("10.0.0.9", 5000),
             "server": ("127.0.0.1", 80), "extensions": {},
             "headers": [(k.lower().encode(), v.encode()) for k, v in
                         [*headers, ("content-length", str(len(body)))]]}
    sent = False
    never = asyncio.Event()
    messages: list[Message] = []

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await never.wait()  # the client stays until cancelled
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(message)

    await asyncio.wait_for(app(scope, receive, send), 5)
    start, *rest = messages
    return (start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]},
            b"".join(m.get("body", b"") for m in rest))


CASES = [
    ("POST", "/things/a", b"hello", [("X-Forwarded-For", "1.1.1.1"),
                                     ("X-Forwarded-For", "2.2.2.2")], b"remove=x&remove=y"),
    ("PUT", "/things/b", b"", [], b""),
    ("GET", "/files/a/b/c.txt", b"", [], b""),
    ("GET", "/things/a", b"", [], b""),  # 405
    ("POST", "/things/a", b"x" * (MAX_BODY + 1), [], b""),  # 413
    ("GET", "/refuse", b"", [], b""),
    ("GET", "/broken", b"", [], b""),
    ("GET", "/other", b"", [], b""),
    ("POST", "/stream", b"{}", [], b""),
]
COMPARED = ("x-request-id", "request-id", "retry-after", "cache-control")


@pytest.mark.parametrize(("method", "path", "body", "headers", "query"), CASES)
async def test_both_adapters_answer_alike(method: str, path: str, body: bytes,
                                          headers: list[tuple[str, str]], query: bytes,
                                          caplog: pytest.LogCaptureFixture) -> None:
    answers = {}
    for name, app in adapters().items():
        status, got, content = await call(app, method, path, body=body, query=query,
                                          headers=[("X-Request-ID", "req-1"), *headers])
        kept = {k: v for k, v in got.items() if k in COMPARED}
        answers[name] = (status, got["content-type"].split(";")[0], kept, content)
    assert answers["lean"] == answers["quart"]
    if path == "/broken":
        assert answers["lean"][0] == 500 and b"a bug" not in answers["lean"][3]
        assert "a bug" in caplog.text  # the log has it


async def test_what_the_handlers_saw_and_sent() -> None:
    lean = adapters()["lean"]
    status, _, content = await call(lean, "POST", "/things/a", body=b"hi", query=b"remove=x",
                                    headers=[("X-Forwarded-For", "1.1.1.1"),
                                             ("X-Forwarded-For", "2.2.2.2")])
    assert status == 200 and orjson.loads(content) == {
        "method": "POST", "params": {"thing": "a"}, "body": "hi", "client": "10.0.0.9",
        "forwarded": "1.1.1.1, 2.2.2.2", "remove": ["x"]}
    status, headers, content = await call(lean, "GET", "/things/a")
    assert status == 405 and headers["allow"] == "POST, PUT"
    status, headers, content = await call(lean, "HEAD", "/fixed")
    assert status == 200 and content == b"" and headers["content-length"] == "15"
    status, headers, content = await call(lean, "GET", "/other")
    assert status == 429 and orjson.loads(content)["type"] == "error" and headers["request-id"]
    STREAMS.clear()
    status, headers, content = await call(lean, "POST", "/stream")
    assert content == b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n"
    assert headers["content-type"] == "text/event-stream" and STREAMS[0].closed


async def test_the_lean_path_passes_other_paths_on() -> None:
    lean = adapters()["lean"]
    status, _, content = await call(lean, "GET", "/nowhere")
    assert status == 404 and orjson.loads(content)["error"]["message"] == "Unknown path."


def test_a_path_is_lean_or_not_for_every_method() -> None:
    with pytest.raises(ValueError, match="/things/<thing>"):
        HotRoutes(echo, [replace(ROUTES[0], lean=True), ROUTES[1]],  # type: ignore[arg-type]
                  max_body=MAX_BODY, body_timeout=5)
