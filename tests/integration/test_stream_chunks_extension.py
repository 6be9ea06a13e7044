"""A streamed body's chunks sent through the gateway HTTP server's chunks extension
(gateway/asgi.py ``CHUNKS_EXTENSION``, served by gateway/edge, used by the chat route) reach a real
client on a real socket exactly as Hypercorn and h11 would have sent them: chunked framing
for HTTP/1.1 on a kept-alive connection, raw bytes for an HTTP/1.0 client (whose
connection closes the body), and the extension frames them itself only where it can."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypercorn.config import Config
from hypercorn.protocol import http_stream

from gateway import asgi
from gateway.edge import serve

PARTS = (b"data: one\n\n", b"data: two\n\n", b"data: three\n\n")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] != "/s":  # a middleware between Hypercorn and the app
        await _wrapped(scope, receive, send, passes_through=scope["path"] == "/through")
        return
    chunks = scope["extensions"][asgi.CHUNKS_EXTENSION]["send"]
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    for part in PARTS:
        await chunks(send, part)
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


WRAPPER_SAW: list[bytes] = []


async def _wrapped(scope: dict[str, Any], receive: Any, send: Any, *,
                   passes_through: bool) -> None:
    async def wrapper_send(message: Any) -> None:
        if message["type"] == "http.response.body":
            WRAPPER_SAW.append(message["body"])
        await send(message)

    if passes_through:  # as the tracing middleware declares: bodies pass unchanged
        setattr(wrapper_send, asgi.BODY_PASSES_THROUGH, send)
    await app({**scope, "path": "/s"}, receive, wrapper_send)


@pytest.fixture
async def server() -> AsyncIterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]  # Hypercorn's to close
    config.accesslog = config.errorlog = None
    stop = asyncio.Event()
    serving = asyncio.ensure_future(serve(app, config, shutdown_trigger=stop.wait))
    try:
        yield port
    finally:
        stop.set()
        await asyncio.wait_for(serving, 10)


async def _exchange(port: int, request: bytes, until: bytes | None) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        if until is None:
            return await asyncio.wait_for(reader.read(), 5)  # the server closes the body
        return await asyncio.wait_for(reader.readuntil(until), 5)
    finally:
        writer.close()


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The bodies that went through Hypercorn's ASGI ``send`` rather than the extension."""
    through_hypercorn: list[bytes] = []
    original = http_stream.HTTPStream.app_send

    async def app_send(self: Any, message: Any) -> None:
        if message is not None and message["type"] == "http.response.body":
            through_hypercorn.append(message["body"])
        await original(self, message)

    monkeypatch.setattr(http_stream.HTTPStream, "app_send", app_send)
    return through_hypercorn


def _chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


async def test_http11_chunks_are_framed_as_h11_frames_them(
        server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    through_hypercorn = _counting(monkeypatch)
    answer = await _exchange(server, b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n", b"0\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
    assert body == _chunked(*PARTS, b"data: [DONE]\n\n")
    # The head went out at the start, so every chunk went straight to the connection; the
    # last body message ends the response through Hypercorn and h11.
    assert through_hypercorn == [b"data: [DONE]\n\n"]


async def test_a_kept_alive_connection_streams_its_next_response_the_same_way(
        server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    try:
        for _ in range(2):
            writer.write(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            body = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
            assert body == _chunked(*PARTS, b"data: [DONE]\n\n")
    finally:
        writer.close()


async def test_an_http10_client_gets_raw_bytes_and_the_extension_steps_aside(
        server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    through_hypercorn = _counting(monkeypatch)
    answer = await _exchange(server, b"GET /s HTTP/1.0\r\n\r\n", None)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding" not in head.lower()
    assert body == b"".join(PARTS) + b"data: [DONE]\n\n"
    assert through_hypercorn == [*PARTS, b"data: [DONE]\n\n"]


@pytest.mark.parametrize("path", ["/through", "/wrapped"])
async def test_a_middleware_that_lets_bodies_pass_is_stepped_past_and_others_are_not(
        server: int, path: str) -> None:
    WRAPPER_SAW.clear()
    request = b"GET %b HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode()
    answer = await _exchange(server, request, b"0\r\n\r\n")
    assert answer.partition(b"\r\n\r\n")[2] == _chunked(*PARTS, b"data: [DONE]\n\n")
    if path == "/through":
        assert WRAPPER_SAW == [b"data: [DONE]\n\n"]
    else:  # a middleware that may look at bodies sees every chunk
        assert WRAPPER_SAW == [*PARTS, b"data: [DONE]\n\n"]
