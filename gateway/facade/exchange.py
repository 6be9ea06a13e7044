"""What a REST handler takes and gives back, free of Quart and of ASGI.

Every REST operation is one handler, ``async (Request) -> Answer | StreamAnswer``, tied to
its method and path by a :class:`Route`. Two thin adapters serve the same handlers: the lean
ASGI one (:mod:`gateway.facade.hot`) and Quart (:mod:`gateway.facade.app`). A route family
renders its errors in its API's shape (:data:`ErrorShape`); OpenAI's is the default.

Example::

    async def live(request: Request) -> Answer:
        return Answer(200, b'{"status":"ok"}')

    Route("GET", "/health", live, lean=True)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs

from gateway.facade.errors import ApiError
from gateway.observability.context import new_request_id, valid_request_id

__all__ = ["JSON", "SSE", "SSE_HEADERS", "Answer", "ErrorShape", "EventSource", "Handler",
           "Request", "Route", "StreamAnswer", "credential_missing", "event_bytes",
           "internal_error", "no_credential", "openai_error", "read_headers"]

JSON = "application/json"
SSE = "text/event-stream"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_NO_PARAMS: Mapping[str, str] = {}
_NO_CLIENT = ("",)


def read_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI header lines as a dict by (lower-cased) name: a repeated header is its first
    line (as Quart reads it), but every ``X-Forwarded-For`` line is kept, joined in order
    (RFC 9110, 5.3: a proxy may append its own line)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name = raw_name.decode("latin-1")
        if name in headers:
            if name == "x-forwarded-for":
                headers[name] += ", " + raw_value.decode("latin-1")
            continue
        headers[name] = raw_value.decode("latin-1")
    return headers


class Request:
    """One REST request as a handler sees it: ``headers`` by lower-cased name (see
    :func:`read_headers`), the whole ``body`` (empty for methods without one), the path's
    ``params``, the peer's address in ``client``, the raw ``query`` string, and the request
    id answers carry: the client's ``X-Request-ID`` when well formed, else a new one."""

    __slots__ = ("body", "client", "headers", "method", "params", "query", "request_id")

    def __init__(self, method: str, headers: dict[str, str], body: bytes = b"",
                 client: str = "", params: Mapping[str, str] = _NO_PARAMS,
                 query: bytes = b"") -> None:
        self.method = method
        self.headers = headers
        self.body = body
        self.client = client
        self.params = params
        self.query = query
        value = headers.get("x-request-id")
        self.request_id = value if value and valid_request_id(value) else new_request_id()

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any],
                   params: Mapping[str, str] = _NO_PARAMS) -> Request:
        """The request of an ASGI HTTP ``scope``; its body is read separately."""
        return cls(scope["method"], read_headers(scope["headers"]), b"",
                   (scope.get("client") or _NO_CLIENT)[0], params,
                   scope.get("query_string", b""))

    def args(self, name: str) -> list[str]:
        """Every value of the query parameter ``name``, in order."""
        return parse_qs(self.query.decode("latin-1"), keep_blank_values=True).get(name, [])


@dataclass(slots=True)
class Answer:
    """A whole answer. Adapters never change one, so a handler may return a constant."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON


class EventSource(Protocol):
    """A stream's already-framed SSE events, iterated once. After the last one, ``tail``
    holds the bytes that end the stream (an end marker or an error event in the API's
    shape), which the adapter sends as the body's last part; ``close()`` stops the
    producer, whether or not the events were read."""

    tail: bytes | None

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


async def event_bytes(events: EventSource) -> AsyncIterator[bytes]:
    """The body of a stream for an adapter that takes an iterator of bytes: the events, the
    tail, and the producer closed however it ends (done, failed, or the client left)."""
    try:
        async for chunk in events:
            if chunk:
                yield chunk
        if events.tail:
            yield events.tail
    finally:
        events.close()


@dataclass(slots=True)
class StreamAnswer:
    """A 200 answer streamed as server-sent events (the adapters add the SSE headers)."""

    headers: dict[str, str]
    events: EventSource


Handler = Callable[[Request], Awaitable[Answer | StreamAnswer]]
ErrorShape = Callable[[ApiError, str], Answer]
"""How a route family answers an error: ``(error, request id) -> Answer``."""


def openai_error(error: ApiError, request_id: str) -> Answer:
    """OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``, with
    ``Retry-After`` and the limit headers the error carries, and ``X-Request-ID``."""
    headers = error.headers()
    headers["X-Request-ID"] = request_id
    return Answer(error.status, error.body(), headers)


def credential_missing(request: Request) -> bool:
    """Whether ``request`` carries no credential at all (the core checks the ones it has)."""
    headers = request.headers
    return not (headers.get("authorization") or headers.get("x-api-key"))


def no_credential(http_version: str = "1.1") -> ApiError:
    """401 before a body is read, when auth is required and the request names no one: an
    anonymous client costs no parsing (docs/reliability.md). Over HTTP/1.x the connection
    closes after it: the unread body would otherwise race the client's next request on it
    (HTTP/2 streams are independent and keep theirs)."""
    close = {"Connection": "close"} if http_version in ("1.0", "1.1") else None
    return ApiError(401, "authentication required: send 'Authorization: Bearer <key or "
                    "token>' or 'x-api-key'", type="authentication_error",
                    extra_headers=close)


def internal_error() -> ApiError:
    """A bug's answer: a bare 500, nothing of the bug in it (the log has the traceback)."""
    return ApiError(500, "internal error", type="server_error")


@dataclass(frozen=True, slots=True)
class Route:
    """``handler`` serves ``method`` on ``path`` (Werkzeug's syntax: ``<name>`` is one path
    segment, ``<path:name>`` may hold slashes). ``lean`` routes are served by the lean ASGI
    adapter, the others by Quart; every path's routes are all lean or none."""

    method: str
    path: str
    handler: Handler
    lean: bool = False
    errors: ErrorShape = openai_error
    reads_body: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads_body", self.method in _BODY_METHODS)
