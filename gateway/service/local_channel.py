"""The in-process channel: the facade's calls on the gRPC service, without the wire.

When the facade and the core share a process, the facade's stubs are built over a
:class:`LocalChannel`: a call runs the gRPC server's own handler through the same
:class:`RequestInterceptor`, with the same metadata, deadline and errors
(:class:`grpc.aio.AioRpcError` with the same trailers), but without serialization,
HTTP/2 framing or grpc's completion queue, which cost a socket inside one process.

Example::

    channel = LocalChannel(interceptor, traced=False)
    gateway_service_pb2_grpc.add_GatewayServiceServicer_to_server(servicer, channel)
    stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
    response = await stub.ListModels(ListModelsRequest(), metadata=(("authorization", ...),))

Only unary-unary and unary-stream methods exist in this API; the others are refused at
stub construction. Messages are passed by reference: the caller must not change a request
after sending it (the facade builds a fresh one per call).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Sequence
from typing import Any

import grpc
from grpc import aio
from opentelemetry import trace

from gateway.observability import tracing
from gateway.service.interceptors import RequestInterceptor

__all__ = ["LocalChannel"]

Metadata = Sequence[tuple[str, str | bytes]]
_PEER = "unix:in-process"  # the interceptor trusts the facade's x-client-ip from it


class _Context:
    """The part of :class:`grpc.aio.ServicerContext` the handlers use."""

    __slots__ = ("_metadata", "_deadline", "initial", "trailing", "code", "details")

    def __init__(self, metadata: Metadata, timeout: float | None) -> None:
        self._metadata = metadata
        self._deadline = (None if timeout is None
                          else asyncio.get_running_loop().time() + timeout)
        self.initial: Metadata = ()
        self.trailing: Metadata = ()
        self.code = grpc.StatusCode.OK
        self.details = ""

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def peer(self) -> str:
        return _PEER

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(self._deadline - asyncio.get_running_loop().time(), 0.0)

    async def send_initial_metadata(self, metadata: Metadata) -> None:
        self.initial = tuple(metadata)

    def set_trailing_metadata(self, metadata: Metadata) -> None:
        self.trailing = tuple(metadata)

    async def abort(self, code: grpc.StatusCode, details: str = "",
                    trailing_metadata: Metadata = ()) -> None:
        self.code, self.details = code, details
        if trailing_metadata:
            self.trailing = tuple(trailing_metadata)
        raise aio.AbortError()

    def error(self, code: grpc.StatusCode | None = None, details: str = "") -> aio.AioRpcError:
        """The client's view of the call's failure."""
        return aio.AioRpcError(code or self.code, aio.Metadata(*self.initial),
                               aio.Metadata(*self.trailing), details or self.details)


@contextlib.contextmanager
def _span(method: str) -> Iterator[None]:
    """With tracing on, the hop keeps its place in the trace: one INTERNAL span named for
    the method, as the gRPC server span would be."""
    if tracing.in_unsampled_trace():
        yield
        return
    service, _, name = method[1:].partition("/")
    with tracing.tracer.start_as_current_span(
            method, kind=trace.SpanKind.INTERNAL,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name,
                        "rpc.transport": "in-process"}):
        yield


class _UnaryCall:
    """Awaitable like :class:`grpc.aio.UnaryUnaryCall`; runs when awaited."""

    __slots__ = ("_run", "_context")

    def __init__(self, run: Callable[[_Context], Awaitable[Any]], context: _Context) -> None:
        self._run, self._context = run, context

    def __await__(self) -> Generator[Any, None, Any]:
        return self._call().__await__()

    async def _call(self) -> Any:
        context = self._context
        try:
            if context._deadline is None:
                return await self._run(context)
            async with asyncio.timeout_at(context._deadline):
                return await self._run(context)
        except aio.AbortError:
            raise context.error() from None
        except TimeoutError:
            raise context.error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None

    async def initial_metadata(self) -> aio.Metadata:
        return aio.Metadata(*self._context.initial)

    async def trailing_metadata(self) -> aio.Metadata:
        return aio.Metadata(*self._context.trailing)


class _StreamCall:
    """Like :class:`grpc.aio.UnaryStreamCall`: ``read()`` until :data:`grpc.aio.EOF`."""

    __slots__ = ("_messages", "_context", "_done", "_closing")

    def __init__(self, messages: AsyncIterator[Any], context: _Context) -> None:
        self._messages, self._context = messages, context
        self._done = False
        self._closing: asyncio.Task[None] | None = None

    async def read(self) -> Any:
        context = self._context
        if self._done:
            return aio.EOF
        try:
            if context._deadline is None:
                return await anext(self._messages)
            async with asyncio.timeout_at(context._deadline):
                return await anext(self._messages)
        except StopAsyncIteration:
            self._done = True
            return aio.EOF
        except aio.AbortError:
            self._done = True
            raise context.error() from None
        except TimeoutError:
            self.cancel()
            raise context.error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while (message := await self.read()) is not aio.EOF:
            yield message

    async def initial_metadata(self) -> aio.Metadata:
        return aio.Metadata(*self._context.initial)

    async def trailing_metadata(self) -> aio.Metadata:
        return aio.Metadata(*self._context.trailing)

    def cancel(self) -> bool:
        """Stop the handler where it waits (its ``finally`` blocks run, as on a client's
        disconnect); nothing to do once it has finished."""
        if self._done:
            return False
        self._done = True
        close = getattr(self._messages, "aclose", None)
        if close is not None:
            self._closing = asyncio.ensure_future(close())
        return True


class _UnaryMethod:
    __slots__ = ("_method", "_behavior", "_traced")

    def __init__(self, method: str, behavior: Callable[[Any, _Context], Awaitable[Any]],
                 traced: bool):
        self._method, self._behavior, self._traced = method, behavior, traced

    def __call__(self, request: Any, *, timeout: float | None = None,
                 metadata: Metadata = (), **_: Any) -> _UnaryCall:
        behavior, method = self._behavior, self._method
        if not self._traced:
            return _UnaryCall(lambda context: behavior(request, context),
                              _Context(metadata, timeout))

        async def run(context: _Context) -> Any:
            with _span(method):
                return await behavior(request, context)

        return _UnaryCall(run, _Context(metadata, timeout))


class _StreamMethod:
    __slots__ = ("_method", "_behavior", "_traced")

    def __init__(self, method: str, behavior: Callable[[Any, _Context], AsyncIterator[Any]],
                 traced: bool):
        self._method, self._behavior, self._traced = method, behavior, traced

    def __call__(self, request: Any, *, timeout: float | None = None,
                 metadata: Metadata = (), **_: Any) -> _StreamCall:
        context = _Context(metadata, timeout)
        messages = self._behavior(request, context)
        if self._traced:
            messages = _traced(self._method, messages)
        return _StreamCall(messages, context)


async def _traced(method: str, messages: AsyncIterator[Any]) -> AsyncIterator[Any]:
    with _span(method):
        async with contextlib.aclosing(messages):  # type: ignore[type-var]
            async for message in messages:
                yield message


class LocalChannel:
    """A channel whose calls run in this process, through ``interceptor``.

    Servicers register on it as on a server (``add_XServicer_to_server(servicer,
    channel)``); stubs built over it call them.
    """

    def __init__(self, interceptor: RequestInterceptor, *, traced: bool = False) -> None:
        self._interceptor = interceptor
        self._traced = traced
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    # --- the server side: what the generated add_*_to_server functions call -------------

    def add_generic_rpc_handlers(self, handlers: Sequence[Any]) -> None:
        """Unused: the generated code registers every method below as well."""

    def add_registered_method_handlers(self, service: str,
                                       handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        for name, handler in handlers.items():
            method = f"/{service}/{name}"
            self._handlers[method] = self._interceptor.wrap(method, handler)

    # --- the client side: what the generated stubs call ---------------------------------

    def unary_unary(self, method: str, *_: Any, **__: Any) -> _UnaryMethod:
        handler = self._handler(method)
        if handler.unary_unary is None:
            raise ValueError(f"{method} is not a unary method")
        return _UnaryMethod(method, handler.unary_unary,
                            self._traced and tracing.traced_method(method))

    def unary_stream(self, method: str, *_: Any, **__: Any) -> _StreamMethod:
        handler = self._handler(method)
        if handler.unary_stream is None:
            raise ValueError(f"{method} is not a server-streaming method")
        return _StreamMethod(method, handler.unary_stream,
                             self._traced and tracing.traced_method(method))

    def _handler(self, method: str) -> grpc.RpcMethodHandler:
        try:
            return self._handlers[method]
        except KeyError:
            raise ValueError(f"no servicer registered for {method}") from None

    async def close(self) -> None:
        """Nothing to release; here so the composition root closes every channel alike."""
