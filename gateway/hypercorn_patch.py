"""Two fixes and five trims for Hypercorn's asyncio server, applied by ``gateway serve``
before it starts.

**A connection closes as soon as its client does.** Hypercorn 0.17 and 0.18 run each
connection's reader inside a task group that also holds the keep-alive idle timer. When
the client closes the connection, reading ends but the group waits for that timer
(``server.keep_alive_timeout``, 75 s by default) before the socket is closed. Each
connection a client closed therefore kept a file descriptor, a CLOSE-WAIT socket and its
server objects for that long, so descriptors and memory grew with the rate of new
connections (health probes, curl, SDKs dropping pooled connections, clients that stop
reading a stream at ``[DONE]``), not with the work actually in progress. The soak test
found it (tests/reliability/test_soak.py). The fix stops the idle timer once reading has
ended, which is what Hypercorn's own close path does a moment later.

**A request answered before its body was read does not strand its connection.** Hypercorn
hands request body chunks to the application through a queue of
``max_app_queue_size`` (10) events, and the connection's reader waits while it is full.
When the application answers without reading the rest of the body (413 for an oversize
body, 405 from a route that takes none) and the client sent more than ten
chunks, the queue stays full: when the response ends, Hypercorn closes the stream from
inside the application's last ``send`` by queueing ``http.disconnect``, which waits for
room that only the application could make. The application, the connection's reader and
its task wait forever, and a graceful shutdown waits ``server.shutdown_timeout`` for them.
The fix empties the queue when the disconnect comes (the stream is closed, so the
unread body is moot), which leaves room for it and for a put already under way.
A CI run found it as a gateway that did not stop after SIGTERM.

Both fixes are no-ops on a Hypercorn without the patched internals; regression tests are
in tests/reliability/test_fault_regressions.py.

Five trims of Hypercorn's per-request work follow, each measured (docs/performance.md,
changes 8, 9, 11, 12 and 15), each keeping what goes on the wire, each a no-op on a
Hypercorn without the method it replaces (tests/unit/test_hypercorn_trims.py):

- **One write per small response.** Hypercorn writes a response's head, then its body,
  then the empty end of a sized body, as three socket writes (each a system call on the
  request's path). The head is held until the body's first bytes and goes out with
  them; nothing empty is written. Hypercorn sends the head only together with the first
  body message, so nothing waits.
- **A stream's chunks that arrive together leave together.** The chunks of a streamed
  (chunked) response that its task sends during one turn of the event loop, typically
  the events of one read from the upstream, are written with one system call at the end
  of that turn instead of one each. Nothing waits for more data: the turn ends as soon
  as the tasks that ran have nothing more to do. Every other write (a sized response, a
  stream's head and its last chunk) goes at once, after anything held. A client that
  reads slowly still holds its senders back as before (the write buffer's high-water
  mark, then ``drain``), and everything held is written before the connection closes.
  Each such chunk is framed here (``<size in hex>\r\n<bytes>\r\n``), exactly as h11's
  chunked writer frames it, without h11's event machinery: on a chunk of a chunked body
  h11's state does not move, so only while h11 is sending that body with that writer;
  the head, the first chunk, empty chunks, the end and every other body go through h11.
  An application can also hand such chunks straight to the connection, past Hypercorn's
  per-message ASGI dispatch, through the :data:`CHUNKS_EXTENSION` (the chat route's
  streams do).
- **The keep-alive timer without a task.** Between requests Hypercorn runs a keep-alive
  timer as a task that waits, under ``asyncio.wait_for`` (a task of its own), for the
  timeout or for the worker to stop; every request cancels one (and waits for it to
  end) and starts another: two tasks and two extra turns of the event loop per request.
  Here an idle connection holds a timer handle instead, and the worker's idle
  connections are closed together, by one task, when it stops.
- **The Date header once a second.** It was formatted for every response.
- **h11's headers iterate as a list.** A request's headers are walked four times on the
  way in (three by Hypercorn, one by h11) and a response's once by this module. h11's
  ``Headers`` is a ``Sequence`` without ``__iter__``, so each walk ran the ABC's
  generator and one ``__getitem__`` call per header; the same pairs now come from one
  list built in a comprehension (about 40 Python calls fewer per request).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from wsgiref.handlers import format_date_time

import h11
from h11 import _headers as h11_headers
from h11._writers import ChunkedWriter as _ChunkedWriter
from hypercorn import config as hypercorn_config
from hypercorn.asyncio import task_group, tcp_server
from hypercorn.events import RawData
from hypercorn.protocol import h11 as h11_protocol
from hypercorn.protocol import http_stream

from gateway.asgi import BODY_PASSES_THROUGH, CHUNKS_EXTENSION, DISCONNECT_EXTENSION

__all__ = ["BODY_PASSES_THROUGH", "CHUNKS_EXTENSION", "DISCONNECT_EXTENSION", "apply"]

_MARK = "_llm_gateway_replaced"  # set on each function this module installs

Put = Callable[[Any], Awaitable[None]]
Method = Callable[..., Any]


def apply() -> None:
    """Patch Hypercorn's asyncio connection and task group classes once (idempotent)."""
    _close_on_eof(tcp_server.TCPServer)
    _release_body_queue(task_group.TaskGroup)
    _one_write_per_response(h11_protocol.H11Protocol)
    _stream_chunks_per_turn(tcp_server.TCPServer)
    _keep_alive_timer_without_a_task(tcp_server)
    _headers_iterate_as_a_list(h11_headers.Headers)
    if getattr(hypercorn_config, "format_date_time", None) is format_date_time:
        setattr(hypercorn_config, "format_date_time", _date_once_a_second)  # noqa: B010


