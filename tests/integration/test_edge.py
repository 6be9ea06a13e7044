"""The gateway's HTTP server (gateway/edge) on real sockets: a client that reads nothing
holds its stream's sender back as plain Hypercorn does; on Hypercorn or h11 versions other
than the pinned ones it serves with plain Hypercorn and says so once; and a gateway process
that served every kind of route leaves every Hypercorn and h11 module and class as shipped."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import hypercorn.asyncio
import pytest
from hypercorn.config import Config

from gateway import asgi, edge
from tests.conftest import ROOT

CHUNK = b"data: " + b"x" * 1000 + b"\n\n"
LIMIT = 64 << 20  # the producer stops here: what an unpaced stream would reach at once


class Producer:
    """An SSE route that sends chunks as fast as its ``send`` lets it (through the chunks
    extension where there is one), counting the bytes it got rid of."""

    def __init__(self) -> None:
        self.sent = 0
        self.extension_used = False
        self.measured = False  # then it stops: a closed transport takes writes (and logs
        # a warning for each) without raising, so it would go on to LIMIT

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        extension = scope["extensions"].get(asgi.CHUNKS_EXTENSION)
        self.extension_used = extension is not None
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        try:
            while self.sent < LIMIT and not self.measured:
                if extension is not None:
                    await extension["send"](send, CHUNK)
                else:
                    await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
                self.sent += len(CHUNK)
            await send({"type": "http.response.body", "body": b""})
        except (OSError, asyncio.CancelledError):
            pass


Serve = Callable[..., Awaitable[None]]


@asynccontextmanager
async def serving(app: Any, serve: Serve, **kwargs: Any) -> AsyncIterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]
    config.accesslog = config.errorlog = None
    config.graceful_timeout = 1
    stop = asyncio.Event()
    task = asyncio.ensure_future(serve(app, config, shutdown_trigger=stop.wait, **kwargs))
    try:
        yield port
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def unread_stream(serve: Serve) -> tuple[int, bool]:
    """Bytes a stream's route got rid of while its client read nothing for 2 s."""
    app = Producer()
    async with serving(app, serve) as port:
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
            client.sendall(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.sleep(2)
            sent = app.sent
            app.measured = True
    return sent, app.extension_used


async def test_a_client_that_reads_nothing_holds_its_stream_back() -> None:
    ours, extension = await unread_stream(edge.serve)
    plain, _ = await unread_stream(hypercorn.asyncio.serve)
    assert extension  # the route wrote past Hypercorn's dispatch, and was still paced
    assert plain < 16 << 20  # the kernel's buffers and the transport's high-water mark
    assert ours <= plain + (1 << 20), (ours, plain)


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b"extension" if asgi.CHUNKS_EXTENSION in scope["extensions"] else b"plain"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def test_other_versions_serve_with_plain_hypercorn_and_say_so_once(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.edge")
    async with serving(hello, edge.serve) as port:
        assert (await get(port)).endswith(b"\r\n\r\nextension")
    assert not caplog.records
    installed = {**edge.PINNED, "hypercorn": "0.19.0"}
    async with serving(hello, edge.serve, installed=installed) as port:
        assert (await get(port)).endswith(b"\r\n\r\nplain")
        assert (await get(port)).endswith(b"\r\n\r\nplain")
    assert [r.getMessage() for r in caplog.records] == [
        "HTTP server: hypercorn 0.19.0 (pinned 0.18.0); serving with plain Hypercorn "
        "(correct, slower)"]
    assert edge.version_mismatch() == ""  # the environment has the pinned versions


SNAPSHOT = textwrap.dedent('''
    """Serve chat, streams and the other routes in this process, then compare every
    attribute of every hypercorn and h11 module and class with what was imported."""
    import asyncio, importlib, json, pkgutil, sys

    import h11, hypercorn

    def modules():
        found = {}
        for package in (hypercorn, h11):
            found[package.__name__] = package
            for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
                try:
                    found[info.name] = importlib.import_module(info.name)
                except ImportError:
                    pass  # optional parts (trio, aioquic, uvloop workers)
        return found

    def snapshot():
        seen = {}
        for name, module in modules().items():
            seen[name] = dict(vars(module))
            for attr, value in vars(module).items():
                if isinstance(value, type) and value.__module__ == name:
                    seen[f"{name}.{attr}"] = dict(vars(value))
        return seen

    before = snapshot()

    async def main():
        import aiohttp
        from gateway.app import Gateway
        from gateway.config import load_settings
        settings = load_settings(None, env={"ADDR": "127.0.0.1:0",
                                            "GRPC_ADDR": "127.0.0.1:0"})
        async with Gateway(settings) as gw:
            base = f"http://127.0.0.1:{gw.http_port}"
            chat = {"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]}
            async with aiohttp.ClientSession() as s:
                for method, path, body in (
                        ("POST", "/v1/chat/completions", chat),
                        ("POST", "/v1/chat/completions", {**chat, "stream": True}),
                        ("POST", "/v1/responses", {"model": "mock-1", "input": "hi"}),
                        ("POST", "/v1/responses", {"model": "mock-1", "input": "hi",
                                                   "stream": True}),
                        ("POST", "/v1/embeddings", {"model": "mock-1", "input": "hi"}),
                        ("GET", "/v1/models", None), ("GET", "/v1/usage", None),
                        ("GET", "/health", None), ("GET", "/ready", None),
                        ("GET", "/metrics", None), ("GET", "/openapi.json", None),
                        ("GET", "/admin/providers", None), ("GET", "/nowhere", None)):
                    async with s.request(method, base + path, json=body) as r:
                        await r.read()
                        print(method, path, r.status, file=sys.stderr)

    asyncio.run(main())
    after = snapshot()
    changed = sorted(f"{name}.{attr}" for name, old in before.items()
                     for attr in old.keys() | after[name].keys()
                     if old.get(attr) is not after[name].get(attr))
    print(json.dumps(changed))
''')


def test_a_serving_process_leaves_hypercorn_and_h11_as_shipped() -> None:
    result = subprocess.run([sys.executable, "-c", SNAPSHOT], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "POST /v1/chat/completions 200" in result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout
