"""HttpClient against a raw asyncio server on 127.0.0.1 whose bytes each test scripts.

The server (:class:`Server`) runs one handler per accepted connection; the handler gets a
:class:`Peer` (read the next request, write exact bytes, wait for the client to leave), so
framing, timing and connection reuse are under the test's control byte for byte.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import pytest
from multidict import CIMultiDict

from gateway.providers.http_client import (
    READ_HIGH_WATER,
    ConnectError,
    HttpClient,
    ProtocolError,
    RequestRefused,
    Response,
    ResponseCut,
)

# --- the scripted server ---------------------------------------------------------------------


@dataclass
class Request:
    """One request as the server read it off the wire."""

    method: str
    target: str
    version: str
    headers: CIMultiDict[str]
    body: bytes


class Peer:
    """The server's end of one accepted connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.requests: list[Request] = []
        self.eof = asyncio.Event()  # set once the client closed its end

    async def request(self) -> Request | None:
        """The next request (head, then a Content-Length body); None when the client left."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            self.eof.set()
            return None
        request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ")
        headers: CIMultiDict[str] = CIMultiDict(
            (name, value) for name, _, value in (line.partition(": ") for line in lines))
        body = await self.reader.readexactly(int(headers.get("Content-Length", "0")))
        self.requests.append(request := Request(method, target, version, headers, body))
        return request

    async def send(self, *parts: bytes, pause: float = 0.0) -> None:
        """Write ``parts`` one at a time, ``pause`` seconds apart."""
        for i, part in enumerate(parts):
            if i and pause:
                await asyncio.sleep(pause)
            self.writer.write(part)
            await self.writer.drain()

    async def until_eof(self) -> None:
        """Say nothing until the client closes its end."""
        await self.reader.read()
        self.eof.set()


Handler = Callable[[Peer], Awaitable[None]]


def answer(*responses: bytes) -> Handler:
    """Answer the requests on a connection with ``responses`` in turn (the last one again
    and again) until the client leaves."""
    async def handler(peer: Peer) -> None:
        for i in itertools.count():
            if await peer.request() is None:
                return
            await peer.send(responses[min(i, len(responses) - 1)])
    return handler


class Server:
    """asyncio.start_server on 127.0.0.1:0; ``handler`` serves each accepted connection and
    the connection is closed when it returns."""

    def __init__(self) -> None:
        self.handler: Handler = answer(ok())
        self.peers: list[Peer] = []  # every accepted connection, in order
        self._tasks: set[asyncio.Task[None]] = set()
        self._errors: list[BaseException] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def requests(self) -> list[Request]:
        return [request for peer in self.peers for request in peer.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(reader, writer)
        self.peers.append(peer)
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await self.handler(peer)
        except Exception as exc:  # reported by close(), failing the test
            self._errors.append(exc)
        finally:
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()

    async def close(self) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        assert not self._errors, f"the server's handler failed: {self._errors!r}"


# --- helpers ---------------------------------------------------------------------------------


def raw(*lines: str, body: bytes = b"") -> bytes:
    """A response head from its lines (each ended by CRLF, then the blank line) and ``body``."""
    return "".join(f"{line}\r\n" for line in lines).encode("latin-1") + b"\r\n" + body


def ok(body: bytes = b"ok", *headers: str, version: str = "HTTP/1.1") -> bytes:
    return raw(f"{version} 200 OK", f"Content-Length: {len(body)}", *headers, body=body)


@asynccontextmanager
async def open_client(max_connections: int = 100) -> AsyncIterator[HttpClient]:
    client = HttpClient(max_connections=max_connections)
    try:
        yield client
    finally:
        await client.aclose()


async def fetch(client: HttpClient, url: str, method: str = "GET",
                headers: dict[str, str] | None = None, body: bytes | None = None,
                timeout: float = 2.0) -> tuple[Response, bytes]:
    """One request, its body read in full."""
    async with client.request(method, url, headers or {}, body, timeout=timeout) as response:
        return response, await response.read()


async def until(condition: Callable[[], object], timeout: float = 1.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    server = Server()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[HttpClient]:
    """A client closed before the server is (it depends on ``server`` for that order)."""
    async with open_client() as client:
        yield client


# --- framing ---------------------------------------------------------------------------------


async def test_content_length_response_and_the_request_on_the_wire(server: Server,
                                                                   client: HttpClient) -> None:
    server.handler = answer(ok(b"hello world", "X-Thing: yes"))
    response, body = await fetch(client, server.url("/v1/chat?stream=no"), "POST",
                                 {"Content-Type": "application/json"}, b'{"a": 1}')
    assert response.status == 200
    assert response.headers.get("X-Thing") == response.headers.get("x-thing") == "yes"
    assert body == b"hello world"

    [request] = server.requests
    assert (request.method, request.target, request.version) == (
        "POST", "/v1/chat?stream=no", "HTTP/1.1")
    assert dict(request.headers) == {
        "Host": f"127.0.0.1:{server.port}",
        "Content-Type": "application/json",
        "User-Agent": "llm-gateway",
        "Accept-Encoding": "identity",
        "Content-Length": "8",
    }
    assert request.body == b'{"a": 1}'


async def test_chunked_body_across_writes_with_extensions_and_trailers(
        server: Server, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;e",
                        b"xt=1\r\nhel", b"lo\r", b"\n6\r\n world\r", b"\n0\r\nX-Trailer: 1\r\n",
                        b"\r\n", pause=0.01)
        await answer(ok())(peer)

    server.handler = handler
    _, body = await fetch(client, server.url())
    assert body == b"hello world"
    _, body = await fetch(client, server.url())  # the trailers were consumed to the end
    assert body == b"ok"
    assert len(server.peers) == 1


async def test_chunked_body_streams_each_chunk_as_it_arrives(server: Server,
                                                             client: HttpClient) -> None:
    first_seen = asyncio.Event()

    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await first_seen.wait()  # the second chunk only once the client has the first
        await peer.send(b"6\r\nsecond\r\n0\r\n\r\n")
        await peer.until_eof()

    server.handler = handler
    async with asyncio.timeout(2), client.request("GET", server.url(), {}, None,
                                                  timeout=2) as response:
        chunks = aiter(response)
        assert await anext(chunks) == b"first"
        first_seen.set()
        assert [chunk async for chunk in chunks] == [b"second"]


async def test_body_framed_by_connection_close(server: Server, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\n\r\nuntil ", b"the end", pause=0.01)

    server.handler = handler  # returning closes the connection: the body's end
    _, body = await fetch(client, server.url())
    assert body == b"until the end"


async def test_gzip_body_is_decompressed(server: Server, client: HttpClient) -> None:
    text = b"a gzipped body " * 100
    server.handler = answer(ok(gzip.compress(text), "Content-Encoding: gzip"))
    _, body = await fetch(client, server.url())
    assert body == text


async def test_informational_responses_are_skipped(server: Server, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(raw("HTTP/1.1 100 Continue"),
                        raw("HTTP/1.1 103 Early Hints", "Link: </a.css>; rel=preload"),
                        ok(b"final"), pause=0.01)
        await peer.until_eof()

    server.handler = handler
    response, body = await fetch(client, server.url())
    assert (response.status, body) == (200, b"final")
    assert "Link" not in response.headers


@pytest.mark.parametrize(("method", "response"), [
    ("GET", raw("HTTP/1.1 204 No Content")),
    ("HEAD", raw("HTTP/1.1 200 OK", "Content-Length: 5")),
], ids=["204", "HEAD"])
async def test_no_body_for_204_and_head(server: Server, client: HttpClient, method: str,
                                        response: bytes) -> None:
    server.handler = answer(response)
    for _ in range(2):  # no body bytes awaited or left over: the connection is reused
        _, body = await fetch(client, server.url(), method, timeout=0.5)
        assert body == b""
    assert len(server.peers) == 1


# --- keep-alive ------------------------------------------------------------------------------


async def test_keep_alive_reuses_one_connection(server: Server, client: HttpClient) -> None:
    server.handler = answer(ok(b"one"), ok(b"two"))
    assert (await fetch(client, server.url("/1")))[1] == b"one"
    assert (await fetch(client, server.url("/2")))[1] == b"two"
    assert [len(peer.requests) for peer in server.peers] == [2]


@pytest.mark.parametrize("response", [
    ok(b"bye", "Connection: close"),
    ok(b"old", version="HTTP/1.0"),
], ids=["connection-close", "http-1.0"])
async def test_response_that_ends_keep_alive_is_not_reused(server: Server, client: HttpClient,
                                                           response: bytes) -> None:
    server.handler = answer(response)  # the server itself keeps the connection open
    for _ in range(2):
        await fetch(client, server.url())
    assert [len(peer.requests) for peer in server.peers] == [1, 1]
    await until(server.peers[0].eof.is_set)  # and the client closed the first one


async def test_unread_body_is_not_reused(server: Server, client: HttpClient) -> None:
    async with client.request("GET", server.url(), {}, None, timeout=2) as response:
        assert response.status == 200  # leave without reading the body
    await fetch(client, server.url())
    assert [len(peer.requests) for peer in server.peers] == [1, 1]
    await until(server.peers[0].eof.is_set)


async def test_finish_after_the_last_event_keeps_the_connection(server: Server,
                                                                client: HttpClient) -> None:
    """A stream's reader stops at its last event, before the chunked framing's end; finish()
    reads on from there (the framing's state intact), so the next call reuses the socket."""
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"6\r\nevent1\r\n6\r\nevent2\r\n", b"0\r\n\r\n", pause=0.01)
        await answer(ok())(peer)

    server.handler = handler
    async with client.request("GET", server.url(), {}, None, timeout=2) as response:
        async for data in response:
            if data.endswith(b"event2"):
                break  # the last event: the caller has what it needs
        await response.finish()
    _, body = await fetch(client, server.url())
    assert body == b"ok"
    assert len(server.peers) == 1


