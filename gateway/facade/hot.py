"""The lean ASGI adapter: serves the ``lean`` routes' handlers in front of Quart.

Nearly all of a gateway's traffic is a few routes (chat completions above all), and Quart's
machinery per request (a request object with werkzeug headers, two tasks and a wait, the
routing map, context locals, a response object) costs about a third of the REST path's CPU
(docs/performance.md). This adapter serves the same handlers with none of it: headers read
once into a dict, the body read with the same size (413) and time (408) limits, the answer
written straight to ASGI, SSE chunk by chunk as it arrives (under ``gateway serve``,
straight to the connection through :data:`~gateway.asgi.CHUNKS_EXTENSION`). Every other
path goes on to Quart, which serves every route too.

A client that goes away is noticed (the server queues ``http.disconnect``, and tells the
route so at once through :data:`~gateway.asgi.DISCONNECT_EXTENSION`) and the request's task
is cancelled, so the core's call and the upstream's stop, as with Quart.

Example::

    app.asgi_app = HotRoutes(app.asgi_app, table, max_body=10 << 20, body_timeout=60.0)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping

from gateway.asgi import (
    CHUNKS_EXTENSION,
    DISCONNECT_EXTENSION,
    ASGIApp,
    Receive,
    Scope,
    Send,
)
from gateway.facade.calls import body_too_large, body_too_slow
from gateway.facade.errors import ApiError
from gateway.facade.exchange import (
    SSE,
    SSE_HEADERS,
    Answer,
    ErrorShape,
    Request,
    Route,
    StreamAnswer,
    credential_missing,
    internal_error,
    no_credential,
    read_headers,
)

__all__ = ["HotRoutes"]

log = logging.getLogger("gateway.facade")

_SSE = [(b"content-type", SSE.encode()),
        *((k.lower().encode(), v.encode()) for k, v in SSE_HEADERS.items())]
_NO_PARAMS: Mapping[str, str] = {}
_NO_CLIENT = ("",)
# Werkzeug's converters, as the lean path matches them: <name> is one segment.
_PARAM = re.compile(r"<(?:(path):)?([a-z_]+)>")


class _Path:
    """The lean routes of one path, by method, and how the path answers other methods."""

    __slots__ = ("allow", "errors", "routes")

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.allow = ", ".join(routes)
        self.errors: ErrorShape = next(iter(routes.values())).errors

    def head(self, method: str) -> Route | None:
        """The GET route that answers a HEAD (without the body)."""
        return self.routes.get("GET") if method == "HEAD" else None


def _pattern(path: str) -> re.Pattern[str]:
    parts, at = [], 0
    for match in _PARAM.finditer(path):
        kind, name = match.groups()
        parts += [re.escape(path[at:match.start()]),
                  f"(?P<{name}>[^/].*?)" if kind else f"(?P<{name}>[^/]+)"]
        at = match.end()
    return re.compile("".join(parts) + re.escape(path[at:]))


class HotRoutes:
    """ASGI: the ``lean`` routes of ``routes`` here, everything else to ``app`` (Quart)."""

    def __init__(self, app: ASGIApp, routes: Iterable[Route], *, max_body: int,
                 body_timeout: float, credentials_required: bool = False) -> None:
        self.app = app
        self._credentials_required = credentials_required
        self._max_body = max_body
        self._body_timeout = body_timeout
        by_path: dict[str, dict[str, Route]] = {}
        lean: dict[str, bool] = {}
        for route in routes:
            if lean.setdefault(route.path, route.lean) != route.lean:
                raise ValueError(f"{route.path}: every route of a path is lean or none is")
            if route.lean:
                by_path.setdefault(route.path, {})[route.method] = route
        self._paths = {path: _Path(methods) for path, methods in by_path.items()
                       if "<" not in path}
        self._patterns = [(_pattern(path), _Path(methods)) for path, methods in by_path.items()
                          if "<" in path]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = self._paths.get(scope["path"])
            if path is not None:
                await self._serve(path, _NO_PARAMS, scope, receive, send)
                return
            for pattern, path in self._patterns:
                match = pattern.fullmatch(scope["path"])
                if match is not None:
                    await self._serve(path, match.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, path: _Path, params: Mapping[str, str], scope: Scope,
                     receive: Receive, send: Send) -> None:
        request = Request(scope["method"], read_headers(scope["headers"]), b"",
                          (scope.get("client") or _NO_CLIENT)[0], params,
                          scope.get("query_string", b""))
        route = path.routes.get(request.method) or path.head(request.method)
        errors = route.errors if route is not None else path.errors
        disconnect: _Disconnect | None = None
        try:
            if route is None:
                raise ApiError(405, "Method not allowed.", extra_headers={"Allow": path.allow})
            if route.reads_body:
                if self._credentials_required and credential_missing(request):
                    raise no_credential(scope.get("http_version", "1.1"))
                body = await self._body(receive, request.headers.get("content-length"))
                if body is None:
                    return  # the client left before sending it all
                request.body = body
            disconnect = _Disconnect(scope, receive)
            answer = await route.handler(request)
            if isinstance(answer, StreamAnswer):
                await _stream(scope, send, answer)
            else:
                await _answer(send, answer, request.method == "HEAD")
        except ApiError as exc:
            await _answer(send, errors(exc, request.request_id))
        except Exception:
            log.exception("unhandled error in the route %s", scope["path"])
            with contextlib.suppress(Exception):  # if the response has not started
                await _answer(send, errors(internal_error(), request.request_id))
        except asyncio.CancelledError:
            if disconnect is None or not disconnect.gone:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # our own cancel, for a client that left: nothing to answer
        finally:
            if disconnect is not None:
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


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def _answer(send: Send, answer: Answer, head: bool = False) -> None:
    body = answer.body
    await send({"type": "http.response.start", "status": answer.status, "headers": [
        (b"content-type", answer.content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode()), *_encoded(answer.headers)]})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _stream(scope: Scope, send: Send, answer: StreamAnswer) -> None:
    """SSE: each event as it comes, the stream's tail as the body's last part. Under
    ``gateway serve`` the events go straight to the connection
    (:data:`~gateway.asgi.CHUNKS_EXTENSION`), else as ASGI body messages."""
    events = answer.events
    try:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*_SSE, *_encoded(answer.headers)]})
        extension = (scope.get("extensions") or {}).get(CHUNKS_EXTENSION)
        if extension is not None:
            send_chunk = extension["send"]
            async for chunk in events:
                await send_chunk(send, chunk)
        else:
            async for chunk in events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": events.tail or b"",
                    "more_body": False})
    finally:
        events.close()


class _Disconnect:
    """Cancels the request's task when the client goes away, and says so.

    Served by ``gateway serve``, the HTTP server calls back as it queues the disconnect
    (:data:`~gateway.asgi.DISCONNECT_EXTENSION`); under any other server a task waits on
    ``receive`` for it. The callback saves that task, and its cancellation, on every
    request.
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
        # The server also queues the disconnect from inside the request's own last send,
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