def _original(owner: type, name: str) -> Any:
    """Hypercorn's ``owner.name`` to replace; None when this Hypercorn lacks it or it is
    already replaced (so each patch is a no-op elsewhere, and applying twice is too)."""
    method = getattr(owner, name, None)
    return None if method is None or getattr(method, _MARK, False) else method


def _install(owner: type, name: str, method: Method) -> None:
    setattr(method, _MARK, True)
    setattr(owner, name, method)


def _close_on_eof(server: type) -> None:
    read: Callable[[Any], Awaitable[None]] | None = _original(server, "_read_data")
    if read is None:
        return

    async def read_then_stop_idle_timer(self: Any) -> None:
        try:
            await read(self)
        finally:
            idle = getattr(self, "idle_task", None)
            if idle is not None:
                await idle.stop()

    _install(server, "_read_data", read_then_stop_idle_timer)


def _release_body_queue(group: type) -> None:
    spawn_app: Callable[..., Awaitable[Put]] | None = _original(group, "spawn_app")
    if spawn_app is None:
        return

    async def spawn_app_disconnect_makes_room(self: Any, app: Any, config: Any, scope: Any,
                                              send: Any) -> Put:
        put = await spawn_app(self, app, config, scope, send)
        queue = getattr(put, "__self__", None)
        if not isinstance(queue, asyncio.Queue):
            return put  # not the Hypercorn this was written for: leave it as it is
        wrapper = _DisconnectMakesRoom(queue)
        # The application's task is created but has not run yet: it sees the extensions.
        scope["extensions"][DISCONNECT_EXTENSION] = {"watch": wrapper.watch}
        scope["extensions"][CHUNKS_EXTENSION] = _CHUNKS
        return wrapper

    _install(group, "spawn_app", spawn_app_disconnect_makes_room)


async def _send_chunk(send: Any, data: bytes) -> None:
    """:data:`CHUNKS_EXTENSION`'s ``send``: ``send`` is Hypercorn's ``HTTPStream.app_send``
    for the request (its events go on to the connection's ``stream_send``)."""
    stream = getattr(getattr(send, BODY_PASSES_THROUGH, send), "__self__", None)
    if (data and type(stream) is http_stream.HTTPStream
            and stream.state is http_stream.ASGIHTTPState.RESPONSE and not stream.closed):
        protocol = getattr(stream.send, "__self__", None)
        if type(protocol) is h11_protocol.H11Protocol and _frames_chunks(protocol):
            await protocol.send(_chunk(data))
            return
    await send({"type": "http.response.body", "body": data, "more_body": True})


_CHUNKS = {"send": _send_chunk}