async def test_aclose_closes_idle_connections(server: Server, client: HttpClient) -> None:
    await fetch(client, server.url())
    assert not server.peers[0].eof.is_set()  # idle in the pool
    await client.aclose()
    await until(server.peers[0].eof.is_set)


async def test_connection_paused_for_backpressure_still_notices_server_close(
        server: Server, client: HttpClient) -> None:
    """A body over READ_HIGH_WATER pauses reading; the connection must read again once the
    body is taken, or back in the pool it never sees its server close (found by this test)."""
    head_taken = asyncio.Event()
    big = b"x" * (READ_HIGH_WATER + 1)  # the client's buffer passes the mark on the last byte

    async def big_then_close(peer: Peer) -> None:
        await peer.request()
        await peer.send(raw("HTTP/1.1 200 OK", f"Content-Length: {len(big)}"))
        await head_taken.wait()
        await peer.send(big)  # then close, as a server does when its keep-alive ends

    handlers = iter([big_then_close, answer(ok())])
    server.handler = lambda peer: next(handlers)(peer)
    async with client.request("GET", server.url(), {}, None, timeout=2) as response:
        head_taken.set()
        await asyncio.sleep(0.1)  # the whole body arrives before it is read
        assert await response.read() == big
    await asyncio.sleep(0.05)  # ample time to see the server's close

    _, body = await fetch(client, server.url())
    assert body == b"ok"
    assert len(server.peers) == 2


