"""The per-request trims of Hypercorn in gateway/hypercorn_patch.py, driven through the
patched Hypercorn methods with a real h11 connection: a small response is one write and
nothing empty is written; a stream's chunks sent in one loop turn are one write, in
order, before anything else and before the connection closes, and a slow reader still
holds the sender back; the keep-alive timer is a timer handle, not a task, and still
closes an idle connection on timeout and when the worker stops; the Date header is right
and made once a second; h11's headers iterate as the sequence they are, from one list."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any
from wsgiref.handlers import format_date_time

import h11
from hypercorn import config as hypercorn_config
from hypercorn.asyncio import task_group, tcp_server
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.events import RawData
from hypercorn.protocol import h11 as h11_protocol

from gateway import hypercorn_patch

hypercorn_patch.apply()


class Wire:
    """What the patched ``H11Protocol._send_h11_event`` needs: a server-side h11
    connection that has read a request, and the ``send`` it writes through."""

    def __init__(self, method: bytes = b"GET") -> None:
        self.connection = h11.Connection(h11.SERVER)
        self.connection.receive_data(method + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert isinstance(self.connection.next_event(), h11.Request)
        self.connection.next_event()  # EndOfMessage
        self.writes: list[bytes] = []

    async def send(self, event: Any) -> None:
        assert isinstance(event, RawData)
        self.writes.append(event.data)

    async def respond(self, *events: Any) -> None:
        for event in events:
            await h11_protocol.H11Protocol._send_h11_event(self, event)  # type: ignore[arg-type]


async def test_a_sized_response_is_one_write() -> None:
    wire = Wire()
    await wire.respond(h11.Response(status_code=200, headers=[(b"content-length", b"2")]),
                       h11.Data(data=b"ok"), h11.EndOfMessage())
    assert len(wire.writes) == 1
    assert wire.writes[0].startswith(b"HTTP/1.1 200 ") and wire.writes[0].endswith(b"\r\n\r\nok")


async def test_a_chunked_response_keeps_its_framing() -> None:
    wire = Wire()
    await wire.respond(h11.Response(status_code=200, headers=[]), h11.Data(data=b"one"))
    assert len(wire.writes) == 1 and wire.writes[0].endswith(b"\r\n\r\n3\r\none\r\n")
    await wire.respond(h11.Data(data=b"two"), h11.EndOfMessage())
    assert wire.writes[1:] == [b"3\r\ntwo\r\n", b"0\r\n\r\n"]


async def test_stream_chunks_are_framed_as_h11_frames_them_without_its_machinery() -> None:
    wire, sent = Wire(), []
    h11_send = wire.connection.send

    def counted(event: Any) -> Any:
        sent.append(type(event).__name__)
        return h11_send(event)

    wire.connection.send = counted  # type: ignore[method-assign]
    parts = [b"data: {}\n\n", b"", b"x" * 300, b"data: [DONE]\n\n"]
    await wire.respond(h11.Response(status_code=200, headers=[]),
                       *(h11.Data(data=p) for p in parts), h11.EndOfMessage())
    reference = h11.Connection(h11.SERVER)
    reference.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    reference.next_event(), reference.next_event()
    expected = b"".join(reference.send(e) or b"" for e in (
        h11.Response(status_code=200, headers=[]), *(h11.Data(data=p) for p in parts),
        h11.EndOfMessage()))
    assert b"".join(wire.writes) == expected
    # h11 made the head and the first chunk (sent with it), saw the empty chunk (it writes
    # nothing for one) and the end; the other chunks were framed here.
    assert sent == ["Response", "Data", "Data", "EndOfMessage"]
    # The next response on the connection is sized: h11 writes it, as before.
    wire.connection.start_next_cycle()
    wire.connection.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    wire.connection.next_event(), wire.connection.next_event()
    wire.writes.clear()
    await wire.respond(h11.Response(status_code=200, headers=[(b"content-length", b"4")]),
                       h11.Data(data=b"size"), h11.EndOfMessage())
    assert len(wire.writes) == 1 and wire.writes[0].endswith(b"\r\n\r\nsize")


async def test_an_http10_clients_stream_is_left_to_h11() -> None:
    wire = Wire()
    wire.connection = h11.Connection(h11.SERVER)
    wire.connection.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    wire.connection.next_event(), wire.connection.next_event()
    await wire.respond(h11.Response(status_code=200, headers=[]), h11.Data(data=b"one"),
                       h11.Data(data=b"two"), h11.EndOfMessage())
    assert b"".join(wire.writes).endswith(b"\r\n\r\nonetwo")  # close-delimited, unframed


class Writer:
    """A connection's writer: what was written, in how many calls, and the drains."""

    def __init__(self, buffered: int = 0) -> None:
        self.calls: list[bytes] = []
        self.drains = 0
        self.transport = SimpleNamespace(get_write_buffer_size=lambda: buffered,
                                         get_write_buffer_limits=lambda: (16, 65536),
                                         is_closing=lambda: False)

    def write(self, data: bytes) -> None:
        self.calls.append(data)

    async def drain(self) -> None:
        self.drains += 1

    def close(self) -> None:
        pass