class _DisconnectMakesRoom:
    """The ``put`` Hypercorn feeds one request's events through. Hypercorn sets the stream
    closed before it queues ``http.disconnect``, and queues nothing for a closed stream
    after; only a put already under way can still land. So emptying the queue when the
    disconnect comes leaves room for it and for that one put, whoever is still reading.

    It also tells a watcher (:data:`DISCONNECT_EXTENSION`) of the disconnect as it is
    queued, so the application needs no task waiting on ``receive`` to notice it."""

    __slots__ = ("_queue", "_watcher")

    def __init__(self, queue: asyncio.Queue[Any]) -> None:
        self._queue = queue
        self._watcher: Callable[[], None] | None = None

    def watch(self, watcher: Callable[[], None] | None) -> None:
        """Call ``watcher`` once when ``http.disconnect`` is queued; None stops watching."""
        self._watcher = watcher

    async def __call__(self, event: Any) -> None:
        queue = self._queue
        if event.get("type") == "http.disconnect":
            # The stream is closed, so the unread body is moot. This put can come from
            # inside the application's own send (Hypercorn closes the stream when the
            # response ends): waiting for room there would wait forever. Emptying even a
            # queue with room matters too: a reader woken for a slot this event then
            # takes would find the queue full again, with nobody left to read it.
            while not queue.empty():
                queue.get_nowait()  # each slot freed also wakes a reader waiting to put
            watcher, self._watcher = self._watcher, None
            if watcher is not None:
                watcher()
        await queue.put(event)


@dataclass(frozen=True)
class _StreamChunk(RawData):
    """Bytes of a chunked response's body: they may wait for the end of this loop turn."""


def _one_write_per_response(protocol: type) -> None:
    if _original(protocol, "_send_h11_event") is None:
        return  # replaced whole: it is a few lines of Hypercorn's

    async def send_head_with_body(self: Any, event: Any) -> None:
        kind = type(event)
        if kind is h11.Data and event.data and _frames_chunks(self):
            await self.send(_chunk(event.data))
            return
        try:
            data = self.connection.send(event)
        except h11.LocalProtocolError:
            if self.connection.their_state != h11.ERROR:
                raise
            return
        if kind is h11.Response:
            self._llm_gateway_head = data  # goes out with the body's first bytes
            self._llm_gateway_chunked = all(name != b"content-length"
                                            for name, _ in event.headers)
            writer = getattr(self.connection, "_writer", None)
            self._llm_gateway_frames = writer if type(writer) is _ChunkedWriter else None
            return
        head = self.__dict__.pop("_llm_gateway_head", None)
        if head is not None:
            await self.send(RawData(data=head + data))  # a head goes at once
        elif kind is h11.Data and self.__dict__.get("_llm_gateway_chunked"):
            await self.send(_StreamChunk(data=data))
        elif data:
            await self.send(RawData(data=data))

    _install(protocol, "_send_h11_event", send_head_with_body)


def _frames_chunks(protocol: Any) -> bool:
    """True while ``protocol`` (an ``H11Protocol``) is sending a chunked body whose head is
    out: h11 would frame a chunk and do nothing more (no state moves on ``Data``), so the
    chunk can be framed here, without h11's event machinery (~15 Python calls a chunk)."""
    frames = protocol.__dict__.get("_llm_gateway_frames")
    return (frames is not None and "_llm_gateway_head" not in protocol.__dict__
            and protocol.connection._writer is frames
            and protocol.connection.our_state is h11.SEND_BODY)


def _chunk(data: bytes) -> _StreamChunk:
    """``data`` framed as h11's chunked writer frames it."""
    return _StreamChunk(data=b"%x\r\n%b\r\n" % (len(data), data))


def _stream_chunks_per_turn(server: type) -> None:
    send: Callable[[Any, Any], Awaitable[None]] | None = _original(server, "protocol_send")
    close: Callable[[Any], Awaitable[None]] | None = _original(server, "_close")
    initiate: Callable[[Any], Awaitable[None]] | None = _original(
        server, "_initiate_server_close")
    if send is None or close is None or initiate is None:
        return

    async def protocol_send(self: Any, event: Any) -> None:
        kind = type(event)
        if kind is _StreamChunk:
            held: list[bytes] | None = self.__dict__.get("_llm_gateway_held")
            if held is None:
                self._llm_gateway_held = [event.data]
                self.loop.call_soon(_write_held, self)
            else:
                held.append(event.data)
            transport = self.writer.transport
            if transport.get_write_buffer_size() < transport.get_write_buffer_limits()[1]:
                return
            event = RawData(data=b"")  # the client reads slowly: wait for it, as Hypercorn does
        elif kind is not RawData:
            await send(self, event)
            return
        held = self.__dict__.pop("_llm_gateway_held", None)
        if held:
            held.append(event.data)
            event = RawData(data=b"".join(held))
        await send(self, event)

    async def write_held_then_close(self: Any) -> None:
        _write_held(self)
        await close(self)

    async def write_held_then_initiate_close(self: Any) -> None:
        _write_held(self)
        await initiate(self)

    _install(server, "protocol_send", protocol_send)
    _install(server, "_close", write_held_then_close)
    _install(server, "_initiate_server_close", write_held_then_initiate_close)