# --- failures --------------------------------------------------------------------------------


async def test_connection_refused_raises_connect_error(client: HttpClient) -> None:
    with socket.socket() as sock:  # bound, not listening: the port refuses connections
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(ConnectError):
            await fetch(client, f"http://127.0.0.1:{port}/")


async def test_close_before_any_response_raises_response_cut(server: Server,
                                                             client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()  # then close without a word

    server.handler = handler
    with pytest.raises(ResponseCut):
        await fetch(client, server.url())


async def test_body_shorter_than_content_length_raises_response_cut(
        server: Server, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(raw("HTTP/1.1 200 OK", "Content-Length: 10", body=b"hello"))

    server.handler = handler
    async with client.request("GET", server.url(), {}, None, timeout=2) as response:
        assert response.status == 200
        with pytest.raises(ResponseCut):
            await response.read()


@pytest.mark.parametrize("garbage", [b"garbage\r\n\r\n", b"HTTP/2 200\r\n\r\n"],
                         ids=["no-status-line", "http-2"])
async def test_garbage_instead_of_a_status_line_raises_protocol_error(
        server: Server, client: HttpClient, garbage: bytes) -> None:
    server.handler = answer(garbage)
    with pytest.raises(ProtocolError):
        await fetch(client, server.url())


async def test_header_with_a_line_break_is_refused_unsent(server: Server,
                                                         client: HttpClient) -> None:
    with pytest.raises(RequestRefused):
        await fetch(client, server.url(), headers={"X-Evil": "a\r\nInjected: 1"})
    await asyncio.sleep(0.05)
    assert server.peers == []  # not even a connection


async def test_silent_server_times_out(server: Server, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.until_eof()

    server.handler = handler
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError):
        await fetch(client, server.url(), timeout=0.3)
    assert 0.25 <= loop.time() - start < 1.0


# --- the pool limit --------------------------------------------------------------------------


async def test_pool_limit_runs_concurrent_requests_one_after_the_other(server: Server) -> None:
    log: list[str] = []

    async def handler(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            log.append(f"server got {request.target}")
            await peer.send(ok())

    async def get(client: HttpClient, path: str) -> None:
        async with client.request("GET", server.url(path), {}, None, timeout=2) as response:
            await asyncio.sleep(0.05)  # every chance for the other request to start
            assert await response.read() == b"ok"
        log.append(f"client done {path}")

    server.handler = handler
    async with open_client(max_connections=1) as client:
        await asyncio.gather(get(client, "/a"), get(client, "/b"))
    assert log == ["server got /a", "client done /a", "server got /b", "client done /b"]
    assert len(server.peers) == 1


async def test_pool_waiter_that_times_out_leaves_the_pool_usable(server: Server) -> None:
    release = asyncio.Event()

    async def handler(peer: Peer) -> None:
        await peer.request()
        await release.wait()
        await peer.send(ok(b"first"))
        await answer(ok(b"third"))(peer)

    server.handler = handler
    async with open_client(max_connections=1) as client:
        first = asyncio.create_task(fetch(client, server.url("/first")))
        await until(lambda: server.requests)  # the first request holds the only connection
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(TimeoutError):
            await fetch(client, server.url("/second"), timeout=0.2)
        assert loop.time() - start < 1.0
        release.set()
        assert (await first)[1] == b"first"
        assert (await fetch(client, server.url("/third")))[1] == b"third"
    assert [request.target for request in server.requests] == ["/first", "/third"]
    assert len(server.peers) == 1