def connection(writer: Writer) -> Any:
    server = SimpleNamespace(loop=asyncio.get_running_loop(), writer=writer,
                             send_lock=asyncio.Lock(), closed=[])

    async def handle(event: Any) -> None:
        server.closed.append(event)

    server.protocol = SimpleNamespace(handle=handle)
    return server


async def test_stream_chunks_of_one_turn_leave_in_one_write_in_order() -> None:
    writer = Writer()
    server = connection(writer)
    send = tcp_server.TCPServer.protocol_send
    for part in (b"a", b"b", b"c"):
        await send(server, hypercorn_patch._StreamChunk(data=part))  # type: ignore[arg-type]
    assert writer.calls == []  # held until this turn of the loop ends
    await asyncio.sleep(0)
    assert writer.calls == [b"abc"]
    await send(server, hypercorn_patch._StreamChunk(data=b"d"))  # type: ignore[arg-type]
    await send(server, RawData(data=b"end"))  # a stream's last chunk: at once, after "d"
    assert writer.calls == [b"abc", b"dend"]
    await asyncio.sleep(0)
    assert writer.calls == [b"abc", b"dend"]  # nothing written twice


async def test_held_chunks_are_written_before_the_connection_closes() -> None:
    writer = Writer()
    server = connection(writer)
    await tcp_server.TCPServer.protocol_send(server, hypercorn_patch._StreamChunk(data=b"x"))  # type: ignore[arg-type]
    await tcp_server.TCPServer._initiate_server_close(server)  # type: ignore[arg-type]
    assert writer.calls == [b"x"] and server.closed  # written, then closed


async def test_a_slow_reader_holds_the_stream_back() -> None:
    writer = Writer(buffered=65536)  # the client has not read what it was sent
    server = connection(writer)
    await tcp_server.TCPServer.protocol_send(server, hypercorn_patch._StreamChunk(data=b"x"))  # type: ignore[arg-type]
    assert writer.calls == [b"x"] and writer.drains == 1


async def test_a_bodiless_answer_still_sends_its_head() -> None:
    wire = Wire(b"HEAD")
    await wire.respond(h11.Response(status_code=200, headers=[(b"content-length", b"5")]),
                       h11.Data(data=b""), h11.EndOfMessage())
    assert len(wire.writes) == 1 and wire.writes[0].endswith(b"content-length: 5\r\n\r\n")
    error = Wire()  # Hypercorn's own error answers: a head and an end, no data
    await error.respond(h11.Response(status_code=400, headers=[(b"content-length", b"0")]),
                        h11.EndOfMessage())
    assert len(error.writes) == 1 and error.writes[0].startswith(b"HTTP/1.1 400 ")


