"""The gateway's HTTP/1.1 protocol and task group: Hypercorn's, with a body queue that a
finished request cannot strand, and the scope extensions of :mod:`gateway.asgi`.

Only connections accepted by :func:`gateway.edge.serve` use these classes; Hypercorn's own
stay as shipped. Example::

    wrapper = GatewayProtocolWrapper(app, config, context, task_group, state, False,
                                     client, server, send, "http/1.1")
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

import h11
from h11._writers import ChunkedWriter
from hypercorn.asyncio.task_group import TaskGroup, _handle
from hypercorn.config import Config
from hypercorn.events import Event, RawData
from hypercorn.protocol import ProtocolWrapper
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream
from hypercorn.typing import (
    AppWrapper,
    ASGIReceiveEvent,
    ASGISendEvent,
    ConnectionState,
    H11SendableEvent,
    Scope,
    WorkerContext,
)
from typing_extensions import override

from gateway.asgi import BODY_PASSES_THROUGH, CHUNKS_EXTENSION, DISCONNECT_EXTENSION

__all__ = ["GatewayH11Protocol", "GatewayProtocolWrapper", "GatewayTaskGroup", "StreamChunk"]

AppSend = Callable[[ASGISendEvent | None], Awaitable[None]]
Put = Callable[[ASGIReceiveEvent], Awaitable[None]]


@dataclass(frozen=True)
class StreamChunk(RawData):
    """A framed chunk of a chunked response body: the connection may write it together with
    the other chunks sent in the same turn of the event loop."""


def frame(data: bytes) -> StreamChunk:
    """``data`` as a chunk, framed as h11's chunked writer frames it."""
    return StreamChunk(data=b"%x\r\n%b\r\n" % (len(data), data))


class GatewayTaskGroup(TaskGroup):
    """A connection's task group. Each request's body queue is a :class:`RequestEvents`,
    and HTTP scopes carry the disconnect and chunks extensions."""

    @override
    async def spawn_app(self, app: AppWrapper, config: Config, scope: Scope,
                        send: AppSend) -> Put:
        queue: asyncio.Queue[ASGIReceiveEvent] = asyncio.Queue(config.max_app_queue_size)
        events = RequestEvents(queue)
        if scope["type"] == "http":
            extensions: dict[str, Any] = scope["extensions"]
            extensions[DISCONNECT_EXTENSION] = {"watch": events.watch}
            extensions[CHUNKS_EXTENSION] = _CHUNKS
        self.spawn(_handle, app, config, scope, queue.get, send,
                   partial(self._loop.run_in_executor, None), self._call_soon)
        return events

    def _call_soon(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
        """For a synchronous (WSGI) app's thread: run ``func`` on the loop and wait."""
        return asyncio.run_coroutine_threadsafe(func(*args), self._loop).result()

    def start(self, coroutine: Coroutine[Any, Any, None]) -> bool:
        """Run ``coroutine`` in this group; False (and closed) once the group has ended."""
        try:
            self._task_group.create_task(coroutine)
        except RuntimeError:
            coroutine.close()
            return False
        return True


class RequestEvents:
    """The ``put`` Hypercorn feeds one request's events through.

    Hypercorn marks the stream closed before it queues ``http.disconnect`` and queues
    nothing for a closed stream after it; only a put already under way can still land. So
    emptying the queue when the disconnect comes leaves room for it and for that put. A
    request answered before its body was read (413, 405) would otherwise leave the queue
    full, and the disconnect, queued from inside the app's last ``send``, would wait for
    room forever (docs/hypercorn-defects.md). A watcher is told of the disconnect as it is
    queued (:data:`~gateway.asgi.DISCONNECT_EXTENSION`).
    """

    __slots__ = ("_queue", "_watcher")

    def __init__(self, queue: asyncio.Queue[ASGIReceiveEvent]) -> None:
        self._queue = queue
        self._watcher: Callable[[], None] | None = None

    def watch(self, watcher: Callable[[], None] | None) -> None:
        """Call ``watcher`` once when ``http.disconnect`` is queued; None stops watching."""
        self._watcher = watcher

    async def __call__(self, event: ASGIReceiveEvent) -> None:
        queue = self._queue
        if event["type"] == "http.disconnect":
            while not queue.empty():  # the body is moot; each freed slot wakes a putter
                queue.get_nowait()
            watcher, self._watcher = self._watcher, None
            if watcher is not None:
                watcher()
        await queue.put(event)


async def _send_chunk(send: AppSend, data: bytes) -> None:
    """:data:`~gateway.asgi.CHUNKS_EXTENSION`'s ``send``. ``send`` is Hypercorn's
    ``HTTPStream.app_send`` (possibly behind middleware that lets bodies pass)."""
    stream = getattr(getattr(send, BODY_PASSES_THROUGH, send), "__self__", None)
    if (data and type(stream) is HTTPStream and stream.state is ASGIHTTPState.RESPONSE
            and not stream.closed):
        protocol = getattr(stream.send, "__self__", None)
        if isinstance(protocol, GatewayH11Protocol) and protocol.frames_chunks():
            await protocol.send(frame(data))
            return
    await send({"type": "http.response.body", "body": data, "more_body": True})


_CHUNKS = {"send": _send_chunk}  # one shared function: no reference from a scope to its stream


class GatewayH11Protocol(H11Protocol):
    """HTTP/1.1 whose chunks of a chunked body are framed here and sent as
    :class:`StreamChunk`: h11's state does not move on such a chunk, so only its framing is
    needed, and the connection may group the chunks of one loop turn into one write."""

    @override
    async def _send_h11_event(self, event: H11SendableEvent) -> None:
        if type(event) is h11.Data and event.data and self.frames_chunks():
            await self.send(frame(event.data))
            return
        await super()._send_h11_event(event)

    def frames_chunks(self) -> bool:
        """True while h11 is sending a chunked body whose head is out."""
        connection = self.connection
        return (type(connection) is h11.Connection and connection.our_state is h11.SEND_BODY
                and type(connection._writer) is ChunkedWriter)


class GatewayProtocolWrapper(ProtocolWrapper):
    """Hypercorn's protocol choice, with :class:`GatewayH11Protocol` for HTTP/1.1 (HTTP/2,
    negotiated or upgraded to, is Hypercorn's own)."""

    def __init__(self, app: AppWrapper, config: Config, context: WorkerContext,
                 task_group: GatewayTaskGroup, state: ConnectionState, ssl: bool,
                 client: tuple[str, int] | None, server: tuple[str, int] | None,
                 send: Callable[[Event], Awaitable[None]],
                 alpn_protocol: str | None = None) -> None:
        # Not super().__init__: it would build an H11Protocol only to drop it.
        self.app = app
        self.config = config
        self.context = context
        self.task_group = task_group
        self.ssl = ssl
        self.client = client
        self.server = server
        self.send = send
        self.state = state
        kind = H2Protocol if alpn_protocol == "h2" else GatewayH11Protocol
        self.protocol: H11Protocol | H2Protocol = kind(
            app, config, context, task_group, state, ssl, client, server, send)
