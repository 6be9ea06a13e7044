"""A lean HTTP/1.1 client for calls to upstream providers: :class:`HttpClient`.

Every chat, embedding and stream goes out through it, so it is on the hot path of every
request: one ``transport.write`` per request (head and body together), the response head
parsed once into a case-insensitive mapping, the body framed by ``Content-Length``, chunked
encoding or the connection's end, and keep-alive connections pooled per origin. It does
what the gateway needs and no more (no cookies, redirects, proxies or multipart); the
general-purpose client it replaced cost 0.14-0.21 ms of CPU per call against 0.03-0.04 ms
for this one (docs/performance.md).

Failures are typed so the provider layer can classify them: :class:`ConnectError` (could
not connect), :class:`ResponseCut` (the connection ended inside a response),
:class:`ProtocolError` (not HTTP/1.1 as we know it) and :class:`RequestRefused` (a header
we will not send); timeouts raise :class:`TimeoutError`. Nothing is sent twice: a request
that fails on a reused keep-alive connection may have reached the upstream (and been
billed), so whether to try again is the retry policy's decision, not the transport's. Idle
connections are dropped after 30 s, before the usual server keep-alive ends, which makes
that race rare.

Example::

    client = HttpClient(max_connections=100)
    async with client.request("POST", "https://api.openai.com/v1/chat/completions",
                              {"Authorization": "Bearer ..."}, body, timeout=60) as response:
        data = await response.read()
    await client.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["ConnectError", "HttpClient", "HttpClientError", "ProtocolError", "RequestRefused",
           "Response", "ResponseCut"]

MAX_HEAD = 64 * 1024  # a response head larger than this is not a provider's
READ_HIGH_WATER = 256 * 1024  # stop reading the socket while this much is unconsumed
KEEPALIVE = 30.0  # seconds an idle connection is kept for reuse
USER_AGENT = "llm-gateway"


class HttpClientError(Exception):
    """A transport failure talking to an upstream."""


class ConnectError(HttpClientError):
    """No connection could be made (refused, unreachable, DNS, TLS handshake)."""


class ResponseCut(HttpClientError):
    """The connection ended before the response was complete."""


class ProtocolError(HttpClientError):
    """The upstream did not speak HTTP/1.1 as expected."""


class RequestRefused(HttpClientError):
    """A request the client will not send (a header with a line break, say)."""


class _Connection(asyncio.Protocol):
    """One socket: bytes in a buffer, a waiter woken when more arrive or the socket ends."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.ended = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > READ_HIGH_WATER and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # reading
    async def more(self, deadline: float) -> bool:
        """Wait for more bytes; False when the connection has ended instead."""
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        if self.ended:
            return False
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_at(deadline, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        return bool(self.buffer) or not self.ended

    def take(self, n: int | None = None) -> bytes:
        buffer = self.buffer
        if n is None or n >= len(buffer):
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:n])
            del buffer[:n]
        if self._paused and len(buffer) <= READ_HIGH_WATER and self.transport is not None:
            # Read again, so a connection back in the pool notices when its server closes.
            self._paused = False
            self.transport.resume_reading()
        return data

    # life
    def usable(self, now: float) -> bool:
        return (not self.ended and not self.buffer and self.transport is not None
                and not self.transport.is_closing() and now - self.idle_since < KEEPALIVE)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.ended = True


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


# Where chunked decoding is: a size line next, chunk data, the CRLF after it, trailers.
_SIZE, _DATA, _DATA_END, _TRAILERS = range(4)