def idle_server(timeout: float, context: WorkerContext) -> Any:
    """A real ``TCPServer`` (no socket: the timer needs none) that records its closes."""
    config = Config()
    config.keep_alive_timeout = timeout
    server: Any = tcp_server.TCPServer(None, asyncio.get_running_loop(), config,  # type: ignore[arg-type]
                                       context, None, None, None)  # type: ignore[arg-type]
    server.closed = []

    async def initiate_server_close() -> None:
        server.closed.append(time.monotonic())

    server._initiate_server_close = initiate_server_close
    return server


def count_tasks_created() -> list[object]:
    """A list that gets an entry for every task the running loop creates from now on."""
    loop = asyncio.get_running_loop()
    created: list[object] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        created.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    return created


async def test_the_keep_alive_timer_is_a_handle_that_closes_on_timeout_and_on_shutdown(
) -> None:
    context = WorkerContext(None)
    async with task_group.TaskGroup(asyncio.get_running_loop()) as group:
        quick, stopped = idle_server(0.2, context), idle_server(0.2, context)
        started = time.monotonic()
        await quick.idle_task.restart(group, quick._idle_timeout)  # starts the watcher
        created = count_tasks_created()
        for _ in range(100):  # requests come and go on a connection: no task each time
            await stopped.idle_task.restart(group, stopped._idle_timeout)
            await stopped.idle_task.stop()
        assert created == [] and len(asyncio.all_tasks()) == 2  # this test, the watcher
        await asyncio.sleep(0.3)
        assert quick.closed and quick.closed[0] - started >= 0.19
        assert not stopped.closed  # a request came: the timer stopped without closing

        idle, busy = idle_server(30, context), idle_server(30, context)
        await idle.idle_task.restart(group, idle._idle_timeout)
        await context.terminated.set()  # the worker stops: idle connections close now
        await asyncio.sleep(0.05)
        assert idle.closed and not busy.closed
        await busy.idle_task.restart(group, busy._idle_timeout)  # idle after its answer
        await asyncio.sleep(0)
        assert busy.closed
    asyncio.get_running_loop().set_task_factory(None)
    assert len(quick.closed) == len(idle.closed) == len(busy.closed) == 1


def test_the_date_header_is_made_once_a_second() -> None:
    format_date = hypercorn_config.format_date_time  # type: ignore[attr-defined]
    now = time.time()
    assert format_date(now) == format_date_time(int(now))
    assert format_date(int(now) + 0.99) is format_date(int(now))  # the same string
    assert format_date(int(now) + 1) == format_date_time(int(now) + 1)
    header = dict(hypercorn_config.Config().response_headers("h11"))[b"date"]
    assert header.decode() in (format_date_time(int(now)), format_date_time(int(now) + 1))


def test_h11_headers_iterate_as_the_sequence_they_are() -> None:
    request = h11.Request(method="GET", target="/", headers=[
        ("Host", "x"), ("X-Two", "a"), ("x-two", "b"), ("Content-Length", "0")])
    headers = request.headers
    assert "__iter__" in vars(type(headers))  # the patch, not the Sequence ABC's generator
    assert list(headers) == [headers[i] for i in range(len(headers))] == [
        (b"host", b"x"), (b"x-two", b"a"), (b"x-two", b"b"), (b"content-length", b"0")]
    assert headers == list(headers) and [name for name, _ in headers][1] == b"x-two"
    assert headers.raw_items()[1] == (b"X-Two", b"a")  # the wire's casing is kept apart


def test_applying_twice_changes_nothing() -> None:
    installed = {(owner, name): getattr(owner, name) for owner, name in (
        (tcp_server.TCPServer, "protocol_send"), (tcp_server.TCPServer, "_read_data"),
        (tcp_server, "AsyncioSingleTask"), (h11_protocol.H11Protocol, "_send_h11_event"),
        (h11.Request(method="GET", target="/", headers=[("Host", "x")]).headers.__class__,
         "__iter__"))}
    hypercorn_patch.apply()
    assert all(getattr(owner, name) is method for (owner, name), method in installed.items())
    assert all(getattr(method, "_llm_gateway_replaced", False) for method in installed.values())
