"""The core's one server interceptor: request context, authentication, error
mapping, the request log.

For every RPC it takes ``x-request-id`` from metadata (or makes one), echoes it in
the trailing metadata, opens a :class:`RequestContext`, authenticates the caller
(the same way for REST, which arrives through the facade, and for gRPC clients),
refuses AdminService to non-admins, decodes a gRPC client's request message only once
its caller is authenticated (an unauthenticated call costs no parsing), refuses
request bytes that are not a valid message (INVALID_ARGUMENT, where grpc would answer
UNKNOWN), turns a
:class:`GatewayError` into its status with ``ErrorInfo``, turns any other exception
into a bare INTERNAL (logged with its traceback, never sent), and logs one line when
the RPC ends, an inference RPC's outcome also in the request log. Wrapped handlers are
cached per method.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc import aio

from gateway.clientip import TrustedProxies, peer_address
from gateway.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequestError,
    PermissionDeniedError,
)
from gateway.lifecycle import InFlight
from gateway.observability import context as reqctx
from gateway.observability import metrics, tracing
from gateway.service.status import STATUS_DETAILS_KEY, bounded, status_details
from gateway.state.request_log import MemoryRequestLog, RequestLog, RequestRecord
from gateway.tenancy.auth import Authenticator, Identity, set_identity
from gateway.tenancy.failed_auth import FailedAuthLimiter

__all__ = ["CallMetadata", "Guard", "RequestInterceptor", "read_metadata"]

log = logging.getLogger("gateway.request")

_ADMIN_PREFIX = "/llmgateway.v1.AdminService/"
# The facade in this process: the in-process channel's peer, or the private Unix socket
# (mode 0600). A facade elsewhere, loopback included, must be in trusted_proxy_cidrs: any
# local gRPC client could otherwise name its own address and evade per-client limits.
_FACADE_PEERS = ("unix",)


@dataclass(slots=True)
class CallMetadata:
    """What the interceptor needs from a call's metadata, read in one pass (grpc.aio builds
    the metadata tuple anew on every ``invocation_metadata()``)."""

    request_id: str | None = None  # the first x-request-id, valid or not
    token: str = ""  # a bearer token, else x-api-key
    client_ip: str = ""  # x-client-ip: the facade's resolved client address
    forwarded: str = ""  # x-forwarded-for


def read_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> CallMetadata:
    found = CallMetadata()
    for key, value in metadata or ():
        if key == "x-request-id":
            if found.request_id is None:
                found.request_id = value if isinstance(value, str) else ""
        elif not isinstance(value, str):
            continue  # a binary (-bin) entry: none of the others
        elif key == "authorization":
            scheme, _, rest = value.partition(" ")
            if scheme.lower() == "bearer":
                found.token = rest.strip()
        elif key == "x-api-key":
            if not found.token:
                found.token = value.strip()
        elif key == "x-client-ip":
            found.client_ip = value
        elif key == "x-forwarded-for":
            found.forwarded = value
    return found


class Guard:
    """Authentication for the interceptor: credentials and client address from metadata."""

    def __init__(self, authenticator: Authenticator, proxies: TrustedProxies,
                 failed: FailedAuthLimiter | None = None):
        self.authenticator = authenticator
        self.proxies = proxies
        self.failed = failed or FailedAuthLimiter()

    async def identify(self, method: str, metadata: CallMetadata, grpc_peer: str) -> Identity:
        peer = peer_address(grpc_peer)
        if metadata.client_ip and (peer in _FACADE_PEERS or self.proxies.trusted(peer)):
            address = metadata.client_ip  # the facade resolved it, behind its trusted proxies
        else:
            address = self.proxies.client_ip(peer, metadata.forwarded)
        if metadata.token:  # an address that keeps failing is refused before its next try
            self.failed.check(address)
        try:
            identity = await self.authenticator.authenticate(metadata.token, address)
        except AuthenticationError:
            if metadata.token:
                self.failed.failed(address)
            raise
        if method.startswith(_ADMIN_PREFIX) and not identity.is_admin:
            if identity.kind == "ip":  # no credential at all
                raise AuthenticationError("the admin API needs an admin key "
                                          "(authorization: Bearer ...)")
            raise PermissionDeniedError("the admin API needs an admin key or the admin role")
        return identity


def _request_id(metadata: CallMetadata) -> str:
    value = metadata.request_id
    return value if value and reqctx.valid_request_id(value) else reqctx.new_request_id()


async def _fail(
    context: aio.ServicerContext, exc: BaseException, ctx: reqctx.RequestContext
) -> None:
    if isinstance(exc, GatewayError):
        ctx.status = exc.grpc_code.name
        await context.abort(exc.grpc_code, bounded(exc.message), trailing_metadata=(
            (STATUS_DETAILS_KEY, status_details(exc)), ("x-request-id", ctx.request_id),
            *exc.trailers()))
    ctx.status = "INTERNAL"
    log.error("unhandled error in %s", ctx.method, exc_info=exc,
              extra={"fields": {"request_id": ctx.request_id}})
    await context.abort(grpc.StatusCode.INTERNAL, "internal error",
                        trailing_metadata=(("x-request-id", ctx.request_id),))


def _finish(ctx: reqctx.RequestContext, started: float, trace_id: str, span_id: str,
            requests: RequestLog) -> None:
    elapsed = time.perf_counter() - started
    if ctx.model:  # an inference RPC (not ListModels, admin, ...)
        requests.record(RequestRecord(
            at=time.time(), request_id=ctx.request_id, method=ctx.method.rpartition("/")[2],
            tenant=ctx.tenant, model=ctx.model, provider=ctx.provider, status=ctx.status,
            latency_ms=elapsed * 1000, prompt_tokens=ctx.prompt_tokens,
            completion_tokens=ctx.completion_tokens, cost_usd=ctx.cost_usd, stream=ctx.stream))
        # A name takes a label value of its own only if it is configured or an upstream
        # answered it: unknown names (404s, typos, junk) stay `other` and use no room.
        admit = ctx.known_model or (ctx.status == "OK" and bool(ctx.provider))
        metrics.request_done(ctx.provider, ctx.model, ctx.status, elapsed, admit=admit)
        if ctx.provider:
            metrics.tokens(ctx.provider, ctx.model, ctx.prompt_tokens, ctx.completion_tokens,
                           ctx.cost_usd, admit=admit)
        if not ctx.stream:
            metrics.overhead(elapsed - ctx.upstream_seconds)
    if log.isEnabledFor(logging.INFO):
        log.info("request", extra={"fields": {
            "request_id": ctx.request_id, "trace_id": trace_id, "span_id": span_id,
            "method": ctx.method, "tenant": ctx.tenant,
            "model": ctx.model, "provider": ctx.provider, "status": ctx.status,
            "latency_ms": round(elapsed * 1000, 3),
            "prompt_tokens": ctx.prompt_tokens, "completion_tokens": ctx.completion_tokens,
        }})


def _open(method: str, context: aio.ServicerContext,
          metadata: CallMetadata) -> reqctx.RequestContext:
    ctx = reqctx.RequestContext(request_id=_request_id(metadata), method=method)
    if (remaining := context.time_remaining()) is not None:
        ctx.deadline_at = time.monotonic() + remaining
    context.set_trailing_metadata((("x-request-id", ctx.request_id),))
    return ctx


async def _identify(guard: Guard, method: str, context: aio.ServicerContext,
                    metadata: CallMetadata, ctx: reqctx.RequestContext) -> None:
    identity = await guard.identify(method, metadata, context.peer() or "")
    ctx.tenant = identity.usage_account  # the admin key's own requests: "admin"
    set_identity(identity)


class _Encoded:
    """A gRPC client's request bytes, decoded by the handler once the caller is
    authenticated (grpc would decode them before any of our code runs)."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes):
        self.raw = raw