class Response:
    """A response whose body is read as it arrives: :meth:`read`, or ``async for`` chunks."""

    __slots__ = ("status", "headers", "_conn", "_deadline", "_framing", "_left", "_done",
                 "_inflate", "_keep_alive", "_body", "_chunk_state")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], conn: _Connection,
                 deadline: float, framing: str, length: int, keep_alive: bool) -> None:
        self.status = status
        self.headers = headers
        self._conn = conn
        self._deadline = deadline
        self._framing = framing  # "length", "chunked" or "close"
        self._left = length
        self._done = framing == "length" and length == 0
        self._keep_alive = keep_alive
        self._body: AsyncIterator[bytes] | None = None  # one reader of the body, resumable
        self._chunk_state = _SIZE
        encoding = headers.get("content-encoding", "").strip().lower()
        self._inflate = (zlib.decompressobj(zlib.MAX_WBITS | 32)
                         if encoding in ("gzip", "x-gzip", "deflate") else None)

    @property
    def reusable(self) -> bool:
        """Read to its end on a connection the server keeps open."""
        return self._done and self._keep_alive

    async def read(self) -> bytes:
        """The whole body."""
        conn = self._conn
        if (self._framing == "length" and self._inflate is None and not self._done
                and len(conn.buffer) >= self._left):  # the usual case: it came with the head
            data = conn.take(self._left)
            self._left, self._done = 0, True
            return data
        parts = [chunk async for chunk in self]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def finish(self, within: float = 0.05, limit: int = 64 * 1024) -> None:
        """Read what is left of a body whose content the caller no longer needs (a stream's
        framing after its last event), so the connection can be reused. Gives up quietly
        after ``within`` seconds or ``limit`` bytes; the connection is then closed instead.
        """
        if self._done:
            return
        self._deadline = min(self._deadline, asyncio.get_running_loop().time() + within)
        seen = 0
        with contextlib.suppress(HttpClientError, TimeoutError):
            async for data in self:  # on from where the caller stopped reading
                seen += len(data)
                if seen > limit:
                    return

    def __aiter__(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (decoded from chunked and gzip framing); every
        ``async for`` goes on from where the last one stopped."""
        if self._body is None:
            self._body = self._decoded()
        return self._body

    async def _decoded(self) -> AsyncIterator[bytes]:
        inflate = self._inflate
        async for raw in self._raw():
            if inflate is None:
                yield raw
                continue
            try:
                data = inflate.decompress(raw)
            except zlib.error:
                raise ProtocolError("the response body could not be decompressed") from None
            if data:
                yield data
        if inflate is not None and (tail := inflate.flush()):
            yield tail

    async def _raw(self) -> AsyncIterator[bytes]:
        if self._done:
            return
        if self._framing == "length":
            async for data in self._sized():
                yield data
        elif self._framing == "chunked":
            async for data in self._chunked():
                yield data
        else:
            async for data in self._until_close():
                yield data
        self._done = True

    async def _sized(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while self._left > 0:
            if not conn.buffer and not await conn.more(self._deadline):
                raise ResponseCut("the connection ended inside the response body")
            data = conn.take(self._left)
            self._left -= len(data)
            yield data

    async def _until_close(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            if conn.buffer:
                yield conn.take()
            elif not await conn.more(self._deadline):
                return

    async def _chunked(self) -> AsyncIterator[bytes]:
        """Chunked framing. Whatever has arrived is decoded and handed over as one piece: a
        stream's events reach the caller as they arrive, once per read, not once per chunk
        (nothing waits for more than is there)."""
        out: list[bytes] = []
        while True:
            done = self._decode_chunks(out)
            if out:
                data = out[0] if len(out) == 1 else b"".join(out)
                out.clear()
                yield data
                if not done:
                    continue  # decode what came in meanwhile before waiting for more
            if done:
                return
            if not await self._conn.more(self._deadline):
                raise ResponseCut("the connection ended inside a chunked body")

    def _decode_chunks(self, out: list[bytes]) -> bool:
        """Decode the buffered bytes into ``out``; True once the body's end was read."""
        conn = self._conn
        buffer = conn.buffer
        while True:
            if self._chunk_state == _DATA:
                if not buffer:
                    return False
                data = conn.take(self._left)
                self._left -= len(data)
                out.append(data)
                if self._left == 0:
                    self._chunk_state = _DATA_END
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise ProtocolError("a chunked body's size line is too long")
                return False
            line = conn.take(end + 2)[:-2]
            if self._chunk_state == _SIZE:
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ProtocolError("a chunked body has a bad chunk size") from None
                if size < 0:
                    raise ProtocolError("a chunked body has a bad chunk size")
                self._chunk_state, self._left = (_DATA, size) if size else (_TRAILERS, 0)
            elif self._chunk_state == _DATA_END:
                if line:
                    raise ProtocolError("a chunk did not end where its size said")
                self._chunk_state = _SIZE
            elif not line:  # _TRAILERS: up to the empty line
                return True


class _Pool:
    """Keep-alive connections to one origin, at most ``limit`` open at once."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None, limit: int) -> None:
        self.host, self.port, self.tls, self.limit = host, port, tls, limit
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def acquire(self, deadline: float) -> _Connection:
        """A connection, waiting for one to be free when ``limit`` are open (``deadline``
        on the loop's clock bounds the wait and the connect)."""
        loop = asyncio.get_running_loop()
        while True:
            now = time.monotonic()
            while self._idle:
                conn = self._idle.pop()  # the most recently used: the least likely closed
                if conn.usable(now):
                    return conn
                self._discard(conn)
            if self._open < self.limit:
                break
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass on the turn we were given
                raise
        self._open += 1
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop), self.host, self.port, ssl=self.tls,
                    server_hostname=self.host if self.tls else None)
        except BaseException as exc:
            self._open -= 1
            self._wake_one()
            if isinstance(exc, OSError | ssl.SSLError):
                raise ConnectError(str(exc) or type(exc).__name__) from None
            raise
        return conn

    def release(self, conn: _Connection, reuse: bool) -> None:
        if reuse and not conn.ended and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            self._discard(conn)
        self._wake_one()

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open -= 1

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        self._closed = True  # connections in use close when they are released
        for conn in self._idle:
            conn.close()
        self._open -= len(self._idle)
        self._idle.clear()


