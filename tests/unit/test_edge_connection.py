"""gateway/edge's connection and protocol, driven with a real h11 connection and a
recording writer: chunks framed exactly as h11 frames them; a stream's chunks of one loop
turn in one write, in order, written before anything else and before a close; held bytes
count against the high-water mark; the keep-alive timer is a handle, not a task, and still
closes an idle connection on timeout and when the worker stops."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import h11
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.events import RawData, Updated
from hypercorn.typing import ConnectionState

from gateway.edge.connection import GatewayTCPServer, IdleConnections
from gateway.edge.protocol import GatewayH11Protocol, GatewayTaskGroup, StreamChunk


async def protocol(request: bytes = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                   ) -> tuple[GatewayH11Protocol, list[Any]]:
    sent: list[Any] = []

    async def send(event: Any) -> None:
        sent.append(event)

    proto = GatewayH11Protocol(None, Config(), WorkerContext(None),  # type: ignore[arg-type]
                               GatewayTaskGroup(asyncio.get_running_loop()),
                               ConnectionState({}), False, None, None, send)
    proto.connection.receive_data(request)
    proto.connection.next_event(), proto.connection.next_event()
    return proto, sent


async def test_chunks_are_framed_as_h11_frames_them_and_marked_as_stream_chunks() -> None:
    proto, sent = await protocol()
    parts = [b"data: {}\n\n", b"", b"x" * 300, b"data: [DONE]\n\n"]
    for event in (h11.Response(status_code=200, headers=[]), *(h11.Data(data=p) for p in parts),
                  h11.EndOfMessage()):
        await proto._send_h11_event(event)  # type: ignore[arg-type]
    reference = h11.Connection(h11.SERVER)
    reference.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    reference.next_event(), reference.next_event()
    expected = b"".join(reference.send(e) or b"" for e in (
        h11.Response(status_code=200, headers=[]), *(h11.Data(data=p) for p in parts),
        h11.EndOfMessage()))
    assert b"".join(e.data for e in sent) == expected
    assert [type(e) for e in sent] == [RawData, StreamChunk, RawData, StreamChunk, StreamChunk,
                                       RawData]  # head, chunks (the empty one: h11's b""), end


async def test_an_http10_clients_body_and_a_sized_body_are_left_to_h11() -> None:
    proto, sent = await protocol(b"GET / HTTP/1.0\r\n\r\n")
    for event in (h11.Response(status_code=200, headers=[]), h11.Data(data=b"one"),
                  h11.EndOfMessage()):
        await proto._send_h11_event(event)
    assert b"".join(e.data for e in sent).endswith(b"\r\n\r\none")  # close-delimited
    assert StreamChunk not in {type(e) for e in sent}
    sized, sent = await protocol()
    for event in (h11.Response(status_code=200, headers=[(b"content-length", b"4")]),
                  h11.Data(data=b"size"), h11.EndOfMessage()):
        await sized._send_h11_event(event)
    assert StreamChunk not in {type(e) for e in sent}


class Writer:
    """A connection's writer: what was written, in how many calls, and the drains."""

    def __init__(self, buffered: int = 0) -> None:
        self.calls: list[bytes] = []
        self.drains = 0
        self.buffered = buffered
        self.transport = self

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return 16, 1024

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.calls.append(data)

    async def drain(self) -> None:
        self.drains += 1

    def close(self) -> None:
        pass


def server(writer: Writer | None = None, *, keep_alive: float = 5,
           idle: IdleConnections | None = None) -> Any:
    config = Config()
    config.keep_alive_timeout = keep_alive
    conn: Any = GatewayTCPServer(None, asyncio.get_running_loop(), config,  # type: ignore[arg-type]
                                 WorkerContext(None), {}, None, writer,  # type: ignore[arg-type]
                                 idle or IdleConnections())
    conn.closed = []

    async def handle(event: Any) -> None:
        conn.closed.append(event)

    conn.protocol = type("P", (), {"handle": staticmethod(handle)})()
    return conn


async def test_stream_chunks_of_one_turn_leave_in_one_write_in_order() -> None:
    writer = Writer()
    conn = server(writer)
    for part in (b"a", b"b", b"c"):
        await conn.protocol_send(StreamChunk(data=part))
    assert writer.calls == []  # held until this turn of the loop ends
    await asyncio.sleep(0)
    assert writer.calls == [b"abc"]
    await conn.protocol_send(StreamChunk(data=b"d"))
    await conn.protocol_send(RawData(data=b"end"))  # the last chunk: at once, after "d"
    assert writer.calls == [b"abc", b"dend"]
    await asyncio.sleep(0)
    assert writer.calls == [b"abc", b"dend"]  # nothing written twice


async def test_held_chunks_are_written_before_the_connection_closes() -> None:
    writer = Writer()
    conn = server(writer)
    await conn.protocol_send(StreamChunk(data=b"x"))
    await conn._initiate_server_close()
    assert writer.calls == [b"x"] and conn.closed


async def test_held_bytes_count_against_the_high_water_mark() -> None:
    writer = Writer()
    conn = server(writer)
    for _ in range(3):  # 3 x 400 held bytes pass the 1,024-byte mark in one turn
        await conn.protocol_send(StreamChunk(data=b"x" * 400))
    assert writer.calls == [b"x" * 1200] and writer.drains == 1
    slow = Writer(buffered=1024)  # the client has not read what it was sent
    conn = server(slow)
    await conn.protocol_send(StreamChunk(data=b"y"))
    assert slow.calls == [b"y"] and slow.drains == 1


def count_tasks_created() -> list[object]:
    loop = asyncio.get_running_loop()
    created: list[object] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        created.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    return created


async def test_the_keep_alive_timer_is_a_handle_that_closes_on_timeout_and_on_stop() -> None:
    idle = IdleConnections()
    closed: list[str] = []
    async with GatewayTaskGroup(asyncio.get_running_loop()) as group:
        conns = {name: server(keep_alive=0.2 if name in ("quick", "busy") else 30, idle=idle)
                 for name in ("quick", "busy", "idle", "late")}
        for name, conn in conns.items():
            conn._group = group

            async def close(name: str = name) -> None:
                closed.append(name)

            conn._initiate_server_close = close
        started = time.monotonic()
        created = count_tasks_created()
        conns["quick"]._went_idle()
        for _ in range(100):  # requests come and go on a connection: no task each time
            await conns["busy"].protocol_send(Updated(idle=True))
            await conns["busy"].protocol_send(Updated(idle=False))
        assert created == []
        await asyncio.sleep(0.3)
        assert closed == ["quick"] and time.monotonic() - started >= 0.19
        conns["idle"]._went_idle()
        idle.close_all()  # the worker stops: idle connections close now
        await asyncio.sleep(0)
        assert closed == ["quick", "idle"]
        conns["late"]._went_idle()  # idle after its last answer, while stopping
        await asyncio.sleep(0)
        assert closed == ["quick", "idle", "late"]
    asyncio.get_running_loop().set_task_factory(None)