Decoder = Callable[[Any], Any]


def _deferred(deserialize: Callable[[bytes], Any] | None
              ) -> tuple[Callable[[bytes], Any] | None, Decoder]:
    """The deserializer grpc calls (it keeps the bytes) and the decoder the handler calls
    after authentication: bad bytes are INVALID_ARGUMENT from us rather than grpc's
    UNKNOWN. The in-process channel hands over messages, which pass as they are."""
    if deserialize is None:
        return None, _as_is

    def decode(request: Any) -> Any:
        if not isinstance(request, _Encoded):
            return request
        try:
            return deserialize(request.raw)
        except DecodeError as exc:
            raise InvalidRequestError(f"the request is not a valid message: {exc}") from None

    return _Encoded, decode


def _as_is(request: Any) -> Any:
    return request


def _wrap_unary(method: str, behavior: Callable[..., Awaitable[Any]], in_flight: InFlight,
                guard: Guard, decode: Decoder, requests: RequestLog) -> Callable[..., Any]:
    async def handler(request: Any, context: aio.ServicerContext) -> Any:
        in_flight.enter()
        started = time.perf_counter()
        metadata = read_metadata(context.invocation_metadata())
        ctx = _open(method, context, metadata)
        reqctx.set_current(ctx)  # the RPC's own task: nothing to reset afterwards
        trace_id, span_id = tracing.trace_ids()
        try:
            await _identify(guard, method, context, metadata, ctx)
            return await behavior(decode(request), context)
        except aio.AbortError:
            raise
        except Exception as exc:
            await _fail(context, exc, ctx)
        finally:
            # Runs on a client's disconnect too (the generator is closed from elsewhere):
            # nothing here may depend on the context it runs in.
            in_flight.exit()
            _finish(ctx, started, trace_id, span_id, requests)

    return handler