class HttpClient:
    """Pooled HTTP/1.1 keep-alive connections, one pool per origin (scheme, host, port)."""

    def __init__(self, max_connections: int = 100) -> None:
        self._limit = max(1, max_connections)
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._tls: ssl.SSLContext | None = None

    def _pool(self, scheme: str, host: str, port: int) -> _Pool:
        pool = self._pools.get((scheme, host, port))
        if pool is None:
            tls = None
            if scheme == "https":
                if self._tls is None:
                    self._tls = ssl.create_default_context()
                tls = self._tls
            pool = self._pools[(scheme, host, port)] = _Pool(host, port, tls, self._limit)
        return pool

    @asynccontextmanager
    async def request(self, method: str, url: str, headers: Mapping[str, str],
                      body: bytes | None, *, timeout: float) -> AsyncIterator[Response]:
        """Send one request; the response's body is read inside the ``async with``. The
        connection goes back to the pool only when the body was read to its end."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise RequestRefused(f"not an http(s) URL: {scheme}://")
        port = parts.port or (443 if scheme == "https" else 80)
        pool = self._pool(scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = port == (443 if scheme == "https" else 80)
        host = parts.hostname if default_port else f"{parts.hostname}:{port}"
        if ":" in parts.hostname:  # IPv6 literal
            host = f"[{parts.hostname}]" if default_port else f"[{parts.hostname}]:{port}"
        wire = _encode(method, target, host, headers, body)
        deadline = asyncio.get_running_loop().time() + timeout
        conn = await pool.acquire(deadline)
        response: Response | None = None
        try:
            assert conn.transport is not None
            conn.transport.write(wire)
            response = await _read_head(conn, deadline, method)
            yield response
        finally:
            pool.release(conn, reuse=response is not None and response.reusable)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _encode(method: str, target: str, host: str, headers: Mapping[str, str],
            body: bytes | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    given = set()
    for name, value in headers.items():
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise RequestRefused(f"the header {name!r} cannot be sent: it holds a line break")
        given.add(name.lower())
        lines.append(f"{name}: {value}")
    if "user-agent" not in given:
        lines.append(f"User-Agent: {USER_AGENT}")
    if "accept-encoding" not in given:
        lines.append("Accept-Encoding: identity")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    lines.append("\r\n")
    try:
        head = "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        raise RequestRefused("a header holds characters HTTP/1.1 cannot carry") from None
    return head + body if body else head


async def _read_head(conn: _Connection, deadline: float, method: str) -> Response:
    while True:
        while (end := conn.buffer.find(b"\r\n\r\n")) < 0:
            if len(conn.buffer) > MAX_HEAD:
                raise ProtocolError("the response head is too large")
            if not await conn.more(deadline):
                raise ResponseCut("the connection ended before the response")
        head = conn.take(end + 4)[:-4].decode("latin-1")
        status_line, _, rest = head.partition("\r\n")
        version, _, status_text = status_line.partition(" ")
        try:
            status = int(status_text[:3])
        except ValueError:
            raise ProtocolError("the response has no status code") from None
        if not version.startswith("HTTP/1."):
            raise ProtocolError("the response is not HTTP/1.x")
        if 100 <= status < 200 and status != 101:
            continue  # 100 Continue, 103 Early Hints: the answer follows
        break
    headers: CIMultiDict[str] = CIMultiDict()
    for line in rest.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers.add(name.strip(), value.strip())
    keep_alive = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if method == "HEAD" or status in (204, 304):
        framing, length = "length", 0
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        framing, length = "chunked", 0
    elif (text := headers.get("content-length")) is not None:
        try:
            length = int(text)
        except ValueError:
            raise ProtocolError("the response has a bad Content-Length") from None
        if length < 0:
            raise ProtocolError("the response has a bad Content-Length")
        framing = "length"
    else:
        framing, length, keep_alive = "close", 0, False
    return Response(status, CIMultiDictProxy(headers), conn, deadline, framing, length,
                    keep_alive)
