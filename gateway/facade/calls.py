"""Calls on the core: the one place a REST handler's call is made and its failure mapped.

:meth:`Core.call` makes a unary call; :meth:`Core.stream` opens a server stream and answers
once its first message is in, so that a failure before any output is an ordinary HTTP
error; after it, a failure can only end the stream with an error event in the API's shape
(a :class:`Framer` writes both). Either way a failed call becomes an :class:`ApiError`
(``from_rpc_error``), and the request's id, credentials, client address and deadline go
with the call as metadata.

Example::

    response, headers = await core.call(core.gateway.ListModels, ListModelsRequest(),
                                        request)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

from grpc import aio
from grpc_health.v1 import health_pb2_grpc
from llmgateway.v1 import admin_service_pb2_grpc, gateway_service_pb2_grpc

from gateway.clientip import TrustedProxies
from gateway.facade.errors import ApiError, from_rpc_error
from gateway.facade.exchange import Request, StreamAnswer, internal_error

if TYPE_CHECKING:
    from gateway.service.local_channel import LocalChannel

__all__ = ["MAX_TIMEOUT", "Core", "Framer", "Method", "body_too_large", "body_too_slow",
           "client_timeout"]

log = logging.getLogger("gateway.facade")

MAX_TIMEOUT = 3600.0
Method = Callable[..., Any]  # a stub's method: generated, untyped
_EOF = aio.EOF
# Client headers the core reads, forwarded as gRPC metadata.
_FORWARDED = (("authorization", "Authorization"), ("x-api-key", "X-Api-Key"),
              ("x-provider", "X-Provider"), ("x-skip-cache", "X-Skip-Cache"),
              ("x-hedge-after", "X-Hedge-After"))
_CREDENTIALS = ("authorization", "x-api-key")
# Core answers the client sees as response headers (the core's initial metadata).
_CORE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-cache")


class Framer(Protocol):
    """How one API writes a stream of the core's messages as SSE."""

    def event(self, message: Any) -> bytes:
        """One message, framed."""
        ...

    def end(self) -> bytes:
        """What follows the last message (``data: [DONE]``, or nothing)."""
        ...

    def error(self, error: ApiError) -> bytes:
        """The event that ends a stream failing after its first message."""
        ...


class Core:
    """The facade's side of the core: its stubs over ``channel`` (owned by the caller), and
    the calls REST handlers make on them."""

    def __init__(self, channel: aio.Channel | LocalChannel, proxies: TrustedProxies) -> None:
        self.gateway = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        self.admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)
        self._proxies = proxies

    async def call(self, method: Method, message: Any, request: Request, *,
                   timed: bool = False) -> tuple[Any, dict[str, str]]:
        """``method``'s answer to ``message``, and the headers the client gets with it
        (``X-Request-ID``, and the core's ``X-RateLimit-*`` and ``X-Cache``). ``timed``:
        the client's ``X-Request-Timeout`` bounds the call."""
        call = method(message, metadata=self._metadata(request),
                      timeout=client_timeout(request.headers) if timed else None)
        try:
            response = await call
        except aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        return response, await _core_headers(call, request.request_id)

    async def stream(self, method: Method, message: Any, request: Request, framer: Framer,
                     *, timed: bool = False) -> StreamAnswer:
        """The answer of a server stream whose first message arrived; raises its error (or
        a 502 for a stream that ended empty) when none did."""
        call = method(message, metadata=self._metadata(request),
                      timeout=client_timeout(request.headers) if timed else None)
        try:
            first = await call.read()
            if first is _EOF:
                raise ApiError(502, "the upstream returned an empty stream",
                               type="upstream_error", code="empty_stream")
            headers = await _core_headers(call, request.request_id)
        except aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        except BaseException:
            call.cancel()  # failed, or the client left: stop the core's work
            raise
        return StreamAnswer(headers, _Events(call, first, framer))

    def _metadata(self, request: Request) -> tuple[tuple[str, str], ...]:
        """The call's metadata: request id, credentials, routing hints, the client's
        address (the peer, or what trusted proxies say in ``X-Forwarded-For``)."""
        get = request.headers.get
        meta: list[tuple[str, str]] = [("x-request-id", request.request_id)]
        for key, header in _FORWARDED:
            value = get(key)
            if value:
                if not (value.isascii() and value.isprintable()):  # gRPC would not send it
                    credential = key in _CREDENTIALS
                    raise ApiError(401 if credential else 400,
                                   f"The {header} header holds characters other than "
                                   "printable ASCII.", type="authentication_error"
                                   if credential else "invalid_request_error", param=header)
                meta.append((key, value))
        meta.append(("x-client-ip", self._proxies.client_ip(request.client,
                                                            get("x-forwarded-for"))))
        return tuple(meta)


class _Events:
    """A server stream's messages as framed SSE events (the :class:`EventSource` of
    :mod:`gateway.facade.exchange`). The first message is already in."""

    __slots__ = ("_call", "_first", "_framer", "tail")

    def __init__(self, call: Any, first: Any, framer: Framer) -> None:
        self._call = call
        self._first = first
        self._framer = framer
        self.tail: bytes | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._relay()

    async def _relay(self) -> AsyncIterator[bytes]:
        # A generator, not __anext__: resuming it costs less than a coroutine per event.
        call, framer, message = self._call, self._framer, self._first
        try:
            while message is not _EOF:
                yield framer.event(message)
                message = await call.read()
            self.tail = framer.end()
        except aio.AioRpcError as exc:
            self.tail = framer.error(from_rpc_error(exc))
        except Exception:
            log.exception("unhandled error in a stream")
            self.tail = framer.error(internal_error())

    def close(self) -> None:
        self._call.cancel()  # done, failed, or the client left: stop the core's work


async def _core_headers(call: Any, request_id: str) -> dict[str, str]:
    """``X-Request-ID``, and the core's ``X-RateLimit-*`` and ``X-Cache`` (its initial
    metadata)."""
    headers = {"X-Request-ID": request_id}
    metadata = await call.initial_metadata()
    if metadata:
        for key in _CORE_HEADERS:
            value = metadata.get(key)
            if value is not None:
                headers[key] = str(value)
    return headers


def body_too_large(limit: int) -> ApiError:
    """413: the body is over ``server.max_request_body_size``."""
    return ApiError(413, f"The request body exceeds the limit of {limit} bytes.",
                    code="request_too_large")


def body_too_slow(seconds: float) -> ApiError:
    """408: the body did not arrive within ``server.body_timeout``."""
    return ApiError(408, f"The request body did not arrive within {seconds:g} seconds.")


def client_timeout(headers: dict[str, str]) -> float | None:
    """The client's own timeout, which bounds the whole call: ``X-Request-Timeout``
    (seconds), or the ``X-Stainless-Timeout`` the official OpenAI and Anthropic SDKs send.
    Ours must be a number in range (else 400); the SDKs' is advisory, and ignored when it is
    not one (the anthropic SDK sends ``NOT_GIVEN`` when the timeout is the client's own)."""
    raw = headers.get("x-request-timeout")
    if not raw:
        return _sdk_timeout(headers.get("x-stainless-timeout"))
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, "'X-Request-Timeout' must be a number of seconds.",
                       param="X-Request-Timeout") from None
    if not 0 < value <= MAX_TIMEOUT:
        raise ApiError(400, f"'X-Request-Timeout' must be in (0, {MAX_TIMEOUT:g}] seconds.",
                       param="X-Request-Timeout")
    return value


def _sdk_timeout(raw: str | None) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 0 < value <= MAX_TIMEOUT else None