def _wrap_stream(method: str, behavior: Callable[..., AsyncIterator[Any]], in_flight: InFlight,
                 guard: Guard, decode: Decoder, requests: RequestLog) -> Callable[..., Any]:
    async def handler(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
        in_flight.enter()
        started = time.perf_counter()
        metadata = read_metadata(context.invocation_metadata())
        ctx = _open(method, context, metadata)
        reqctx.set_current(ctx)  # the RPC's own task: nothing to reset afterwards
        trace_id, span_id = tracing.trace_ids()
        try:
            await _identify(guard, method, context, metadata, ctx)
            async for response in behavior(decode(request), context):
                yield response
        except aio.AbortError:
            raise
        except Exception as exc:
            await _fail(context, exc, ctx)
        finally:
            # Runs on a client's disconnect too (the generator is closed from elsewhere):
            # nothing here may depend on the context it runs in.
            in_flight.exit()
            _finish(ctx, started, trace_id, span_id, requests)

    return handler


class RequestInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, in_flight: InFlight, guard: Guard,
                 requests: RequestLog | None = None) -> None:
        self._cache: dict[str, grpc.RpcMethodHandler] = {}
        self._requests: RequestLog = requests if requests is not None else MemoryRequestLog()
        self._in_flight = in_flight
        self._guard = guard

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = details.method
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None:
            return handler
        wrapped = self.wrap(method, handler)
        self._cache[method] = wrapped
        return wrapped

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """``handler`` with this interceptor's work around it (the gRPC server's path and
        the in-process channel's alike)."""
        if method.startswith(tracing.INFRASTRUCTURE_PREFIXES):
            return handler  # health and reflection: no auth, no request log
        keep, decode = _deferred(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(method, handler.unary_unary, self._in_flight, self._guard, decode,
                            self._requests),
                request_deserializer=keep,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(method, handler.unary_stream, self._in_flight, self._guard, decode,
                             self._requests),
                request_deserializer=keep,
                response_serializer=handler.response_serializer,
            )
        return handler  # client or bidi streaming: none in this API
