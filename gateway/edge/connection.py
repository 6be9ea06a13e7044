"""One accepted TCP connection of the gateway's HTTP server: Hypercorn's ``TCPServer``,
closed as soon as its client closes it, with a keep-alive timer that is a timer handle,
and a stream's chunks of one loop turn written together.

Example::

    await GatewayTCPServer(app, loop, config, context, state, reader, writer, idle)
"""

from __future__ import annotations

import asyncio

from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.events import Event, RawData, Updated
from hypercorn.typing import AppWrapper, ConnectionState, LifespanState
from hypercorn.utils import parse_socket_addr
from typing_extensions import override

from gateway.edge.protocol import GatewayProtocolWrapper, GatewayTaskGroup, StreamChunk

__all__ = ["GatewayTCPServer", "IdleConnections"]


class IdleConnections:
    """A worker's idle keep-alive connections, closed together when it stops."""

    __slots__ = ("closing", "_servers")

    def __init__(self) -> None:
        self.closing = False
        self._servers: set[GatewayTCPServer] = set()

    def add(self, server: GatewayTCPServer) -> None:
        self._servers.add(server)

    def discard(self, server: GatewayTCPServer) -> None:
        self._servers.discard(server)

    def close_all(self) -> None:
        """The worker stops: close every idle connection now, and each that goes idle."""
        self.closing = True
        for server in list(self._servers):
            server.close_idle()


class GatewayTCPServer(TCPServer):
    """A connection served with the gateway's protocol and task group classes.

    - **Closes when its client does.** Hypercorn's reader ends at EOF, but the connection's
      task group also holds the keep-alive timer, so the socket stayed in CLOSE-WAIT until
      ``keep_alive_timeout`` (docs/hypercorn-defects.md). Here the timer stops when
      reading ends.
    - **A timer handle between requests**, not a task that every request cancels, awaits
      and starts again.
    - **A stream's chunks sent in one loop turn leave in one write** at the end of the
      turn. Nothing waits for more data, every other write goes at once after what is
      held, and held bytes count against the transport's high-water mark, so a client that
      stops reading holds its stream's sender back as with Hypercorn.
    """

    def __init__(self, app: AppWrapper, loop: asyncio.AbstractEventLoop, config: Config,
                 context: WorkerContext, state: LifespanState, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, idle: IdleConnections) -> None:
        super().__init__(app, loop, config, context, state, reader, writer)
        self._idle = idle
        self._timer: asyncio.TimerHandle | None = None
        self._held: list[bytes] = []
        self._held_size = 0
        self._group: GatewayTaskGroup | None = None

    @override
    async def run(self) -> None:
        sock = self.writer.get_extra_info("socket")
        try:
            client = parse_socket_addr(sock.family, sock.getpeername())
            server = parse_socket_addr(sock.family, sock.getsockname())
            ssl_object = self.writer.get_extra_info("ssl_object")
            ssl = ssl_object is not None
            alpn = ssl_object.selected_alpn_protocol() if ssl else "http/1.1"
            group = GatewayTaskGroup(self.loop)
            async with group:
                self._task_group = self._group = group
                self.protocol = GatewayProtocolWrapper(
                    self.app, self.config, self.context, group, ConnectionState(self.state),
                    ssl, client, server, self.protocol_send, alpn)
                await self.protocol.initiate()
                self._went_idle()
                await self._read_data()
        except OSError:
            pass
        finally:
            await self._close()

    @override
    async def protocol_send(self, event: Event) -> None:
        kind = type(event)
        if kind is StreamChunk:
            data = event.data  # type: ignore[attr-defined]
            if not self._held:
                self.loop.call_soon(self._write_held)
            self._held.append(data)
            self._held_size += len(data)
            transport = self.writer.transport
            if (transport.get_write_buffer_size() + self._held_size
                    < transport.get_write_buffer_limits()[1]):
                return
            event = RawData(data=b"")  # over the high-water mark: write and drain now
        elif kind is Updated:
            if event.idle:  # type: ignore[attr-defined]
                self._went_idle()
            else:
                self._stop_timer()
            return
        elif kind is not RawData:
            await super().protocol_send(event)
            return
        if self._held:
            event = RawData(data=self._take_held() + event.data)  # type: ignore[attr-defined]
        await super().protocol_send(event)

    @override
    async def _read_data(self) -> None:
        try:
            await super()._read_data()
        finally:
            self._stop_timer()

    @override
    async def _close(self) -> None:
        self._stop_timer()
        self._write_held()
        await super()._close()

    @override
    async def _initiate_server_close(self) -> None:
        self._write_held()
        await super()._initiate_server_close()

    def close_idle(self) -> None:
        """Close this idle connection, as Hypercorn's idle timeout does."""
        self._stop_timer()
        if self._group is not None:
            self._group.start(self._initiate_server_close())

    def _went_idle(self) -> None:
        self._stop_timer()
        if self._idle.closing:
            self.close_idle()
            return
        self._timer = self.loop.call_later(self.config.keep_alive_timeout, self.close_idle)
        self._idle.add(self)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._idle.discard(self)

    def _take_held(self) -> bytes:
        held = self._held
        data = held[0] if len(held) == 1 else b"".join(held)
        held.clear()
        self._held_size = 0
        return data

    def _write_held(self) -> None:
        """Write the chunks held since the last write, in one call."""
        if not self._held:
            return
        data = self._take_held()
        if self.writer.transport.is_closing():
            return  # a lost connection is noticed by its reader, which ends the streams
        try:
            self.writer.write(data)
        except (ConnectionError, RuntimeError):
            pass