def _write_held(server: Any) -> None:
    """Write the stream chunks held since the last write, in one call."""
    held: list[bytes] | None = server.__dict__.pop("_llm_gateway_held", None)
    if not held or server.writer.transport.is_closing():
        return  # a lost connection is noticed by its reader, which ends the streams
    try:
        server.writer.write(held[0] if len(held) == 1 else b"".join(held))
    except (ConnectionError, RuntimeError):
        pass


def _keep_alive_timer_without_a_task(module: Any) -> None:
    if _original(module, "AsyncioSingleTask") is None:
        return  # this Hypercorn's connections have no such timer: leave them
    _install(module, "AsyncioSingleTask", _KeepAliveTimer)


class _KeepAliveTimer:
    """A connection's keep-alive timer, in the place of the ``AsyncioSingleTask`` that
    Hypercorn's ``TCPServer`` restarts with its ``_idle_timeout`` when the connection
    goes idle and stops when a request comes: while idle, a timer handle; on the
    timeout, or when the worker stops, the connection closes as ``_idle_timeout`` would
    have closed it, in the connection's task group and beyond the reach of ``stop``."""

    __slots__ = ("_handle", "_server", "_group")

    def __init__(self) -> None:
        self._handle: asyncio.TimerHandle | None = None
        self._server: Any = None
        self._group: Any = None

    async def restart(self, task_group: Any, action: Callable[[], Awaitable[None]]) -> None:
        server = getattr(action, "__self__", None)
        if not isinstance(server, tcp_server.TCPServer):
            raise TypeError("gateway.hypercorn_patch's keep-alive timer times TCPServer's "
                            "idle connections only")
        self._cancel()
        self._server, self._group = server, task_group
        idle = _IdleConnections.of(server.context)
        if server.context.terminated.is_set():
            self._expire()  # the worker is stopping: no more waiting
            return
        self._handle = server.loop.call_later(server.config.keep_alive_timeout, self._expire)
        idle.timers.add(self)

    async def stop(self) -> None:
        self._cancel()

    def _cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            _IdleConnections.of(self._server.context).timers.discard(self)

    def _expire(self) -> None:
        self._cancel()
        closing = self._server._initiate_server_close()
        try:
            self._group._task_group.create_task(closing)  # as AsyncioSingleTask starts it
        except RuntimeError:
            closing.close()  # the connection's task group has ended: it is closing already


class _IdleConnections:
    """One worker's idle connections, closed together by one task when it stops (its
    ``terminated`` event), as each connection's own timer task used to close it."""

    __slots__ = ("timers", "_watch")

    def __init__(self, terminated: Any) -> None:
        self.timers: set[_KeepAliveTimer] = set()
        self._watch = asyncio.ensure_future(self._close_when_set(terminated))

    @classmethod
    def of(cls, context: Any) -> _IdleConnections:
        idle: _IdleConnections | None = context.__dict__.get("_llm_gateway_idle")
        if idle is None:
            idle = context._llm_gateway_idle = cls(context.terminated)
        return idle

    async def _close_when_set(self, terminated: Any) -> None:
        await terminated.wait()
        for timer in list(self.timers):
            timer._expire()


def _headers_iterate_as_a_list(headers: type) -> None:
    if "__iter__" in vars(headers) or "_full_items" not in getattr(headers, "__slots__", ()):
        return  # iterates its own way (or already does this), or is not the h11 this knows

    def iterate_pairs(self: Any) -> Any:
        return iter([(name, value) for _, name, value in self._full_items])

    _install(headers, "__iter__", iterate_pairs)


_date: dict[int, str] = {}  # the current second's Date header value


def _date_once_a_second(timestamp: float) -> str:
    second = int(timestamp)
    value = _date.get(second)
    if value is None:
        _date.clear()
        value = _date[second] = format_date_time(second)
    return value
