"""The hot routes: ``/v1/chat/completions`` and the liveness probe as lean ASGI handlers
in front of Quart.

Nearly all of a gateway's traffic is chat completions, and Quart's machinery per request
(a request object with werkzeug headers, two tasks and a wait, the routing map, context
locals, a response object) cost about a third of the REST path's CPU
(docs/performance.md). This handler does the same work with none of it: the request's
headers read once into a dict, the body read with the same size and time limits, the
same translation (:mod:`gateway.facade.translate`), the same call on the core
(:mod:`gateway.facade.calls`), the same errors (:class:`ApiError`), SSE written chunk by
chunk as it arrives (under ``gateway serve``, straight to the connection through
:data:`~gateway.hypercorn_patch.CHUNKS_EXTENSION`). The liveness probe (``/health``,
``/health/live``), which Kubernetes calls every few seconds on every replica, is a fixed
answer. Every other path goes on to Quart.

A client that goes away is noticed (Hypercorn queues ``http.disconnect``, and tells the
route so at once through :data:`~gateway.hypercorn_patch.DISCONNECT_EXTENSION`) and the
request's task is cancelled, so the core's call and the upstream's stop, as with Quart.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from grpc import aio
from llmgateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc

from gateway.asgi import CHUNKS_EXTENSION, DISCONNECT_EXTENSION
from gateway.clientip import TrustedProxies
from gateway.facade import translate
from gateway.facade.calls import (
    body_too_large,
    body_too_slow,
    client_timeout,
    core_metadata,
    limit_headers,
    request_id,
)
from gateway.facade.errors import ApiError, from_rpc_error

__all__ = ["CHAT_PATH", "LIVE_PATHS", "ROUTES", "HotRoutes"]

log = logging.getLogger("gateway.facade")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CHAT_PATH = "/v1/chat/completions"
LIVE_PATHS = ("/health", "/health/live")
ROUTES = (("POST", CHAT_PATH), *(("GET", path) for path in LIVE_PATHS))  # OpenAPI parity
_LIVE = b'{"status":"ok"}'
_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no")]
_DONE = b"data: [DONE]\n\n"


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _headers(scope: Scope) -> tuple[dict[str, str], str | None]:
    """The request's headers by lower-cased name, a repeated one as its first line (as
    Quart reads them), and every ``X-Forwarded-For`` line joined in order."""
    headers: dict[str, str] = {}
    forwarded: list[str] = []
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name == "x-forwarded-for":
            forwarded.append(value)
        headers.setdefault(name, value)
    return headers, ", ".join(forwarded) if forwarded else None


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def _answer(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [*_JSON, (b"content-length", str(len(body)).encode()), *_encoded(headers)]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _fail(send: Send, error: ApiError, request_id: str) -> None:
    headers = error.headers()
    headers["X-Request-ID"] = request_id
    await _answer(send, error.status, error.body(), headers)


class _Disconnect:
    """Cancels the request's task when the client goes away, and says so.

    Served by ``gateway serve``, Hypercorn (patched, :mod:`gateway.hypercorn_patch`) calls
    back as it queues the disconnect; under any other server a task waits on ``receive``
    for it. The callback saves that task, and its cancellation, on every request.
    """

    __slots__ = ("gone", "_task", "_closed", "_watch", "_waiter")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.gone = False
        self._closed = False
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        extension = (scope.get("extensions") or {}).get(DISCONNECT_EXTENSION)
        self._watch: Callable[[Callable[[], None] | None], None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        if extension is not None:
            self._watch = extension["watch"]
            self._watch(self._queued)
        else:
            self._waiter = asyncio.ensure_future(self._wait(receive))

    def _queued(self) -> None:
        # Hypercorn also queues the disconnect from inside the request's own last send,
        # once the response has ended; by the next turn of the loop such a request is
        # closed. A client that left, seen by the connection's reader or by a failed
        # write, finds it still open.
        self._task.get_loop().call_soon(self._left)

    def _left(self) -> None:
        if not self._closed:
            self.gone = True
            self._task.cancel()

    async def _wait(self, receive: Receive) -> None:
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        except asyncio.CancelledError:
            # close(): the request is done. Ending quietly, rather than as a cancelled
            # task, leaves no exception, traceback and frame in a cycle with this task for
            # the garbage collector to find on every request (docs/performance.md).
            return
        self._left()

    def close(self) -> None:
        self._closed = True
        if self._watch is not None:
            self._watch(None)
        elif self._waiter is not None:
            self._waiter.cancel()


class HotRoutes:
    """ASGI: the chat route here, everything else to ``app`` (Quart)."""

    def __init__(self, app: ASGIApp, stub: gateway_service_pb2_grpc.GatewayServiceStub, *,
                 max_body: int, body_timeout: float, proxies: TrustedProxies) -> None:
        self.app = app
        self._stub = stub
        self._max_body = max_body
        self._body_timeout = body_timeout
        self._proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == CHAT_PATH:
                await self._chat(scope, receive, send)
                return
            if path in LIVE_PATHS:
                await _live(scope, send)
                return
        await self.app(scope, receive, send)

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers, forwarded = _headers(scope)
        get = headers.get
        rid = request_id(get)
        try:
            if scope["method"] != "POST":
                raise ApiError(405, "Method not allowed.", extra_headers={"Allow": "POST"})
            raw = await self._body(receive, get("content-length"))
            if raw is None:
                return  # the client left before sending it all
            chat, stream, include_usage = translate.chat_request_to_proto(
                translate.parse_json_body(raw))
            client = (scope.get("client") or ("",))[0]
            metadata = core_metadata(get, rid, client, forwarded, self._proxies)
            timeout = client_timeout(get)
        except ApiError as exc:
            await _fail(send, exc, rid)
            return
        except Exception:
            await _internal_error(send, rid)
            return
        disconnect = _Disconnect(scope, receive)
        try:
            if stream:
                await self._stream(send, _chunk_sender(scope, send), chat, include_usage,
                                   metadata, rid, timeout)
            else:
                await self._unary(send, chat, metadata, rid, timeout)
        except Exception:
            await _internal_error(send, rid)
        except asyncio.CancelledError:
            if not disconnect.gone:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # our own cancel, for a client that left: nothing to answer
        finally:
            disconnect.close()

    async def _body(self, receive: Receive, length: str | None) -> bytes | None:
        """The whole body within the size and time limits (413, 408), None on a
        disconnect."""
        limit = self._max_body
        if length is not None and length.isdigit() and int(length) > limit:
            raise body_too_large(limit)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self._body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise body_too_large(limit)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise body_too_slow(self._body_timeout) from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _unary(self, send: Send, chat: Any, metadata: tuple[tuple[str, str], ...],
                     rid: str, timeout: float | None) -> None:
        call = self._stub.CreateChatCompletion(
            gateway_service_pb2.CreateChatCompletionRequest(request=chat), metadata=metadata,
            timeout=timeout)
        try:
            response = await call
        except aio.AioRpcError as exc:
            await _fail(send, from_rpc_error(exc), rid)
            return
        headers = await limit_headers(call, {"X-Request-ID": rid})
        body = orjson.dumps(translate.completion_to_json(response.completion))
        await _answer(send, 200, body, headers)

    async def _stream(self, send: Send, send_chunk: Callable[[bytes], Awaitable[None]],
                      chat: Any, include_usage: bool, metadata: tuple[tuple[str, str], ...],
                      rid: str, timeout: float | None) -> None:
        """SSE ending ``data: [DONE]``. A failure before the first chunk is an ordinary
        HTTP error; after it, the stream ends with an error event."""
        call = self._stub.StreamChatCompletion(
            gateway_service_pb2.StreamChatCompletionRequest(request=chat,
                                                            include_usage=include_usage),
            metadata=metadata, timeout=timeout)
        try:
            try:
                first = await call.read()
            except aio.AioRpcError as exc:
                await _fail(send, from_rpc_error(exc), rid)
                return
            if first is aio.EOF:
                await _fail(send, ApiError(502, "the upstream returned an empty stream",
                                           type="upstream_error", code="empty_stream"), rid)
                return
            headers = await limit_headers(call, {"X-Request-ID": rid})
            await send({"type": "http.response.start", "status": 200,
                        "headers": [*_SSE, *_encoded(headers)]})
            message = first
            try:
                while message is not aio.EOF:
                    await send_chunk(_sse(translate.chunk_to_json(message.chunk,
                                                                  include_usage)))
                    message = await call.read()
                tail = _DONE
            except aio.AioRpcError as exc:
                tail = _sse(orjson.loads(from_rpc_error(exc).body()))
            except Exception:
                log.exception("unhandled error in a chat stream")
                tail = _sse(orjson.loads(ApiError(500, "internal error",
                                                  type="server_error").body()))
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        finally:
            call.cancel()  # done, failed, or the client left: stop the core's work


def _chunk_sender(scope: Scope, send: Send) -> Callable[[bytes], Awaitable[None]]:
    """How a stream's chunks go out: straight to the connection under ``gateway serve``
    (:data:`~gateway.hypercorn_patch.CHUNKS_EXTENSION`), else as ASGI body messages."""
    extension = (scope.get("extensions") or {}).get(CHUNKS_EXTENSION)
    if extension is not None:
        chunks: Callable[[Send, bytes], Awaitable[None]] = extension["send"]
        return functools.partial(chunks, send)

    async def send_chunk(data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})

    return send_chunk


async def _live(scope: Scope, send: Send) -> None:
    """Liveness: the process answers. Nothing else is checked (readiness does that)."""
    method = scope["method"]
    if method == "GET":
        await _answer(send, 200, _LIVE, {})
        return
    if method == "HEAD":  # the length of the GET answer, no body
        await send({"type": "http.response.start", "status": 200, "headers": [
            *_JSON, (b"content-length", str(len(_LIVE)).encode())]})
        await send({"type": "http.response.body", "body": b""})
        return
    await _answer(send, 405, ApiError(405, "Method not allowed.").body(), {"Allow": "GET"})


async def _internal_error(send: Send, request_id: str) -> None:
    """A bug's answer: logged with its traceback, a bare 500 in the API's shape (if the
    response has not started; otherwise the connection just ends)."""
    log.exception("unhandled error in the chat route")
    with contextlib.suppress(Exception):
        await _fail(send, ApiError(500, "internal error", type="server_error"), request_id)
